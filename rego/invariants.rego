# Invariants: what the org promises whatever the catalog, the apps or the rules say.
#
# Not part of a decision. `clearance policy check` (and every reload) evaluates
# data.clearance.invariants.violation over {"input": <policy input>, "decision": <the engine's
# decision>} for every workload of a search over the workload space (policy/review/invariants.py):
# every enum value, boundary numbers, every app and named workload, then Hypothesis. A bundle
# with a violated invariant is refused, with a minimal counterexample request.
#
# To add an invariant: its name and promise in `declared`, one or more `violation` rules
# naming it, and tests in invariants_test.rego (one input that violates it, one that does not).
# The promised sets below are stated here on purpose, not only read from org.yaml: emptying
# org.yaml's restricted sectors must not silently empty the promise too.
package clearance.invariants

import rego.v1

declared := {
	"restricted_origin_in_restricted_sector": "no model of a restricted origin is cleared for a workload in a sector where restricted origins are banned",
	"withheld_never_cleared": "a withheld or deprecated model is never cleared",
	"gated_capability_outside_program": "a model with a dangerous capability behind an access program is never cleared for an app outside that program",
	"dangerous_capability_not_approved": "no route is cleared when the workload's dangerous capability is not approved for the app",
	"restricted_data_without_zero_retention": "restricted data never goes to a route that is not self-hosted and offers no zero data retention",
	"critical_without_human_review": "every cleared route of a critical workload carries the human_review obligation",
	"every_route_decided": "every route of the catalog is either cleared or denied with at least one reason, exactly once",
	"workload_within_profile": "the workload the policy judged is at least as strict as the app's profile (sectors, floors)",
}

restricted_origins := {"CN"} | {c | some c in data.org.restricted_origin_countries}

restricted_sectors := {"public_sector", "defense", "critical_infrastructure"} | {s | some s in data.org.restricted_origin_sectors}

models := {m.id: m | some m in data.models}

deployment(route) := d if {
	some d in models[route.model].deployments
	d.id == route.deployment
}

workload := input.input.workload

allowed := input.decision.allowed

route_name(r) := concat(" ", [r.model, r.deployment])

violation contains v if {
	banned := {s | some s in workload.sectors; s in restricted_sectors}
	count(banned) > 0
	some r in allowed
	origin := models[r.model].origin_country
	origin in restricted_origins
	v := {
		"invariant": "restricted_origin_in_restricted_sector", "route": route_name(r),
		"message": sprintf("%s (origin %s) is cleared in sector %s", [r.model, origin, concat(", ", sort(banned))]),
	}
}

violation contains v if {
	some r in allowed
	status := models[r.model].status
	status in {"withheld", "deprecated"}
	v := {"invariant": "withheld_never_cleared", "route": route_name(r), "message": sprintf("%s is %s and cleared", [r.model, status])}
}

violation contains v if {
	programs := {p | some p in input.input.app.programs}
	some r in allowed
	some c in models[r.model].dangerous_capabilities
	is_string(c.access_program)
	not c.access_program in programs
	v := {
		"invariant": "gated_capability_outside_program", "route": route_name(r),
		"message": sprintf("%s needs program %s for %s; app %s is not enrolled", [r.model, c.access_program, c.class, input.input.app.id]),
	}
}

violation contains v if {
	wanted := workload.dangerous_capability
	wanted != "none"
	not wanted in {a | some a in input.input.app.capability_approvals}
	some r in allowed
	v := {
		"invariant": "dangerous_capability_not_approved", "route": route_name(r),
		"message": sprintf("cleared for dangerous capability %s, which app %s holds no approval for", [wanted, input.input.app.id]),
	}
}

violation contains v if {
	workload.data_classification == "restricted"
	some r in allowed
	d := deployment(r)
	d.mode != "self_hosted"
	not d.zero_data_retention == true
	v := {
		"invariant": "restricted_data_without_zero_retention", "route": route_name(r),
		"message": sprintf("restricted data cleared to %s (%s) without zero data retention", [route_name(r), d.mode]),
	}
}

violation contains v if {
	workload.regulatory_tier == "critical"
	some r in allowed
	not data.clearance.codes.HUMAN_REVIEW in r.obligations
	v := {"invariant": "critical_without_human_review", "route": route_name(r), "message": sprintf("critical workload, %s cleared without human_review", [route_name(r)])}
}

decided := array.concat(
	[route_name(r) | some r in allowed],
	[route_name(r) | some r in input.decision.denied],
)

catalog_routes := {concat(" ", [m.id, d.id]) | some m in data.models; some d in m.deployments}

# Each route exactly once: as many items as routes, and every route among them.
default each_route_once := false

each_route_once if {
	count(decided) == count(catalog_routes)
	{x | some x in decided} == catalog_routes
}

violation contains v if {
	not each_route_once
	some name in catalog_routes
	n := count([x | some x in decided; x == name])
	n != 1
	v := {"invariant": "every_route_decided", "route": name, "message": sprintf("route %s appears %d times in the decision", [name, n])}
}

violation contains v if {
	some r in input.decision.denied
	count(r.reasons) == 0
	v := {"invariant": "every_route_decided", "route": route_name(r), "message": sprintf("%s is denied without a reason", [route_name(r)])}
}

violation contains v if {
	some name in decided
	not name in catalog_routes
	v := {"invariant": "every_route_decided", "route": name, "message": sprintf("%s is not a route of the catalog", [name])}
}

classification_rank := {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}

tier_rank := {"minimal": 0, "standard": 1, "regulated": 2, "critical": 3}

violation contains v if {
	app := input.input.app
	problems := array.concat(
		array.concat(
			[sprintf("sector %s is outside the profile", [s]) | some s in workload.sectors; not s in app.sectors],
			[sprintf("data_classification %s is below the floor %s", [workload.data_classification, app.data_classification_floor]) |
				some _ in [1]
				classification_rank[workload.data_classification] < classification_rank[app.data_classification_floor]
			],
		),
		array.concat(
			[sprintf("regulatory_tier %s is below the floor %s", [workload.regulatory_tier, app.regulatory_tier_floor]) |
				some _ in [1]
				tier_rank[workload.regulatory_tier] < tier_rank[app.regulatory_tier_floor]
			],
			[x | some x in ["no sector was judged"]; count(workload.sectors) == 0],
		),
	)
	count(problems) > 0
	v := {"invariant": "workload_within_profile", "route": null, "message": concat("; ", problems)}
}
