# Dangerous capabilities: access programs, their permitted tasks, the app's approvals.
package clearance.capability

import rego.v1

# model id -> [model, [its dangerous capabilities that sit behind an access program], the
# CAPABILITY_GATED message up to the app's id, [[program, "class (program …)"] of each of
# those capabilities]], for the models that have any. Catalog only: precomputed (catalog.rego),
# so that a decision formats no text but the app's id.
gated_models[m.id] := [m, gated, head, labels] if {
	some m in data.models
	m.dangerous_capabilities != []
	gated := [c | some c in m.dangerous_capabilities; is_string(c.access_program)]
	count(gated) > 0
	head := sprintf("%s has dangerous capabilities behind access programs app ", [m.name])
	labels := [[c.access_program, sprintf("%s (program %s)", [c.class, c.access_program])] | some c in gated]
}

catalog := {"gated_models": gated_models}

# CAPABILITY_GATED: a dangerous capability with an access program the app is not enrolled
# in (input.app.programs). All such capabilities of a model go into one message, in order
# (a set: sorted, no repeats).
gated[mid] := reason if {
	programs := data.clearance.routes.app_programs
	app := data.clearance.routes.app_id
	some mid, entry in data.clearance.catalog.tables.capability.gated_models
	missing := {label[1] |
		some label in entry[3]
		not label[0] in programs
	}
	count(missing) > 0
	reason := {data.clearance.codes.CAPABILITY_GATED: concat("", [entry[2], app, " is not enrolled in: ", concat(", ", missing)])}
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
