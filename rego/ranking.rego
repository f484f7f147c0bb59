# Ranking of cleared routes (policy, not Python).
#
#   commodity, advanced: cheapest blended price first;
#   frontier:            strongest first (model `strength` desc).
# Ties: price, then model id, then deployment id, so the order is total and deterministic.
package clearance.ranking

import rego.v1

# 1 when strength leads the order, else 0 (the first key is then 0 for every route).
default strength_weight := 0

strength_weight := 1 if input.workload.quality_tier == "frontier"

# routes: [[model, deployment], ...]. Answers one tuple per route, best first:
#   [-strength or 0, blended price, model id, deployment id, model, deployment]
# (model id and deployment id make every key unique: the model objects are never compared).
# The price is data.clearance.routes.blended_price, inlined (ranking_test checks they agree).
order(routes) := sort([[0 - (weight * m.strength), price, m.id, d.id, m, d] |
	weight := strength_weight
	some route in routes
	m := route[0]
	d := route[1]
	price := round((((3 * d.price_in_per_mtok) + d.price_out_per_mtok) / 4) * 10000) / 10000
])
