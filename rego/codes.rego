# Reason codes and obligation names: the one place their strings are spelled in Rego.
#
# Every concern module refers to these constants (codes.MODEL_WITHHELD, ...) instead of
# repeating literals. `codes_test.rego` checks that this list and `data.reasons`
# (rego/data/reasons.yaml) agree, code for code and category for category.
package clearance.codes

import rego.v1

# --- governance denials -------------------------------------------------------------
MODEL_WITHHELD := "MODEL_WITHHELD"

CAPABILITY_GATED := "CAPABILITY_GATED"

CAPABILITY_PURPOSE := "CAPABILITY_PURPOSE"

DANGEROUS_CAPABILITY_NOT_APPROVED := "DANGEROUS_CAPABILITY_NOT_APPROVED"

PROVENANCE_RESTRICTED := "PROVENANCE_RESTRICTED"

FOREIGN_HOSTED_API := "FOREIGN_HOSTED_API"

SAFETY_POST_TRAINING := "SAFETY_POST_TRAINING"

COMPLIANCE_DOCS := "COMPLIANCE_DOCS"

EU_SYSTEMIC_RISK := "EU_SYSTEMIC_RISK"

LICENCE_MAU_CAP := "LICENCE_MAU_CAP"

LICENCE_TERRITORY := "LICENCE_TERRITORY"

LICENCE_NONCOMMERCIAL := "LICENCE_NONCOMMERCIAL"

LICENCE_OUTPUT_TRAINING := "LICENCE_OUTPUT_TRAINING"

LICENCE_PROHIBITED_USE := "LICENCE_PROHIBITED_USE"

DATA_RESIDENCY := "DATA_RESIDENCY"

# --- fitness filters (kept apart from governance) -------------------------------------
UNSUITABLE_QUALITY := "UNSUITABLE_QUALITY"

UNSUITABLE_CONTEXT := "UNSUITABLE_CONTEXT"

UNSUITABLE_PRICE := "UNSUITABLE_PRICE"

UNSUITABLE_DEPLOYMENT := "UNSUITABLE_DEPLOYMENT"

UNSUITABLE_CAPABILITY := "UNSUITABLE_CAPABILITY"

# --- obligations attached to cleared routes -----------------------------------------
# `attribution` is emitted as "attribution:<text>" (the licence's attribution text).
ATTRIBUTION := "attribution"

LICENCE_MAU_NEAR_CAP := "licence_mau_near_cap"

# Emitted as "name_prefix:<text>" (task model_training) and "acceptable_use_policy:<url>".
NAME_PREFIX := "name_prefix"

ACCEPTABLE_USE_POLICY := "acceptable_use_policy"

ZERO_DATA_RETENTION := "zero_data_retention"

SELF_HOST_ONLY := "self_host_only"

HUMAN_REVIEW := "human_review"

governance := {
	MODEL_WITHHELD,
	CAPABILITY_GATED,
	CAPABILITY_PURPOSE,
	DANGEROUS_CAPABILITY_NOT_APPROVED,
	PROVENANCE_RESTRICTED,
	FOREIGN_HOSTED_API,
	SAFETY_POST_TRAINING,
	COMPLIANCE_DOCS,
	EU_SYSTEMIC_RISK,
	LICENCE_MAU_CAP,
	LICENCE_TERRITORY,
	LICENCE_NONCOMMERCIAL,
	LICENCE_OUTPUT_TRAINING,
	LICENCE_PROHIBITED_USE,
	DATA_RESIDENCY,
}

fitness := {
	UNSUITABLE_QUALITY,
	UNSUITABLE_CONTEXT,
	UNSUITABLE_PRICE,
	UNSUITABLE_DEPLOYMENT,
	UNSUITABLE_CAPABILITY,
}

all := governance | fitness

obligations := {
	ATTRIBUTION,
	LICENCE_MAU_NEAR_CAP,
	NAME_PREFIX,
	ACCEPTABLE_USE_POLICY,
	ZERO_DATA_RETENTION,
	SELF_HOST_ONLY,
	HUMAN_REVIEW,
}
