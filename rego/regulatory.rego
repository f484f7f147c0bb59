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

# Catalog only, precomputed (catalog.rego): the models without full safety post-training, and
# those with none of the org's accepted compliance documents, each with its message up to the
# app's id and the text after it (the id is the only part a decision supplies: a decision
# joins three strings instead of formatting five); the EU_SYSTEMIC_RISK table.
safety_tiers := ["regulated", "critical"]

# tier -> [[model id, message before the app's id, message after it]].
partial_safety[tier] := [[m.id, head, tail] |
	some m in data.models
	m.safety_post_training != "full"
	head := sprintf("regulatory tier %s needs full safety post-training: %s has %s, and app ", [tier, m.name, m.safety_post_training])
] if {
	some tier in safety_tiers
	tail := sprintf(" holds no attestation for it at tier %s", [tier])
}

# [[model id, message before the app's id]] (tier critical).
undocumented := [[m.id, head] |
	accepted := data.clearance.routes.critical_compliance_docs
	accepted_text := data.clearance.routes.list_text(accepted)
	some m in data.models
	count([doc | some doc in m.compliance_docs; doc in accepted]) == 0
	head := sprintf(
		"regulatory tier critical needs vendor compliance documentation (one of %s): %s has %s, and app ",
		[accepted_text, m.name, data.clearance.routes.list_text(m.compliance_docs)],
	)
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
	"systemic": systemic,
}

# SAFETY_POST_TRAINING: tier regulated/critical, post-training not full, no attestation.
safety[entry[0]] := reason if {
	tier := input.workload.regulatory_tier
	attested := attested_models
	app := data.clearance.routes.app_id
	some entry in object.get(data.clearance.catalog.tables.regulatory.partial_safety, tier, [])
	not entry[0] in attested
	reason := {data.clearance.codes.SAFETY_POST_TRAINING: concat("", [entry[1], app, entry[2]])}
}

# COMPLIANCE_DOCS: tier critical, none of the org's accepted documents, no attestation.
compliance[entry[0]] := reason if {
	input.workload.regulatory_tier == "critical"
	attested := attested_models
	app := data.clearance.routes.app_id
	some entry in data.clearance.catalog.tables.regulatory.undocumented
	not entry[0] in attested
	reason := {data.clearance.codes.COMPLIANCE_DOCS: concat("", [entry[1], app, " holds no attestation for it at tier critical"])}
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
