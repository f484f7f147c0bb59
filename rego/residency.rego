# Data residency: where restricted data may go, and zero data retention.
package clearance.residency

import rego.v1

in_allowed_region(d, allowed) if {
	some region in d.regions
	region in allowed
}

lacks_zero_data_retention(d) if {
	d.mode in {"vendor_api", "cloud"}
	d.zero_data_retention != true
}

# Why a route that is not self-hosted may not take restricted data; undefined when it may.
residency_problem(d, allowed) := sprintf(
	"none of its regions (%s) is allowed for restricted data (allowed: %s), and it offers no zero data retention",
	[data.clearance.routes.list_text(d.regions), data.clearance.routes.list_text(allowed)],
) if {
	not in_allowed_region(d, allowed)
	lacks_zero_data_retention(d)
} else := sprintf(
	"none of its regions (%s) is allowed for restricted data (allowed: %s)",
	[data.clearance.routes.list_text(d.regions), data.clearance.routes.list_text(allowed)],
) if {
	not in_allowed_region(d, allowed)
} else := "it offers no zero data retention" if {
	lacks_zero_data_retention(d)
}

# DATA_RESIDENCY: restricted data, the route is not self-hosted, and none of its regions
# is allowed or (vendor API / cloud) it offers no zero data retention. Both problems are
# named when both hold.
residency[m.id] := hits if {
	input.workload.data_classification == "restricted"
	allowed := data.clearance.routes.restricted_data_regions
	some m in data.models
	hits := {d.id: {data.clearance.codes.DATA_RESIDENCY: msg} |
		some d in m.deployments
		d.mode != "self_hosted"
		problem := residency_problem(d, allowed)
		is_string(problem) # (RVM: see routes.rego)
		msg := sprintf("restricted data: deployment %s is not self-hosted, and %s", [d.id, problem])
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
