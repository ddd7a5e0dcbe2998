"""RelationalSynthesizer / RelationalSampler on the shop dataset: integrity, keys, dtypes, conditioning,
the model file (one for all tables), and Sampler.load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shop_data import TINY, shop_metadata, shop_tables

from synthgen import Sampler
from synthgen.errors import ConfigError, InvalidDataError
from synthgen.relational.sampler import RelationalSampler
from synthgen.relational.synthesizer import RelationalSynthesizer


@pytest.fixture(scope="module")
def synthetic(shop_model_file) -> dict[str, pd.DataFrame]:
    return Sampler.load(shop_model_file).sample(scale=1.0, seed=0)


def test_sampler_load_opens_a_relational_file(shop_model_file):
    sampler = Sampler.load(shop_model_file)
    assert isinstance(sampler, RelationalSampler)
    assert sampler.tables == ["customer", "store", "purchase", "item"]


def test_every_foreign_key_is_a_generated_primary_key_or_null(synthetic, shop):
    meta = shop_metadata()
    for rel in meta.relationships:
        child = synthetic[rel.child][rel.foreign_key]
        assert child.dropna().isin(synthetic[rel.parent][rel.parent_key]).all(), str(rel)
    for table in meta.tables:
        pk = synthetic[table][meta.primary_key(table)]
        assert pk.is_unique and pk.notna().all()
        assert not pk.isin(shop[table][meta.primary_key(table)]).any(), f"{table} copies real keys"
    share = synthetic["purchase"].store_id.isna().mean()  # the nullable key: about its real share (0.1)
    assert 0.03 < share < 0.2


def test_same_tables_columns_and_dtypes(synthetic, shop):
    assert list(synthetic) == list(shop)
    for table, real in shop.items():
        assert list(synthetic[table].columns) == list(real.columns)
        for column in real.columns:
            assert synthetic[table][column].dtype == real[column].dtype, (table, column)
    assert synthetic["store"].store_id.str.fullmatch(r"ST\d\d\d").all()


def test_root_rows_follow_scale_and_children_follow_their_parents(shop_model_file, shop):
    sampler = Sampler.load(shop_model_file)
    assert len(sampler.sample(scale=0.5, seed=1)["customer"]) == len(shop["customer"]) // 2
    tables = sampler.sample(scale=2.0, seed=1)
    assert len(tables["customer"]) == 2 * len(shop["customer"])
    # gold customers have more purchases and spend more: counts and columns follow the parent's values (real
    # data: 4 purchases against 1; this tiny model gets about 2.0-2.3 times as many)
    per = tables["purchase"].groupby("customer_id").size().reindex(tables["customer"].customer_id).fillna(0)
    gold = (tables["customer"].segment == "gold").to_numpy()
    assert per[gold].mean() > 1.75 * per[~gold].mean()
    joined = tables["purchase"].merge(tables["customer"], on="customer_id")
    means = joined.groupby("segment").amount.mean()
    assert means["gold"] > means["basic"] + 50


def test_same_seed_same_tables(shop_model_file):
    sampler = Sampler.load(shop_model_file)
    a, b = sampler.sample(seed=3), sampler.sample(seed=3)
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table])


def test_file_holds_no_training_keys_and_lists_raw_quantities(shop_model_file, shop):
    import zipfile

    with zipfile.ZipFile(shop_model_file) as zf:
        manifest = zf.read("manifest.json").decode()
    assert '"kind": "relational"' in manifest
    assert "ST003" not in manifest and "ST007" not in manifest
    sampler = Sampler.load(shop_model_file)
    assert any("relationships" in q for q in sampler.manifest["privacy"]["raw_quantities"])


def test_bad_tables_are_refused_before_training():
    data = shop_tables()
    data["purchase"].loc[0, "customer_id"] = -5
    with pytest.raises(InvalidDataError, match="table 'purchase', column 'customer_id': 1 rows point to no row"):
        RelationalSynthesizer(**TINY).fit(data, shop_metadata())
    data = shop_tables()
    data["item"]["qty"] = 1  # a constant column in a child table: named with its table
    with pytest.raises(InvalidDataError, match="table 'item', column 'qty': has a single value"):
        RelationalSynthesizer(**TINY).fit(data, shop_metadata())


def test_child_tables_need_a_model_that_takes_a_context():
    with pytest.raises(ConfigError, match="the ctgan model cannot generate a table's rows given their parent's row"):
        RelationalSynthesizer(model="ctgan", epochs=1).fit(shop_tables(customers=60), shop_metadata())


def test_differential_privacy_is_per_entity_or_refused_not_faked_per_table():
    with pytest.raises((ConfigError, InvalidDataError), match="entity"):  # tables linked below the entity
        RelationalSynthesizer(epsilon=1.0, epochs=1).fit(shop_tables(customers=60), shop_metadata())


def test_metadata_is_detected_when_not_given():
    data = shop_tables(customers=60)
    tables = RelationalSynthesizer(epochs=1, batch_size=50).fit(data).sample(seed=0)
    assert tables["item"].purchase_id.isin(tables["purchase"].purchase_id).all()
    assert np.isfinite(tables["purchase"].amount).all()


def test_the_identifier_scan_runs_on_every_table():
    from synthgen.errors import IdentifierWarning

    data = shop_tables(customers=60)
    data["store"]["manager_email"] = [f"manager{i}@shop.example" for i in range(len(data["store"]))]
    meta = shop_metadata().to_dict()
    meta["tables"]["store"]["columns"]["manager_email"] = {"sdtype": "categorical"}
    with pytest.warns(IdentifierWarning, match="table 'store', column 'manager_email' looks like email addresses"):
        RelationalSynthesizer(epochs=1, batch_size=50).fit(data, meta)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifierWarning)
        RelationalSynthesizer(epochs=1, batch_size=50, allow=["store.manager_email"]).fit(data, meta)
