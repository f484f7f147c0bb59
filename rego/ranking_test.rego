package clearance.ranking_test

import rego.v1

import data.clearance.fixtures_test as fx
import data.clearance.routes

# A model with one deployment at a given price (blended = (3 × in + out) / 4).
priced(model_id, deployment_id, price_in, price_out, strength) := fx.model(model_id, {
	"strength": strength,
	"deployments": [fx.deployment(fx.cloud, {"id": deployment_id, "price_in_per_mtok": price_in, "price_out_per_mtok": price_out})],
})

ranked(models, tier) := [[a.rank, a.model, a.deployment, a.price_per_mtok] | some a in fx.decision(models, fx.input_with({"quality_tier": tier})).allowed]

cheap := priced("cheap", "d", 0.1, 0.1, 10)

mid := priced("mid", "d", 1, 1, 50)

dear := priced("dear", "d", 10, 10, 90)

test_commodity_cheapest_first if {
	ranked([dear, cheap, mid], "commodity") == [[1, "cheap", "d", 0.1], [2, "mid", "d", 1], [3, "dear", "d", 10]]
}

test_advanced_cheapest_first if {
	ranked([mid, dear, cheap], "advanced") == [[1, "cheap", "d", 0.1], [2, "mid", "d", 1], [3, "dear", "d", 10]]
}

test_frontier_strongest_first if {
	ranked([cheap, mid, dear], "frontier") == [[1, "dear", "d", 10], [2, "mid", "d", 1], [3, "cheap", "d", 0.1]]
}

test_frontier_equal_strength_cheapest_first if {
	a := priced("a", "d", 2, 2, 80)
	b := priced("b", "d", 1, 1, 80)
	ranked([a, b], "frontier") == [[1, "b", "d", 1], [2, "a", "d", 2]]
}

test_equal_price_by_model_id if {
	b := priced("b", "d", 1, 1, 10)
	a := priced("a", "d", 1, 1, 90)
	ranked([b, a], "commodity") == [[1, "a", "d", 1], [2, "b", "d", 1]]
	# frontier: same strength, same price -> model id
	ranked([priced("y", "d", 1, 1, 70), priced("x", "d", 1, 1, 70)], "frontier") == [[1, "x", "d", 1], [2, "y", "d", 1]]
}

test_equal_price_same_model_by_deployment_id if {
	m := fx.model("m", {"deployments": [
		fx.deployment(fx.cloud, {"id": "zeta", "price_in_per_mtok": 1, "price_out_per_mtok": 1}),
		fx.deployment(fx.vendor_api, {"id": "alpha", "price_in_per_mtok": 1, "price_out_per_mtok": 1}),
	]})
	ranked([m], "commodity") == [[1, "m", "alpha", 1], [2, "m", "zeta", 1]]
	ranked([m], "frontier") == [[1, "m", "alpha", 1], [2, "m", "zeta", 1]]
}

test_blend_weighs_input_three_to_one if {
	# input-heavy blend: in 1 out 9 -> 3; in 2.5 out 0.5 -> 2
	out_heavy := priced("out-heavy", "d", 1, 9, 10)
	in_heavy := priced("in-heavy", "d", 2.5, 0.5, 10)
	ranked([out_heavy, in_heavy], "commodity") == [[1, "in-heavy", "d", 2], [2, "out-heavy", "d", 3]]
}

test_ranks_are_consecutive_from_one if {
	models := [priced("a", "d", 3, 3, 1), priced("b", "d", 2, 2, 2), priced("c", "d", 1, 1, 3), priced("e", "d", 4, 4, 4)]
	every tier in ["commodity", "frontier"] {
		[r[0] | some r in ranked(models, tier)] == [1, 2, 3, 4]
	}
}

test_only_cleared_routes_are_ranked if {
	withheld := object.union(cheap, {"status": "withheld"})
	ranked([withheld, mid, dear], "commodity") == [[1, "mid", "d", 1], [2, "dear", "d", 10]]
}

test_route_keys if {
	m := priced("m", "d", 1, 1, 60)
	keys := data.clearance.ranking.keys_by_model with data.models as [m]
	keys == [{"m": {"d": [0, 1, "m", "d", "open_western"]}}, {"m": {"d": [-60, 1, "m", "d", "open_western"]}}]
	data.clearance.ranking.strength_weight == 1 with input as fx.input_with({"quality_tier": "frontier"})
	data.clearance.ranking.strength_weight == 0 with input as fx.input_with({"quality_tier": "commodity"})
}

# Models by id, each model's deployments by id, whatever the catalog's order.
test_routes_in_id_order if {
	m := fx.model("m", {"deployments": [fx.self_hosted, fx.vendor_api, fx.cloud]})
	deployments := data.clearance.ranking.deployments with data.models as [fx.model("z", {}), m, fx.model("a", {})]
	deployments == [
		["a", ["self-hosted"]],
		["m", ["cloud", "self-hosted", "vendor-api"]],
		["z", ["self-hosted"]],
	]
}

test_ranking_price_agrees_with_routes_blended_price if {
	d := fx.deployment(fx.cloud, {"price_in_per_mtok": 0.15, "price_out_per_mtok": 0.6})
	m := fx.model("m", {"deployments": [d]})
	key := data.clearance.ranking.key(m, d, 0)
	key[1] == routes.blended_price(d)
	key[1] == 0.2625
}
