# Availability: a model its vendor withheld or deprecated is cleared for nothing.
package clearance.availability

import rego.v1

# MODEL_WITHHELD: model status is withheld or deprecated. Catalog only: precomputed
# (catalog.rego).
withheld[m.id] := reason if {
	some m in data.models
	m.status in {"withheld", "deprecated"}
	reason := {data.clearance.codes.MODEL_WITHHELD: sprintf("%s (%s) is %s by its vendor", [m.name, m.id, m.status])}
}

catalog := {"withheld": withheld}

deny := {"workload": {}, "model": data.clearance.catalog.tables.availability.withheld, "route": {}}

obligations := {"workload": {}, "model": {}, "route": {}}
