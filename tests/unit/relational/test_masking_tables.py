"""Masking several tables: a policy per table, key groups pseudonymized alike so the tables still join."""

from __future__ import annotations

import numpy as np
import pytest
from shop_data import shop_metadata

from synthgen.errors import ConfigError
from synthgen.relational.masking import key_groups, mask_tables, suggest_tables_policy, table_policies

KEY = bytes(range(32))


def test_key_groups_follow_the_relationships():
    groups = {g[0]: set(g) for g in key_groups(shop_metadata())}
    assert groups[("customer", "customer_id")] == {("customer", "customer_id"), ("purchase", "customer_id")}
    assert groups[("purchase", "purchase_id")] == {("purchase", "purchase_id"), ("item", "purchase_id")}


@pytest.mark.parametrize("reversible", [False, True])
def test_a_pseudonymized_primary_key_takes_its_foreign_keys_along(shop, reversible):
    meta = shop_metadata()
    entry = {"op": "pseudonymize", "reversible": True} if reversible else "pseudonymize"
    policy = {"version": 1, "tables": {"customer": {"columns": {"customer_id": entry}},
                                       "store": {"columns": {"store_id": "pseudonymize",
                                                             "region": {"op": "replace", "kind": "city"}}}}}
    masked, reports = mask_tables(shop, policy, meta, key=KEY)
    assert not set(masked["customer"].customer_id) & set(shop["customer"].customer_id)
    assert not set(masked["purchase"].customer_id.dropna()) & set(shop["purchase"].customer_id)
    meta.check(masked)  # every foreign key still finds its parent
    joined = masked["purchase"].merge(masked["customer"], on="customer_id")
    real = shop["purchase"].merge(shop["customer"], on="customer_id")
    assert joined.amount.tolist() == real.amount.tolist() and joined.segment.tolist() == real.segment.tolist()
    assert masked["purchase"].store_id.isna().sum() == shop["purchase"].store_id.isna().sum()
    assert "customer_id" in reports["purchase"].columns  # the foreign key's masking is reported
    again, _ = mask_tables(shop, policy, meta, key=KEY)
    assert again["purchase"].customer_id.tolist() == masked["purchase"].customer_id.tolist()


def test_keys_given_an_operation_that_breaks_joins_are_refused(shop):
    policy = {"tables": {"purchase": {"columns": {"customer_id": "drop", "store_id": {"op": "mask"}}},
                         "basket": {"columns": {}}}}
    with pytest.raises(ConfigError) as err:
        table_policies(policy, shop_metadata())
    text = str(err.value)
    assert "3 problems" in text
    assert "table 'purchase', column 'customer_id': is a key and 'drop' would break its joins" in text
    assert "table 'basket'" in text and "column 'store_id'" in text


def test_a_key_group_with_two_different_pseudonyms_is_refused(shop):
    policy = {"tables": {"customer": {"columns": {"customer_id": "pseudonymize"}},
                         "purchase": {"columns": {"customer_id": {"op": "pseudonymize", "reversible": True}}}}}
    with pytest.raises(ConfigError, match="reference each other but are given different pseudonym options"):
        table_policies(policy, shop_metadata())


def test_each_table_policy_is_checked_against_its_table_first(shop):
    policy = {"tables": {"customer": {"columns": {"nickname": "drop"}}}}
    with pytest.raises(ConfigError, match="table 'customer'.*nickname"):
        mask_tables(shop, policy, shop_metadata(), key=KEY)
    with pytest.raises(ConfigError, match='"tables" object'):
        mask_tables(shop, {"columns": {}}, shop_metadata(), key=KEY)


def test_rows_of_a_suppressed_parent_go_with_it_and_are_reported(shop):
    meta = shop_metadata()
    # the gold segment (76 of 300 customers) is smaller than k: its customers are suppressed
    policy = {"tables": {"customer": {"columns": {},
                                      "k_anonymity": {"columns": ["segment"], "k": 120, "max_suppression": 0.5}}}}
    masked, reports = mask_tables(shop, policy, meta, key=KEY)
    assert set(masked["customer"].segment) == {"basic"}
    meta.check(masked)
    assert reports["purchase"].rows_out == len(masked["purchase"]) < len(shop["purchase"])
    assert "(rows)" in reports["purchase"].columns


def test_suggested_policy_masks_keys_only_as_groups(shop):
    policy = suggest_tables_policy(shop, shop_metadata())
    for block in policy["tables"].values():
        for column, entry in block["columns"].items():
            assert entry["op"] == "pseudonymize" or column not in {"customer_id", "purchase_id", "store_id"}
    table_policies(policy, shop_metadata())  # it is a valid policy


def test_without_a_key_one_run_key_serves_every_table(shop):
    meta = shop_metadata()
    policy = {"tables": {"customer": {"columns": {"customer_id": "pseudonymize"}}}}
    masked, reports = mask_tables(shop, policy, meta)  # no key: a random one, shared
    assert len(masked["purchase"]) == len(shop["purchase"]) and len(masked["item"]) == len(shop["item"])
    meta.check(masked)
    assert any("no key" in line for line in reports["customer"].lines())


def test_a_foreign_key_read_as_float_still_joins(shop):
    meta = shop_metadata()
    data = {**shop, "purchase": shop["purchase"].astype({"customer_id": "float64"})}
    data["purchase"].loc[0, "customer_id"] = np.nan
    customer = meta.to_dict()
    masked, _ = mask_tables(data, {"tables": {"customer": {"columns": {"customer_id": "pseudonymize"}}}},
                            customer, key=KEY)
    assert len(masked["purchase"]) == len(data["purchase"])
    linked = masked["purchase"].customer_id.dropna()
    assert linked.isin(masked["customer"].customer_id).all() and masked["purchase"].customer_id.isna().sum() == 1


def test_key_groups_merge_through_one_to_one_tables():
    from synthgen.metadata import Metadata, Relationship

    tables = {name: {"primary_key": "id", "columns": {"id": {"sdtype": "id"}, "up": {"sdtype": "id"}}}
              for name in ("a", "b", "c")}
    tables["a"]["columns"].pop("up")
    meta = Metadata(tables, [Relationship("b", "id", "c", "id"), Relationship("a", "id", "b", "id")])
    groups = key_groups(meta)
    assert len(groups) == 1 and groups[0][0] == ("a", "id")
    assert set(groups[0]) == {("a", "id"), ("b", "id"), ("c", "id")}
