"""Property: any small DataFrame either trains and samples within its own domain, or is refused cleanly.

Hypothesis draws tables of 1-6 columns of mixed kinds (floats with NaN, int64, nullable Int64,
categories as object or string[pyarrow] with unicode, booleans and nullable booleans, naive and
tz-aware datetimes, date strings) and 0-60 rows. For each, ``Synthesizer(model="tvae", epochs=1)``
either raises a ``SynthgenError`` (``InvalidDataError``, ``ConfigError``: a user error with a
fix) or trains, and then 20 sampled rows have the same columns in the same order, the same
dtypes, categories from the seen set, numbers and datetimes within the seen range, and nulls only
where the table had them. Any other exception fails the test.

The examples are derandomized (the same ones on every run, no example database), so CI is
deterministic; about 25 s on one core.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synthgen import Synthesizer
from synthgen.errors import SynthgenError

KINDS = ["float", "float32", "int", "Int64", "uint64", "object", "string", "category", "mixed", "bool", "boolean",
         "datetime", "datetime_tz", "date_str"]
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8)
#: a few values per categorical column, so that they repeat (unicode, emoji and the empty string included)
CATEGORY_POOLS = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=5),
                          min_size=1, max_size=6, unique=True)
STAMPS = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))


def _maybe_null(values: st.SearchStrategy, nulls: bool) -> st.SearchStrategy:
    return st.one_of(st.none(), values) if nulls else values


@st.composite
def column(draw: st.DrawFn, kind: str, n: int) -> pd.Series:
    """``n`` values of one kind, with nulls or not."""
    nulls = draw(st.booleans())
    if kind in ("float", "float32"):
        low, high = draw(st.sampled_from([(-1.0, 1.0), (-2.0**40, 2.0**40), (None, None)]))  # None: to 1.8e308
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False, width=32 if kind == "float32" else 64)
        values = draw(st.lists(_maybe_null(floats, nulls), min_size=n, max_size=n))
        return pd.Series([np.nan if v is None else v for v in values], dtype="float32" if kind == "float32" else float)
    if kind in ("int", "Int64"):
        low, high = draw(st.sampled_from([(0, 5), (-1000, 1000), (-(2**62), 2**62)]))
        ints = st.integers(low, high)
        if kind == "int":
            return pd.Series(draw(st.lists(ints, min_size=n, max_size=n)), dtype="int64")
        return pd.Series(draw(st.lists(_maybe_null(ints, nulls), min_size=n, max_size=n)), dtype="Int64")
    if kind == "uint64":
        ints = st.integers(2**64 - 2**20, 2**64 - 1) | st.integers(0, 2**64 - 1)
        return pd.Series(draw(st.lists(ints, min_size=n, max_size=n)), dtype="uint64")
    if kind in ("object", "string", "category", "mixed"):
        pool = draw(CATEGORY_POOLS)
        if kind == "mixed":  # numbers and text in one column
            pool = pool + draw(st.lists(st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False), max_size=4))
        values = draw(st.lists(_maybe_null(st.sampled_from(pool), nulls), min_size=n, max_size=n))
        return pd.Series(values, dtype={"string": "string[pyarrow]", "category": "category"}.get(kind, object))
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "boolean":
        return pd.Series(draw(st.lists(_maybe_null(st.booleans(), nulls), min_size=n, max_size=n)), dtype="boolean")
    stamps = pd.Series(pd.to_datetime(draw(st.lists(_maybe_null(STAMPS, nulls), min_size=n, max_size=n))),
                       dtype="datetime64[ns]")
    if kind == "datetime_tz":
        return stamps.dt.tz_localize("UTC").dt.tz_convert("America/Sao_Paulo")
    if kind == "date_str":
        return stamps.dt.strftime("%Y-%m-%d").astype(object).where(stamps.notna(), None)
    return stamps


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 60))
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    return pd.DataFrame({name: draw(column(draw(st.sampled_from(KINDS)), n)) for name in names}, index=range(n))


def check_sample(real: pd.DataFrame, fake: pd.DataFrame) -> None:
    assert list(fake.columns) == list(real.columns)
    assert len(fake) == 20
    for name in real.columns:
        r, f = real[name], fake[name]
        assert f.dtype == r.dtype, (name, r.dtype, f.dtype)  # objects: string[pyarrow] and [python] are both "string"
        if not r.isna().any():
            assert not f.isna().any(), f"{name!r}: nulls appeared"
        r, f = r.dropna(), f.dropna()
        if r.map(type).eq(str).all() and pd.to_datetime(r, format="%Y-%m-%d", errors="coerce").notna().all():
            r, f = pd.to_datetime(r, format="%Y-%m-%d"), pd.to_datetime(f, format="%Y-%m-%d")  # date strings
        if pd.api.types.is_bool_dtype(r.dtype) or not (pd.api.types.is_numeric_dtype(r.dtype)
                                                       or pd.api.types.is_datetime64_any_dtype(r.dtype)):
            assert set(f.tolist()) <= set(r.tolist()), f"{name!r}: unseen {set(f.tolist()) - set(r.tolist())}"
        elif len(f):
            assert min(f.tolist()) >= min(r.tolist()) and max(f.tolist()) <= max(r.tolist()), name


# CI: the same 25 examples on every run. To hunt for new failures, SYNTHGEN_HYPOTHESIS=explore (500 random
# examples, or SYNTHGEN_HYPOTHESIS_EXAMPLES; a failure prints a blob to reproduce it with @reproduce_failure).
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
settings.register_profile("explore", settings.get_profile("ci"), derandomize=False,
                          max_examples=int(os.environ.get("SYNTHGEN_HYPOTHESIS_EXAMPLES", 500)))
PROFILE = settings.get_profile(os.environ.get("SYNTHGEN_HYPOTHESIS", "ci"))


@pytest.mark.slow  # 25 fits, about 25 s
@PROFILE
@given(tables())
def test_train_then_sample_keeps_the_domain_or_refuses_cleanly(real: pd.DataFrame) -> None:
    params: dict[str, Any] = {"model": "tvae", "epochs": 1, "batch_size": min(len(real), 16) or 1,
                              "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identifier and data warnings: what is checked is the result
        try:
            synth = Synthesizer(**params).fit(real.copy())
        except SynthgenError as exc:
            assert "(fix: " in str(exc), str(exc)
            event(f"refused: {type(exc).__name__}")  # pytest --hypothesis-show-statistics
            return
        event("trained")
        fake = synth.sample(20, seed=0)
    check_sample(real, fake)
