# Shared definitions: routes, the module interface, prices, and accessors with defaults.
#
# A route is one model through one deployment: {"model": model.id, "deployment": deployment.id}.
#
# Module interface: every concern module (availability, capability, provenance,
# regulatory, licence, residency, fitness) exports `deny` and `obligations`, each an object
# with three levels, so that a fact is stated once at the widest level where it holds:
#
#   deny := {
#     "workload": {CODE: message},                                   every route
#     "model":    {model id: {CODE: message}},                       every deployment of a model
#     "route":    {model id: {deployment id: {CODE: message}}},      one route
#   }
#   obligations := the same shape with {NAME: text} (text is what the decision lists,
#                  e.g. "attribution:Llama 4 is licensed under ...").
#
# Each level is the object.union_n (a deep merge) of per-code rules. A per-code rule visits
# each model once and yields one message, so a code fires at most once per route, and
# main.rego assembles a route with a few lookups: no join of reasons against routes,
# nothing recomputed per reason.
#
# Written for both regorus paths, the interpreter (Engine) and the compiled RVM
# (Program/Rvm, 0.13), which differ from OPA in ways that shape this pack:
#   * `deny[key] contains reason` (Rego v1 multi-value ref heads) is flattened by the RVM
#     compiler: the keys are lost. Hence tables of partial object rules.
#   * the RVM does not end a rule body or comprehension at a binding `x := <undefined>`;
#     it goes on and yields the undefined value. Every binding that can be undefined is
#     therefore followed by a test of it, or made with object.get and a default.
#   * the RVM mis-evaluates a comprehension with no iteration in it (`[x | cond]`): a
#     false condition ends the enclosing body instead of giving []. The pack has none
#     (a function with one definition per case does that job).
#   * a reference through an import alias (`codes.X`) compiles into a lookup that
#     materialises the whole package each time; references to other packages are spelled
#     in full (data.clearance.codes.X), which compiles into a cached rule call.
#   * the RVM runs at most 25000 instructions per evaluation (not settable from Python),
#     and a function call costs about as much as ten plain instructions: the per-model
#     loops test workload-wide conditions first, inline their tests, and call helpers only
#     to build a message.
package clearance.routes

import rego.v1

# A route named as one string, "<model id> <deployment id>" (for tests and tools).
key(model_id, deployment_id) := concat(" ", [model_id, deployment_id])

# Blended price per million tokens: (3 × input + output) / 4, the usual 3:1 blend,
# rounded to 4 decimals (half away from zero, Rego's round). fitness.rego inlines the same
# formula in its per-route loop; fitness_test.rego checks that the two agree.
blended_price(d) := round((((3 * d.price_in_per_mtok) + d.price_out_per_mtok) / 4) * 10000) / 10000

# --- the caller's app (input.app, from apps.yaml, added by the server) -------------------
default app_id := "(unknown app)"

app_id := input.app.id if is_string(input.app.id)

default app_programs := []

app_programs := input.app.programs if is_array(input.app.programs)

default app_capability_approvals := []

app_capability_approvals := input.app.capability_approvals if is_array(input.app.capability_approvals)

default app_attestations := []

app_attestations := input.app.attestations if is_array(input.app.attestations)

# --- org settings (data.org), with the defaults of policy/catalog.py Org -----------------
default mau_warning_ratio := 0.9

mau_warning_ratio := data.org.mau_warning_ratio if is_number(data.org.mau_warning_ratio)

default critical_compliance_docs := ["soc2", "iso_42001", "eu_ai_act_gpai"]

critical_compliance_docs := data.org.critical_compliance_docs if is_array(data.org.critical_compliance_docs)

default restricted_origin_countries := []

restricted_origin_countries := data.org.restricted_origin_countries if is_array(data.org.restricted_origin_countries)

default restricted_origin_sectors := []

restricted_origin_sectors := data.org.restricted_origin_sectors if is_array(data.org.restricted_origin_sectors)

default restricted_data_regions := []

restricted_data_regions := data.org.restricted_data_regions if is_array(data.org.restricted_data_regions)

# --- message helpers ---------------------------------------------------------------------
# A list (or set) as "a, b, c", or "none" when empty.
list_text(xs) := concat(", ", xs) if count(xs) > 0

else := "none"
