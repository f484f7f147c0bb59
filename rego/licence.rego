# Licence terms as the licences state them: MAU caps (whose users, which month), excluded
# territories, commercial use, training on outputs, prohibited uses, and the obligations a
# clause imposes (attribution, name prefix, acceptable-use policy). Messages cite the clause
# (licence.clauses[term]).
#
# A model's licence governs all its routes, unless a deployment carries a licence of its own
# (an API's commercial terms can differ from the licence of the weights): such a model is
# judged route by route. Each term's rule runs over "scopes": every model as it is (its
# licence, all its routes) and, for each deployment with a licence of its own, the model with
# that licence and the deployment's id as `_route`. A rule yields
# {[model id, deployment id or null]: {CODE: message}}; the module's model level keeps the
# null keys of models without route licences, its route level the others. Rules test each term
# inline and call helpers only to build a message (the RVM's costs, see routes.rego).
#
# Most terms depend on the catalog and org.yaml alone: their tables are computed once per bundle
# (`catalog`, see catalog.rego) and a decision only picks those its workload triggers. Only the
# territory and prohibited-use terms read the workload's lists; they run over the few scopes
# whose licence has such a term.
package clearance.licence

import rego.v1

# --- which licence governs a route ---------------------------------------------------------

# Each route of a model with a deployment under a licence of its own, as a scope: the model's
# facts the rules read, with the route's licence (its own, else the model's) and its id. One
# pass over the deployments finds them (a model with two such deployments is listed twice:
# the same entries, twice).
route_scopes := [{
	"id": m.id, "name": m.name, "released_on": object.get(m, "released_on", null),
	"licence": route_licence(m, e), "_route": e.id,
} |
	some m in data.models
	some d in m.deployments
	d.licence != null
	some e in m.deployments
]

route_licence(m, d) := d.licence if {
	is_object(object.get(d, "licence", null))
} else := m.licence

# Models judged route by route.
per_route := {sc.id | some sc in route_scopes}

scopes := array.concat(data.models, route_scopes)

# The scope's key in the tables: [model id, deployment id or null].
scope_key(sc) := [sc.id, object.get(sc, "_route", null)]

# Scopes whose licence has an MAU cap.
capped := [sc | some sc in scopes; is_object(sc.licence.mau_cap)]

# "Llama 4 Community License §2", or the licence's name alone when no clause is recorded.
cited(lic, term) := concat(" ", [lic.name, clause]) if {
	clause := object.get(object.get(lic, "clauses", {}), term, "")
	clause != ""
} else := lic.name

# --- LICENCE_MAU_CAP: the licensee's users in the month before the version's release ---------

# The month a cap is measured in: the calendar month before the release date ("YYYY-MM-DD");
# null when the catalog gives no release date.
month_before := {
	"02": "01", "03": "02", "04": "03", "05": "04", "06": "05", "07": "06",
	"08": "07", "09": "08", "10": "09", "11": "10", "12": "11",
}

measured_month(released_on) := sprintf("%d-12", [to_number(substring(released_on, 0, 4)) - 1]) if {
	is_string(released_on)
	substring(released_on, 5, 2) == "01"
} else := concat("-", [substring(released_on, 0, 4), month_before[substring(released_on, 5, 2)]]) if {
	is_string(released_on)
} else := null

# [words for the message, org.yaml field] of the figures a cap is judged on. A licence that
# counts the licensee alone uses the figures without affiliates when the org gives them, else
# those with affiliates (never smaller: the safe side).
series(measures) := ["licensee MAU (affiliates excluded)", "licensee_mau_without_affiliates"] if {
	measures == "licensee"
	count(object.get(data.org, "licensee_mau_without_affiliates", {})) > 0
} else := ["licensee and affiliates MAU", "licensee_mau"]

# org.yaml field -> its newest figure (the latest month's).
newest_figure[field] := by_month[max(object.keys(by_month))] if {
	some field in ["licensee_mau", "licensee_mau_without_affiliates"]
	by_month := object.get(data.org, field, {})
	count(by_month) > 0
}

# 812000000 -> "812M", 700000001 -> "700,000,001": exact, and readable at a glance.
mau_text(n) := sprintf("%dM", [n / 1000000]) if {
	n >= 1000000
	n % 1000000 == 0
} else := sprintf("%d,%03d,%03d,%03d", [floor(n / 1000000000), floor(n / 1000000) % 1000, floor(n / 1000) % 1000, n % 1000]) if {
	n >= 1000000000
} else := sprintf("%d,%03d,%03d", [floor(n / 1000000), floor(n / 1000) % 1000, n % 1000]) if {
	n >= 1000000
} else := sprintf("%d,%03d", [floor(n / 1000), n % 1000]) if {
	n >= 1000
} else := sprintf("%d", [n])

# The verdict on one cap: {} when licensed. Fail closed: no release date, or no figure for the
# measured month, is a denial naming what is missing.
mau_verdict(m, lic, _, null, _) := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: the catalog gives no released_on for %s, so the month its MAU cap is measured in is unknown",
	[cited(lic, "mau_cap"), m.name],
)}

mau_verdict(m, lic, s, month, figure) := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: org.yaml %s has no figure for %s, the calendar month before the %s release of %s, so the %s cap cannot be checked",
	[cited(lic, "mau_cap"), s[1], month, m.released_on, m.name, mau_text(lic.mau_cap.threshold)],
)} if {
	month != null
	not is_number(figure)
} else := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: %s %s in %s, before the %s release, exceeds %s",
	[cited(lic, "mau_cap"), s[0], mau_text(figure), month, m.released_on, mau_text(lic.mau_cap.threshold)],
)} if {
	month != null
	figure > lic.mau_cap.threshold
} else := {} if {
	month != null
}

mau_hits[[sc.id, object.get(sc, "_route", null)]] := reason if {
	some sc in capped
	cap := sc.licence.mau_cap
	s := series(cap.measures)
	month := measured_month(object.get(sc, "released_on", null))
	figure := object.get(object.get(data.org, s[1], {}), month, null)
	[is_number(figure), figure <= cap.threshold] != [true, true] # (null <= n is true in Rego)
	reason := mau_verdict(sc, sc.licence, s, month, figure)
	count(reason) > 0
}

# The warning ratio in parts per million, so that threshold × ratio ≤ figure is compared in
# integers: exact whatever the engine's float arithmetic (100 × 0.7 is 70, not 70.00000000000001).
warning_ppm := round(data.clearance.routes.mau_warning_ratio * 1000000)

# Obligation licence_mau_near_cap: the org's newest figure is at or above the warning ratio of
# the cap. The version in the catalog may be licensed; the next one may not be.
near_cap_hits[[sc.id, object.get(sc, "_route", null)]] := {name: name} if {
	some sc in capped
	cap := sc.licence.mau_cap
	newest := newest_figure[series(cap.measures)[1]]
	newest * 1000000 >= cap.threshold * warning_ppm
	name := data.clearance.codes.LICENCE_MAU_NEAR_CAP
}

# --- LICENCE_TERRITORY ---------------------------------------------------------------------

# The workload's jurisdictions arrive expanded (policy/profile.py with data/jurisdictions.yaml):
# a member state brings its groups, EU brings EEA, UK arrives as GB.
# Catalog only: [key, excluded territories, clause] of the scopes whose licence excludes any.
territorial := [[scope_key(sc), excluded, cited(sc.licence, "excluded_territories")] |
	some sc in scopes
	excluded := sc.licence.excluded_territories
	count(excluded) > 0
]

territory_hits[entry[0]] := {data.clearance.codes.LICENCE_TERRITORY: sprintf(
	"%s: the licence does not apply in %s, and %s",
	[entry[2], concat(", ", entry[1]), where(hits)],
)} if {
	here := input.workload.jurisdictions
	some entry in data.clearance.catalog.tables.licence.territorial
	hits := [t | some t in entry[1]; t in here]
	[count(here) > 0, count(hits) > 0] != [true, false] # a hit, or no jurisdiction at all
}

# Fail closed: a workload that names no jurisdiction cannot show it is used outside them.
where([]) := "the workload names no jurisdictions, so it cannot show it is used elsewhere"

where(hits) := sprintf("the workload's jurisdictions include %s", [concat(", ", hits)]) if count(hits) > 0

# --- LICENCE_NONCOMMERCIAL, LICENCE_OUTPUT_TRAINING, LICENCE_PROHIBITED_USE -----------------

# Catalog only; applied when the workload is commercial.
noncommercial_hits[[sc.id, object.get(sc, "_route", null)]] := {data.clearance.codes.LICENCE_NONCOMMERCIAL: sprintf(
	"%s: the workload is commercial, and the licence does not permit commercial use",
	[cited(sc.licence, "commercial_use")],
)} if {
	some sc in scopes
	sc.licence.commercial_use == false
}

# Catalog only; applied for task model_training.
output_training_hits[[sc.id, object.get(sc, "_route", null)]] := {data.clearance.codes.LICENCE_OUTPUT_TRAINING: sprintf(
	"%s: task model_training, and the licence forbids training models on the outputs of %s",
	[cited(sc.licence, "restricts_output_training"), sc.name],
)} if {
	some sc in scopes
	sc.licence.restricts_output_training == true
}

# LICENCE_PROHIBITED_USE: the task or one of the sectors is among the prohibited uses (a
# workload judged for several sectors is denied if any of them is prohibited).
# Catalog only: [key, prohibited uses, clause] of the scopes whose licence prohibits any.
prohibiting := [[scope_key(sc), prohibited, cited(sc.licence, "prohibited_uses")] |
	some sc in scopes
	prohibited := sc.licence.prohibited_uses
	prohibited != []
]

prohibited_use_hits[entry[0]] := {data.clearance.codes.LICENCE_PROHIBITED_USE: sprintf(
	"%s: the licence prohibits use for %s",
	[entry[2], concat(" and ", hits)],
)} if {
	uses := array.concat([["task", input.workload.task]], [["sector", s] | some s in input.workload.sectors])
	some entry in data.clearance.catalog.tables.licence.prohibiting
	hits := [sprintf("%s %s", use) | some use in uses; use[1] in entry[1]]
	count(hits) > 0
}

# --- obligations ----------------------------------------------------------------------------

# attribution:<text>: the licence requires this attribution to be shown.
attribution_hits[[sc.id, object.get(sc, "_route", null)]] := {name: concat(":", [name, text])} if {
	name := data.clearance.codes.ATTRIBUTION
	some sc in scopes
	text := sc.licence.attribution
	is_string(text)
	text != ""
}

# acceptable_use_policy:<url>: the licence incorporates this policy; the use must comply with it.
acceptable_use_hits[[sc.id, object.get(sc, "_route", null)]] := {name: concat(":", [name, url])} if {
	name := data.clearance.codes.ACCEPTABLE_USE_POLICY
	some sc in scopes
	url := sc.licence.acceptable_use_policy
	is_string(url)
}

# name_prefix:<text>: a model trained on the outputs must carry this at the start of its name
# (catalog only; applied for task model_training).
name_prefix_hits[[sc.id, object.get(sc, "_route", null)]] := {name: concat(":", [name, prefix])} if {
	name := data.clearance.codes.NAME_PREFIX
	some sc in scopes
	prefix := sc.licence.name_prefix
	is_string(prefix)
}

# --- the module's tables ---------------------------------------------------------------------

# A table of hits as {"model": …, "route": …}: {[model id, null]: …} -> {model id: …} for the
# models without route licences (`routed`: the models judged route by route, per_route), and
# {[model id, deployment id]: …} -> {model id: {deployment id: …}}. One function, the
# comprehensions inline: a decision calls it once (a call costs the RVM about as much as a list).
levels(hits, routed) := {
	"model": {k[0]: found | some k, found in hits; k[1] == null; not k[0] in routed},
	"route": object.union_n([{k[0]: {k[1]: found}} | some k, found in hits; k[1] != null]),
}

# The catalog-only tables, split by level (precomputed: catalog.rego).
catalog := {
	"territorial": territorial,
	"prohibiting": prohibiting,
	"per_route": per_route,
	"reasons": levels(mau_hits, per_route),
	"noncommercial": levels(noncommercial_hits, per_route),
	"output_training": levels(output_training_hits, per_route),
	"obligations": levels(object.union_n([attribution_hits, acceptable_use_hits, near_cap_hits]), per_route),
	"name_prefix": levels(name_prefix_hits, per_route),
}

default noncommercial := {"model": {}, "route": {}}

noncommercial := data.clearance.catalog.tables.licence.noncommercial if input.workload.commercial == true

default model_training := [{"model": {}, "route": {}}, {"model": {}, "route": {}}]

# [reasons, obligations] that apply for task model_training.
model_training := [tables.output_training, tables.name_prefix] if {
	input.workload.task == "model_training"
	tables := data.clearance.catalog.tables.licence
}

# The workload's own hits (territory, prohibited use), by level; which models are judged route
# by route comes with the catalog's tables.
workload_levels := levels(object.union(territory_hits, prohibited_use_hits), data.clearance.catalog.tables.licence.per_route)

deny := {
	"workload": {},
	"model": object.union_n([fixed.model, nc.model, training.model, own.model]),
	"route": object.union_n([fixed.route, nc.route, training.route, own.route]),
} if {
	fixed := data.clearance.catalog.tables.licence.reasons
	nc := noncommercial
	training := model_training[0]
	own := workload_levels
}

obligations := {
	"workload": {},
	"model": object.union(fixed.model, prefix.model),
	"route": object.union(fixed.route, prefix.route),
} if {
	fixed := data.clearance.catalog.tables.licence.obligations
	prefix := model_training[1]
}
