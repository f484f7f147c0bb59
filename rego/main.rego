# The decision: data.clearance.decision, in the shape of docs/policy-contract.md.
#
#   {"outcome": "allow" | "deny",
#    "allowed": [{"model", "deployment", "rank", "price_per_mtok", "provenance", "obligations"}],
#    "denied":  [{"model", "deployment", "reasons": [{"code", "message"}]}]}
#
# The concern modules' tables (see routes.rego) are deep-merged with object.union_n; a
# route's reasons are its model's entry plus its own.
package clearance

import rego.v1

# {"workload": {CODE: message}, "model": {model id: {…}}, "route": {model id: {deployment id: {…}}}}
denials := object.union_n([
	data.clearance.availability.deny,
	data.clearance.capability.deny,
	data.clearance.provenance.deny,
	data.clearance.regulatory.deny,
	data.clearance.licence.deny,
	data.clearance.residency.deny,
	data.clearance.fitness.deny,
])

# The same shape with {NAME: text}.
obligations := object.union_n([
	data.clearance.availability.obligations,
	data.clearance.capability.obligations,
	data.clearance.provenance.obligations,
	data.clearance.regulatory.obligations,
	data.clearance.licence.obligations,
	data.clearance.residency.obligations,
	data.clearance.fitness.obligations,
])

# model id -> {CODE: message} that hold for every deployment of the model (workload-wide
# and model-level reasons together), for models with at least one.
model_found := {m.id: object.union(workload, object.get(by_model, m.id, {})) |
	workload := denials.workload
	by_model := denials.model
	some m in data.models
} if {
	count(denials.workload) > 0
} else := denials.model

# model id -> those reasons as [{"code", "message"}], sorted by code.
model_reasons[mid] := [{"code": code, "message": found[code]} | some code in sort(object.keys(found))] if {
	some mid, found in model_found
}

# model id -> {deployment id: reasons} for the routes with reasons of their own, merged with
# their model's.
# (The lists are built inline: a function call costs the RVM about as much as the list.)
route_reasons[mid] := {did: reasons |
	some did, route_level in deployments
	found := object.union(model_level, route_level)
	reasons := [{"code": code, "message": found[code]} | some code in sort(object.keys(found))]
} if {
	by_model := model_found
	some mid, deployments in denials.route
	model_level := object.get(by_model, mid, {})
}

# The routes in the catalog's order (ranking.rego's `deployments`: by model id, then deployment id), walked
# once: a route with reasons of its own takes those, else its model's; one without either is
# cleared. Model-level lookups happen once per model, not per route.
denied := [{"model": mid, "deployment": did, "reasons": reasons} |
	by_model := model_reasons
	by_route := route_reasons
	some entry in data.clearance.catalog.tables.ranking.deployments
	mid := entry[0]
	model_level := object.get(by_model, mid, false)
	own := object.get(by_route, mid, {})
	some did in entry[1]
	reasons := object.get(own, did, model_level)
	reasons != false
]

# The ranking key (ranking.rego) of every route without a reason, in no particular order
# (`ordered` sorts them): the models with reasons of their own are dropped in one step, and
# only the others' routes are visited.
cleared := [key |
	by_route := denials.route
	keys := data.clearance.catalog.tables.ranking.keys_by_model[data.clearance.ranking.strength_weight]
	some mid, route_keys in object.remove(keys, object.keys(model_found))
	own := object.get(by_route, mid, {})
	some did, key in route_keys
	not own[did]
]

# The cleared routes' keys, best first (ranking.rego).
ordered := data.clearance.ranking.order(cleared)

# Each allowed route's obligations: its workload's, its model's and its own texts, sorted;
# looked up for the allowed routes only.
allowed := [item |
	workload := obligations.workload
	by_model := obligations.model
	by_route := obligations.route
	some i, t in ordered
	levels := [workload, object.get(by_model, t[2], {}), object.get(by_route, [t[2], t[3]], {})]
	item := {
		"model": t[2],
		"deployment": t[3],
		"rank": i + 1,
		"price_per_mtok": t[1],
		"provenance": t[4],
		"obligations": sort([o | some level in levels; some o in level]),
	}
]

outcome := "allow" if count(allowed) > 0

else := "deny"

decision := {"outcome": outcome, "allowed": allowed, "denied": denied}

# The tables `decision` is assembled from, for the embedded engine (policy/assembly.py): while
# this module is the main.rego that module pins (by its SHA-256), the engine evaluates
# `assembly` and builds the same lists in Python, where the VM spends about half of an
# evaluation on them. Any other main.rego is evaluated as `decision`, as OPA and these tests
# always evaluate it.
assembly := {
	"denials": denials,
	"obligations": obligations,
	"ordered": ordered,
	"deployments": data.clearance.catalog.tables.ranking.deployments,
}

# The decision on a part of the catalog (data.models a slice of it), with each allowed route's
# ranking key ([-strength or 0, price, model id, deployment id], unique, in the order of
# `allowed`). A catalog too large for one compiled evaluation is judged in parts, and
# policy/engine.py merges them: `allowed` by these keys (ranks renumbered), `denied` by route,
# and the outcome as above. Sound because every rule judges a model on its own; only the
# ranking compares models (docs/policy-contract.md).
part := {"allowed": allowed, "denied": denied, "rank_keys": [[t[0], t[1], t[2], t[3]] | some t in ordered]}
