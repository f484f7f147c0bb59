package clearance.provenance_test

import rego.v1

import data.clearance.fixtures_test as fx

cn_api := fx.deployment(fx.vendor_api, {"id": "deepseek-api", "operator_country": "CN", "regions": ["cn-north-1"]})

cn_cloud := fx.deployment(fx.cloud, {"id": "us-cloud", "operator_country": "US"})

deepseek := fx.model("deepseek", {
	"name": "DeepSeek V4", "origin_country": "CN", "provenance": "open_chinese",
	"deployments": [fx.self_hosted, cn_api, cn_cloud],
})

deny(models, inp) := d if {
	d := data.clearance.provenance.deny with data.models as models with data.org as fx.org with input as inp
}

# --- PROVENANCE_RESTRICTED ----------------------------------------------------------------

test_restricted_origin_in_restricted_sector_is_denied if {
	d := deny([deepseek], fx.input_with({"sectors": ["public_sector"], "data_classification": "public"}))
	d.model == {"deepseek": {"PROVENANCE_RESTRICTED": "DeepSeek V4 originates from CN, an origin the org restricts in sector public_sector"}}
}

test_every_restricted_sector if {
	every sector in ["public_sector", "defense", "critical_infrastructure"] {
		d := deny([deepseek], fx.input_with({"sectors": [sector], "data_classification": "public"}))
		object.keys(d.model.deepseek) == {"PROVENANCE_RESTRICTED"}
	}
}

test_restricted_origin_in_other_sector_is_not_denied if {
	every sector in ["general", "financial_services", "healthcare"] {
		deny([deepseek], fx.input_with({"sectors": [sector], "data_classification": "public"})).model == {}
	}
}

# Several sectors (an app's profile, no sector asked): the strictest reading.
test_any_restricted_sector_among_several_denies if {
	d := deny([deepseek], fx.input_with({"sectors": ["general", "public_sector"], "data_classification": "public"}))
	d.model == {"deepseek": {"PROVENANCE_RESTRICTED": "DeepSeek V4 originates from CN, an origin the org restricts in sector public_sector"}}
}

test_every_banned_sector_is_named if {
	d := deny([deepseek], fx.input_with({"sectors": ["defense", "general", "public_sector"], "data_classification": "public"}))
	d.model.deepseek.PROVENANCE_RESTRICTED == "DeepSeek V4 originates from CN, an origin the org restricts in sector defense, public_sector"
}

test_several_sectors_none_banned_is_not_denied if {
	deny([deepseek], fx.input_with({"sectors": ["financial_services", "insurance"], "data_classification": "public"})).model == {}
}

# Judging several sectors at once clears a route only if each sector alone clears it.
test_several_sectors_equal_the_intersection_of_each if {
	sectors := ["general", "healthcare", "public_sector"]
	together := fx.decision([deepseek, fx.model("m1", {})], fx.input_with({"sectors": sectors}))
	each := [{[r.model, r.deployment] | some r in fx.decision([deepseek, fx.model("m1", {})], fx.input_with({"sectors": [s]})).allowed} |
		some s in sectors
	]
	{[r.model, r.deployment] | some r in together.allowed} == (each[0] & each[1]) & each[2]
}

test_unrestricted_origin_in_restricted_sector_is_not_denied if {
	deny([fx.model("m1", {"origin_country": "FR"})], fx.input_with({"sectors": ["defense"]})).model == {}
}

test_provenance_restricted_denies_every_route_even_self_hosted if {
	d := fx.decision([deepseek], fx.input_with({"sectors": ["defense"], "data_classification": "public"}))
	count(d.denied) == 3
	every item in d.denied {
		"PROVENANCE_RESTRICTED" in [r.code | some r in item.reasons]
	}
}

test_org_without_restricted_sectors_restricts_nothing if {
	d := fx.decision_org([deepseek], {"restricted_origin_sectors": []}, fx.input_with({"sectors": ["defense"], "data_classification": "public"}))
	count(d.allowed) == 3
}

# --- FOREIGN_HOSTED_API -------------------------------------------------------------------

test_foreign_hosted_api_denied_for_internal_data if {
	d := deny([deepseek], fx.input_with({"data_classification": "internal"}))
	d.route == {"deepseek": {"deepseek-api": {"FOREIGN_HOSTED_API": "DeepSeek V4 (origin CN) through vendor API deepseek-api operated from CN is not cleared for internal data"}}}
	d.model == {}
}

test_foreign_hosted_api_denied_for_every_class_above_public if {
	every class in ["internal", "confidential", "restricted"] {
		d := deny([deepseek], fx.input_with({"data_classification": class}))
		object.keys(d.route.deepseek) == {"deepseek-api"}
	}
}

test_foreign_hosted_api_allowed_for_public_data if {
	deny([deepseek], fx.input_with({"data_classification": "public"})).route == {}
}

test_restricted_origin_through_api_operated_elsewhere_is_not_foreign_hosted if {
	m := fx.model("m1", {"origin_country": "CN", "deployments": [fx.deployment(fx.vendor_api, {"operator_country": "SG"})]})
	deny([m], fx.input_with({"data_classification": "confidential"})).route == {}
}

test_restricted_origin_on_cloud_operated_from_restricted_country_is_not_a_vendor_api if {
	m := fx.model("m1", {"origin_country": "CN", "deployments": [fx.deployment(fx.cloud, {"operator_country": "CN"})]})
	deny([m], fx.input_with({"data_classification": "confidential"})).route == {}
}

test_unrestricted_origin_through_api_operated_from_restricted_country_is_not_foreign_hosted if {
	m := fx.model("m1", {"origin_country": "US", "deployments": [fx.deployment(fx.vendor_api, {"operator_country": "CN"})]})
	deny([m], fx.input_with({"data_classification": "confidential"})).route == {}
}

test_self_hosted_restricted_origin_is_not_foreign_hosted if {
	m := fx.model("m1", {"origin_country": "CN"})
	deny([m], fx.input_with({"data_classification": "restricted"})).route == {}
}

test_foreign_hosted_api_denies_only_that_route if {
	d := fx.decision([deepseek], fx.input_with({"data_classification": "internal"}))
	fx.codes(d, "deepseek", "deepseek-api") == ["FOREIGN_HOSTED_API"]
	fx.cleared(d, "deepseek", "self-hosted")
	fx.cleared(d, "deepseek", "us-cloud")
}
