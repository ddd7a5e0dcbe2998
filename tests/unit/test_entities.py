"""Entity-level evaluation of several tables: the entity frame, the entity split, utility, privacy, detection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shop_data import shop_metadata, shop_tables

from synthgen.errors import ConfigError, DataWarning
from synthgen.evaluation.entities import (
    EntityFrame,
    entity_privacy,
    entity_utility,
    parent_child_detection,
    split_entities,
)


@pytest.fixture(scope="module")
def shop():
    return shop_tables(seed=0, customers=400)


def test_entity_frame_aggregates_children_and_grandchildren(shop):
    meta = shop_metadata()
    frame = EntityFrame(meta, "customer").fit(shop).transform(shop)
    assert len(frame) == len(shop["customer"])
    purchases = shop["purchase"]
    counts = purchases.customer_id.value_counts().reindex(shop["customer"].customer_id).fillna(0).to_numpy()
    assert (frame["purchase.count"].to_numpy() == counts).all()
    means = purchases.groupby("customer_id").amount.mean().reindex(shop["customer"].customer_id).to_numpy()
    assert np.allclose(frame["purchase.amount.mean"].to_numpy(), means, equal_nan=True)
    # a grandchild's count, averaged over each customer's purchases
    per_purchase = shop["item"].purchase_id.value_counts().reindex(purchases.purchase_id).fillna(0).to_numpy()
    expected = pd.Series(per_purchase).groupby(purchases.customer_id.to_numpy()).mean()
    expected = expected.reindex(shop["customer"].customer_id).to_numpy()
    assert np.allclose(frame["purchase.item.count.mean"].to_numpy(), expected, equal_nan=True)
    # customers without purchases: a count of 0 and no means
    none = frame[frame["purchase.count"] == 0]
    assert len(none) > 10 and none["purchase.amount.mean"].isna().all()


def test_entity_frame_joins_ancestors_without_the_way_back(shop):
    meta = shop_metadata()
    frame = EntityFrame(meta, "purchase").fit(shop).transform(shop)
    assert {"customer.segment", "customer.age", "store.region", "item.count", "item.qty.mean"} <= set(frame.columns)
    # the customer's aggregate over its purchases would leak the purchase's own amount
    assert not any(c.startswith("customer.purchase.") for c in frame.columns)
    online = shop["purchase"].store_id.isna().to_numpy()
    assert frame.loc[online, "store.region"].isna().all()


def test_category_shares_use_the_fitted_categories(shop):
    meta = shop_metadata()
    frames = EntityFrame(meta, "store", top=1).fit(shop)
    out = frames.transform(shop)
    # the store's purchases have no categorical column: counts, means and their items' aggregates
    assert {"purchase.count", "purchase.amount.mean", "purchase.item.count.mean"} <= set(out.columns)
    frames = EntityFrame(meta, "customer", top=1).fit(shop)  # an item-less check of a child's categories
    shop2 = {**shop, "purchase": shop["purchase"].assign(channel=np.where(shop["purchase"].amount > 100, "web",
                                                                          "shop"))}
    meta2 = shop_metadata().to_dict()
    meta2["tables"]["purchase"]["columns"]["channel"] = {"sdtype": "categorical"}
    frames = EntityFrame(meta2, "customer", top=1).fit(shop2)
    common = shop2["purchase"].channel.value_counts().index[0]
    out = frames.transform({**shop2, "purchase": shop2["purchase"].assign(channel="platinum")})
    shares = [c for c in out.columns if c.startswith("purchase.channel=")]
    assert shares == [f"purchase.channel={common}"]  # only the real data's most common category is counted
    assert (out[shares[0]].dropna() == 0).all()  # "platinum" counts as none of them


def test_transform_needs_fit(shop):
    with pytest.raises(ConfigError, match="not fitted"):
        EntityFrame(shop_metadata(), "customer").transform(shop)
    with pytest.raises(ConfigError, match="not in the metadata"):
        EntityFrame(shop_metadata(), "basket")


def test_split_keeps_descendants_with_their_entity(shop):
    meta = shop_metadata()
    train, holdout = split_entities(shop, meta, "customer", holdout=0.25, seed=3)
    assert len(holdout["customer"]) == 100 and len(train["customer"]) == 300
    assert not set(train["customer"].customer_id) & set(holdout["customer"].customer_id)
    for side in (train, holdout):
        assert side["purchase"].customer_id.isin(side["customer"].customer_id).all()
        assert side["item"].purchase_id.isin(side["purchase"].purchase_id).all()
        assert len(side["store"]) == len(shop["store"])  # not a descendant: kept whole
    assert len(train["purchase"]) + len(holdout["purchase"]) == len(shop["purchase"])
    assert len(train["item"]) + len(holdout["item"]) == len(shop["item"])
    with pytest.raises(ConfigError, match="holdout"):
        split_entities(shop, meta, "customer", holdout=1.0)


def test_utility_and_privacy_tell_a_copy_from_noise(shop):
    meta = shop_metadata()
    train, holdout = split_entities(shop, meta, "customer", seed=0)
    frames = EntityFrame(meta, "customer").fit(train)
    f_train, f_holdout = frames.transform(train), frames.transform(holdout)
    rng = np.random.default_rng(0)
    noise = f_train.copy()
    for column in noise.columns:  # each column shuffled on its own: the relations are gone
        noise[column] = rng.permutation(noise[column].to_numpy())
    copy_util = entity_utility(f_train, f_holdout, f_train, target="segment", seeds=1)
    noise_util = entity_utility(f_train, f_holdout, noise, target="segment", seeds=1)
    assert copy_util["tstr"]["auc"] > 0.9  # the segment follows from the purchases
    assert noise_util["tstr"]["auc"] < copy_util["tstr"]["auc"] - 0.2
    copy_priv = entity_privacy(f_train, f_holdout, f_train)
    assert copy_priv["exact_copy_rate"] == 1.0 and copy_priv["mia_auc"] > 0.85
    assert copy_priv["dcr_train_share"] > 0.6  # (balanced sides: a copy of all train rows meets a subsample)
    fresh = frames.transform(split_entities(shop_tables(seed=1, customers=400), meta, "customer", seed=0)[0])
    fresh_priv = entity_privacy(f_train, f_holdout, fresh)
    assert 0.4 < fresh_priv["dcr_train_share"] < 0.6 and fresh_priv["mia_auc"] < 0.6


def test_parent_child_detection_sees_broken_relations(shop):
    meta = shop_metadata()
    real = shop
    rng = np.random.default_rng(0)
    broken = dict(shop)
    # purchases reassigned to random customers: each table alone is unchanged, the pairs are not
    broken["purchase"] = shop["purchase"].assign(
        customer_id=rng.choice(shop["customer"].customer_id.to_numpy(), len(shop["purchase"])))
    fresh = shop_tables(seed=5, customers=400)
    same = parent_child_detection(real, fresh, meta)
    wrong = parent_child_detection(real, broken, meta)
    key = "purchase.customer_id -> customer.customer_id"
    assert key in wrong, wrong
    assert wrong[key] > same[key] + 0.15
    assert isinstance(pd.Series(same).mean(), float)


def test_split_sends_rows_with_parents_on_both_sides_nowhere_and_orphans_to_train(shop):
    meta = shop_metadata()
    data = dict(shop)
    # items now also name a customer directly: a second parent below the entity table
    meta2 = meta.to_dict()
    meta2["tables"]["item"]["columns"]["buyer_id"] = {"sdtype": "id"}
    meta2["relationships"].append({"parent_table_name": "customer", "parent_primary_key": "customer_id",
                                   "child_table_name": "item", "child_foreign_key": "buyer_id"})
    rng = np.random.default_rng(0)
    data["item"] = shop["item"].assign(buyer_id=rng.choice(shop["customer"].customer_id.to_numpy(), len(shop["item"])))
    data["purchase"] = shop["purchase"].astype({"customer_id": "float64"})
    data["purchase"].loc[0, "customer_id"] = np.nan  # a purchase without a customer
    with pytest.warns(DataWarning, match="table 'item': .* rows descend from entities on both sides"):
        train, holdout = split_entities(data, meta2, "customer", seed=1)
    for side in (train, holdout):
        assert side["item"].buyer_id.isin(side["customer"].customer_id).all()
        assert side["item"].purchase_id.isin(side["purchase"].purchase_id).all()
    assert train["purchase"].customer_id.isna().sum() == 1 and holdout["purchase"].customer_id.notna().all()
    with pytest.raises(ConfigError, match="too few"):
        split_entities({**shop, "customer": shop["customer"].head(2)}, meta, "customer")


def test_empty_sides_and_duplicate_keys_give_clear_errors_or_results(shop):
    meta = shop_metadata()
    frames = EntityFrame(meta, "purchase").fit(shop)
    twice = {**shop, "customer": pd.concat([shop["customer"], shop["customer"].head(5)], ignore_index=True)}
    assert len(frames.transform(twice)) == len(shop["purchase"])  # a duplicated parent key: its first row
    frame = EntityFrame(meta, "customer").fit(shop).transform(shop)
    with pytest.raises(ConfigError, match="the holdout entity frame has no rows"):
        entity_privacy(frame, frame.iloc[:0], frame)
