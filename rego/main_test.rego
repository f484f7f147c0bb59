# The assembled decision: shape, completeness, ordering, outcome.
package clearance.main_test

import rego.v1

import data.clearance.fixtures_test as fx

# Three models, six routes, a mix of cleared and denied.
catalog := [
	fx.model("zephyr", {"deployments": [fx.self_hosted, fx.cloud]}),
	fx.model("alpha", {"status": "withheld", "deployments": [fx.vendor_api, fx.self_hosted]}),
	fx.model("alpha-2", {"quality_tier": "commodity", "licence": {"attribution": "Powered by Alpha"}, "deployments": [fx.self_hosted, fx.cloud]}),
]

all_routes := {[m.id, d.id] | some m in catalog; some d in m.deployments}

test_decision_shape if {
	d := fx.decision(catalog, fx.input_with({}))
	object.keys(d) == {"outcome", "allowed", "denied"}
	every a in d.allowed {
		object.keys(a) == {"model", "deployment", "rank", "price_per_mtok", "provenance", "obligations"}
		is_number(a.rank)
		is_number(a.price_per_mtok)
		is_array(a.obligations)
	}
	every x in d.denied {
		object.keys(x) == {"model", "deployment", "reasons"}
		count(x.reasons) > 0
		every r in x.reasons {
			object.keys(r) == {"code", "message"}
			is_string(r.message)
		}
	}
}

test_every_route_exactly_once if {
	every w in [{}, {"quality_tier": "advanced"}, {"dangerous_capability": "cyber_offense"}, {"data_classification": "restricted", "deployment_modes": ["cloud"]}] {
		d := fx.decision(catalog, fx.input_with(w))
		seen := array.concat(fx.allowed_routes(d), fx.denied_routes(d))
		count(seen) == count(all_routes)
		{r | some r in seen} == all_routes
	}
}

test_denied_sorted_by_model_then_deployment if {
	d := fx.decision(catalog, fx.input_with({"quality_tier": "frontier", "deployment_modes": ["vendor_api"]}))
	# "alpha" < "alpha-2" (a prefix sorts first), then deployments by id
	fx.denied_routes(d) == [
		["alpha", "self-hosted"], ["alpha", "vendor-api"],
		["alpha-2", "cloud"], ["alpha-2", "self-hosted"],
		["zephyr", "cloud"], ["zephyr", "self-hosted"],
	]
}

test_every_reason_listed_sorted_by_code if {
	d := fx.decision(catalog, fx.input_with({"quality_tier": "frontier", "deployment_modes": ["vendor_api"], "max_price_per_mtok": 0.01, "dangerous_capability": "persuasion"}))
	fx.codes(d, "alpha", "vendor-api") == ["DANGEROUS_CAPABILITY_NOT_APPROVED", "MODEL_WITHHELD", "UNSUITABLE_PRICE"]
	fx.codes(d, "alpha-2", "cloud") == ["DANGEROUS_CAPABILITY_NOT_APPROVED", "UNSUITABLE_DEPLOYMENT", "UNSUITABLE_PRICE", "UNSUITABLE_QUALITY"]
	every item in d.denied {
		codes := [r.code | some r in item.reasons]
		codes == sort(codes)
		count(codes) == count({c | some c in codes})
	}
}

test_workload_model_and_route_reasons_merge if {
	m := fx.model("m1", {"origin_country": "CN", "status": "deprecated", "deployments": [fx.deployment(fx.vendor_api, {"operator_country": "CN"}), fx.self_hosted]})
	d := fx.decision([m], fx.input_with({"dangerous_capability": "cyber_offense", "sectors": ["defense"]}))
	fx.codes(d, "m1", "vendor-api") == ["DANGEROUS_CAPABILITY_NOT_APPROVED", "FOREIGN_HOSTED_API", "MODEL_WITHHELD", "PROVENANCE_RESTRICTED"]
	fx.codes(d, "m1", "self-hosted") == ["DANGEROUS_CAPABILITY_NOT_APPROVED", "MODEL_WITHHELD", "PROVENANCE_RESTRICTED"]
}

test_allowed_items if {
	d := fx.decision(catalog, fx.input_with({}))
	d.allowed == [
		{"model": "alpha-2", "deployment": "self-hosted", "rank": 1, "price_per_mtok": 0.125, "provenance": "open_western", "obligations": ["attribution:Powered by Alpha"]},
		{"model": "zephyr", "deployment": "self-hosted", "rank": 2, "price_per_mtok": 0.125, "provenance": "open_western", "obligations": []},
		{"model": "alpha-2", "deployment": "cloud", "rank": 3, "price_per_mtok": 3.5, "provenance": "open_western", "obligations": ["attribution:Powered by Alpha"]},
		{"model": "zephyr", "deployment": "cloud", "rank": 4, "price_per_mtok": 3.5, "provenance": "open_western", "obligations": []},
	]
	d.outcome == "allow"
}

test_provenance_of_cleared_routes if {
	models := [
		fx.model("w", {"provenance": "open_western"}),
		fx.model("c", {"provenance": "open_chinese", "origin_country": "CN"}),
		fx.model("g", {"provenance": "gated_proprietary"}),
	]
	d := fx.decision(models, fx.input_with({}))
	{[a.model, a.provenance] | some a in d.allowed} == {["w", "open_western"], ["c", "open_chinese"], ["g", "gated_proprietary"]}
}

test_obligations_sorted_and_merged_from_every_level if {
	m := fx.model("m1", {
		"released_on": "2025-04-05",
		"licence": {"mau_cap": {"threshold": 1000, "measures": "licensee_and_affiliates", "period": "calendar_month_before_release"}, "attribution": "Built with M1"},
		"deployments": [fx.deployment(fx.cloud, {"regions": ["eu-west-1"]})],
	})
	d := fx.decision_org([m], {"licensee_mau": {"2025-03": 500, "2025-04": 950}}, fx.input_with({"regulatory_tier": "critical", "data_classification": "restricted"}))
	fx.cleared(d, "m1", "cloud").obligations == ["attribution:Built with M1", "human_review", "licence_mau_near_cap", "zero_data_retention"]
}

test_denied_routes_carry_no_obligations if {
	m := fx.model("m1", {"status": "withheld", "licence": {"attribution": "Built with M1"}})
	d := fx.decision([m], fx.input_with({"regulatory_tier": "critical"}))
	d.denied == [{"model": "m1", "deployment": "self-hosted", "reasons": [{"code": "MODEL_WITHHELD", "message": "Model m1 (m1) is withheld by its vendor"}]}]
}

test_outcome_deny_when_nothing_is_cleared if {
	d := fx.decision(catalog, fx.input_with({"dangerous_capability": "cyber_offense"}))
	d.outcome == "deny"
	d.allowed == []
	count(d.denied) == 6
}

test_outcome_allow_with_a_single_cleared_route if {
	d := fx.decision(catalog, fx.input_with({"quality_tier": "frontier", "deployment_modes": ["cloud"]}))
	fx.allowed_routes(d) == [["zephyr", "cloud"]]
	d.outcome == "allow"
}

test_empty_catalog_is_a_deny if {
	fx.decision([], fx.input_with({})) == {"outcome": "deny", "allowed": [], "denied": []}
}

test_model_without_deployments_has_no_routes if {
	d := fx.decision([fx.model("m1", {"deployments": []})], fx.input_with({}))
	d == {"outcome": "deny", "allowed": [], "denied": []}
}

test_design_example_message if {
	llama := fx.model("llama-4-maverick", {
		"released_on": "2025-04-05",
		"licence": {
			"name": "Llama 4 Community License",
			"mau_cap": {"threshold": 700000000, "measures": "licensee_and_affiliates", "period": "calendar_month_before_release"},
			"clauses": {"mau_cap": "§2"},
		},
		"deployments": [fx.deployment(fx.vendor_api, {"id": "together-api"})],
	})
	d := fx.decision_org([llama], {"licensee_mau": {"2025-03": 812000000}}, fx.input_with({"monthly_active_users": 5}))
	d.denied == [{"model": "llama-4-maverick", "deployment": "together-api", "reasons": [{"code": "LICENCE_MAU_CAP", "message": "Llama 4 Community License §2: licensee and affiliates MAU 812M in 2025-03, before the 2025-04-05 release, exceeds 700M"}]}]
}

# One fixture in which every code of the contract fires somewhere: each is documented.
everything := [
	fx.model("withheld", {"status": "withheld"}),
	fx.model("gated", {"dangerous_capabilities": [{"class": "cyber_offense", "level": "high", "access_program": "glasswing", "permitted_tasks": []}]}),
	fx.model("cn", {"origin_country": "CN", "deployments": [fx.deployment(fx.vendor_api, {"operator_country": "CN"})]}),
	fx.model("unsafe", {"safety_post_training": "none", "compliance_docs": [], "systemic_risk": true}),
	fx.model("licensed", {"released_on": "2025-04-05", "licence": {
		"commercial_use": false, "restricts_output_training": true, "prohibited_uses": ["defense"], "excluded_territories": ["EU"],
		"mau_cap": {"threshold": 10, "measures": "licensee_and_affiliates", "period": "calendar_month_before_release"},
	}}),
	fx.model("unfit", {"quality_tier": "commodity", "context_tokens": 10, "capabilities": ["qa"], "deployments": [fx.vendor_api]}),
]

everything_input := fx.input_with({
	"task": "model_training", "quality_tier": "advanced", "regulatory_tier": "critical", "sectors": ["defense"],
	"jurisdictions": ["EU"], "data_classification": "restricted", "dangerous_capability": "cyber_offense",
	"commercial": true, "monthly_active_users": 11, "min_context_tokens": 100, "max_price_per_mtok": 1,
	"deployment_modes": ["self_hosted", "cloud"],
})

test_every_code_fires_and_is_documented if {
	d := fx.decision(everything, everything_input)
	d2 := fx.decision(everything, fx.input_app({"programs": ["glasswing"]}, {"task": "summarization"}))
	fired := {r.code | some x in array.concat(d.denied, d2.denied); some r in x.reasons}
	fired == data.clearance.codes.all
	every code in fired {
		data.reasons.codes[code]
	}
}

test_same_input_same_decision if {
	fx.decision(everything, everything_input) == fx.decision(array.reverse(everything), everything_input)
	fx.decision(catalog, fx.input_with({})) == fx.decision(array.reverse(catalog), fx.input_with({}))
}

# The tables the embedded engine assembles `decision` from when main.rego is the one it pins
# (policy/assembly.py): the cleared routes' keys in the order of `allowed`, every route of the
# catalog, and the reasons and obligations by level.
test_assembly_holds_the_tables_of_the_decision if {
	every w in [{}, {"quality_tier": "frontier"}, {"dangerous_capability": "cyber_offense"}] {
		inp := fx.input_with(w)
		d := fx.decision(catalog, inp)
		a := data.clearance.assembly with data.models as catalog with data.org as fx.org with input as inp
		object.keys(a) == {"denials", "obligations", "ordered", "deployments"}
		[[t[2], t[3]] | some t in a.ordered] == fx.allowed_routes(d)
		{[e[0], did] | some e in a.deployments; some did in e[1]} == all_routes
		object.keys(a.denials) == {"workload", "model", "route"}
	}
}
