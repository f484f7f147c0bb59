# Provenance: where the model comes from, and who operates the endpoint.
package clearance.provenance

import rego.v1

# PROVENANCE_RESTRICTED: the model's origin is restricted and one of the workload's sectors is
# one where restricted origins are banned (any one: a workload judged for several sectors gets
# the strictest reading, see policy/profile.py).
restricted[m.id] := reason if {
	banned := [s | some s in input.workload.sectors; s in data.clearance.routes.restricted_origin_sectors]
	count(banned) > 0
	sector := concat(", ", banned)
	countries := data.clearance.routes.restricted_origin_countries
	some m in data.models
	m.origin_country in countries
	reason := {data.clearance.codes.PROVENANCE_RESTRICTED: sprintf(
		"%s originates from %s, an origin the org restricts in sector %s",
		[m.name, m.origin_country, sector],
	)}
}

# FOREIGN_HOSTED_API: restricted-origin model, through a vendor API operated from a
# restricted country, for data above public.
foreign_hosted_api[m.id] := hits if {
	classification := input.workload.data_classification
	classification != "public"
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
}

deny := {"workload": {}, "model": restricted, "route": foreign_hosted_api}

obligations := {"workload": {}, "model": {}, "route": {}}
