# Small inline fixtures shared by the *_test.rego files: one model, one app, one workload,
# one org, and helpers that evaluate a module or the decision with them. Tests never read
# the real catalog (data/models.yaml, apps.yaml, org.yaml).
package clearance.fixtures_test

import rego.v1

org := {
	"restricted_origin_countries": ["CN"],
	"restricted_origin_sectors": ["public_sector", "defense", "critical_infrastructure"],
	"restricted_data_regions": ["eu-west-1", "eu-central-1"],
	"mau_warning_ratio": 0.9,
	"critical_compliance_docs": ["soc2", "iso_42001", "eu_ai_act_gpai"],
	"licensee_mau": {},
	"licensee_mau_without_affiliates": {},
}

self_hosted := {
	"id": "self-hosted", "mode": "self_hosted", "provider": "org", "operator_country": null,
	"regions": ["eu-west-1"], "zero_data_retention": false,
	"price_in_per_mtok": 0.1, "price_out_per_mtok": 0.2,
}

vendor_api := {
	"id": "vendor-api", "mode": "vendor_api", "provider": "Vendor", "operator_country": "US",
	"regions": ["us-east-1"], "zero_data_retention": true,
	"price_in_per_mtok": 1, "price_out_per_mtok": 4,
}

cloud := {
	"id": "cloud", "mode": "cloud", "provider": "Cloud", "operator_country": "US",
	"regions": ["eu-central-1", "us-east-1"], "zero_data_retention": true,
	"price_in_per_mtok": 2, "price_out_per_mtok": 8,
}

# A deployment: one of the above with fields replaced.
deployment(base, patch) := object.union(base, patch)

# A model that passes every rule for `workload` below, with fields replaced (object.union
# merges nested objects such as licence; lists such as deployments are replaced).
model(id, patch) := object.union(
	{
		"id": id,
		"name": concat(" ", ["Model", id]),
		"vendor": "Vendor",
		"origin_country": "US",
		"provenance": "open_western",
		"status": "available",
		"released_on": null,
		"licence": {
			"name": "Test Licence",
			"url": null,
			"spdx": null,
			"commercial_use": true,
			"mau_cap": null,
			"excluded_territories": [],
			"restricts_output_training": false,
			"prohibited_uses": [],
			"attribution": null,
			"name_prefix": null,
			"acceptable_use_policy": null,
			"clauses": {},
		},
		"safety_post_training": "full",
		"compliance_docs": ["soc2", "eu_ai_act_gpai"],
		"systemic_risk": false,
		"dangerous_capabilities": [],
		"capabilities": ["summarization", "qa", "reasoning", "model_training", "security_research"],
		"quality_tier": "frontier",
		"strength": 50,
		"scores": {},
		"context_tokens": 128000,
		"deployments": [self_hosted],
		"sources": {},
	},
	patch,
)

app := {
	"id": "test-app", "owner": "tests", "description": null,
	"programs": [], "capability_approvals": [], "attestations": [],
	"sectors": ["general"], "jurisdictions": ["US"], "tasks": null,
	"data_classification_floor": "public", "regulatory_tier_floor": "minimal",
}

workload := {
	"task": "summarization",
	"quality_tier": "commodity",
	"regulatory_tier": "standard",
	"sectors": ["general"],
	"jurisdictions": ["US"],
	"data_classification": "internal",
	"dangerous_capability": "none",
	"commercial": true,
	"monthly_active_users": 1000,
	"min_context_tokens": 0,
	"max_price_per_mtok": null,
	"deployment_modes": ["self_hosted", "vendor_api", "cloud"],
}

# The policy input with workload fields replaced.
input_with(workload_patch) := {
	"app": app,
	"workload": object.union(workload, workload_patch),
	"caller": {"key_id": "test-key", "role": "app"},
}

# The policy input with app and workload fields replaced.
input_app(app_patch, workload_patch) := object.union(input_with(workload_patch), {"app": app_patch})

# data.clearance.decision for these models and this input (org above, or patched).
decision(models, inp) := d if {
	d := data.clearance.decision with data.models as models with data.org as org with input as inp
}

decision_org(models, org_patch, inp) := d if {
	d := data.clearance.decision with data.models as models with data.org as object.union(org, org_patch) with input as inp
}

# The reason codes of one denied route, in the order given; [] when the route is cleared.
codes(d, model_id, deployment_id) := [r.code |
	some item in d.denied
	item.model == model_id
	item.deployment == deployment_id
	some r in item.reasons
]

# The message of one code on one denied route (undefined when absent).
message(d, model_id, deployment_id, code) := r.message if {
	some item in d.denied
	item.model == model_id
	item.deployment == deployment_id
	some r in item.reasons
	r.code == code
}

# The allowed entry of one route (undefined when the route is not cleared).
cleared(d, model_id, deployment_id) := item if {
	some item in d.allowed
	item.model == model_id
	item.deployment == deployment_id
}

# Route pairs of the decision.
allowed_routes(d) := [[a.model, a.deployment] | some a in d.allowed]

denied_routes(d) := [[x.model, x.deployment] | some x in d.denied]
