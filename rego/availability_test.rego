package clearance.availability_test

import rego.v1

import data.clearance.fixtures_test as fx

deny(models) := d if {
	d := data.clearance.availability.deny with data.models as models with data.org as fx.org with input as fx.input_with({})
}

test_withheld_model_is_denied if {
	deny([fx.model("m1", {"status": "withheld"})]).model == {"m1": {"MODEL_WITHHELD": "Model m1 (m1) is withheld by its vendor"}}
}

test_deprecated_model_is_denied if {
	deny([fx.model("m1", {"status": "deprecated"})]).model == {"m1": {"MODEL_WITHHELD": "Model m1 (m1) is deprecated by its vendor"}}
}

test_available_model_is_not_denied if {
	deny([fx.model("m1", {})]) == {"workload": {}, "model": {}, "route": {}}
}

test_only_the_withheld_model_is_denied if {
	d := deny([fx.model("m1", {}), fx.model("m2", {"status": "withheld"})])
	object.keys(d.model) == {"m2"}
}

test_withheld_denies_every_deployment_of_the_model if {
	d := fx.decision(
		[fx.model("m1", {"status": "withheld", "deployments": [fx.self_hosted, fx.vendor_api, fx.cloud]})],
		fx.input_with({}),
	)
	fx.denied_routes(d) == [["m1", "cloud"], ["m1", "self-hosted"], ["m1", "vendor-api"]]
	every item in d.denied {
		[r.code | some r in item.reasons] == ["MODEL_WITHHELD"]
	}
	d.outcome == "deny"
}

test_withheld_model_denied_for_every_workload if {
	m := fx.model("m1", {"status": "withheld"})
	every w in [{}, {"quality_tier": "frontier", "task": "reasoning"}, {"regulatory_tier": "minimal", "data_classification": "public", "commercial": false}] {
		fx.codes(fx.decision([m], fx.input_with(w)), "m1", "self-hosted") == ["MODEL_WITHHELD"]
	}
}
