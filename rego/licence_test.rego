package clearance.licence_test

import rego.v1

import data.clearance.fixtures_test as fx

llama := fx.model("llama", {"name": "Llama 4 Maverick", "licence": {
	"name": "Llama 4 Community License",
	"mau_cap": 700000000,
	"attribution": "Built with Llama",
}})

deny(models, inp) := d if {
	d := data.clearance.licence.deny with data.models as models with data.org as fx.org with input as inp
}

obligations(models, inp) := o if {
	o := data.clearance.licence.obligations with data.models as models with data.org as fx.org with input as inp
}

obligations_org(models, org, inp) := o if {
	o := data.clearance.licence.obligations with data.models as models with data.org as org with input as inp
}

mau(n) := fx.input_with({"monthly_active_users": n})

# --- LICENCE_MAU_CAP and licence_mau_near_cap ---------------------------------------------

test_mau_above_cap_is_denied_with_the_numbers if {
	d := deny([llama], mau(800000000))
	d.model == {"llama": {"LICENCE_MAU_CAP": "800000000 MAU exceeds the 700000000 cap of the Llama 4 Community License"}}
}

test_mau_one_above_cap_is_denied if {
	deny([llama], mau(700000001)).model.llama.LICENCE_MAU_CAP == "700000001 MAU exceeds the 700000000 cap of the Llama 4 Community License"
}

test_mau_exactly_at_cap_is_allowed_near_cap if {
	deny([llama], mau(700000000)).model == {}
	obligations([llama], mau(700000000)).model.llama.licence_mau_near_cap == "licence_mau_near_cap"
}

test_mau_one_below_cap_is_allowed_near_cap if {
	deny([llama], mau(699999999)).model == {}
	obligations([llama], mau(699999999)).model.llama.licence_mau_near_cap
}

test_mau_exactly_at_warning_ratio_gets_near_cap if {
	# 700000000 × 0.9
	obligations([llama], mau(630000000)).model.llama.licence_mau_near_cap
}

test_mau_one_below_warning_ratio_gets_no_near_cap if {
	not obligations([llama], mau(629999999)).model.llama.licence_mau_near_cap
	deny([llama], mau(629999999)).model == {}
}

test_near_cap_is_exact_where_floats_are_not if {
	# 100 × 0.7 is 70.00000000000001 in binary floating point; the rule compares exactly.
	m := fx.model("m1", {"licence": {"mau_cap": 100}})
	org := object.union(fx.org, {"mau_warning_ratio": 0.7})
	obligations_org([m], org, mau(70)).model.m1.licence_mau_near_cap
	not obligations_org([m], org, mau(69)).model.m1
}

test_warning_ratio_of_one_warns_only_at_the_cap if {
	org := object.union(fx.org, {"mau_warning_ratio": 1})
	obligations_org([llama], org, mau(700000000)).model.llama.licence_mau_near_cap
	not obligations_org([llama], org, mau(699999999)).model.llama.licence_mau_near_cap
}

test_warning_ratio_defaults_to_0_9 if {
	org := object.remove(fx.org, ["mau_warning_ratio"])
	obligations_org([llama], org, mau(630000000)).model.llama.licence_mau_near_cap
	not obligations_org([llama], org, mau(629999999)).model.llama.licence_mau_near_cap
}

test_above_cap_is_not_near_cap if {
	not obligations([llama], mau(700000001)).model.llama.licence_mau_near_cap
}

test_no_cap_no_mau_limit if {
	m := fx.model("m1", {})
	deny([m], mau(100000000000)).model == {}
	obligations([m], mau(100000000000)).model == {}
}

test_large_numbers_print_without_exponent if {
	m := fx.model("m1", {"licence": {"name": "Big Licence", "mau_cap": 99999999999}})
	deny([m], mau(100000000000)).model.m1.LICENCE_MAU_CAP == "100000000000 MAU exceeds the 99999999999 cap of the Big Licence"
}

test_zero_mau_is_not_near_cap if {
	m := fx.model("m1", {"licence": {"mau_cap": 1}})
	obligations([m], mau(0)).model == {}
	obligations([m], mau(1)).model.m1.licence_mau_near_cap
}

test_mau_cap_in_the_decision if {
	llamas := [object.union(llama, {"deployments": [fx.self_hosted, fx.vendor_api]})]
	over := fx.decision(llamas, mau(800000000))
	fx.codes(over, "llama", "self-hosted") == ["LICENCE_MAU_CAP"]
	fx.codes(over, "llama", "vendor-api") == ["LICENCE_MAU_CAP"]
	at_cap := fx.decision(llamas, mau(700000000))
	every item in at_cap.allowed {
		"licence_mau_near_cap" in item.obligations
	}
	count(at_cap.allowed) == 2
}

# --- LICENCE_NONCOMMERCIAL ----------------------------------------------------------------

noncommercial := fx.model("m1", {"licence": {"name": "CC BY-NC 4.0", "commercial_use": false}})

test_commercial_workload_denied_by_noncommercial_licence if {
	deny([noncommercial], fx.input_with({"commercial": true})).model == {"m1": {"LICENCE_NONCOMMERCIAL": "the workload is commercial, and the CC BY-NC 4.0 does not permit commercial use"}}
}

test_noncommercial_workload_allowed_by_noncommercial_licence if {
	deny([noncommercial], fx.input_with({"commercial": false})).model == {}
}

test_commercial_licence_allows_commercial_workload if {
	deny([fx.model("m1", {})], fx.input_with({"commercial": true})).model == {}
}

# --- LICENCE_OUTPUT_TRAINING --------------------------------------------------------------

restricts := fx.model("m1", {"name": "GPT-5.4", "licence": {"name": "OpenAI Terms of Use", "restricts_output_training": true}})

test_model_training_denied_when_licence_restricts_outputs if {
	deny([restricts], fx.input_with({"task": "model_training"})).model == {"m1": {"LICENCE_OUTPUT_TRAINING": "task model_training: the OpenAI Terms of Use forbids training models on the outputs of GPT-5.4"}}
}

test_other_tasks_allowed_when_licence_restricts_outputs if {
	every task in ["summarization", "code_generation", "reasoning"] {
		deny([restricts], fx.input_with({"task": task})).model == {}
	}
}

test_model_training_allowed_when_licence_does_not_restrict if {
	deny([fx.model("m1", {})], fx.input_with({"task": "model_training"})).model == {}
}

# --- LICENCE_PROHIBITED_USE ---------------------------------------------------------------

prohibits := fx.model("m1", {"licence": {"name": "Acme AUP", "prohibited_uses": ["defense", "gui_automation"]}})

test_prohibited_sector_is_denied if {
	deny([prohibits], fx.input_with({"sectors": ["defense"]})).model == {"m1": {"LICENCE_PROHIBITED_USE": "the Acme AUP prohibits use for sector defense"}}
}

test_prohibited_task_is_denied if {
	deny([prohibits], fx.input_with({"task": "gui_automation"})).model.m1.LICENCE_PROHIBITED_USE == "the Acme AUP prohibits use for task gui_automation"
}

test_prohibited_sector_among_several_is_denied if {
	d := deny([prohibits], fx.input_with({"sectors": ["general", "defense"]}))
	d.model == {"m1": {"LICENCE_PROHIBITED_USE": "the Acme AUP prohibits use for sector defense"}}
}

test_prohibited_task_and_sector_one_reason if {
	d := deny([prohibits], fx.input_with({"task": "gui_automation", "sectors": ["defense"]}))
	d.model == {"m1": {"LICENCE_PROHIBITED_USE": "the Acme AUP prohibits use for task gui_automation and sector defense"}}
}

test_uses_not_prohibited_are_allowed if {
	deny([prohibits], fx.input_with({"task": "summarization", "sectors": ["healthcare"]})).model == {}
	deny([fx.model("m1", {})], fx.input_with({"sectors": ["defense"]})).model == {}
}

# --- obligation attribution:<text> --------------------------------------------------------

test_attribution_obligation_carries_the_text if {
	obligations([llama], mau(1000)).model == {"llama": {"attribution": "attribution:Built with Llama"}}
	d := fx.decision([llama], mau(1000))
	fx.cleared(d, "llama", "self-hosted").obligations == ["attribution:Built with Llama"]
}

test_no_attribution_no_obligation if {
	obligations([fx.model("m1", {})], mau(1000)).model == {}
	obligations([fx.model("m1", {"licence": {"attribution": ""}})], mau(1000)).model == {}
}

test_attribution_and_near_cap_together_sorted if {
	d := fx.decision([llama], mau(650000000))
	fx.cleared(d, "llama", "self-hosted").obligations == ["attribution:Built with Llama", "licence_mau_near_cap"]
}

test_every_licence_code_at_once if {
	m := fx.model("m1", {"licence": {
		"name": "Everything Licence", "commercial_use": false, "mau_cap": 10,
		"restricts_output_training": true, "prohibited_uses": ["model_training"],
	}})
	d := fx.decision([m], fx.input_with({"task": "model_training", "monthly_active_users": 11, "commercial": true}))
	fx.codes(d, "m1", "self-hosted") == ["LICENCE_MAU_CAP", "LICENCE_NONCOMMERCIAL", "LICENCE_OUTPUT_TRAINING", "LICENCE_PROHIBITED_USE"]
}
