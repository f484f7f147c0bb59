# Provenance: where the model comes from, and who operates the endpoint.
package clearance.provenance

import rego.v1

# Models of a restricted origin country (org.yaml), as [id, name, origin]. Catalog only:
# precomputed (catalog.rego), like the table after it.
restricted_origin := [[m.id, m.name, m.origin_country] |
	countries := data.clearance.routes.restricted_origin_countries
	some m in data.models
	m.origin_country in countries
]

# FOREIGN_HOSTED_API, by the workload's data classification (every class above public): a
# restricted-origin model through a vendor API operated from a restricted country.
foreign_hosted[classification] := {m.id: hits |
	countries := data.clearance.routes.restricted_origin_countries
	some m in data.models
	m.origin_country in countries
	hits := {d.id: {data.clearance.codes.FOREIGN_HOSTED_API: sprintf(
		"%s (origin %s) through vendor API %s operated from %s is not cleared for %s data",
		[m.name, m.origin_country, d.id, d.operator_country, classification],
	)} |
		some d in m.deployments
		d.mode == "vendor_api"
		d.operator_country in countries
	}
	count(hits) > 0
} if {
	some classification in ["internal", "confidential", "restricted"]
}

catalog := {"restricted_origin": restricted_origin, "foreign_hosted": foreign_hosted}

# PROVENANCE_RESTRICTED: the model's origin is restricted and one of the workload's sectors is
# one where restricted origins are banned (any one: a workload judged for several sectors gets
# the strictest reading, see policy/profile.py).
restricted[entry[0]] := reason if {
	banned := [s | some s in input.workload.sectors; s in data.clearance.routes.restricted_origin_sectors]
	count(banned) > 0
	sector := concat(", ", banned)
	some entry in data.clearance.catalog.tables.provenance.restricted_origin
	reason := {data.clearance.codes.PROVENANCE_RESTRICTED: sprintf(
		"%s originates from %s, an origin the org restricts in sector %s",
		[entry[1], entry[2], sector],
	)}
}

default foreign_hosted_api := {}

foreign_hosted_api := table if {
	table := data.clearance.catalog.tables.provenance.foreign_hosted[input.workload.data_classification]
}

deny := {"workload": {}, "model": restricted, "route": foreign_hosted_api}

obligations := {"workload": {}, "model": {}, "route": {}}
