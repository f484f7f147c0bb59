# The code constants of codes.rego and the table of data.reasons (reasons.yaml) agree.
package clearance.codes_test

import rego.v1

import data.clearance.codes

test_every_code_constant_is_in_reasons_yaml if {
	every code in codes.all {
		data.reasons.codes[code]
	}
}

test_every_code_in_reasons_yaml_has_a_constant if {
	every code, _ in data.reasons.codes {
		code in codes.all
	}
}

test_categories_match if {
	every code in codes.governance {
		data.reasons.codes[code].category == "governance"
	}
	every code in codes.fitness {
		data.reasons.codes[code].category == "fitness"
	}
}

test_governance_and_fitness_are_disjoint if {
	count(codes.governance & codes.fitness) == 0
	count(codes.all) == 20
}

test_every_obligation_constant_is_in_reasons_yaml if {
	every name in codes.obligations {
		data.reasons.obligations[name]
	}
	every name, _ in data.reasons.obligations {
		name in codes.obligations
	}
}

test_constants_are_their_own_names if {
	codes.MODEL_WITHHELD == "MODEL_WITHHELD"
	codes.UNSUITABLE_CAPABILITY == "UNSUITABLE_CAPABILITY"
	codes.LICENCE_MAU_NEAR_CAP == "licence_mau_near_cap"
	codes.ATTRIBUTION == "attribution"
}
