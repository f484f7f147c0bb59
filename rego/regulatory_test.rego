package clearance.regulatory_test

import rego.v1

import data.clearance.fixtures_test as fx

deny(models, inp) := d if {
	d := data.clearance.regulatory.deny with data.models as models with data.org as fx.org with input as inp
}

deny_org(models, org, inp) := d if {
	d := data.clearance.regulatory.deny with data.models as models with data.org as org with input as inp
}

obligations(models, inp) := o if {
	o := data.clearance.regulatory.obligations with data.models as models with data.org as fx.org with input as inp
}

partial := fx.model("m1", {"name": "DeepSeek V4", "safety_post_training": "partial"})

attest(model_id, tier) := {"attestations": [{"model": model_id, "regulatory_tier": tier, "evidence": null}]}

# --- SAFETY_POST_TRAINING -----------------------------------------------------------------

test_regulated_tier_needs_full_safety_post_training if {
	d := deny([partial], fx.input_with({"regulatory_tier": "regulated"}))
	d.model == {"m1": {"SAFETY_POST_TRAINING": "regulatory tier regulated needs full safety post-training: DeepSeek V4 has partial, and app test-app holds no attestation for it at tier regulated"}}
}

test_critical_tier_needs_full_safety_post_training if {
	every level in ["partial", "minimal", "none"] {
		d := deny([fx.model("m1", {"safety_post_training": level})], fx.input_with({"regulatory_tier": "critical"}))
		d.model.m1.SAFETY_POST_TRAINING
	}
}

test_lower_tiers_do_not_need_safety_post_training if {
	every tier in ["minimal", "standard"] {
		deny([fx.model("m1", {"safety_post_training": "none"})], fx.input_with({"regulatory_tier": tier})).model == {}
	}
}

test_full_safety_post_training_passes if {
	deny([fx.model("m1", {})], fx.input_with({"regulatory_tier": "regulated"})).model == {}
}

test_attestation_for_model_and_tier_lifts_safety_post_training if {
	inp := fx.input_app(attest("m1", "regulated"), {"regulatory_tier": "regulated"})
	deny([partial], inp).model == {}
}

test_attestation_for_another_tier_does_not_count if {
	inp := fx.input_app(attest("m1", "regulated"), {"regulatory_tier": "critical"})
	d := deny([partial], inp)
	d.model.m1.SAFETY_POST_TRAINING
}

test_attestation_for_another_model_does_not_count if {
	inp := fx.input_app(attest("m2", "regulated"), {"regulatory_tier": "regulated"})
	d := deny([partial], inp)
	d.model.m1.SAFETY_POST_TRAINING
}

# --- COMPLIANCE_DOCS ----------------------------------------------------------------------

test_critical_tier_needs_compliance_docs if {
	m := fx.model("m1", {"compliance_docs": []})
	d := deny([m], fx.input_with({"regulatory_tier": "critical"}))
	d.model.m1 == {"COMPLIANCE_DOCS": "regulatory tier critical needs vendor compliance documentation (one of soc2, iso_42001, eu_ai_act_gpai): Model m1 has none, and app test-app holds no attestation for it at tier critical"}
}

test_any_one_accepted_document_is_enough if {
	every doc in ["soc2", "iso_42001", "eu_ai_act_gpai"] {
		deny([fx.model("m1", {"compliance_docs": [doc]})], fx.input_with({"regulatory_tier": "critical"})).model == {}
	}
}

test_documents_the_org_does_not_accept_do_not_count if {
	m := fx.model("m1", {"compliance_docs": ["hipaa_baa", "iso_27001"]})
	d := deny([m], fx.input_with({"regulatory_tier": "critical"}))
	d.model.m1.COMPLIANCE_DOCS == "regulatory tier critical needs vendor compliance documentation (one of soc2, iso_42001, eu_ai_act_gpai): Model m1 has hipaa_baa, iso_27001, and app test-app holds no attestation for it at tier critical"
}

test_org_decides_which_documents_count if {
	org := object.union(fx.org, {"critical_compliance_docs": ["iso_42001"]})
	soc2_only := fx.model("m1", {"compliance_docs": ["soc2"]})
	deny_org([soc2_only], org, fx.input_with({"regulatory_tier": "critical"})).model.m1.COMPLIANCE_DOCS
	iso := fx.model("m1", {"compliance_docs": ["iso_42001"]})
	deny_org([iso], org, fx.input_with({"regulatory_tier": "critical"})).model == {}
}

test_org_default_documents_when_unset if {
	org := object.remove(fx.org, ["critical_compliance_docs"])
	deny_org([fx.model("m1", {"compliance_docs": ["iso_42001"]})], org, fx.input_with({"regulatory_tier": "critical"})).model == {}
	deny_org([fx.model("m1", {"compliance_docs": []})], org, fx.input_with({"regulatory_tier": "critical"})).model.m1.COMPLIANCE_DOCS
}

test_attestation_lifts_compliance_docs if {
	m := fx.model("m1", {"compliance_docs": []})
	deny([m], fx.input_app(attest("m1", "critical"), {"regulatory_tier": "critical"})).model == {}
}

test_compliance_docs_only_at_critical_tier if {
	m := fx.model("m1", {"compliance_docs": []})
	every tier in ["minimal", "standard", "regulated"] {
		deny([m], fx.input_with({"regulatory_tier": tier})).model == {}
	}
}

test_critical_tier_lists_both_codes if {
	m := fx.model("m1", {"compliance_docs": [], "safety_post_training": "minimal"})
	d := fx.decision([m], fx.input_with({"regulatory_tier": "critical"}))
	fx.codes(d, "m1", "self-hosted") == ["COMPLIANCE_DOCS", "SAFETY_POST_TRAINING"]
}

# --- EU_SYSTEMIC_RISK ---------------------------------------------------------------------

systemic := fx.model("m1", {"name": "GLM-5", "systemic_risk": true, "compliance_docs": ["soc2"]})

test_eu_systemic_risk_without_gpai_documentation_is_denied if {
	d := deny([systemic], fx.input_with({"jurisdictions": ["EU", "US"]}))
	d.model == {"m1": {"EU_SYSTEMIC_RISK": "GLM-5 is a general-purpose model with systemic risk and has no eu_ai_act_gpai documentation, and the workload's jurisdictions include EU"}}
}

test_eu_systemic_risk_with_gpai_documentation_passes if {
	m := object.union(systemic, {"compliance_docs": ["eu_ai_act_gpai"]})
	deny([m], fx.input_with({"jurisdictions": ["EU"]})).model == {}
}

test_systemic_risk_outside_eu_passes if {
	every jurisdictions in [["US"], [], ["GB", "CH"]] {
		deny([systemic], fx.input_with({"jurisdictions": jurisdictions})).model == {}
	}
}

test_no_systemic_risk_in_eu_passes if {
	m := object.union(systemic, {"systemic_risk": false})
	deny([m], fx.input_with({"jurisdictions": ["EU"]})).model == {}
}

test_eu_systemic_risk_at_every_tier if {
	every tier in ["minimal", "standard", "regulated", "critical"] {
		deny([systemic], fx.input_with({"jurisdictions": ["EU"], "regulatory_tier": tier})).model.m1.EU_SYSTEMIC_RISK
	}
}

# --- obligation human_review --------------------------------------------------------------

test_critical_tier_adds_human_review if {
	obligations([fx.model("m1", {})], fx.input_with({"regulatory_tier": "critical"})).workload == {"human_review": "human_review"}
	d := fx.decision([fx.model("m1", {"deployments": [fx.self_hosted, fx.cloud]})], fx.input_with({"regulatory_tier": "critical"}))
	every item in d.allowed {
		"human_review" in item.obligations
	}
	count(d.allowed) == 2
}

test_lower_tiers_add_no_human_review if {
	every tier in ["minimal", "standard", "regulated"] {
		obligations([fx.model("m1", {})], fx.input_with({"regulatory_tier": tier})).workload == {}
	}
}
