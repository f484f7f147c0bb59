# Dangerous capabilities: access programs, their permitted tasks, the app's approvals.
package clearance.capability

import rego.v1

# model id -> [model, [its dangerous capabilities that sit behind an access program]],
# for the models that have any. Catalog only: precomputed (catalog.rego).
gated_models[m.id] := [m, gated] if {
	some m in data.models
	m.dangerous_capabilities != []
	gated := [c | some c in m.dangerous_capabilities; is_string(c.access_program)]
	count(gated) > 0
}

catalog := {"gated_models": gated_models}

# CAPABILITY_GATED: a dangerous capability with an access program the app is not enrolled
# in (input.app.programs). All such capabilities of a model go into one message.
gated[mid] := reason if {
	programs := data.clearance.routes.app_programs
	some mid, entry in data.clearance.catalog.tables.capability.gated_models
	missing := {sprintf("%s (program %s)", [c.class, c.access_program]) |
		some c in entry[1]
		not c.access_program in programs
	}
	count(missing) > 0
	reason := {data.clearance.codes.CAPABILITY_GATED: sprintf(
		"%s has dangerous capabilities behind access programs app %s is not enrolled in: %s",
		[entry[0].name, data.clearance.routes.app_id, data.clearance.routes.list_text(missing)],
	)}
}

# CAPABILITY_PURPOSE: the app is enrolled in the program, but the workload's task is not
# among the program's permitted tasks.
purpose[mid] := reason if {
	programs := data.clearance.routes.app_programs
	count(programs) > 0
	task := input.workload.task
	some mid, entry in data.clearance.catalog.tables.capability.gated_models
	off := {sprintf("%s (program %s permits %s)", [c.class, c.access_program, data.clearance.routes.list_text(permitted)]) |
		some c in entry[1]
		c.access_program in programs
		permitted := object.get(c, "permitted_tasks", [])
		not task in permitted
	}
	count(off) > 0
	reason := {data.clearance.codes.CAPABILITY_PURPOSE: sprintf(
		"app %s is enrolled, but task %s is not permitted for %s: %s",
		[data.clearance.routes.app_id, task, entry[0].name, data.clearance.routes.list_text(off)],
	)}
}

# DANGEROUS_CAPABILITY_NOT_APPROVED: the workload asks for a dangerous-capability class the
# app holds no approval for. Denies every route.
default not_approved := {}

not_approved := reason if {
	wanted := input.workload.dangerous_capability
	wanted != "none"
	not wanted in data.clearance.routes.app_capability_approvals
	reason := {data.clearance.codes.DANGEROUS_CAPABILITY_NOT_APPROVED: sprintf(
		"the workload asks for dangerous capability %s, for which app %s holds no approval",
		[wanted, data.clearance.routes.app_id],
	)}
}

deny := {
	"workload": not_approved,
	"model": object.union_n([gated, purpose]),
	"route": {},
}

obligations := {"workload": {}, "model": {}, "route": {}}
