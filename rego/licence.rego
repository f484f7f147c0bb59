# Licence terms as the licences state them: MAU caps (whose users, which month), excluded
# territories, commercial use, training on outputs, prohibited uses, and the obligations a
# clause imposes (attribution, name prefix, acceptable-use policy).
#
# Each term is judged by a function of one licence that gives {CODE: message} (or
# {NAME: text} for an obligation), {} when the term does not apply; messages cite the clause
# (licence.clauses[term]). A model's licence governs all its routes, unless one of its
# deployments carries a licence of its own (an API's commercial terms can differ from the
# licence of the weights): such a model is judged route by route, with each route's licence.
package clearance.licence

import rego.v1

# --- which licence governs a route ---------------------------------------------------------

# Models with a deployment under a licence of its own.
per_route contains m.id if {
	some m in data.models
	some d in m.deployments
	is_object(object.get(d, "licence", null))
}

route_licence(m, d) := d.licence if {
	is_object(object.get(d, "licence", null))
} else := m.licence

# "Llama 4 Community License §2", or the licence's name alone when no clause is recorded.
cited(lic, term) := concat(" ", [lic.name, clause]) if {
	clause := object.get(object.get(lic, "clauses", {}), term, "")
	clause != ""
} else := lic.name

# --- LICENCE_MAU_CAP: the licensee's users in the month before the version's release ---------

# The month a cap is measured in: the calendar month before the release date ("YYYY-MM-DD").
month_before := {
	"02": "01", "03": "02", "04": "03", "05": "04", "06": "05", "07": "06",
	"08": "07", "09": "08", "10": "09", "11": "10", "12": "11",
}

measured_month(released_on) := sprintf("%d-12", [to_number(substring(released_on, 0, 4)) - 1]) if {
	substring(released_on, 5, 2) == "01"
} else := concat("-", [substring(released_on, 0, 4), month_before[substring(released_on, 5, 2)]])

# [words for the message, org.yaml field] of the figures a cap is judged on. A licence that
# counts the licensee alone uses the figures without affiliates when the org gives them, else
# those with affiliates (never smaller: the safe side).
series(measures) := ["licensee MAU (affiliates excluded)", "licensee_mau_without_affiliates"] if {
	measures == "licensee"
	count(object.get(data.org, "licensee_mau_without_affiliates", {})) > 0
} else := ["licensee and affiliates MAU", "licensee_mau"]

figures(field) := object.get(data.org, field, {})

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

mau_cap(m, lic) := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: the catalog gives no released_on for %s, so the month its MAU cap is measured in is unknown",
	[cited(lic, "mau_cap"), m.name],
)} if {
	is_object(lic.mau_cap)
	not is_string(object.get(m, "released_on", null))
} else := mau_measured(m, lic, lic.mau_cap, measured_month(m.released_on)) if {
	is_object(lic.mau_cap)
} else := {}

# Fail closed: no figure for the month is a denial that names the missing figure.
mau_measured(m, lic, cap, month) := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: org.yaml %s has no figure for %s, the calendar month before the %s release of %s, so the %s cap cannot be checked",
	[cited(lic, "mau_cap"), series(cap.measures)[1], month, m.released_on, m.name, mau_text(cap.threshold)],
)} if {
	not is_number(object.get(figures(series(cap.measures)[1]), month, null))
} else := {data.clearance.codes.LICENCE_MAU_CAP: sprintf(
	"%s: %s %s in %s, before the %s release, exceeds %s",
	[cited(lic, "mau_cap"), s[0], mau_text(figure), month, m.released_on, mau_text(cap.threshold)],
)} if {
	s := series(cap.measures)
	figure := figures(s[1])[month]
	figure > cap.threshold
} else := {}

# The warning ratio in parts per million, so that threshold × ratio ≤ figure is compared in
# integers: exact whatever the engine's float arithmetic (100 × 0.7 is 70, not 70.00000000000001).
warning_ppm := round(data.clearance.routes.mau_warning_ratio * 1000000)

# Obligation licence_mau_near_cap: the org's newest figure is at or above the warning ratio of
# the cap. The version in the catalog may be licensed; the next one may not be.
near_cap(lic) := {name: name} if {
	cap := lic.mau_cap
	is_object(cap)
	by_month := figures(series(cap.measures)[1])
	count(by_month) > 0
	newest := by_month[max(object.keys(by_month))]
	newest * 1000000 >= cap.threshold * warning_ppm
	name := data.clearance.codes.LICENCE_MAU_NEAR_CAP
} else := {}

# --- LICENCE_TERRITORY ---------------------------------------------------------------------

# The workload's jurisdictions, as expanded at the edge (a member state brings its groups),
# plus EEA for EU: every EU member state is in the EEA.
jurisdictions := array.concat(input.workload.jurisdictions, ["EEA"]) if {
	"EU" in input.workload.jurisdictions
} else := input.workload.jurisdictions

territory(lic) := {data.clearance.codes.LICENCE_TERRITORY: sprintf(
	"%s: the licence does not apply in %s, and the workload's jurisdictions include %s",
	[cited(lic, "excluded_territories"), concat(", ", excluded), concat(", ", hits)],
)} if {
	excluded := object.get(lic, "excluded_territories", [])
	hits := [t | some t in excluded; t in jurisdictions]
	count(hits) > 0
} else := {}

# --- LICENCE_NONCOMMERCIAL, LICENCE_OUTPUT_TRAINING, LICENCE_PROHIBITED_USE -----------------

noncommercial(lic) := {data.clearance.codes.LICENCE_NONCOMMERCIAL: sprintf(
	"%s: the workload is commercial, and the licence does not permit commercial use",
	[cited(lic, "commercial_use")],
)} if {
	input.workload.commercial == true
	lic.commercial_use == false
} else := {}

output_training(m, lic) := {data.clearance.codes.LICENCE_OUTPUT_TRAINING: sprintf(
	"%s: task model_training, and the licence forbids training models on the outputs of %s",
	[cited(lic, "restricts_output_training"), m.name],
)} if {
	input.workload.task == "model_training"
	lic.restricts_output_training == true
} else := {}

prohibited_use(lic) := {data.clearance.codes.LICENCE_PROHIBITED_USE: sprintf(
	"%s: the licence prohibits use for %s",
	[cited(lic, "prohibited_uses"), concat(" and ", hits)],
)} if {
	uses := [["task", input.workload.task], ["sector", input.workload.sector]]
	hits := [sprintf("%s %s", use) | some use in uses; use[1] in lic.prohibited_uses]
	count(hits) > 0
} else := {}

# --- obligations ----------------------------------------------------------------------------

# attribution:<text>: the licence requires this attribution to be shown.
attribution(lic) := {name: concat(":", [name, text])} if {
	text := lic.attribution
	is_string(text)
	text != ""
	name := data.clearance.codes.ATTRIBUTION
} else := {}

# name_prefix:<text>: a model trained on the outputs must carry this at the start of its name.
name_prefix(lic) := {name: concat(":", [name, prefix])} if {
	input.workload.task == "model_training"
	prefix := object.get(lic, "name_prefix", null)
	is_string(prefix)
	name := data.clearance.codes.NAME_PREFIX
} else := {}

# acceptable_use_policy:<url>: the licence incorporates this policy; the use must comply with it.
acceptable_use(lic) := {name: concat(":", [name, url])} if {
	url := object.get(lic, "acceptable_use_policy", null)
	is_string(url)
	name := data.clearance.codes.ACCEPTABLE_USE_POLICY
} else := {}

# --- the tables: models under one licence (each term prefiltered on the licence, so that a
# term the licence lacks costs one test per model) ...

mau_cap_exceeded[m.id] := reason if {
	some m in data.models
	is_object(m.licence.mau_cap)
	not m.id in per_route
	reason := mau_cap(m, m.licence)
	count(reason) > 0
}

territory_excluded[m.id] := reason if {
	count(input.workload.jurisdictions) > 0
	some m in data.models
	count(object.get(m.licence, "excluded_territories", [])) > 0
	not m.id in per_route
	reason := territory(m.licence)
	count(reason) > 0
}

noncommercial_denied[m.id] := reason if {
	input.workload.commercial == true
	some m in data.models
	m.licence.commercial_use == false
	not m.id in per_route
	reason := noncommercial(m.licence)
}

output_training_denied[m.id] := reason if {
	input.workload.task == "model_training"
	some m in data.models
	m.licence.restricts_output_training == true
	not m.id in per_route
	reason := output_training(m, m.licence)
}

prohibited_use_denied[m.id] := reason if {
	some m in data.models
	m.licence.prohibited_uses != []
	not m.id in per_route
	reason := prohibited_use(m.licence)
	count(reason) > 0
}

attribution_required[m.id] := obligation if {
	some m in data.models
	is_string(m.licence.attribution)
	not m.id in per_route
	obligation := attribution(m.licence)
	count(obligation) > 0
}

acceptable_use_required[m.id] := obligation if {
	some m in data.models
	is_string(object.get(m.licence, "acceptable_use_policy", null))
	not m.id in per_route
	obligation := acceptable_use(m.licence)
}

name_prefix_required[m.id] := obligation if {
	input.workload.task == "model_training"
	some m in data.models
	is_string(object.get(m.licence, "name_prefix", null))
	not m.id in per_route
	obligation := name_prefix(m.licence)
}

near_cap_warned[m.id] := obligation if {
	some m in data.models
	is_object(m.licence.mau_cap)
	not m.id in per_route
	obligation := near_cap(m.licence)
	count(obligation) > 0
}

# ... and models judged route by route, every term of each route's licence.
route_reasons[m.id] := by_route if {
	some m in data.models
	m.id in per_route
	by_route := {d.id: found |
		some d in m.deployments
		lic := route_licence(m, d)
		found := object.union_n([
			mau_cap(m, lic), territory(lic), noncommercial(lic),
			output_training(m, lic), prohibited_use(lic),
		])
		count(found) > 0
	}
	count(by_route) > 0
}

route_obligations[m.id] := by_route if {
	some m in data.models
	m.id in per_route
	by_route := {d.id: found |
		some d in m.deployments
		lic := route_licence(m, d)
		found := object.union_n([attribution(lic), acceptable_use(lic), name_prefix(lic), near_cap(lic)])
		count(found) > 0
	}
	count(by_route) > 0
}

deny := {
	"workload": {},
	"model": object.union_n([
		mau_cap_exceeded, territory_excluded, noncommercial_denied,
		output_training_denied, prohibited_use_denied,
	]),
	"route": route_reasons,
}

obligations := {
	"workload": {},
	"model": object.union_n([attribution_required, acceptable_use_required, name_prefix_required, near_cap_warned]),
	"route": route_obligations,
}
