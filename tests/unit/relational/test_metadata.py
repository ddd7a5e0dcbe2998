"""Multi-table metadata: SDV JSON, the graph, checks against the data (each problem named), detection."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from shop_data import shop_metadata, shop_tables

from synthgen.errors import InvalidDataError
from synthgen.metadata import Metadata, Relationship


def test_json_round_trip_is_sdv_v1(tmp_path):
    meta = shop_metadata()
    path = meta.save(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["METADATA_SPEC_VERSION"] == "V1"
    assert data["relationships"][0] == {"parent_table_name": "customer", "parent_primary_key": "customer_id",
                                        "child_table_name": "purchase", "child_foreign_key": "customer_id"}
    assert Metadata.load(path) == meta
    with pytest.raises(Exception, match="already exists"):
        meta.save(path)


def test_order_roots_depth_and_parents():
    meta = shop_metadata()
    order = meta.order()
    assert order.index("customer") < order.index("purchase") < order.index("item")
    assert order.index("store") < order.index("purchase")
    assert meta.roots() == ["customer", "store"]
    assert meta.depth() == 3
    assert [r.parent for r in meta.parents("purchase")] == ["customer", "store"]


def test_cycles_and_self_references_are_refused_naming_tables():
    tables = {t: {"primary_key": "id", "columns": {"id": {"sdtype": "id"}, "ref": {"sdtype": "id"}}}
              for t in ("a", "b")}
    cyclic = {"tables": tables, "relationships": [
        Relationship("a", "id", "b", "ref").to_dict(), Relationship("b", "id", "a", "ref").to_dict()]}
    with pytest.raises(InvalidDataError, match="cycle: a -> b -> a"):
        Metadata.from_dict(cyclic)
    selfref = {"tables": tables, "relationships": [Relationship("a", "id", "a", "ref").to_dict()]}
    with pytest.raises(InvalidDataError, match="table 'a', column 'ref': references its own table"):
        Metadata.from_dict(selfref)


def test_malformed_metadata_lists_every_problem():
    bad = {"tables": {"a": {"primary_key": "nope", "columns": {"id": {"sdtype": "id"}}}, "b": {}},
           "relationships": [{"parent_table_name": "a"}]}
    with pytest.raises(InvalidDataError) as info:
        Metadata.from_dict(bad)
    text = str(info.value)
    assert "table 'a', column 'nope': is the primary key but not a column" in text
    assert "table 'b': has no 'columns' mapping" in text
    assert "relationship 1 lacks one of" in text


def test_bad_data_is_reported_at_once_with_table_column_rule_and_fix():
    data = shop_tables()
    data["customer"] = pd.concat([data["customer"], data["customer"].head(2)])  # duplicate primary keys
    data["purchase"].loc[0, "customer_id"] = 99_999  # points nowhere
    data["item"] = data["item"].astype({"purchase_id": object})
    data["item"].loc[0, "purchase_id"] = "x1"  # a key of mixed types
    del data["store"]
    problems = shop_metadata().problems(data)
    text = "\n".join(map(str, problems))
    assert "table 'store': is named in the metadata but missing from the data" in text
    assert "table 'customer', column 'customer_id': is the primary key but 2 values repeat" in text
    assert "table 'item', column 'purchase_id': is a key column holding both numbers and text" in text
    assert all(p.fix for p in problems)
    assert "table 'purchase', column 'customer_id': 1 rows point to no row of customer (e.g. 99999" in text
    with pytest.raises(InvalidDataError, match=r"invalid data \(4 problems\)"):
        shop_metadata().check(data)


def test_detect_finds_keys_by_name_and_containment():
    data = shop_tables()
    meta, notes = Metadata.detect(data)
    assert {t: meta.primary_key(t) for t in data} == {"customer": "customer_id", "store": "store_id",
                                                      "purchase": "purchase_id", "item": "item_id"}
    assert set(map(str, meta.relationships)) == {"purchase.customer_id -> customer.customer_id",
                                                 "purchase.store_id -> store.store_id",
                                                 "item.purchase_id -> purchase.purchase_id"}
    assert any("guessed" in n for n in notes)
    assert meta.tables["purchase"]["columns"]["amount"]["sdtype"] == "numerical"
    # a column named like a key whose values are not all keys of the parent is not a foreign key
    data["purchase"].loc[0, "customer_id"] = 10**9
    meta, _ = Metadata.detect(data)
    assert "purchase.customer_id -> customer.customer_id" not in set(map(str, meta.relationships))


def test_detect_takes_database_constraints_and_marks_identifier_like_columns():
    data = {"p": pd.DataFrame({"pk": [1, 2, 3] * 10 and list(range(30)), "name": [f"n{i}" for i in range(30)],
                               "v": ["1", "2", "?"] + [str(i) for i in range(27)]}),
            "c": pd.DataFrame({"ref": [0, 1, 2, 2], "x": [1.0, 2.0, 3.0, 4.0]})}
    meta, notes = Metadata.detect(data, {"p": {"primary_key": "pk", "foreign_keys": []},
                                         "c": {"primary_key": None, "foreign_keys": [("ref", "p", "pk")]}})
    assert str(meta.relationships[0]) == "c.ref -> p.pk"
    assert meta.tables["p"]["columns"]["name"] == {"sdtype": "id"}
    assert meta.tables["p"]["columns"]["v"]["sdtype"] == "numerical"
    assert any("p.v: sdtype numerical (1 text values such as '?'" in n for n in notes)
