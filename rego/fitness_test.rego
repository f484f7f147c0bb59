package clearance.fitness_test

import rego.v1

import data.clearance.fixtures_test as fx
import data.clearance.routes

deny(models, inp) := d if {
	d := data.clearance.fitness.deny with data.models as models with data.org as fx.org with input as inp
}

# --- UNSUITABLE_QUALITY -------------------------------------------------------------------

test_quality_below_the_workload_is_unsuitable if {
	d := deny([fx.model("m1", {"quality_tier": "commodity"})], fx.input_with({"quality_tier": "advanced"}))
	d.model == {"m1": {"UNSUITABLE_QUALITY": "Model m1 is commodity tier, below the advanced tier the workload asks for"}}
	deny([fx.model("m1", {"quality_tier": "advanced"})], fx.input_with({"quality_tier": "frontier"})).model.m1.UNSUITABLE_QUALITY
	deny([fx.model("m1", {"quality_tier": "commodity"})], fx.input_with({"quality_tier": "frontier"})).model.m1.UNSUITABLE_QUALITY
}

test_quality_at_or_above_the_workload_is_suitable if {
	every pair in [["commodity", "commodity"], ["advanced", "commodity"], ["advanced", "advanced"], ["frontier", "advanced"], ["frontier", "frontier"]] {
		deny([fx.model("m1", {"quality_tier": pair[0]})], fx.input_with({"quality_tier": pair[1]})).model == {}
	}
}

# --- UNSUITABLE_CONTEXT -------------------------------------------------------------------

test_context_below_the_minimum_is_unsuitable if {
	d := deny([fx.model("m1", {"context_tokens": 32000})], fx.input_with({"min_context_tokens": 32001}))
	d.model == {"m1": {"UNSUITABLE_CONTEXT": "Model m1 has a context of 32000 tokens, fewer than the 32001 the workload needs"}}
}

test_context_at_the_minimum_is_suitable if {
	deny([fx.model("m1", {"context_tokens": 32000})], fx.input_with({"min_context_tokens": 32000})).model == {}
	deny([fx.model("m1", {"context_tokens": 32000})], fx.input_with({"min_context_tokens": 0})).model == {}
}

# --- UNSUITABLE_CAPABILITY ----------------------------------------------------------------

test_task_outside_the_capabilities_is_unsuitable if {
	m := fx.model("m1", {"capabilities": ["summarization", "qa"]})
	deny([m], fx.input_with({"task": "code_generation"})).model == {"m1": {"UNSUITABLE_CAPABILITY": "Model m1 is not fit for task code_generation (capabilities: summarization, qa)"}}
}

# A task some model of the catalog lists comes from the table by task (computed per bundle);
# one no model lists is judged per decision: the same messages either way.
test_task_listed_by_another_model_is_unsuitable_from_the_table if {
	m1 := fx.model("m1", {"capabilities": ["summarization", "qa"]})
	m2 := fx.model("m2", {"capabilities": ["code_generation"]})
	unfit := data.clearance.fitness.unfit with data.models as [m1, m2]
	object.keys(unfit) == {"summarization", "qa", "code_generation"}
	deny([m1, m2], fx.input_with({"task": "code_generation"})).model == {"m1": {"UNSUITABLE_CAPABILITY": "Model m1 is not fit for task code_generation (capabilities: summarization, qa)"}}
	deny([m1, m2], fx.input_with({"task": "writing"})).model == {
		"m1": {"UNSUITABLE_CAPABILITY": "Model m1 is not fit for task writing (capabilities: summarization, qa)"},
		"m2": {"UNSUITABLE_CAPABILITY": "Model m2 is not fit for task writing (capabilities: code_generation)"},
	}
}

test_task_among_the_capabilities_is_suitable if {
	m := fx.model("m1", {"capabilities": ["summarization", "qa"]})
	deny([m], fx.input_with({"task": "qa"})).model == {}
}

# --- UNSUITABLE_PRICE ---------------------------------------------------------------------

# (3 × 1 + 4) / 4 = 1.75
api_model := fx.model("m1", {"deployments": [fx.vendor_api]})

test_price_above_the_limit_is_unsuitable if {
	d := deny([api_model], fx.input_with({"max_price_per_mtok": 1.7499}))
	d.route == {"m1": {"vendor-api": {"UNSUITABLE_PRICE": "blended price 1.75 per million tokens exceeds the workload's limit of 1.7499"}}}
}

test_price_at_the_limit_is_suitable if {
	deny([api_model], fx.input_with({"max_price_per_mtok": 1.75})).route == {}
	deny([api_model], fx.input_with({"max_price_per_mtok": 1.7501})).route == {}
}

test_no_limit_no_price_filter if {
	m := fx.model("m1", {"deployments": [fx.deployment(fx.vendor_api, {"price_in_per_mtok": 10000, "price_out_per_mtok": 10000})]})
	deny([m], fx.input_with({"max_price_per_mtok": null})).route == {}
}

test_price_is_compared_after_rounding if {
	# (3 × 0.33333 + 0.33334) / 4 = 0.3333325 -> 0.3333
	m := fx.model("m1", {"deployments": [fx.deployment(fx.vendor_api, {"price_in_per_mtok": 0.33333, "price_out_per_mtok": 0.33334})]})
	deny([m], fx.input_with({"max_price_per_mtok": 0.3333})).route == {}
}

test_price_filter_is_per_route if {
	m := fx.model("m1", {"deployments": [fx.self_hosted, fx.vendor_api, fx.cloud]})
	d := deny([m], fx.input_with({"max_price_per_mtok": 2}))
	object.keys(d.route.m1) == {"cloud"}
}

test_inlined_price_agrees_with_routes_blended_price if {
	deployments := [
		fx.self_hosted, fx.vendor_api, fx.cloud,
		fx.deployment(fx.cloud, {"price_in_per_mtok": 0.15, "price_out_per_mtok": 0.6}),
		fx.deployment(fx.cloud, {"price_in_per_mtok": 0.00005, "price_out_per_mtok": 0.00005}),
		fx.deployment(fx.cloud, {"price_in_per_mtok": 2.5, "price_out_per_mtok": 15}),
	]
	every d in deployments {
		price := routes.blended_price(d)
		m := fx.model("m1", {"deployments": [d]})
		deny([m], fx.input_with({"max_price_per_mtok": price})).route == {}
		deny([m], fx.input_with({"max_price_per_mtok": price - 0.0001})).route.m1[d.id].UNSUITABLE_PRICE
	}
}

# --- UNSUITABLE_DEPLOYMENT ----------------------------------------------------------------

test_deployment_mode_outside_the_workload_modes_is_unsuitable if {
	m := fx.model("m1", {"deployments": [fx.self_hosted, fx.vendor_api, fx.cloud]})
	d := deny([m], fx.input_with({"deployment_modes": ["self_hosted"]}))
	d.route == {"m1": {
		"vendor-api": {"UNSUITABLE_DEPLOYMENT": "deployment vendor-api is vendor_api, not among the workload's deployment modes (self_hosted)"},
		"cloud": {"UNSUITABLE_DEPLOYMENT": "deployment cloud is cloud, not among the workload's deployment modes (self_hosted)"},
	}}
}

test_every_mode_allowed_filters_nothing if {
	m := fx.model("m1", {"deployments": [fx.self_hosted, fx.vendor_api, fx.cloud]})
	deny([m], fx.input_with({"deployment_modes": ["cloud", "vendor_api", "self_hosted"]})).route == {}
	deny([m], fx.input_with({"deployment_modes": ["vendor_api", "cloud"]})).route == {"m1": {"self-hosted": {"UNSUITABLE_DEPLOYMENT": "deployment self-hosted is self_hosted, not among the workload's deployment modes (vendor_api, cloud)"}}}
}

# Two models, each with deployments in several modes: only the modes left out are visited.
test_deployment_modes_across_models if {
	a := fx.model("a", {"deployments": [fx.self_hosted, fx.cloud]})
	b := fx.model("b", {"deployments": [fx.vendor_api]})
	d := deny([a, b], fx.input_with({"deployment_modes": ["cloud"]}))
	object.keys(d.route) == {"a", "b"}
	object.keys(d.route.a) == {"self-hosted"}
	object.keys(d.route.b) == {"vendor-api"}
	deny([a, b], fx.input_with({"deployment_modes": ["vendor_api", "cloud", "self_hosted"]})).route == {}
}

# --- fitness and governance together ------------------------------------------------------

test_fitness_and_governance_reasons_listed_together if {
	m := fx.model("m1", {"quality_tier": "commodity", "status": "deprecated", "deployments": [fx.vendor_api]})
	d := fx.decision([m], fx.input_with({"quality_tier": "frontier", "deployment_modes": ["self_hosted"], "max_price_per_mtok": 1}))
	fx.codes(d, "m1", "vendor-api") == ["MODEL_WITHHELD", "UNSUITABLE_DEPLOYMENT", "UNSUITABLE_PRICE", "UNSUITABLE_QUALITY"]
}
