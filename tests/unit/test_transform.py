"""TabularTransformer round trips, its layout contract and its JSON persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthgen.errors import NotFittedError
from synthgen.schema import ColumnSpec, TableSchema
from synthgen.transform import OutputLayout, Span, TabularTransformer
from synthgen.transform.encoders import ModeNormalizer, OneHot
from synthgen.transform.layout import SPAN_KINDS
from synthgen.transform.transformer import DISCRETE_INTEGER_VALUES, argmax_rows, draw_rows

#: round-trip error allowed on a continuous value, as a share of the column's std
TOLERANCE = 1e-3


def round_trip(
    df: pd.DataFrame, schema: TableSchema | None = None
) -> tuple[TabularTransformer, pd.DataFrame]:
    tr = TabularTransformer(seed=0).fit(df, schema or TableSchema.detect(df))
    return tr, tr.inverse_transform(tr.transform(df, seed=0))


@pytest.fixture(scope="module")
def _table(_adult_nulls) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = len(_adult_nulls)
    days = pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    when = pd.Series(pd.to_datetime("2019-01-01") + days)
    out = _adult_nulls.assign(
        score=rng.normal(3.0, 2.0, n),
        vip=rng.random(n) < 0.3,
        signup=when.dt.strftime("%Y-%m-%d"),
        last_seen=when + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
    )
    out.loc[rng.choice(n, 30, replace=False), "score"] = np.nan
    out.loc[rng.choice(n, 40, replace=False), "signup"] = np.nan
    return out


@pytest.fixture
def table(_table) -> pd.DataFrame:
    """Adult with nulls plus a float column, a boolean and datetimes (string and datetime64)."""
    return _table.copy()


@pytest.fixture(scope="module")
def table_trip(_table) -> tuple[TabularTransformer, pd.DataFrame]:
    """(transformer fitted on the table, the table encoded and decoded again)."""
    return round_trip(_table)


def test_round_trip_categoricals_exact(table, table_trip):
    tr, back = table_trip
    schema = tr.schema
    cats = [c.name for c in schema.columns if c.kind in ("categorical", "boolean")]
    assert len(cats) >= 9
    pd.testing.assert_frame_equal(back[cats], table[cats])


def test_round_trip_numbers_within_tolerance(table, table_trip):
    tr, back = table_trip
    schema = tr.schema
    for spec in schema.columns:
        if spec.kind not in ("continuous", "integer"):
            continue
        real, got = table[spec.name], back[spec.name]
        assert got.dtype == real.dtype, spec.name
        assert got.isna().equals(real.isna()), spec.name
        err = (got - real).abs().max() / real.std()
        assert err <= TOLERANCE, (spec.name, err)


def test_integers_come_back_integral_in_range(adult):
    schema = TableSchema.detect(adult)
    tr, back = round_trip(adult, schema)
    ints = [c.name for c in schema.columns if c.kind == "integer"]
    assert {"age", "fnlwgt", "capital-gain", "hours-per-week"} <= set(ints)
    pd.testing.assert_frame_equal(back[ints], adult[ints])  # exact after rounding
    # arbitrary model output decodes to whole numbers inside the seen range
    noise = np.random.default_rng(0).normal(0, 3, (200, tr.layout.dim)).astype(np.float32)
    out = tr.inverse_transform(noise)
    for name in ints:
        assert out[name].dtype == adult[name].dtype
        assert out[name].between(adult[name].min(), adult[name].max()).all(), name


def test_decoded_values_clipped_to_declared_bounds():
    df = pd.DataFrame({"x": np.linspace(10, 20, 50)})
    schema = TableSchema([ColumnSpec("x", "continuous", "float64", min_value=0.0, max_value=25.0)])
    tr = TabularTransformer().fit(df, schema)
    out = tr.inverse_transform(np.random.default_rng(0).normal(0, 5, (500, tr.layout.dim)))
    assert out["x"].between(0.0, 25.0).all()
    assert out["x"].min() < 10.0 or out["x"].max() > 20.0  # the declared range is really used


def test_nulls_preserved(table, table_trip):
    _, back = table_trip
    for name in ("age", "workclass", "score", "signup"):
        assert table[name].isna().sum() > 0
        assert back[name].isna().equals(table[name].isna()), name
    assert back["age"].dtype == np.float64  # an int column that had nulls stays float


def test_datetime_strings_keep_their_format(table, table_trip):
    _, back = table_trip
    assert back["signup"].dtype == object
    pd.testing.assert_series_equal(back["signup"], table["signup"])  # exact, not off by a day


def test_datetime64_round_trip(table, table_trip):
    _, back = table_trip
    assert back["last_seen"].dtype == table["last_seen"].dtype
    err = (back["last_seen"] - table["last_seen"]).abs().max()
    assert err <= table["last_seen"].std() * TOLERANCE


def test_tz_aware_datetime_keeps_zone():
    stamps = pd.Series(pd.date_range("2020-01-01", periods=60, freq="37h", tz="Europe/Paris"))
    _, back = round_trip(pd.DataFrame({"t": stamps}))
    assert str(back["t"].dtype) == "datetime64[ns, Europe/Paris]"
    assert (back["t"] - stamps).abs().max() < pd.Timedelta(minutes=1)


def test_rare_far_tail_value_round_trips():
    rng = np.random.default_rng(0)
    gain = np.zeros(500, dtype=np.int64)
    gain[:40] = rng.integers(1000, 5000, 40)
    gain[7] = 99999
    df = pd.DataFrame({"gain": gain, "x": rng.normal(size=500)})
    tr, back = round_trip(df)
    assert back["gain"].iloc[7] == 99999
    assert (back["gain"] == df["gain"]).all()


def test_unseen_category_encodes_to_zeros(adult):
    tr = TabularTransformer().fit(adult, TableSchema.detect(adult))
    row = adult.iloc[:1].assign(race="Martian")
    start, width = tr.layout.cond_spans[tr.category_index("race", "White")[0]]
    assert tr.transform(row)[0, start : start + width].sum() == 0


# ----------------------------------------------------------------------------- layout
def test_layout_is_consistent(table, table_trip):
    tr, _ = table_trip
    layout = tr.layout
    assert layout.dim == sum(s.width for s in layout.spans) == tr.transform(table).shape[1]
    assert all(s.kind in SPAN_KINDS for s in layout.spans)
    assert all((s.activation == "tanh") == (s.kind == "value") for s in layout.spans)
    assert len(layout.tanh_idx) + len(layout.softmax_idx) == layout.dim
    assert sorted(np.r_[layout.tanh_idx, layout.softmax_idx]) == list(range(layout.dim))
    schema = tr.schema
    one_hot = {c.name for c in schema.columns if c.kind in ("categorical", "boolean")
               or (c.kind == "integer" and table[c.name].nunique() <= DISCRETE_INTEGER_VALUES)}
    assert "education-num" in one_hot and "age" not in one_hot
    for span in layout.spans:
        name = schema.columns[span.column].name
        expected = ("category",) if name in one_hot else ("value", "mode", "null")
        assert span.kind in expected, (span, name)
    null_columns = {schema.columns[s.column].name for s in layout.spans if s.kind == "null"}
    assert null_columns == {"age", "score", "signup"}  # only numeric columns that had nulls
    conds = [s for s in layout.spans if s.kind in ("category", "null")]
    assert layout.cond_dim == sum(s.width for s in conds)
    assert [w for _, w in layout.cond_spans] == [s.width for s in conds]
    assert len(layout.cond_spans) == len(one_hot) + len(null_columns)
    assert layout.n_softmax == sum(s.activation == "softmax" for s in layout.spans)


def test_encoded_blocks_are_one_hot(adult_transformer, adult_matrix):
    layout = adult_transformer.layout
    for span, start in zip(layout.spans, layout.starts, strict=True):
        block = adult_matrix[:, start : start + span.width]
        if span.activation == "softmax":
            assert ((block == 0) | (block == 1)).all() and (block.sum(axis=1) == 1).all()
        else:
            assert np.abs(block).max() <= 0.99


def test_layout_dict_round_trip(adult_transformer):
    layout = adult_transformer.layout
    again = OutputLayout.from_dict(json.loads(json.dumps(layout.to_dict())))
    assert again == layout
    assert again.dim == layout.dim and again.cond_dim == layout.cond_dim
    np.testing.assert_array_equal(again.softmax_segment, layout.softmax_segment)
    assert OutputLayout([Span(1, "tanh", "value", 0)]) != layout


def test_layout_needs_fit():
    with pytest.raises(NotFittedError, match="the transformer is not fitted"):
        _ = TabularTransformer().layout


# ----------------------------------------------------------------------------- persistence
def test_dict_round_trip_gives_identical_output(table):
    tr = TabularTransformer(seed=3).fit(table, TableSchema.detect(table))
    again = TabularTransformer.from_dict(json.loads(json.dumps(tr.to_dict(), allow_nan=False)))
    assert again.layout == tr.layout
    assert again.schema == tr.schema
    matrix = np.random.default_rng(0).normal(0, 2, (300, tr.layout.dim)).astype(np.float32)
    pd.testing.assert_frame_equal(again.inverse_transform(matrix), tr.inverse_transform(matrix))
    np.testing.assert_array_equal(again.transform(table, seed=1), tr.transform(table, seed=1))


def test_category_lookup(adult, adult_transformer, adult_matrix):
    tr = adult_transformer
    span_no, offset = tr.category_index("income", ">50K")
    start, width = tr.layout.cond_spans[span_no]
    assert tr.categories("income")[offset] == ">50K"
    rich = (adult["income"] == ">50K").to_numpy()
    assert 0 < rich.sum() < len(adult)
    np.testing.assert_array_equal(adult_matrix[:, start + offset] == 1, rich)
    assert tr.category_index("age", 30) is None
    assert tr.categories("age") is None
    with pytest.raises(KeyError):
        tr.category_index("income", "a lot")


# ----------------------------------------------------------------------------- encoders
def test_one_hot_orders_by_frequency_null_last():
    enc = OneHot().fit(np.array(["b", None, "a", "b", "c", "b", "a"], dtype=object))
    assert enc.categories == ["b", "a", "c", None]
    np.testing.assert_array_equal(enc.codes(np.array(["c", None, "z"], dtype=object)), [2, 3, -1])


def test_one_hot_numpy_categories_are_json_ready():
    enc = OneHot().fit(np.array([np.int64(3), np.int64(5), np.int64(3)], dtype=object))
    assert enc.categories == [3, 5] and type(enc.categories[0]) is int
    json.dumps(enc.categories)


def test_mode_normalizer_finds_separate_modes():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(-50, 1, 400), rng.normal(50, 1, 400)]
    enc = ModeNormalizer(seed=0).fit(values)
    assert enc.n_modes >= 2
    assert np.isclose(enc.weights.sum(), 1.0)
    alpha, mode = enc.transform(values, np.random.default_rng(0))
    assert np.abs(alpha).max() <= 0.99
    np.testing.assert_allclose(enc.inverse(alpha, mode), values, atol=1e-6)
    again = ModeNormalizer.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(again.means, enc.means)


def test_few_valued_integers_are_one_hot_and_exact():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"grade": rng.choice([1, 2, 3, 5, 8, 13], 500, p=[0.002, 0.2, 0.3, 0.2, 0.2, 0.098]),
                       "wide": rng.integers(0, 1000, 500)})
    df.loc[0, "grade"] = 1  # a rare edge value
    tr = TabularTransformer(seed=0).fit(df, TableSchema.detect(df))
    kinds = {tr.schema.columns[s.column].name: s.kind for s in tr.layout.spans}
    assert kinds["grade"] == "category" and kinds["wide"] != "category"
    assert tr.categories("grade") is not None and 1 in tr.categories("grade")
    back = tr.inverse_transform(tr.transform(df, seed=0))
    assert back["grade"].tolist() == df["grade"].tolist() and back["grade"].dtype == df["grade"].dtype
    declared = TableSchema([ColumnSpec("grade", "integer", "int64", min_value=0, max_value=20),
                            ColumnSpec("wide", "integer", "int64")])
    assert TabularTransformer(seed=0).fit(df, declared).categories("grade") is None  # bounds given: a range


def test_nullable_columns_decode_to_one_dtype_with_or_without_nulls():
    """Chunks of one sample must share dtypes (a Parquet file takes one schema)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"n": pd.array(rng.integers(0, 1000, 400), dtype="Int64"),
                       "k": pd.array(rng.integers(0, 3, 400), dtype="Int64")})
    df.loc[:9, ["n", "k"]] = pd.NA
    tr = TabularTransformer(seed=0).fit(df, TableSchema.detect(df))
    encoded = tr.transform(df, seed=0)
    with_nulls, without = tr.inverse_transform(encoded[:20]), tr.inverse_transform(encoded[20:])
    assert with_nulls["n"].isna().any() and not without["n"].isna().any()
    assert with_nulls.dtypes.to_dict() == without.dtypes.to_dict()
    assert str(without["n"].dtype) == "Int64"


@pytest.mark.slow
def test_dp_transformer_round_trips_its_encoding():
    """The clip of a small-range DP integer column is saved, so a loaded transformer encodes the same."""
    import json

    from synthgen import Synthesizer
    from synthgen.datasets import load_adult
    from synthgen.transform import TabularTransformer

    df = load_adult().sample(1500, random_state=0)
    fitted = Synthesizer(model="tvae", epochs=1, batch_size=300, seed=2, epsilon=5, stats_share=0.1,
                         deterministic=True).fit(df).transformer
    loaded = TabularTransformer.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert np.array_equal(fitted.transform(df, seed=2), loaded.transform(df, seed=2))


@pytest.mark.parametrize("k", [1, 2, 7, 42])
def test_argmax_rows_matches_numpy_including_ties(k):
    block = np.random.default_rng(k).integers(0, 4, size=(k, 5000)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(argmax_rows(block), block.argmax(axis=0))


def test_draw_rows_follows_the_softmax_of_each_column():
    cases = {"plain": np.array([2.0, 0.0, -np.inf, -1.0], dtype=np.float32),
             "large": np.array([900.0, 898.0, 880.0], dtype=np.float32)}  # exp would overflow unshifted
    n = 200_000
    for name, column in cases.items():
        block = np.ascontiguousarray(np.repeat(column[:, None], n, axis=1))
        got = np.bincount(draw_rows(block, np.random.default_rng(0).random(n, dtype=np.float32)),
                          minlength=len(column)) / n
        want = np.exp(column - column.max()) / np.exp(column - column.max()).sum()
        np.testing.assert_allclose(got, want, atol=4 * np.sqrt(0.25 / n), err_msg=name)  # 4 sigma
        assert got[want == 0].sum() == 0  # probability 0 (here -inf): never drawn
    np.testing.assert_array_equal(draw_rows(np.zeros((1, 9), np.float32), np.full(9, 0.5, np.float32)),
                                  np.zeros(9, dtype=np.intp))
    edge = np.array([[0.0, 0.0], [0.0, 0.0]], dtype=np.float32)  # two columns of [1/2, 1/2]
    np.testing.assert_array_equal(draw_rows(edge, np.array([0.0, 0.999999], np.float32)), [0, 1])


def test_draw_rows_edges():
    below_one = np.nextafter(np.float32(1), np.float32(0))
    last_zero = np.array([[0.0], [0.0], [-np.inf]], dtype=np.float32)  # last row: probability 0
    assert draw_rows(last_zero, np.array([below_one])) == 1
    first_zero = np.array([[-np.inf], [0.0]], dtype=np.float32)  # first row: probability 0
    assert draw_rows(first_zero, np.array([0.0], np.float32)) == 1
    pair = np.repeat(np.array([[0.0], [np.log(3.0)]], dtype=np.float32), 3, axis=1)  # P(row 1) = 3/4
    np.testing.assert_array_equal(draw_rows(np.ascontiguousarray(pair), np.array([0.24, 0.26, 0.99], np.float32)),
                                  [0, 1, 1])


def test_draws_follow_the_span_order_with_nullable_numeric_columns():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": np.where(rng.random(400) < 0.3, np.nan, rng.normal(50, 5, 400)),
                       "c": rng.choice(["a", "b", "c"], 400)})
    tr = TabularTransformer().fit(df, TableSchema.detect(df))
    kinds = [s.kind for s in tr.layout.spans if s.activation == "softmax"]
    assert kinds == ["mode", "null", "category"]
    n = 50
    logits = np.zeros((n, tr.layout.dim), dtype=np.float32)  # every value equally likely
    below_one = np.nextafter(np.float32(1), np.float32(0))
    uniforms = np.array([[0.0] * n, [below_one] * n, [below_one] * n], dtype=np.float32)
    out = tr.inverse_transform(logits, uniforms=uniforms)
    assert out["x"].isna().all()  # the null span got the uniforms near 1: "null"
    assert (out["c"] == tr.categories("c")[-1]).all()  # the category span too: its last category
    uniforms[1] = 0.0
    assert out.shape == (n, 2) and tr.inverse_transform(logits, uniforms=uniforms)["x"].notna().all()


def test_inverse_transform_draws_one_hot_blocks_only_when_given_uniforms(adult_transformer):
    tr = adult_transformer
    n = 4000
    logits = np.zeros((n, tr.layout.dim), dtype=np.float32)  # every category equally likely
    argmax = tr.inverse_transform(logits)
    assert (argmax["workclass"] == argmax["workclass"].iloc[0]).all()  # argmax: always the first
    drawn = tr.inverse_transform(logits, uniforms=np.random.default_rng(0).random((tr.layout.n_softmax, n)))
    assert drawn["workclass"].nunique() == len(tr.categories("workclass"))
    assert drawn["income"].value_counts(normalize=True).min() > 0.45
    with pytest.raises(ValueError, match="uniforms must have shape"):
        tr.inverse_transform(logits, uniforms=np.zeros((2, n)))


def test_numeric_range_and_categories_describe_what_decoding_yields(adult):
    tr = TabularTransformer().fit(adult, TableSchema.detect(adult))
    assert tr.numeric_range("age") == (float(adult["age"].min()), float(adult["age"].max()), False)
    assert tr.numeric_range("sex") is None and set(tr.categories("sex")) == set(adult["sex"])
    assert tr.categories("age") is None


# ----------------------------------------------------------------------------- point masses (issue 16)
def _zero_inflated(n: int = 5000, seed: int = 0) -> np.ndarray:
    """capital-gain's shape: 90% zeros, a top code of 99999 (1%), the rest log-normal from 114 up."""
    rng = np.random.default_rng(seed)
    rest = np.round(114 + rng.lognormal(7, 1, n))
    return np.where(rng.random(n) < 0.9, 0.0, np.where(rng.random(n) < 0.1, 99999.0, rest))


def test_point_mass_rule_finds_spikes_not_dense_values():
    from synthgen.transform.encoders import point_masses

    rng = np.random.default_rng(0)
    assert point_masses(_zero_inflated()).tolist() == [0.0, 99999.0]
    pdays = np.where(rng.random(5000) < 0.8, -1.0, rng.integers(1, 400, 5000))  # a "never contacted" sentinel
    assert point_masses(pdays).tolist() == [-1.0]
    assert len(point_masses(rng.integers(17, 90, 5000).astype(float))) == 0  # age: dense, no spike
    assert len(point_masses(rng.normal(size=5000))) == 0
    assert len(point_masses(np.array([0.0] * 30))) == 0  # nothing left for a continuous part


def test_a_sparse_discrete_column_is_all_point_masses():
    """A credit limit in multiples of 10,000: every value is a mass, and values come back exactly."""
    rng = np.random.default_rng(0)
    limits = rng.choice(np.arange(1, 51) * 10_000.0, 5000, p=np.r_[np.full(49, 0.9 / 49), 0.1])
    enc = ModeNormalizer(seed=0).fit(limits)
    assert enc.masses.tolist() == sorted(set(limits.tolist())) and len(enc.means) == 0
    alpha, mode = enc.transform(limits, rng)
    assert np.array_equal(enc.inverse(alpha, mode), limits)
    out = enc.inverse(rng.uniform(-1, 1, 1000), rng.integers(0, enc.n_modes, 1000))
    assert np.isin(out, enc.masses).all()  # nothing between the multiples of 10,000
    _, near = enc.transform(np.array([123_456.0]), rng)  # a value seen after fitting: the nearest mass
    assert enc.masses[near].tolist() == [120_000.0]
    back = ModeNormalizer.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert np.array_equal(back.inverse(alpha, mode), limits)
    from synthgen.transform.encoders import point_masses

    assert len(point_masses(rng.integers(-2, 9, 5000).astype(float))) == 0  # dense small integers (pay status codes)
    grades = rng.choice([1.5, 2.0, 2.5, 3.0, 3.5], 5000)  # few values, not whole numbers
    assert point_masses(grades).tolist() == [1.5, 2.0, 2.5, 3.0, 3.5]


def test_many_round_amounts_are_point_masses():
    rng = np.random.default_rng(0)
    rounds = np.arange(1, 21) * 500.0
    payments = np.where(rng.random(20_000) < 0.4, rng.choice(rounds, 20_000), np.round(rng.lognormal(8, 1, 20_000)))
    assert set(rounds) <= set(ModeNormalizer(seed=0).fit(payments).masses)  # 20 of them, past the old cap of 5


def test_point_masses_come_back_exactly_and_nothing_lands_in_the_gap():
    values = _zero_inflated()
    enc = ModeNormalizer(seed=0).fit(values)
    assert enc.masses.tolist() == [0.0, 99999.0] and enc.rest[0] > 114
    alpha, mode = enc.transform(values, np.random.default_rng(0))
    assert np.array_equal(enc.inverse(alpha, mode)[values == 0], values[values == 0])
    # any model output decodes to a point mass or into the rest's range: never into (0, 114) or past the rest
    rng = np.random.default_rng(1)
    out = enc.inverse(rng.uniform(-1, 1, 100_000), rng.integers(0, enc.n_modes, 100_000))
    gap = ((out > 0) & (out < enc.rest[0])) | ((out > enc.rest[1]) & (out < 99999))
    assert not gap.any() and set(np.unique(out[np.isin(out, enc.masses)])) == {0.0, 99999.0}


def test_transformer_layout_counts_point_masses_as_modes():
    df = pd.DataFrame({"gain": _zero_inflated(), "x": np.random.default_rng(2).normal(size=5000)})
    tr = TabularTransformer(seed=0).fit(df, TableSchema.detect(df))
    enc = tr._encoders[0]
    mode_span = tr.layout.spans[1]
    assert mode_span.kind == "mode" and mode_span.width == len(enc.means) + 2
    back = tr.inverse_transform(tr.transform(df))
    assert (back["gain"] == 0).mean() == pytest.approx((df["gain"] == 0).mean())


def test_files_without_point_masses_load_and_decode_as_before():
    """A transformer saved before point masses existed (no "masses" key) decodes exactly as it did."""
    old = {"means": [0.0, 10.0], "stds": [1.0, 2.0], "weights": [0.5, 0.5]}
    enc = ModeNormalizer.from_dict(old)
    assert enc.n_modes == 2 and enc.to_dict() == old
    alpha, mode = np.array([0.5, -0.25]), np.array([0, 1])
    assert np.allclose(enc.inverse(alpha, mode), [0.5 * 4 * 1.0, 10.0 - 0.25 * 4 * 2.0])
    fitted = ModeNormalizer(seed=0).fit(_zero_inflated())
    assert ModeNormalizer.from_dict(json.loads(json.dumps(fitted.to_dict()))).to_dict() == fitted.to_dict()
