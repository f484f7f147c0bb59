# Fitness filters: is the route adequate for the workload at all? Kept apart from the
# governance denials (category "fitness" in data.reasons).
package clearance.fitness

import rego.v1

tier_order := {"commodity": 1, "advanced": 2, "frontier": 3}

# UNSUITABLE_QUALITY, by the tier the workload asks for: model quality tier below it
# (commodity < advanced < frontier). Catalog only: precomputed (catalog.rego).
below_tier[wanted_tier] := {m.id: reason |
	some m in data.models
	tier_order[m.quality_tier] < wanted
	reason := {data.clearance.codes.UNSUITABLE_QUALITY: sprintf(
		"%s is %s tier, below the %s tier the workload asks for",
		[m.name, m.quality_tier, wanted_tier],
	)}
} if {
	some wanted_tier, wanted in tier_order
	wanted > 1
}

catalog := {"below_tier": below_tier, "unfit": unfit, "prices": prices, "by_mode": by_mode}

default quality := {}

quality := table if {
	table := data.clearance.catalog.tables.fitness.below_tier[input.workload.quality_tier]
}

# UNSUITABLE_CONTEXT: context window smaller than the workload's minimum.
context[m.id] := reason if {
	needed := input.workload.min_context_tokens
	needed > 0
	some m in data.models
	m.context_tokens < needed
	reason := {data.clearance.codes.UNSUITABLE_CONTEXT: sprintf(
		"%s has a context of %d tokens, fewer than the %d the workload needs",
		[m.name, m.context_tokens, needed],
	)}
}

# UNSUITABLE_CAPABILITY: the workload's task is not among the model's capabilities. By task,
# for every task some model of the catalog lists: catalog only, precomputed (catalog.rego). A
# task no model lists is judged per decision (every model is then unfit).
unfit[task] := {m.id: unfit_reason(m, task) | some m in data.models; not task in m.capabilities} if {
	some task in {t | some m in data.models; some t in m.capabilities}
}

unfit_reason(m, task) := {data.clearance.codes.UNSUITABLE_CAPABILITY: sprintf(
	"%s is not fit for task %s (capabilities: %s)",
	[m.name, task, data.clearance.routes.list_text(m.capabilities)],
)}

capability := table if {
	table := data.clearance.catalog.tables.fitness.unfit[input.workload.task]
	is_object(table)
} else := unlisted_task

unlisted_task[m.id] := unfit_reason(m, task) if {
	task := input.workload.task
	some m in data.models
	not task in m.capabilities
}

# UNSUITABLE_PRICE: a price limit is set and the route's blended price is above it. Catalog
# only, precomputed: each model's routes as [deployment id, blended price] (the price is
# data.clearance.routes.blended_price, inlined; fitness_test checks they agree).
prices := [[m.id, [[d.id, p] |
	some d in m.deployments
	p := round((((3 * d.price_in_per_mtok) + d.price_out_per_mtok) / 4) * 10000) / 10000
]] |
	some m in data.models
]

price[entry[0]] := hits if {
	limit := input.workload.max_price_per_mtok
	is_number(limit)
	some entry in data.clearance.catalog.tables.fitness.prices
	hits := {r[0]: {data.clearance.codes.UNSUITABLE_PRICE: sprintf(
		"blended price %v per million tokens exceeds the workload's limit of %v",
		[r[1], limit],
	)} |
		some r in entry[1]
		r[1] > limit
	}
	count(hits) > 0
}

# UNSUITABLE_DEPLOYMENT: deployment mode not among the workload's modes. Catalog only,
# precomputed: mode -> {model id: [its deployments' ids in that mode]}; a decision visits the
# routes of the modes it leaves out.
by_mode[mode] := {m.id: dids |
	some m in data.models
	dids := [d.id | some d in m.deployments; d.mode == mode]
	count(dids) > 0
} if {
	some mode in {d.mode | some m in data.models; some d in m.deployments}
}

deployment := object.union_n([{mid: {did: {data.clearance.codes.UNSUITABLE_DEPLOYMENT: sprintf(
	"deployment %s is %s, not among the workload's deployment modes (%s)",
	[did, mode, modes_text],
)} |
	some did in dids
} |
	some mid, dids in table
} |
	modes := input.workload.deployment_modes
	is_array(modes)
	some mode, table in data.clearance.catalog.tables.fitness.by_mode
	not mode in modes
	modes_text := data.clearance.routes.list_text(modes) # only when a mode is left out (rare)
])

deny := {
	"workload": {},
	"model": object.union_n([quality, context, capability]),
	"route": object.union_n([price, deployment]),
}

obligations := {"workload": {}, "model": {}, "route": {}}
