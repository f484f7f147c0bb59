package clearance.routes_test

import rego.v1

import data.clearance.fixtures_test as fx
import data.clearance.routes

test_route_key if {
	routes.key("llama-4-maverick", "together-api") == "llama-4-maverick together-api"
}

test_blended_price_is_three_to_one if {
	# (3 × 1 + 4) / 4
	routes.blended_price({"price_in_per_mtok": 1, "price_out_per_mtok": 4}) == 1.75
	routes.blended_price({"price_in_per_mtok": 0.15, "price_out_per_mtok": 0.6}) == 0.2625
	routes.blended_price({"price_in_per_mtok": 0, "price_out_per_mtok": 0}) == 0
}

test_blended_price_rounds_to_four_decimals if {
	# 1/3 per Mtok in and out
	routes.blended_price({"price_in_per_mtok": 0.33333, "price_out_per_mtok": 0.33333}) == 0.3333
	# (3 × 0.00001 + 0.00009) / 4 = 0.00003
	routes.blended_price({"price_in_per_mtok": 0.00001, "price_out_per_mtok": 0.00009}) == 0
	# (3 × 0.0001 + 0.0001) / 4 = 0.0001
	routes.blended_price({"price_in_per_mtok": 0.0001, "price_out_per_mtok": 0.0001}) == 0.0001
	# half away from zero: (3 × 0.00005 + 0.00005) / 4 = 0.00005 -> 0.0001
	routes.blended_price({"price_in_per_mtok": 0.00005, "price_out_per_mtok": 0.00005}) == 0.0001
}

test_list_text if {
	routes.list_text(["a", "b"]) == "a, b"
	routes.list_text([]) == "none"
	routes.list_text({"b", "a"}) == "a, b"
}

test_org_defaults_when_absent if {
	routes.mau_warning_ratio == 0.9 with data.org as {}
	routes.critical_compliance_docs == ["soc2", "iso_42001", "eu_ai_act_gpai"] with data.org as {}
	routes.restricted_origin_countries == [] with data.org as {}
	routes.restricted_origin_sectors == [] with data.org as {}
	routes.restricted_data_regions == [] with data.org as {}
}

test_org_values_when_present if {
	routes.mau_warning_ratio == 0.75 with data.org as {"mau_warning_ratio": 0.75}
	routes.critical_compliance_docs == ["iso_42001"] with data.org as {"critical_compliance_docs": ["iso_42001"]}
	routes.restricted_origin_countries == ["CN", "RU"] with data.org as {"restricted_origin_countries": ["CN", "RU"]}
}

test_app_defaults_when_absent if {
	routes.app_id == "(unknown app)" with input as {}
	routes.app_programs == [] with input as {}
	routes.app_capability_approvals == [] with input as {}
	routes.app_attestations == [] with input as {}
}

test_app_values_from_input if {
	inp := fx.input_app({"id": "security-operations", "programs": ["glasswing"]}, {})
	routes.app_id == "security-operations" with input as inp
	routes.app_programs == ["glasswing"] with input as inp
}
