package clearance.catalog_test

import rego.v1

import data.clearance.fixtures_test as fx

withheld := fx.model("old", {"status": "deprecated"})

# Without data.derived the tables are computed from data.models (what rego tests see).
test_tables_are_computed_without_derived_data if {
	tables := data.clearance.catalog.tables with data.models as [withheld, fx.model("m1", {})] with data.org as fx.org
	object.keys(tables.availability.withheld) == {"old"}
}

# With data.derived (what policy/engine.py passes), the rules read it, not data.models.
test_derived_data_is_read_when_present if {
	derived := data.clearance.catalog.derived with data.models as [fx.model("m1", {"status": "withheld"})] with data.org as fx.org
	d := fx.decision([fx.model("m1", {})], fx.input_with({})) with data.derived as derived
	fx.codes(d, "m1", "self-hosted") == ["MODEL_WITHHELD"]
}

# The derived document is the same whichever way it is reached.
test_derived_equals_tables_computed if {
	models := [withheld, fx.model("m1", {"licence": {"commercial_use": false}})]
	computed := data.clearance.catalog.tables with data.models as models with data.org as fx.org
	derived := data.clearance.catalog.derived with data.models as models with data.org as fx.org
	computed == derived
}
