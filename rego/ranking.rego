# Ranking of cleared routes (policy, not Python).
#
#   commodity, advanced: cheapest blended price first;
#   frontier:            strongest first (model `strength` desc).
# Ties: price, then model id, then deployment id, so the order is total and deterministic.
#
# A route's ranking key depends on the catalog and on whether strength leads, so both keys of
# every route are computed once per bundle (`catalog`, see catalog.rego); a decision picks one
# per cleared route and sorts them.
package clearance.ranking

import rego.v1

# 1 when strength leads the order, else 0 (the first key is then 0 for every route).
default strength_weight := 0

strength_weight := 1 if input.workload.quality_tier == "frontier"

# Which of a route's two keys in `routes` applies: 1 when strength leads, else 2.
key_index := 2 - strength_weight

# A route's key: [-(weight × strength), blended price, model id, deployment id, provenance]
# (model id and deployment id make every key unique: the provenance is never compared).
# The price is data.clearance.routes.blended_price, inlined (ranking_test checks they agree).
key(m, d, weight) := [0 - (weight * m.strength), price, m.id, d.id, m.provenance] if {
	price := round((((3 * d.price_in_per_mtok) + d.price_out_per_mtok) / 4) * 10000) / 10000
}

# Catalog only: every route, models sorted by id and each model's deployments by id, as
# [model id, [[deployment id, key when strength leads, key otherwise], ...]]. main.rego walks
# this list once per decision: the denied routes come out in their order, the cleared
# routes as their keys.
routes := [[mid, [[did, key(m, d, 1), key(m, d, 0)] |
	some did in sort([x.id | some x in m.deployments])
	some d in m.deployments
	d.id == did
]] |
	by_id := {x.id: x | some x in data.models}
	some mid in sort(object.keys(by_id))
	m := by_id[mid]
]

catalog := {"routes": routes}

# keys: the keys of the cleared routes. Answers them best first.
order(keys) := sort(keys)
