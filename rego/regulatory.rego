# Regulatory tier: safety post-training, compliance documentation, EU systemic risk,
# human review.
package clearance.regulatory

import rego.v1

# Models the app's own safety evaluation covers at the workload's tier (exact tier match).
attested_models contains a.model if {
	tier := input.workload.regulatory_tier
	some a in data.clearance.routes.app_attestations
	a.regulatory_tier == tier
}

# SAFETY_POST_TRAINING: tier regulated/critical, post-training not full, no attestation.
safety[m.id] := reason if {
	tier := input.workload.regulatory_tier
	tier in {"regulated", "critical"}
	attested := attested_models
	some m in data.models
	m.safety_post_training != "full"
	not m.id in attested
	reason := {data.clearance.codes.SAFETY_POST_TRAINING: sprintf(
		"regulatory tier %s needs full safety post-training: %s has %s, and app %s holds no attestation for it at tier %s",
		[tier, m.name, m.safety_post_training, data.clearance.routes.app_id, tier],
	)}
}

# COMPLIANCE_DOCS: tier critical, none of the org's accepted documents, no attestation.
compliance[m.id] := reason if {
	input.workload.regulatory_tier == "critical"
	accepted := data.clearance.routes.critical_compliance_docs
	accepted_text := data.clearance.routes.list_text(accepted)
	attested := attested_models
	some m in data.models
	count([doc | some doc in m.compliance_docs; doc in accepted]) == 0
	not m.id in attested
	reason := {data.clearance.codes.COMPLIANCE_DOCS: sprintf(
		"regulatory tier critical needs vendor compliance documentation (one of %s): %s has %s, and app %s holds no attestation for it at tier critical",
		[accepted_text, m.name, data.clearance.routes.list_text(m.compliance_docs), data.clearance.routes.app_id],
	)}
}

# EU_SYSTEMIC_RISK: EU jurisdiction, systemic-risk model, no eu_ai_act_gpai documentation.
eu_systemic_risk[m.id] := reason if {
	"EU" in input.workload.jurisdictions
	some m in data.models
	m.systemic_risk == true
	not "eu_ai_act_gpai" in m.compliance_docs
	reason := {data.clearance.codes.EU_SYSTEMIC_RISK: sprintf(
		"%s is a general-purpose model with systemic risk and has no eu_ai_act_gpai documentation, and the workload's jurisdictions include EU",
		[m.name],
	)}
}

# Obligation human_review: tier critical.
default human_review := {}

human_review := {name: name} if {
	input.workload.regulatory_tier == "critical"
	name := data.clearance.codes.HUMAN_REVIEW
}

deny := {
	"workload": {},
	"model": object.union_n([safety, compliance, eu_systemic_risk]),
	"route": {},
}

obligations := {"workload": human_review, "model": {}, "route": {}}
