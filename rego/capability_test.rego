package clearance.capability_test

import rego.v1

import data.clearance.fixtures_test as fx

glasswing_cap := {"class": "cyber_offense", "level": "critical", "access_program": "glasswing", "permitted_tasks": ["security_research", "code_generation"]}

mythos := fx.model("mythos", {"name": "Claude Mythos Preview", "dangerous_capabilities": [glasswing_cap]})

deny(models, inp) := d if {
	d := data.clearance.capability.deny with data.models as models with data.org as fx.org with input as inp
}

enrolled := {"id": "security-operations", "programs": ["glasswing"]}

# --- CAPABILITY_GATED ---------------------------------------------------------------------

test_gated_model_denied_for_app_not_enrolled if {
	d := deny([mythos], fx.input_with({}))
	d.model == {"mythos": {"CAPABILITY_GATED": "Claude Mythos Preview has dangerous capabilities behind access programs app test-app is not enrolled in: cyber_offense (program glasswing)"}}
}

test_gated_model_not_gated_for_enrolled_app if {
	d := deny([mythos], fx.input_app(enrolled, {"task": "security_research"}))
	d.model == {}
}

test_enrolled_in_another_program_is_still_gated if {
	d := deny([mythos], fx.input_app({"programs": ["other-program"]}, {"task": "security_research"}))
	object.keys(d.model.mythos) == {"CAPABILITY_GATED"}
}

test_dangerous_capability_without_access_program_is_not_gated if {
	m := fx.model("m1", {"dangerous_capabilities": [{"class": "persuasion", "level": "medium", "access_program": null, "permitted_tasks": []}]})
	deny([m], fx.input_with({})).model == {}
}

test_model_without_dangerous_capabilities_is_not_gated if {
	deny([fx.model("m1", {})], fx.input_with({})).model == {}
}

test_two_gated_capabilities_one_reason if {
	m := fx.model("m1", {"dangerous_capabilities": [
		glasswing_cap,
		{"class": "bio_chem", "level": "high", "access_program": "biosafety", "permitted_tasks": []},
	]})
	d := deny([m], fx.input_with({}))
	d.model.m1.CAPABILITY_GATED == "Model m1 has dangerous capabilities behind access programs app test-app is not enrolled in: bio_chem (program biosafety), cyber_offense (program glasswing)"
}

test_enrolled_in_one_of_two_programs_gated_by_the_other if {
	m := fx.model("m1", {"dangerous_capabilities": [
		glasswing_cap,
		{"class": "bio_chem", "level": "high", "access_program": "biosafety", "permitted_tasks": ["security_research"]},
	]})
	d := deny([m], fx.input_app(enrolled, {"task": "security_research"}))
	d.model.m1 == {"CAPABILITY_GATED": "Model m1 has dangerous capabilities behind access programs app security-operations is not enrolled in: bio_chem (program biosafety)"}
}

test_gated_denies_every_deployment if {
	m := object.union(mythos, {"deployments": [fx.self_hosted, fx.vendor_api]})
	d := fx.decision([m], fx.input_with({"task": "security_research"}))
	fx.codes(d, "mythos", "self-hosted") == ["CAPABILITY_GATED"]
	fx.codes(d, "mythos", "vendor-api") == ["CAPABILITY_GATED"]
}

# --- CAPABILITY_PURPOSE -------------------------------------------------------------------

test_enrolled_app_off_purpose_is_denied if {
	d := deny([mythos], fx.input_app(enrolled, {"task": "summarization"}))
	d.model == {"mythos": {"CAPABILITY_PURPOSE": "app security-operations is enrolled, but task summarization is not permitted for Claude Mythos Preview: cyber_offense (program glasswing permits security_research, code_generation)"}}
}

test_enrolled_app_on_purpose_is_cleared if {
	every task in ["security_research", "code_generation"] {
		deny([mythos], fx.input_app(enrolled, {"task": task})).model == {}
	}
}

test_enrolled_on_purpose_route_cleared_in_decision if {
	inp := fx.input_app(object.union(enrolled, {"capability_approvals": ["cyber_defense"]}), {"task": "security_research", "dangerous_capability": "cyber_defense"})
	d := fx.decision([mythos], inp)
	fx.cleared(d, "mythos", "self-hosted")
	d.denied == []
}

test_not_enrolled_is_gated_not_off_purpose if {
	d := deny([mythos], fx.input_with({"task": "summarization"}))
	object.keys(d.model.mythos) == {"CAPABILITY_GATED"}
}

test_enrolled_with_no_permitted_tasks_is_off_purpose if {
	m := fx.model("m1", {"dangerous_capabilities": [{"class": "cyber_offense", "level": "high", "access_program": "glasswing", "permitted_tasks": []}]})
	d := deny([m], fx.input_app(enrolled, {"task": "security_research"}))
	d.model.m1 == {"CAPABILITY_PURPOSE": "app security-operations is enrolled, but task security_research is not permitted for Model m1: cyber_offense (program glasswing permits none)"}
}

# --- DANGEROUS_CAPABILITY_NOT_APPROVED ----------------------------------------------------

test_dangerous_capability_without_approval_is_a_workload_denial if {
	d := deny([fx.model("m1", {})], fx.input_with({"dangerous_capability": "cyber_offense"}))
	d.workload == {"DANGEROUS_CAPABILITY_NOT_APPROVED": "the workload asks for dangerous capability cyber_offense, for which app test-app holds no approval"}
}

test_dangerous_capability_with_approval_is_not_denied if {
	inp := fx.input_app({"capability_approvals": ["cyber_defense"]}, {"dangerous_capability": "cyber_defense"})
	deny([fx.model("m1", {})], inp).workload == {}
}

test_approval_for_another_class_does_not_count if {
	inp := fx.input_app({"capability_approvals": ["cyber_defense"]}, {"dangerous_capability": "cyber_offense"})
	object.keys(deny([fx.model("m1", {})], inp).workload) == {"DANGEROUS_CAPABILITY_NOT_APPROVED"}
}

test_no_dangerous_capability_needs_no_approval if {
	deny([fx.model("m1", {})], fx.input_with({"dangerous_capability": "none"})).workload == {}
}

test_dangerous_capability_without_approval_denies_every_route if {
	models := [
		fx.model("m1", {"deployments": [fx.self_hosted, fx.vendor_api]}),
		fx.model("m2", {"deployments": [fx.cloud]}),
	]
	d := fx.decision(models, fx.input_with({"dangerous_capability": "bio_chem"}))
	d.outcome == "deny"
	d.allowed == []
	fx.denied_routes(d) == [["m1", "self-hosted"], ["m1", "vendor-api"], ["m2", "cloud"]]
	every item in d.denied {
		"DANGEROUS_CAPABILITY_NOT_APPROVED" in [r.code | some r in item.reasons]
	}
}
