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

# Catalog only, precomputed (catalog.rego): the models without full safety post-training, as
# [id, name, post-training]; those with none of the org's accepted compliance documents, as
# [id, name, their documents as text]; the EU_SYSTEMIC_RISK table.
partial_safety := [[m.id, m.name, m.safety_post_training] |
	some m in data.models
	m.safety_post_training != "full"
]

undocumented := [[m.id, m.name, data.clearance.routes.list_text(m.compliance_docs)] |
	accepted := data.clearance.routes.critical_compliance_docs
	some m in data.models
	count([doc | some doc in m.compliance_docs; doc in accepted]) == 0
]

# EU_SYSTEMIC_RISK (for a workload whose jurisdictions include EU): systemic-risk model, no
# eu_ai_act_gpai documentation.
systemic[m.id] := reason if {
	some m in data.models
	m.systemic_risk == true
	not "eu_ai_act_gpai" in m.compliance_docs
	reason := {data.clearance.codes.EU_SYSTEMIC_RISK: sprintf(
		"%s is a general-purpose model with systemic risk and has no eu_ai_act_gpai documentation, and the workload's jurisdictions include EU",
		[m.name],
	)}
}

catalog := {
	"partial_safety": partial_safety,
	"undocumented": undocumented,
	"accepted_docs_text": data.clearance.routes.list_text(data.clearance.routes.critical_compliance_docs),
	"systemic": systemic,
}

# SAFETY_POST_TRAINING: tier regulated/critical, post-training not full, no attestation.
safety[entry[0]] := reason if {
	tier := input.workload.regulatory_tier
	tier in {"regulated", "critical"}
	attested := attested_models
	some entry in data.clearance.catalog.tables.regulatory.partial_safety
	not entry[0] in attested
	reason := {data.clearance.codes.SAFETY_POST_TRAINING: sprintf(
		"regulatory tier %s needs full safety post-training: %s has %s, and app %s holds no attestation for it at tier %s",
		[tier, entry[1], entry[2], data.clearance.routes.app_id, tier],
	)}
}

# COMPLIANCE_DOCS: tier critical, none of the org's accepted documents, no attestation.
compliance[entry[0]] := reason if {
	input.workload.regulatory_tier == "critical"
	tables := data.clearance.catalog.tables.regulatory
	accepted_text := tables.accepted_docs_text
	attested := attested_models
	some entry in tables.undocumented
	not entry[0] in attested
	reason := {data.clearance.codes.COMPLIANCE_DOCS: sprintf(
		"regulatory tier critical needs vendor compliance documentation (one of %s): %s has %s, and app %s holds no attestation for it at tier critical",
		[accepted_text, entry[1], entry[2], data.clearance.routes.app_id],
	)}
}

default eu_systemic_risk := {}

eu_systemic_risk := data.clearance.catalog.tables.regulatory.systemic if "EU" in input.workload.jurisdictions

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
