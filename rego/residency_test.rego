package clearance.residency_test

import rego.v1

import data.clearance.fixtures_test as fx

deny(models, inp) := d if {
	d := data.clearance.residency.deny with data.models as models with data.org as fx.org with input as inp
}

obligations(models, inp) := o if {
	o := data.clearance.residency.obligations with data.models as models with data.org as fx.org with input as inp
}

restricted := fx.input_with({"data_classification": "restricted"})

# A model with one deployment (fields replaced).
on(base, patch) := fx.model("m1", {"deployments": [fx.deployment(base, patch)]})

# --- DATA_RESIDENCY -----------------------------------------------------------------------

test_vendor_api_outside_allowed_regions_is_denied if {
	d := deny([on(fx.vendor_api, {"regions": ["us-east-1"], "zero_data_retention": true})], restricted)
	d.route == {"m1": {"vendor-api": {"DATA_RESIDENCY": "restricted data: deployment vendor-api is not self-hosted, and none of its regions (us-east-1) is allowed for restricted data (allowed: eu-west-1, eu-central-1)"}}}
}

test_vendor_api_in_allowed_region_with_zero_data_retention_passes if {
	deny([on(fx.vendor_api, {"regions": ["us-east-1", "eu-west-1"], "zero_data_retention": true})], restricted).route == {}
}

test_vendor_api_in_allowed_region_without_zero_data_retention_is_denied if {
	d := deny([on(fx.vendor_api, {"regions": ["eu-west-1"], "zero_data_retention": false})], restricted)
	d.route.m1["vendor-api"].DATA_RESIDENCY == "restricted data: deployment vendor-api is not self-hosted, and it offers no zero data retention"
}

test_both_problems_are_named if {
	d := deny([on(fx.vendor_api, {"regions": ["us-east-1"], "zero_data_retention": false})], restricted)
	d.route.m1["vendor-api"].DATA_RESIDENCY == "restricted data: deployment vendor-api is not self-hosted, and none of its regions (us-east-1) is allowed for restricted data (allowed: eu-west-1, eu-central-1), and it offers no zero data retention"
}

test_cloud_follows_the_same_rule if {
	deny([on(fx.cloud, {"regions": ["eu-central-1"], "zero_data_retention": true})], restricted).route == {}
	deny([on(fx.cloud, {"regions": ["eu-central-1"], "zero_data_retention": false})], restricted).route.m1.cloud.DATA_RESIDENCY
	deny([on(fx.cloud, {"regions": ["us-west-2"], "zero_data_retention": true})], restricted).route.m1.cloud.DATA_RESIDENCY
}

test_no_regions_is_no_allowed_region if {
	d := deny([on(fx.cloud, {"regions": []})], restricted)
	d.route.m1.cloud.DATA_RESIDENCY == "restricted data: deployment cloud is not self-hosted, and none of its regions (none) is allowed for restricted data (allowed: eu-west-1, eu-central-1)"
}

test_self_hosted_is_never_a_residency_problem if {
	deny([on(fx.self_hosted, {"regions": ["us-east-1"], "zero_data_retention": false})], restricted).route == {}
}

test_only_restricted_data_has_residency_rules if {
	m := on(fx.vendor_api, {"regions": ["us-east-1"], "zero_data_retention": false})
	every class in ["public", "internal", "confidential"] {
		deny([m], fx.input_with({"data_classification": class})).route == {}
	}
}

test_residency_denies_per_route if {
	m := fx.model("m1", {"deployments": [
		fx.self_hosted,
		fx.deployment(fx.vendor_api, {"regions": ["us-east-1"]}),
		fx.deployment(fx.cloud, {"regions": ["eu-central-1"], "zero_data_retention": true}),
	]})
	d := fx.decision([m], restricted)
	fx.codes(d, "m1", "vendor-api") == ["DATA_RESIDENCY"]
	fx.cleared(d, "m1", "self-hosted").obligations == ["self_host_only"]
	fx.cleared(d, "m1", "cloud").obligations == ["zero_data_retention"]
}

# --- obligations zero_data_retention and self_host_only -----------------------------------

test_confidential_data_on_zero_retention_api_gets_the_obligation if {
	o := obligations([on(fx.vendor_api, {"zero_data_retention": true})], fx.input_with({"data_classification": "confidential"}))
	o.route == {"m1": {"vendor-api": {"zero_data_retention": "zero_data_retention"}}}
}

test_restricted_data_on_zero_retention_cloud_gets_the_obligation if {
	o := obligations([on(fx.cloud, {"regions": ["eu-west-1"], "zero_data_retention": true})], restricted)
	o.route.m1.cloud == {"zero_data_retention": "zero_data_retention"}
}

test_no_zero_retention_obligation_below_confidential if {
	every class in ["public", "internal"] {
		obligations([on(fx.vendor_api, {"zero_data_retention": true})], fx.input_with({"data_classification": class})).route == {}
	}
}

test_no_zero_retention_obligation_without_the_offer if {
	obligations([on(fx.vendor_api, {"zero_data_retention": false})], fx.input_with({"data_classification": "confidential"})).route == {}
}

test_no_zero_retention_obligation_when_self_hosted if {
	o := obligations([on(fx.self_hosted, {"zero_data_retention": true})], fx.input_with({"data_classification": "confidential"}))
	o.route == {}
}

test_restricted_data_self_hosted_gets_self_host_only if {
	o := obligations([on(fx.self_hosted, {})], restricted)
	o.route == {"m1": {"self-hosted": {"self_host_only": "self_host_only"}}}
}

test_self_host_only_only_for_restricted_data if {
	every class in ["public", "internal", "confidential"] {
		obligations([on(fx.self_hosted, {})], fx.input_with({"data_classification": class})).route == {}
	}
}

test_confidential_decision_obligations if {
	m := fx.model("m1", {"deployments": [fx.self_hosted, fx.vendor_api]})
	d := fx.decision([m], fx.input_with({"data_classification": "confidential"}))
	fx.cleared(d, "m1", "self-hosted").obligations == []
	fx.cleared(d, "m1", "vendor-api").obligations == ["zero_data_retention"]
}
