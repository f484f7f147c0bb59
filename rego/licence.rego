# Licence terms: MAU caps, commercial use, training on outputs, prohibited uses, attribution.
package clearance.licence

import rego.v1

# [model, cap] for every licence with an MAU cap.
capped := [[m, cap] |
	some m in data.models
	cap := m.licence.mau_cap
	is_number(cap) # not null: in Rego every number is greater than null
]

# LICENCE_MAU_CAP: monthly_active_users above the licence's MAU cap (at the cap: allowed).
mau_cap_exceeded[m.id] := reason if {
	mau := input.workload.monthly_active_users
	some entry in capped
	cap := entry[1]
	mau > cap
	m := entry[0]
	reason := {data.clearance.codes.LICENCE_MAU_CAP: sprintf("%d MAU exceeds the %d cap of the %s", [mau, cap, m.licence.name])}
}

# The warning ratio in parts per million, so that cap × ratio ≤ MAU is compared in integers:
# exact whatever the engine's float arithmetic (100 × 0.7 is 70, not 70.00000000000001).
warning_ppm := round(data.clearance.routes.mau_warning_ratio * 1000000)

# Obligation licence_mau_near_cap: cap × warning ratio ≤ MAU ≤ cap.
near_cap[m.id] := obligation if {
	mau := input.workload.monthly_active_users
	mau > 0
	scaled_mau := mau * 1000000
	ppm := warning_ppm
	name := data.clearance.codes.LICENCE_MAU_NEAR_CAP
	obligation := {name: name}
	some entry in capped
	cap := entry[1]
	mau <= cap
	scaled_mau >= cap * ppm
	m := entry[0]
}

# LICENCE_NONCOMMERCIAL: commercial workload, the licence forbids commercial use.
noncommercial[m.id] := reason if {
	input.workload.commercial == true
	some m in data.models
	not m.licence.commercial_use
	reason := {data.clearance.codes.LICENCE_NONCOMMERCIAL: sprintf(
		"the workload is commercial, and the %s does not permit commercial use",
		[m.licence.name],
	)}
}

# LICENCE_OUTPUT_TRAINING: task model_training, the licence forbids training on outputs.
output_training[m.id] := reason if {
	input.workload.task == "model_training"
	some m in data.models
	m.licence.restricts_output_training == true
	reason := {data.clearance.codes.LICENCE_OUTPUT_TRAINING: sprintf(
		"task model_training: the %s forbids training models on the outputs of %s",
		[m.licence.name, m.name],
	)}
}

# LICENCE_PROHIBITED_USE: the workload's task or one of its sectors is among the prohibited uses.
prohibited_use[m.id] := reason if {
	uses := array.concat([["task", input.workload.task]], [["sector", s] | some s in input.workload.sectors])
	some m in data.models
	prohibited := m.licence.prohibited_uses
	prohibited != []
	hits := [sprintf("%s %s", use) |
		some use in uses
		use[1] in prohibited
	]
	count(hits) > 0
	reason := {data.clearance.codes.LICENCE_PROHIBITED_USE: sprintf(
		"the %s prohibits use for %s",
		[m.licence.name, concat(" and ", hits)],
	)}
}

# Obligation attribution:<text>: the licence requires attribution.
attribution[m.id] := obligation if {
	name := data.clearance.codes.ATTRIBUTION
	some m in data.models
	text := m.licence.attribution
	is_string(text)
	text != ""
	obligation := {name: concat(":", [name, text])}
}

deny := {
	"workload": {},
	"model": object.union_n([mau_cap_exceeded, noncommercial, output_training, prohibited_use]),
	"route": {},
}

obligations := {"workload": {}, "model": object.union_n([attribution, near_cap]), "route": {}}
