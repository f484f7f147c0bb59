package clearance.invariants_test

import rego.v1

import data.clearance.fixtures_test as fx

cn := fx.model("cn1", {"origin_country": "CN", "provenance": "open_chinese", "deployments": [fx.self_hosted]})

us := fx.model("us1", {"deployments": [fx.self_hosted, fx.vendor_api]})

# The invariants' names violated by `decision` for `inp`, with these models.
violated(models, inp, decision) := {v.invariant |
	some v in data.clearance.invariants.violation with data.models as models
		with data.org as fx.org
		with input as {"input": inp, "decision": decision}
}

# What the pack decides, checked against the invariants: the sound case of each test.
holds(models, inp) if {
	violated(models, inp, fx.decision(models, inp)) == set()
}

cleared(model, deployment, obligations) := {
	"model": model.id, "deployment": deployment.id, "rank": 1,
	"price_per_mtok": 0.1, "provenance": model.provenance, "obligations": obligations,
}

# A decision that clears `routes` ([model, deployment, obligations]) and denies nothing else
# of `models` (with a reason each).
clearing(models, routes) := {
	"outcome": "allow",
	"allowed": [cleared(r[0], r[1], r[2]) | some r in routes],
	"denied": [{"model": m.id, "deployment": d.id, "reasons": [{"code": "UNSUITABLE_PRICE", "message": "x"}]} |
		some m in models
		some d in m.deployments
		not [m.id, d.id] in {[r[0].id, r[1].id] | some r in routes}
	],
}

base := fx.input_with({})

public_sector := fx.input_app(
	object.union(fx.app, {"sectors": ["general", "public_sector"]}),
	{"sectors": ["public_sector"], "data_classification": "public"},
)

test_every_invariant_is_declared_with_a_promise if {
	count(data.clearance.invariants.declared) >= 7
	every name, promise in data.clearance.invariants.declared {
		is_string(promise)
		promise != ""
		regex.match(`^[a-z_]+$`, name)
	}
}

test_restricted_origin_in_restricted_sector if {
	violated([cn], public_sector, clearing([cn], [[cn, fx.self_hosted, []]])) == {"restricted_origin_in_restricted_sector"}
	holds([cn], public_sector)
	violated([cn], fx.input_with({"data_classification": "public"}), clearing([cn], [[cn, fx.self_hosted, []]])) == set()
}

test_restricted_origin_promise_survives_an_emptied_org if {
	d := clearing([cn], [[cn, fx.self_hosted, []]])
	found := {v.invariant |
		some v in data.clearance.invariants.violation with data.models as [cn]
			with data.org as object.union(fx.org, {"restricted_origin_sectors": [], "restricted_origin_countries": []})
			with input as {"input": public_sector, "decision": d}
	}
	found == {"restricted_origin_in_restricted_sector"}
}

test_withheld_never_cleared if {
	every status in ["withheld", "deprecated"] {
		m := fx.model("w1", {"status": status, "deployments": [fx.self_hosted]})
		violated([m], base, clearing([m], [[m, fx.self_hosted, []]])) == {"withheld_never_cleared"}
		holds([m], base)
	}
}

test_gated_capability_outside_program if {
	m := fx.model("g1", {"deployments": [fx.vendor_api], "dangerous_capabilities": [{"class": "cyber_offense", "level": "high", "access_program": "glasswing", "permitted_tasks": ["security_research"]}]})
	violated([m], base, clearing([m], [[m, fx.vendor_api, []]])) == {"gated_capability_outside_program"}
	holds([m], base)
	enrolled := fx.input_app(object.union(fx.app, {"programs": ["glasswing"]}), {"task": "security_research"})
	violated([m], enrolled, clearing([m], [[m, fx.vendor_api, []]])) == set()
}

test_dangerous_capability_not_approved if {
	inp := fx.input_with({"dangerous_capability": "cyber_offense"})
	violated([us], inp, clearing([us], [[us, fx.self_hosted, []]])) == {"dangerous_capability_not_approved"}
	holds([us], inp)
	approved := fx.input_app(object.union(fx.app, {"capability_approvals": ["cyber_offense"]}), {"dangerous_capability": "cyber_offense"})
	violated([us], approved, clearing([us], [[us, fx.self_hosted, []]])) == set()
}

test_restricted_data_without_zero_retention if {
	inp := fx.input_with({"data_classification": "restricted"})
	no_zdr := fx.deployment(fx.vendor_api, {"zero_data_retention": false, "regions": ["eu-west-1"]})
	m := fx.model("r1", {"deployments": [fx.self_hosted, no_zdr]})
	violated([m], inp, clearing([m], [[m, no_zdr, []]])) == {"restricted_data_without_zero_retention"}
	violated([m], inp, clearing([m], [[m, fx.self_hosted, []]])) == set()
	holds([m], inp)
}

test_critical_without_human_review if {
	inp := fx.input_with({"regulatory_tier": "critical"})
	violated([us], inp, clearing([us], [[us, fx.self_hosted, []]])) == {"critical_without_human_review"}
	violated([us], inp, clearing([us], [[us, fx.self_hosted, ["human_review"]]])) == set()
	holds([us], inp)
}

test_every_route_decided_missing_route if {
	d := clearing([us], [[us, fx.self_hosted, []]])
	lost := object.union(d, {"denied": []})
	violated([us], base, lost) == {"every_route_decided"}
	holds([us], base)
}

test_every_route_decided_route_twice if {
	d := clearing([us], [[us, fx.self_hosted, []], [us, fx.self_hosted, []]])
	violated([us], base, d) == {"every_route_decided"}
}

test_every_route_decided_denied_without_reason if {
	d := {"outcome": "deny", "allowed": [], "denied": [
		{"model": "us1", "deployment": "self-hosted", "reasons": []},
		{"model": "us1", "deployment": "vendor-api", "reasons": [{"code": "UNSUITABLE_PRICE", "message": "x"}]},
	]}
	violated([us], base, d) == {"every_route_decided"}
}

test_every_route_decided_unknown_route if {
	d := clearing([us], [[us, fx.self_hosted, []], [us, fx.deployment(fx.cloud, {}), []]])
	violated([us], base, object.union(d, {"denied": [r | some r in d.denied; r.deployment != "cloud"]})) == {"every_route_decided"}
}

test_workload_within_profile if {
	app := object.union(fx.app, {"sectors": ["general"], "data_classification_floor": "confidential", "regulatory_tier_floor": "regulated"})
	d := clearing([us], [])
	below := fx.input_app(app, {"data_classification": "internal", "regulatory_tier": "standard", "sectors": ["healthcare"]})
	found := {v.message |
		some v in data.clearance.invariants.violation with data.models as [us] with data.org as fx.org
			with input as {"input": below, "decision": d}
	}
	found == {"sector healthcare is outside the profile; data_classification internal is below the floor confidential; regulatory_tier standard is below the floor regulated"}
	at_floor := fx.input_app(app, {"data_classification": "confidential", "regulatory_tier": "regulated"})
	violated([us], at_floor, d) == set()
	violated([us], fx.input_with({"sectors": []}), d) == {"workload_within_profile"}
}
