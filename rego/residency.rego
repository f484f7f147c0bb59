# Data residency: where restricted data may go, and zero data retention.
package clearance.residency

import rego.v1

# Why a route that is not self-hosted may not take restricted data, given whether one of
# its regions is allowed and whether it offers zero data retention (a vendor API or a cloud:
# the modes that are not self-hosted).
problem(d, false, true, allowed_text) := sprintf(
	"none of its regions (%s) is allowed for restricted data (allowed: %s)",
	[data.clearance.routes.list_text(d.regions), allowed_text],
)

problem(d, false, false, allowed_text) := sprintf(
	"none of its regions (%s) is allowed for restricted data (allowed: %s), and it offers no zero data retention",
	[data.clearance.routes.list_text(d.regions), allowed_text],
)

problem(_, true, false, _) := "it offers no zero data retention"

# The tables below depend on the catalog and org.yaml alone, and apply by the workload's data
# classification: precomputed (catalog.rego).

# DATA_RESIDENCY, for restricted data: the route is not self-hosted, and none of its regions
# is allowed or (vendor API / cloud) it offers no zero data retention. Both problems are
# named when both hold.
residency[m.id] := hits if {
	allowed := data.clearance.routes.restricted_data_regions
	allowed_text := data.clearance.routes.list_text(allowed)
	some m in data.models
	hits := {d.id: {data.clearance.codes.DATA_RESIDENCY: msg} |
		some d in m.deployments
		d.mode != "self_hosted"
		in_region := count([r | some r in d.regions; r in allowed]) > 0
		retention := d.zero_data_retention == true
		[in_region, retention] != [true, true]
		msg := sprintf("restricted data: deployment %s is not self-hosted, and %s", [d.id, problem(d, in_region, retention, allowed_text)])
	}
	count(hits) > 0
}

# Obligation zero_data_retention, for confidential/restricted data: a route that is not
# self-hosted and offers zero data retention must use that mode.
zero_data_retention[m.id] := hits if {
	name := data.clearance.codes.ZERO_DATA_RETENTION
	some m in data.models
	hits := {d.id: {name: name} |
		some d in m.deployments
		d.mode != "self_hosted"
		d.zero_data_retention == true
	}
	count(hits) > 0
}

# Obligation self_host_only, for restricted data: a self-hosted route.
self_host_only[m.id] := hits if {
	name := data.clearance.codes.SELF_HOST_ONLY
	some m in data.models
	hits := {d.id: {name: name} |
		some d in m.deployments
		d.mode == "self_hosted"
	}
	count(hits) > 0
}

catalog := {
	"restricted_denials": residency,
	"confidential_obligations": zero_data_retention,
	"restricted_obligations": object.union_n([zero_data_retention, self_host_only]),
}

default deny := {"workload": {}, "model": {}, "route": {}}

deny := {"workload": {}, "model": {}, "route": data.clearance.catalog.tables.residency.restricted_denials} if {
	input.workload.data_classification == "restricted"
}

default obligations := {"workload": {}, "model": {}, "route": {}}

obligations := {"workload": {}, "model": {}, "route": data.clearance.catalog.tables.residency.confidential_obligations} if {
	input.workload.data_classification == "confidential"
}

obligations := {"workload": {}, "model": {}, "route": data.clearance.catalog.tables.residency.restricted_obligations} if {
	input.workload.data_classification == "restricted"
}
