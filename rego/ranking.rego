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

# A route's key: [-(weight × strength), blended price, model id, deployment id, provenance]
# (model id and deployment id make every key unique: the provenance is never compared).
# The price is data.clearance.routes.blended_price, inlined (ranking_test checks they agree).
key(m, d, weight) := [0 - (weight * m.strength), price, m.id, d.id, m.provenance] if {
	price := round((((3 * d.price_in_per_mtok) + d.price_out_per_mtok) / 4) * 10000) / 10000
}

# Catalog only: every route, models sorted by id and each model's deployments by id, as
# [model id, [deployment id, ...]]: main.rego walks it once per decision for `denied`, whose
# routes come out in this order.
deployments := [[mid, sort([d.id | some d in by_id[mid].deployments])] |
	by_id := {m.id: m | some m in data.models}
	some mid in sort(object.keys(by_id))
]

# Catalog only: every route's key by strength_weight ([weight 0, weight 1]), as {model id:
# {deployment id: key}}: main.rego's `cleared` drops the models with reasons in one step and
# visits only the rest (the order does not matter: `order` sorts the keys).
keys_by_model := [{m.id: {d.id: key(m, d, weight) | some d in m.deployments} | some m in data.models} |
	some weight in [0, 1]
]

catalog := {"deployments": deployments, "keys_by_model": keys_by_model}

# keys: the keys of the cleared routes. Answers them best first.
order(keys) := sort(keys)
