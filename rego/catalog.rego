# What the rules derive from the catalog alone (data.models, data.org), without the input.
#
# Each concern module states its catalog-only rules beside the rules that use them; `derived`
# collects them. policy/engine.py evaluates `derived` once per bundle (once per part of a
# catalog judged in parts) and passes the result to every evaluation as data.derived, so a
# decision reads these tables instead of computing them again: the RVM keeps nothing between
# evaluations. Without data.derived (rego tests, which substitute data.models and data.org;
# tools that evaluate the pack on the bundle's data alone) `tables` computes them here, so
# both ways give the same decision (tests/policy/test_engine.py compares them).
package clearance.catalog

import rego.v1

derived := {
	"availability": data.clearance.availability.catalog,
	"capability": data.clearance.capability.catalog,
	"fitness": data.clearance.fitness.catalog,
	"licence": data.clearance.licence.catalog,
	"provenance": data.clearance.provenance.catalog,
	"ranking": data.clearance.ranking.catalog,
	"regulatory": data.clearance.regulatory.catalog,
	"residency": data.clearance.residency.catalog,
}

tables := data.derived if is_object(data.derived)

else := derived
