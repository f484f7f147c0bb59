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

# DATA_RESIDENCY: restricted data, the route is not self-hosted, and none of its regions
# is allowed or (vendor API / cloud) it offers no zero data retention. Both problems are
# named when both hold.
residency[m.id] := hits if {
	input.workload.data_classification == "restricted"
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

# Obligation zero_data_retention: confidential/restricted data on a route that is not
# self-hosted and offers zero data retention: the call must use that mode.
zero_data_retention[m.id] := hits if {
	input.workload.data_classification in {"confidential", "restricted"}
	name := data.clearance.codes.ZERO_DATA_RETENTION
	some m in data.models
	hits := {d.id: {name: name} |
		some d in m.deployments
		d.mode != "self_hosted"
		d.zero_data_retention == true
	}
	count(hits) > 0
}

# Obligation self_host_only: restricted data on a self-hosted route.
self_host_only[m.id] := hits if {
	input.workload.data_classification == "restricted"
	name := data.clearance.codes.SELF_HOST_ONLY
	some m in data.models
	hits := {d.id: {name: name} |
		some d in m.deployments
		d.mode == "self_hosted"
	}
	count(hits) > 0
}

deny := {"workload": {}, "model": {}, "route": residency}

obligations := {
	"workload": {},
	"model": {},
	"route": object.union_n([zero_data_retention, self_host_only]),
}
