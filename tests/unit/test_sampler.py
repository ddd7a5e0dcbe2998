"""Sampler: dtypes, seeding, conditions (steered and filtered), streaming to CSV / Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen import Sampler, Synthesizer
from synthgen import sampler as sampler_module
from synthgen.errors import ConfigError, SynthgenError
from synthgen.io import read_table


@pytest.fixture(scope="module")
def ctgan(_ctgan_file) -> Sampler:
    """The shared ctgan, loaded from its model file."""
    return Sampler.load(_ctgan_file)


@pytest.fixture(scope="module")
def nulls_frame(_adult_nulls) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return _adult_nulls.assign(score=rng.gamma(2.0, 1.5, len(_adult_nulls)))


@pytest.fixture(scope="module")
def marginals(nulls_frame) -> Sampler:
    """The marginals baseline on Adult with nulls and a continuous column."""
    return Synthesizer(model="marginals", seed=0).fit(nulls_frame).sampler()


@pytest.fixture
def small_blocks(monkeypatch):
    """Generate in blocks of 64 rows, so a few hundred rows already span several blocks."""
    monkeypatch.setattr(sampler_module, "BLOCK_ROWS", 64)


def test_columns_and_dtypes(ctgan, adult):
    out = ctgan.sample(500, seed=0)
    assert out.shape == (500, adult.shape[1])
    assert ctgan.columns == list(adult.columns)
    pd.testing.assert_series_equal(out.dtypes, adult.dtypes)
    for name in ("age", "hours-per-week"):
        assert out[name].between(adult[name].min(), adult[name].max()).all()
    for name in ("workclass", "income"):
        assert set(out[name]) <= set(adult[name])


def test_columns_and_dtypes_with_nulls(marginals, nulls_frame):
    out = marginals.sample(300, seed=0)
    assert list(out.columns) == list(nulls_frame.columns)
    pd.testing.assert_series_equal(out.dtypes, nulls_frame.dtypes)


def test_zero_rows(ctgan, adult):
    out = ctgan.sample(0, seed=0)
    assert out.shape == (0, adult.shape[1])
    pd.testing.assert_series_equal(out.dtypes, adult.dtypes)


@pytest.mark.parametrize("n", [-1, 2.5, "10"])
def test_bad_row_count(ctgan, n):
    with pytest.raises(ConfigError, match=f"rows must be a whole number >= 0, got {n!r}"):
        ctgan.sample(n, seed=0)


def test_seeding(ctgan, small_blocks):
    pd.testing.assert_frame_equal(ctgan.sample(200, seed=1), ctgan.sample(200, seed=1))
    assert not ctgan.sample(200, seed=1).equals(ctgan.sample(200, seed=2))
    assert not ctgan.sample(200).equals(ctgan.sample(200))  # no seed: fresh randomness


def test_prefix_stable_across_sizes(ctgan, small_blocks):
    """Block b of seed s always holds the same rows, so a larger sample extends a smaller one."""
    small, large = ctgan.sample(100, seed=3), ctgan.sample(300, seed=3)
    pd.testing.assert_frame_equal(large.head(100), small)


# ----------------------------------------------------------------------------- conditions
def test_condition_on_category(ctgan):
    out = ctgan.sample(400, seed=0, conditions={"income": ">50K"})
    assert len(out) == 400
    assert (out["income"] == ">50K").all()
    assert out["sex"].nunique() == 2  # the other columns still vary


def test_condition_steers_the_generator(ctgan):
    """With the cond vector set, the generator itself makes far more matching rows."""
    model, tr = ctgan.model, ctgan.transformer
    assert model.capabilities.conditions
    index = ctgan._cond_index({"income": ">50K"})
    uniforms = np.random.default_rng(0).random((model.layout.n_softmax, 3000), dtype=np.float32)
    steered = tr.inverse_transform(model.sample(3000, seed=0, cond_index=index), uniforms=uniforms)
    free = tr.inverse_transform(model.sample(3000, seed=0), uniforms=uniforms)
    share_steered = (steered["income"] == ">50K").mean()
    share_free = (free["income"] == ">50K").mean()
    assert share_steered > share_free + 0.15, (share_steered, share_free)


def test_cond_index_points_at_the_category(ctgan):
    tr, layout = ctgan.transformer, ctgan.model.layout
    for column, value in [
        ("workclass", "Private"),
        ("income", ">50K"),
        ("native-country", "Mexico"),
    ]:
        index = ctgan._cond_index({column: value})
        cat_columns = np.concatenate([np.arange(s, s + w) for s, w in layout.cond_spans])
        row = np.zeros((1, layout.dim), dtype=np.float32)
        row[0, cat_columns[index]] = 1.0
        assert tr.inverse_transform(row)[column].iloc[0] == value


@pytest.mark.parametrize("fixture", ["ctgan", "marginals"])
def test_sampler_draws_categories_only_for_models_that_leave_logits(fixture, request, monkeypatch):
    sampler = request.getfixturevalue(fixture)
    seen = []
    real = sampler.transformer.inverse_transform
    monkeypatch.setattr(sampler.transformer, "inverse_transform",
                        lambda matrix, uniforms=None: seen.append(uniforms) or real(matrix, uniforms=uniforms))
    sampler.sample(10, seed=0)
    drawn = seen[0] is not None
    assert drawn == sampler.model.capabilities.draws_categories == (fixture == "ctgan")
    if drawn:
        assert seen[0].shape == (sampler.model.layout.n_softmax, sampler_module.BLOCK_ROWS)


def test_condition_on_integer_column(marginals, small_blocks):
    out = marginals.sample(50, seed=0, conditions={"education-num": "13"})
    assert len(out) == 50 and (out["education-num"] == 13).all()


def test_condition_nobody_meets(marginals, small_blocks):
    with pytest.raises(
        SynthgenError,
        match=r"no generated row met the conditions \{'age': 200\} "
        r"in 3,200 tries \(fix: relax the conditions\)",
    ):
        marginals.sample(5, seed=0, conditions={"age": 200})


@pytest.mark.parametrize("conditions", [None, {"workclass": "Private"}, {"income": ">50K", "sex": "Female"}])
def test_rows_do_not_depend_on_how_blocks_are_grouped_for_decoding(ctgan, small_blocks, monkeypatch, conditions):
    monkeypatch.setattr(sampler_module, "GROUP_BLOCKS", 1)
    one = ctgan.sample(700, seed=4, conditions=conditions)
    for group in (2, 5):
        monkeypatch.setattr(sampler_module, "GROUP_BLOCKS", group)
        pd.testing.assert_frame_equal(ctgan.sample(700, seed=4, conditions=conditions), one)
    monkeypatch.setattr(sampler_module, "GROUP_BYTES", 1)  # a block too wide for the budget: one at a time
    pd.testing.assert_frame_equal(ctgan.sample(700, seed=4, conditions=conditions), one)


def test_condition_give_up_counts_blocks_not_groups(marginals, small_blocks, monkeypatch):
    monkeypatch.setattr(sampler_module, "MAX_EMPTY_BLOCKS", 7)  # not a multiple of any group size
    with pytest.raises(SynthgenError, match=r"in 448 tries"):
        marginals.sample(5, seed=0, conditions={"age": 200})
    decoded = []
    real = sampler_module.Sampler._decode_blocks
    monkeypatch.setattr(sampler_module.Sampler, "_decode_blocks",
                        lambda self, *args: decoded.append(args[2]) or real(self, *args))
    with pytest.raises(SynthgenError):
        marginals.sample(5, seed=0, conditions={"age": 200})
    assert decoded == [1, 2, 4] and sum(decoded) >= 7  # groups grow 1, 2, 4, ... up to GROUP_BLOCKS


def test_condition_on_an_unseen_value_of_a_discrete_integer(marginals):
    with pytest.raises(ConfigError, match=r"column 'education-num' has no category 99 \(fix: use one of: "):
        marginals.sample(5, seed=0, conditions={"education-num": 99})


def test_condition_errors(marginals):
    with pytest.raises(
        ConfigError,
        match=r"condition on unknown column 'salary' \(fix: use one of: age, "
        r"workclass, fnlwgt",
    ):
        marginals.sample(5, seed=0, conditions={"salary": "high"})
    with pytest.raises(
        ConfigError,
        match=r"column 'income' has no category 'rich' "
        r"\(fix: use one of: '<=50K', '>50K'\)",
    ):
        marginals.sample(5, seed=0, conditions={"income": "rich"})
    with pytest.raises(
        ConfigError,
        match=r"conditions on continuous column 'score' are not supported "
        r"\(fix: condition on a categorical, boolean or integer column\)",
    ):
        marginals.sample(5, seed=0, conditions={"score": 1.0})
    with pytest.raises(ConfigError, match="column 'age' is integer; 'old' is not a whole number"):
        marginals.sample(5, seed=0, conditions={"age": "old"})


def test_null_rates_follow_training(marginals, nulls_frame):
    out = marginals.sample(6000, seed=0)
    for name in ("age", "workclass"):
        want = nulls_frame[name].isna().mean()
        assert want > 0.1
        assert abs(out[name].isna().mean() - want) < 0.03, name
    assert out["fnlwgt"].notna().all()  # no nulls where training had none


# ----------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_sample_to_matches_sample(ctgan, tmp_path, suffix):
    path = ctgan.sample_to(tmp_path / f"out.{suffix}", 700, seed=9)
    pd.testing.assert_frame_equal(read_table(path), ctgan.sample(700, seed=9))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_chunked_stream_equals_in_memory(ctgan, tmp_path, small_blocks, suffix):
    chunks = list(ctgan.iter_chunks(400, seed=2))
    assert [len(c) for c in chunks] == [64 * sampler_module.GROUP_BLOCKS, 400 - 64 * sampler_module.GROUP_BLOCKS]
    path = ctgan.sample_to(tmp_path / f"out.{suffix}", 400, seed=2, chunk_rows=100)
    pd.testing.assert_frame_equal(read_table(path), pd.concat(chunks, ignore_index=True))
    pd.testing.assert_frame_equal(read_table(path), ctgan.sample(400, seed=2))


def test_stream_with_conditions(ctgan, tmp_path, small_blocks):
    path = ctgan.sample_to(
        tmp_path / "rich.parquet", 300, seed=0, conditions={"income": ">50K"}, chunk_rows=50
    )
    got = read_table(path)
    pd.testing.assert_frame_equal(got, ctgan.sample(300, seed=0, conditions={"income": ">50K"}))
    assert (got["income"] == ">50K").all()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_stream_zero_rows(ctgan, tmp_path, suffix):
    path = ctgan.sample_to(tmp_path / f"none.{suffix}", 0, seed=0)
    got = read_table(path) if suffix == "parquet" else pd.read_csv(path)
    assert got.shape == (0, len(ctgan.columns)) and list(got.columns) == ctgan.columns


def test_stream_bad_condition_leaves_no_file(ctgan, tmp_path):
    with pytest.raises(ConfigError, match="has no category"):
        ctgan.sample_to(tmp_path / "out.csv", 10, seed=0, conditions={"income": "rich"})
    assert list(tmp_path.iterdir()) == []


def test_stream_refuses_overwrite(ctgan, tmp_path):
    path = ctgan.sample_to(tmp_path / "out.csv", 5, seed=0)
    with pytest.raises(SynthgenError, match="already exists"):
        ctgan.sample_to(path, 5, seed=1)
    ctgan.sample_to(path, 7, seed=1, force=True)
    assert len(read_table(path)) == 7


@pytest.mark.parametrize(("rows", "count"), [(2_500, 4), (2_000, 3), (450, 7), (0, 2)])
def test_shards_in_order_are_the_unsharded_sample(ctgan, small_blocks, tmp_path, rows, count):
    whole = ctgan.sample(rows, seed=11)
    parts = [pd.concat(list(ctgan.iter_chunks(rows, seed=11, shard=(i, count))) or [whole.iloc[:0]],
                       ignore_index=True) for i in range(count)]
    assert sum(len(p) for p in parts) == rows
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    files = [ctgan.sample_to(tmp_path / f"part-{i}.parquet", rows, seed=11, shard=(i, count)) for i in range(count)]
    back = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert len(back) == rows and list(back.columns) == list(whole.columns)


def test_shards_draw_from_disjoint_blocks(ctgan, small_blocks, monkeypatch):
    import synthgen.sampler as sampler_module

    seen: dict[int, set[int]] = {}
    original = sampler_module._block_seed

    def record(seed, block):
        seen.setdefault(current, set()).add(block)
        return original(seed, block)

    monkeypatch.setattr(sampler_module, "_block_seed", record)
    for current in range(3):
        list(ctgan.iter_chunks(2_000, seed=5, shard=(current, 3)))
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"shard": (3, 3), "seed": 1}, "is not i/K"),
    ({"shard": (0, 2)}, "needs a seed"),
    ({"shard": (0, 2), "seed": 1, "conditions": {"sex": "Male"}}, "conditions filter rows"),
])
def test_bad_shards_are_refused(ctgan, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        list(ctgan.iter_chunks(100, **kwargs))
