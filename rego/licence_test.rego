package clearance.licence_test

import rego.v1

import data.clearance.fixtures_test as fx

llama_cap := {"threshold": 700000000, "measures": "licensee_and_affiliates", "period": "calendar_month_before_release"}

llama := fx.model("llama", {"name": "Llama 4 Maverick", "released_on": "2025-04-05", "licence": {
	"name": "Llama 4 Community License",
	"mau_cap": llama_cap,
	"attribution": "Built with Llama",
	"name_prefix": "Llama",
	"acceptable_use_policy": "https://www.llama.com/llama4/use-policy",
	"clauses": {"mau_cap": "§2", "attribution": "§1.b.i"},
}})

# A Hunyuan-like licence: counts the licensee alone, excludes the EU, the UK and South Korea.
hunyuan := fx.model("hunyuan", {"name": "Hunyuan-A13B", "released_on": "2025-06-27", "licence": {
	"name": "Tencent Hunyuan Community License",
	"mau_cap": {"threshold": 100000000, "measures": "licensee", "period": "calendar_month_before_release"},
	"excluded_territories": ["EU", "GB", "KR"],
	"clauses": {"mau_cap": "§4", "excluded_territories": "§1(l), §5(c)"},
}})

# The org with these MAU figures (by month).
org_mau(by_month) := object.union(fx.org, {"licensee_mau": by_month})

deny_org(models, org, inp) := d if {
	d := data.clearance.licence.deny with data.models as models with data.org as org with input as inp
}

obligations_org(models, org, inp) := o if {
	o := data.clearance.licence.obligations with data.models as models with data.org as org with input as inp
}

# Licence denials of `models` when the org had `figure` users in 2025-03 (the month before
# Llama 4's release), for an ordinary workload.
deny_at(models, figure) := deny_org(models, org_mau({"2025-03": figure}), fx.input_with({}))

decision_mau(models, by_month, inp) := fx.decision_org(models, {"licensee_mau": by_month}, inp)

# --- LICENCE_MAU_CAP: the licensee's users in the month before the release ----------------------

test_org_mau_above_the_cap_in_the_month_before_release_is_denied_citing_the_clause if {
	deny_at([llama], 812000000).model == {"llama": {"LICENCE_MAU_CAP": "Llama 4 Community License §2: licensee and affiliates MAU 812M in 2025-03, before the 2025-04-05 release, exceeds 700M"}}
}

test_one_above_the_cap_is_denied if {
	deny_at([llama], 700000001).model.llama.LICENCE_MAU_CAP == "Llama 4 Community License §2: licensee and affiliates MAU 700,000,001 in 2025-03, before the 2025-04-05 release, exceeds 700M"
}

test_exactly_at_the_cap_is_licensed if {
	# §2: "greater than 700 million": 700,000,000 is not.
	deny_at([llama], 700000000).model == {}
}

test_one_below_the_cap_is_licensed if {
	deny_at([llama], 699999999).model == {}
}

test_a_figure_of_another_month_is_ignored if {
	# 900M after the release (2025-04) and before the measured month (2025-02) do not count.
	org := org_mau({"2025-02": 900000000, "2025-03": 400000000, "2025-04": 900000000})
	deny_org([llama], org, fx.input_with({})).model == {}
	over := org_mau({"2025-02": 100, "2025-03": 800000000, "2025-04": 100})
	deny_org([llama], over, fx.input_with({})).model.llama.LICENCE_MAU_CAP
}

test_missing_month_is_denied_naming_the_missing_figure if {
	org := org_mau({"2025-02": 5, "2025-04": 5})
	deny_org([llama], org, fx.input_with({})).model.llama.LICENCE_MAU_CAP == "Llama 4 Community License §2: org.yaml licensee_mau has no figure for 2025-03, the calendar month before the 2025-04-05 release of Llama 4 Maverick, so the 700M cap cannot be checked"
}

test_no_figures_at_all_is_denied if {
	deny_org([llama], object.remove(fx.org, ["licensee_mau"]), fx.input_with({})).model.llama.LICENCE_MAU_CAP
	deny_org([llama], fx.org, fx.input_with({})).model.llama.LICENCE_MAU_CAP
}

test_zero_users_is_a_figure if {
	deny_at([llama], 0).model == {}
}

test_a_january_release_is_measured_on_december_of_the_year_before if {
	m := object.union(llama, {"released_on": "2026-01-15"})
	deny_org([m], org_mau({"2025-12": 800000000, "2026-01": 1}), fx.input_with({})).model.llama.LICENCE_MAU_CAP == "Llama 4 Community License §2: licensee and affiliates MAU 800M in 2025-12, before the 2026-01-15 release, exceeds 700M"
	deny_org([m], org_mau({"2025-12": 1, "2026-01": 800000000}), fx.input_with({})).model == {}
}

test_each_version_is_measured_before_its_own_release if {
	later := fx.model("llama-next", {"name": "Llama Next", "released_on": "2026-04-01", "licence": {"name": "Llama 4 Community License", "mau_cap": llama_cap}})
	d := deny_org([llama, later], org_mau({"2025-03": 400000000, "2026-03": 800000000}), fx.input_with({}))
	object.keys(d.model) == {"llama-next"}
}

test_the_workload_monthly_active_users_no_longer_decide if {
	# A 900M-user app at an org that had 400M at release is licensed ...
	deny_org([llama], org_mau({"2025-03": 400000000}), fx.input_with({"monthly_active_users": 900000000})).model == {}
	# ... a 5-user app at an org that had 800M is not.
	deny_org([llama], org_mau({"2025-03": 800000000}), fx.input_with({"monthly_active_users": 5})).model.llama.LICENCE_MAU_CAP
}

test_missing_release_date_is_denied if {
	m := object.union(llama, {"released_on": null})
	deny_at([m], 1).model.llama.LICENCE_MAU_CAP == "Llama 4 Community License §2: the catalog gives no released_on for Llama 4 Maverick, so the month its MAU cap is measured in is unknown"
	deny_at([object.remove(llama, ["released_on"])], 1).model.llama.LICENCE_MAU_CAP
}

test_no_cap_no_mau_limit if {
	m := fx.model("m1", {})
	deny_org([m], fx.org, fx.input_with({"monthly_active_users": 100000000000})).model == {}
	obligations_org([m], org_mau({"2025-03": 100000000000}), fx.input_with({})).model == {}
}

test_large_figures_print_exactly if {
	m := fx.model("m1", {"released_on": "2025-04-05", "licence": {"name": "Big Licence", "mau_cap": object.union(llama_cap, {"threshold": 99999999999})}})
	deny_at([m], 100000000001).model.m1.LICENCE_MAU_CAP == "Big Licence: licensee and affiliates MAU 100,000,000,001 in 2025-03, before the 2025-04-05 release, exceeds 99,999,999,999"
	small := fx.model("m2", {"released_on": "2025-04-05", "licence": {"name": "Small Licence", "mau_cap": object.union(llama_cap, {"threshold": 999})}})
	deny_at([small], 1000).model.m2.LICENCE_MAU_CAP == "Small Licence: licensee and affiliates MAU 1,000 in 2025-03, before the 2025-04-05 release, exceeds 999"
	deny_at([object.union(small, {"licence": {"mau_cap": {"threshold": 5}}})], 12).model.m2.LICENCE_MAU_CAP == "Small Licence: licensee and affiliates MAU 12 in 2025-03, before the 2025-04-05 release, exceeds 5"
}

# --- a licence that counts the licensee alone -------------------------------------------------

test_licensee_only_cap_uses_the_figures_with_affiliates_when_no_other_is_given if {
	d := deny_org([hunyuan], org_mau({"2025-05": 150000000}), fx.input_with({}))
	d.model.hunyuan.LICENCE_MAU_CAP == "Tencent Hunyuan Community License §4: licensee and affiliates MAU 150M in 2025-05, before the 2025-06-27 release, exceeds 100M"
}

test_licensee_only_cap_uses_the_figures_without_affiliates_when_given if {
	org := object.union(org_mau({"2025-05": 150000000}), {"licensee_mau_without_affiliates": {"2025-05": 90000000}})
	deny_org([hunyuan], org, fx.input_with({})).model == {}
	over := object.union(org, {"licensee_mau_without_affiliates": {"2025-05": 100000001}})
	deny_org([hunyuan], over, fx.input_with({})).model.hunyuan.LICENCE_MAU_CAP == "Tencent Hunyuan Community License §4: licensee MAU (affiliates excluded) 100,000,001 in 2025-05, before the 2025-06-27 release, exceeds 100M"
	# The series without affiliates is given but lacks the month: denied, naming that series.
	gap := object.union(org_mau({"2025-05": 1}), {"licensee_mau_without_affiliates": {"2025-04": 1}})
	contains(deny_org([hunyuan], gap, fx.input_with({})).model.hunyuan.LICENCE_MAU_CAP, "org.yaml licensee_mau_without_affiliates has no figure for 2025-05")
}

test_a_licence_counting_affiliates_ignores_the_figures_without_them if {
	org := object.union(org_mau({"2025-03": 800000000}), {"licensee_mau_without_affiliates": {"2025-03": 1}})
	deny_org([llama], org, fx.input_with({})).model.llama.LICENCE_MAU_CAP
}

# --- licence_mau_near_cap: the org's newest figure against each cap ----------------------------

near(models, by_month) := obligations_org(models, org_mau(by_month), fx.input_with({})).model

test_newest_figure_at_the_warning_ratio_warns if {
	# 700,000,000 × 0.9
	near([llama], {"2025-03": 1, "2026-03": 630000000}).llama.licence_mau_near_cap == "licence_mau_near_cap"
}

test_newest_figure_one_below_the_warning_ratio_does_not_warn if {
	not near([llama], {"2025-03": 1, "2026-03": 629999999}).llama.licence_mau_near_cap
}

test_the_newest_month_decides_the_warning_not_the_measured_one if {
	near([llama], {"2025-03": 400000000, "2026-03": 650000000}).llama.licence_mau_near_cap
	not near([llama], {"2025-03": 650000000, "2026-03": 400000000}).llama.licence_mau_near_cap
	not near([llama], {"2026-03": 400000000, "2025-12": 690000000}).llama.licence_mau_near_cap
}

test_newest_figure_above_the_cap_still_warns_a_licensed_version if {
	# Licensed (400M before its release), but the org has grown past the cap since: warn.
	d := decision_mau([llama], {"2025-03": 400000000, "2026-03": 900000000}, fx.input_with({}))
	"licence_mau_near_cap" in fx.cleared(d, "llama", "self-hosted").obligations
}

test_near_cap_is_exact_where_floats_are_not if {
	# 100 × 0.7 is 70.00000000000001 in binary floating point; the rule compares exactly.
	m := fx.model("m1", {"released_on": "2025-04-05", "licence": {"mau_cap": object.union(llama_cap, {"threshold": 100})}})
	org := object.union(fx.org, {"mau_warning_ratio": 0.7})
	obligations_org([m], object.union(org, {"licensee_mau": {"2025-03": 70}}), fx.input_with({})).model.m1.licence_mau_near_cap
	not obligations_org([m], object.union(org, {"licensee_mau": {"2025-03": 69}}), fx.input_with({})).model.m1
}

test_warning_ratio_of_one_warns_only_at_the_cap if {
	org := object.union(fx.org, {"mau_warning_ratio": 1})
	obligations_org([llama], object.union(org, {"licensee_mau": {"2025-03": 700000000}}), fx.input_with({})).model.llama.licence_mau_near_cap
	not obligations_org([llama], object.union(org, {"licensee_mau": {"2025-03": 699999999}}), fx.input_with({})).model.llama.licence_mau_near_cap
}

test_warning_ratio_defaults_to_0_9 if {
	org := object.remove(fx.org, ["mau_warning_ratio"])
	obligations_org([llama], object.union(org, {"licensee_mau": {"2025-03": 630000000}}), fx.input_with({})).model.llama.licence_mau_near_cap
	not obligations_org([llama], object.union(org, {"licensee_mau": {"2025-03": 629999999}}), fx.input_with({})).model.llama.licence_mau_near_cap
}

test_no_figures_no_warning if {
	not obligations_org([llama], fx.org, fx.input_with({})).model.llama.licence_mau_near_cap
}

test_the_workload_monthly_active_users_do_not_warn if {
	not obligations_org([llama], org_mau({"2025-03": 1}), fx.input_with({"monthly_active_users": 650000000})).model.llama.licence_mau_near_cap
}

test_mau_cap_in_the_decision if {
	llamas := [object.union(llama, {"deployments": [fx.self_hosted, fx.vendor_api]})]
	over := decision_mau(llamas, {"2025-03": 800000000}, fx.input_with({}))
	fx.codes(over, "llama", "self-hosted") == ["LICENCE_MAU_CAP"]
	fx.codes(over, "llama", "vendor-api") == ["LICENCE_MAU_CAP"]
	at_cap := decision_mau(llamas, {"2025-03": 700000000}, fx.input_with({}))
	count(at_cap.allowed) == 2
	every item in at_cap.allowed {
		"licence_mau_near_cap" in item.obligations
	}
}

# --- LICENCE_TERRITORY ----------------------------------------------------------------------

territory(models, jurisdictions) := deny_org(models, org_mau({"2025-05": 1}), fx.input_with({"jurisdictions": jurisdictions})).model

test_an_excluded_group_is_denied_citing_the_clause if {
	territory([hunyuan], ["EEA", "EU"]) == {"hunyuan": {"LICENCE_TERRITORY": "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, and the workload's jurisdictions include EU"}}
}

test_a_member_state_is_denied_through_its_expanded_groups if {
	# ["DE"] reaches the policy expanded to its groups.
	territory([hunyuan], ["DE", "EU", "EEA"]).hunyuan.LICENCE_TERRITORY == "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, and the workload's jurisdictions include EU"
	territory([hunyuan], ["FR", "EU", "EEA", "US"]).hunyuan.LICENCE_TERRITORY
}

test_each_excluded_country_is_denied if {
	every j in [["GB"], ["KR"], ["US", "KR"]] {
		territory([hunyuan], j).hunyuan.LICENCE_TERRITORY
	}
	territory([hunyuan], ["EEA", "EU", "GB", "KR"]).hunyuan.LICENCE_TERRITORY == "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, and the workload's jurisdictions include EU, GB, KR"
}

test_other_territories_are_licensed if {
	every j in [["US"], ["CN", "JP"], ["NO", "EEA"], ["CH"]] {
		territory([hunyuan], j) == {}
	}
}

test_no_jurisdiction_at_all_is_denied if {
	# Fail closed: the licence grants nothing outside its Territory, and nothing shows where this is used.
	territory([hunyuan], []).hunyuan.LICENCE_TERRITORY == "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, and the workload names no jurisdictions, so it cannot show it is used elsewhere"
	territory([fx.model("m1", {})], []) == {}
}

# UK arrives as GB, EU with EEA (policy/profile.py expands them: tests/policy/test_licences.py).
test_an_eea_exclusion_covers_eu_work if {
	eea := fx.model("m1", {"licence": {"name": "EEA-excluding Licence", "excluded_territories": ["EEA"]}})
	territory([eea], ["EEA", "EU"]).m1.LICENCE_TERRITORY == "EEA-excluding Licence: the licence does not apply in EEA, and the workload's jurisdictions include EEA"
	territory([eea], ["NO", "EEA"]).m1.LICENCE_TERRITORY
	territory([eea], ["US"]) == {}
}

test_no_excluded_territories_no_territory_reason if {
	territory([fx.model("m1", {})], ["EEA", "EU", "GB", "KR"]) == {}
}

test_territory_and_mau_cap_together if {
	d := decision_mau([hunyuan], {"2025-05": 150000000}, fx.input_with({"jurisdictions": ["KR"]}))
	fx.codes(d, "hunyuan", "self-hosted") == ["LICENCE_MAU_CAP", "LICENCE_TERRITORY"]
}

# --- per-route licences: the same model's weights and API under different terms -----------------

api_terms := {
	"name": "Cohere SaaS Agreement", "url": "https://cohere.com/saas-agreement", "spdx": null,
	"commercial_use": true, "mau_cap": null, "excluded_territories": [], "restricts_output_training": true,
	"prohibited_uses": [], "attribution": null, "name_prefix": null,
	"acceptable_use_policy": "https://docs.cohere.com/docs/usage-policy", "clauses": {"commercial_use": "(a)(ii)"},
}

command := fx.model("command", {
	"name": "Command R+",
	"licence": {
		"name": "CC BY-NC 4.0", "commercial_use": false, "attribution": "Command R+ by Cohere",
		"clauses": {"commercial_use": "§2(a)(1)"},
	},
	"deployments": [fx.self_hosted, fx.deployment(fx.vendor_api, {"id": "cohere-api", "licence": api_terms})],
})

test_weights_route_denied_for_commercial_work_api_route_cleared if {
	d := fx.decision([command], fx.input_with({"commercial": true}))
	fx.codes(d, "command", "self-hosted") == ["LICENCE_NONCOMMERCIAL"]
	fx.message(d, "command", "self-hosted", "LICENCE_NONCOMMERCIAL") == "CC BY-NC 4.0 §2(a)(1): the workload is commercial, and the licence does not permit commercial use"
	fx.allowed_routes(d) == [["command", "cohere-api"]]
	fx.cleared(d, "command", "cohere-api").obligations == ["acceptable_use_policy:https://docs.cohere.com/docs/usage-policy"]
}

test_both_routes_cleared_for_noncommercial_work_each_with_its_own_obligations if {
	d := fx.decision([command], fx.input_with({"commercial": false}))
	fx.cleared(d, "command", "self-hosted").obligations == ["attribution:Command R+ by Cohere"]
	fx.cleared(d, "command", "cohere-api").obligations == ["acceptable_use_policy:https://docs.cohere.com/docs/usage-policy"]
}

test_each_route_is_judged_on_its_own_licence if {
	d := fx.decision([command], fx.input_with({"commercial": false, "task": "model_training"}))
	fx.codes(d, "command", "cohere-api") == ["LICENCE_OUTPUT_TRAINING"]
	fx.message(d, "command", "cohere-api", "LICENCE_OUTPUT_TRAINING") == "Cohere SaaS Agreement: task model_training, and the licence forbids training models on the outputs of Command R+"
	fx.cleared(d, "command", "self-hosted")
}

test_a_route_licence_can_carry_a_cap_and_territories if {
	capped := object.union(api_terms, {"mau_cap": llama_cap, "excluded_territories": ["KR"]})
	m := fx.model("m1", {"released_on": "2025-04-05", "deployments": [fx.self_hosted, fx.deployment(fx.vendor_api, {"licence": capped})]})
	d := decision_mau([m], {"2025-03": 800000000}, fx.input_with({"jurisdictions": ["KR"]}))
	fx.codes(d, "m1", "vendor-api") == ["LICENCE_MAU_CAP", "LICENCE_TERRITORY"]
	fx.cleared(d, "m1", "self-hosted")
	near_d := decision_mau([m], {"2025-03": 650000000}, fx.input_with({}))
	"licence_mau_near_cap" in fx.cleared(near_d, "m1", "vendor-api").obligations
	not "licence_mau_near_cap" in fx.cleared(near_d, "m1", "self-hosted").obligations
}

test_other_models_keep_model_level_reasons_beside_a_per_route_model if {
	nc := fx.model("nc", {"licence": {"name": "NC", "commercial_use": false}, "deployments": [fx.self_hosted, fx.vendor_api]})
	d := data.clearance.licence.deny with data.models as [command, nc] with data.org as fx.org with input as fx.input_with({"commercial": true})
	object.keys(d.model) == {"nc"}
	d.route == {"command": {"self-hosted": {"LICENCE_NONCOMMERCIAL": "CC BY-NC 4.0 §2(a)(1): the workload is commercial, and the licence does not permit commercial use"}}}
}

test_two_routes_under_licences_of_their_own_and_one_under_the_models if {
	cloud_terms := object.union(object.remove(api_terms, ["clauses"]), {"name": "Cloud Terms", "commercial_use": false, "acceptable_use_policy": null, "clauses": {}})
	m := fx.model("m1", {
		"licence": {"name": "Weights Licence", "prohibited_uses": ["defense"]},
		"deployments": [
			fx.self_hosted,
			fx.deployment(fx.vendor_api, {"licence": api_terms}),
			fx.deployment(fx.cloud, {"licence": cloud_terms}),
		],
	})
	d := fx.decision([m], fx.input_with({"sectors": ["defense"], "commercial": true}))
	fx.codes(d, "m1", "self-hosted") == ["LICENCE_PROHIBITED_USE"]
	fx.message(d, "m1", "self-hosted", "LICENCE_PROHIBITED_USE") == "Weights Licence: the licence prohibits use for sector defense"
	fx.codes(d, "m1", "cloud") == ["LICENCE_NONCOMMERCIAL"]
	fx.message(d, "m1", "cloud", "LICENCE_NONCOMMERCIAL") == "Cloud Terms: the workload is commercial, and the licence does not permit commercial use"
	fx.allowed_routes(d) == [["m1", "vendor-api"]]
	fx.cleared(d, "m1", "vendor-api").obligations == ["acceptable_use_policy:https://docs.cohere.com/docs/usage-policy"]
}

test_a_route_licence_replaces_the_models_never_merges_with_it if {
	# The weights' attribution and clauses do not leak into the API's terms.
	d := fx.decision([command], fx.input_with({"commercial": false, "task": "model_training"}))
	fx.message(d, "command", "cohere-api", "LICENCE_OUTPUT_TRAINING") == "Cohere SaaS Agreement: task model_training, and the licence forbids training models on the outputs of Command R+"
	not "attribution:Command R+ by Cohere" in object.get(fx.cleared(d, "command", "cohere-api"), "obligations", [])
}

# --- LICENCE_NONCOMMERCIAL -----------------------------------------------------------------

noncommercial := fx.model("m1", {"licence": {"name": "CC BY-NC 4.0", "commercial_use": false}})

test_commercial_workload_denied_by_noncommercial_licence if {
	deny_org([noncommercial], fx.org, fx.input_with({"commercial": true})).model == {"m1": {"LICENCE_NONCOMMERCIAL": "CC BY-NC 4.0: the workload is commercial, and the licence does not permit commercial use"}}
}

test_noncommercial_workload_allowed_by_noncommercial_licence if {
	deny_org([noncommercial], fx.org, fx.input_with({"commercial": false})).model == {}
}

test_commercial_licence_allows_commercial_workload if {
	deny_org([fx.model("m1", {})], fx.org, fx.input_with({"commercial": true})).model == {}
}

# --- LICENCE_OUTPUT_TRAINING --------------------------------------------------------------

restricts := fx.model("m1", {"name": "GPT-5.4", "licence": {"name": "OpenAI Terms of Use", "restricts_output_training": true, "clauses": {"restricts_output_training": "§2(c)(iii)"}}})

test_model_training_denied_when_licence_restricts_outputs if {
	deny_org([restricts], fx.org, fx.input_with({"task": "model_training"})).model == {"m1": {"LICENCE_OUTPUT_TRAINING": "OpenAI Terms of Use §2(c)(iii): task model_training, and the licence forbids training models on the outputs of GPT-5.4"}}
}

test_other_tasks_allowed_when_licence_restricts_outputs if {
	every task in ["summarization", "code_generation", "reasoning"] {
		deny_org([restricts], fx.org, fx.input_with({"task": task})).model == {}
	}
}

test_model_training_allowed_when_licence_does_not_restrict if {
	deny_org([fx.model("m1", {})], fx.org, fx.input_with({"task": "model_training"})).model == {}
}

# --- LICENCE_PROHIBITED_USE ---------------------------------------------------------------

prohibits := fx.model("m1", {"licence": {"name": "Acme AUP", "prohibited_uses": ["defense", "gui_automation"]}})

test_prohibited_sector_is_denied if {
	deny_org([prohibits], fx.org, fx.input_with({"sectors": ["defense"]})).model == {"m1": {"LICENCE_PROHIBITED_USE": "Acme AUP: the licence prohibits use for sector defense"}}
}

test_prohibited_task_is_denied if {
	deny_org([prohibits], fx.org, fx.input_with({"task": "gui_automation"})).model.m1.LICENCE_PROHIBITED_USE == "Acme AUP: the licence prohibits use for task gui_automation"
}

test_prohibited_sector_among_several_is_denied if {
	d := deny_org([prohibits], fx.org, fx.input_with({"sectors": ["general", "defense"]}))
	d.model == {"m1": {"LICENCE_PROHIBITED_USE": "Acme AUP: the licence prohibits use for sector defense"}}
}

test_prohibited_task_and_sector_one_reason if {
	d := deny_org([prohibits], fx.org, fx.input_with({"task": "gui_automation", "sectors": ["defense"]}))
	d.model == {"m1": {"LICENCE_PROHIBITED_USE": "Acme AUP: the licence prohibits use for task gui_automation and sector defense"}}
}

test_uses_not_prohibited_are_allowed if {
	deny_org([prohibits], fx.org, fx.input_with({"task": "summarization", "sectors": ["healthcare"]})).model == {}
	deny_org([fx.model("m1", {})], fx.org, fx.input_with({"sectors": ["defense"]})).model == {}
}

# --- obligations: attribution, name prefix, acceptable-use policy ----------------------------

test_attribution_and_acceptable_use_policy_on_every_cleared_route if {
	obligations_org([llama], org_mau({"2025-03": 1000}), fx.input_with({})).model == {"llama": {
		"attribution": "attribution:Built with Llama",
		"acceptable_use_policy": "acceptable_use_policy:https://www.llama.com/llama4/use-policy",
	}}
	d := decision_mau([llama], {"2025-03": 1000}, fx.input_with({}))
	fx.cleared(d, "llama", "self-hosted").obligations == ["acceptable_use_policy:https://www.llama.com/llama4/use-policy", "attribution:Built with Llama"]
}

test_name_prefix_only_when_training_on_the_outputs if {
	train := decision_mau([llama], {"2025-03": 1000}, fx.input_with({"task": "model_training"}))
	"name_prefix:Llama" in fx.cleared(train, "llama", "self-hosted").obligations
	other := decision_mau([llama], {"2025-03": 1000}, fx.input_with({"task": "summarization"}))
	not "name_prefix:Llama" in fx.cleared(other, "llama", "self-hosted").obligations
}

test_no_attribution_no_obligation if {
	obligations_org([fx.model("m1", {})], fx.org, fx.input_with({})).model == {}
	obligations_org([fx.model("m1", {"licence": {"attribution": ""}})], fx.org, fx.input_with({})).model == {}
}

test_obligations_together_sorted if {
	d := decision_mau([llama], {"2025-03": 650000000}, fx.input_with({"task": "model_training"}))
	fx.cleared(d, "llama", "self-hosted").obligations == [
		"acceptable_use_policy:https://www.llama.com/llama4/use-policy",
		"attribution:Built with Llama",
		"licence_mau_near_cap",
		"name_prefix:Llama",
	]
}

test_every_licence_code_at_once if {
	m := fx.model("m1", {"released_on": "2025-04-05", "licence": {
		"name": "Everything Licence", "commercial_use": false, "mau_cap": object.union(llama_cap, {"threshold": 10}),
		"excluded_territories": ["KR"], "restricts_output_training": true, "prohibited_uses": ["model_training"],
	}})
	d := decision_mau([m], {"2025-03": 11}, fx.input_with({"task": "model_training", "commercial": true, "jurisdictions": ["KR"]}))
	fx.codes(d, "m1", "self-hosted") == ["LICENCE_MAU_CAP", "LICENCE_NONCOMMERCIAL", "LICENCE_OUTPUT_TRAINING", "LICENCE_PROHIBITED_USE", "LICENCE_TERRITORY"]
}
