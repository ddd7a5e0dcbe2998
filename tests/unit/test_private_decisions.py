"""Under DP, nothing read from the rows without noise decides anything before training (issue 15.2).

Each pair of tables below is one row apart and flips one of the value-reading heuristics of the
non-private path (a kind, a datetime format, a refusal). The DP pipeline must take the same
decisions for both: the same schema, the same transformer layout (with public metadata, where the
domain holds no noise), no refusal, and warnings that carry no count or value of the rows.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from synthgen import Synthesizer, pipeline
from synthgen.dp.ledger import raw_quantities
from synthgen.errors import InvalidDataError, SynthgenWarning
from synthgen.schema import MAX_CATEGORIES, TableSchema

ROWS = 200


def _base(n: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["a", "b", "c"], n)})


def _plus(df: pd.DataFrame, row: dict) -> pd.DataFrame:
    """``df`` with one more row (missing fields copied from the first row), dtypes kept."""
    extra = pd.DataFrame([{**df.iloc[0].to_dict(), **row}]).astype(df.dtypes.to_dict())
    return pd.concat([df, extra], ignore_index=True)


def _pair(column: str, values: list, row_value, dtype: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = _base(len(values)).assign(**{column: pd.Series(values, dtype=dtype)})
    return base, _plus(base, {column: row_value})


def _ten_vs_eleven_integers():
    return _pair("n", [i % 10 for i in range(ROWS)], 10, "int64")  # 10 distinct -> category, 11 -> number


def _one_fraction():
    return _pair("f", [float(i % 50) for i in range(ROWS)], 2.5, "float64")  # integral -> integer, else continuous


def _utc_offset():
    stamps = [f"2024-01-{1 + i % 28:02d} 10:00:00+01:00" for i in range(ROWS)]
    return _pair("when", stamps, "2024-02-01 10:00:00+02:00", "object")  # one offset is kept in the format


def _constant():
    return _pair("c", ["same"] * ROWS, "other", "object")  # refused as a single value


def _id_like():
    values = [f"u{i}" for i in range(98)] + ["u0"] * 11  # 98 distinct in 109 rows: under the 90% bar
    return _pair("who", values, "u-new", "object")  # 99 in 110: an ID


def _too_many_categories():
    values = [f"k{i % MAX_CATEGORIES}" for i in range(2 * MAX_CATEGORIES)]
    return _pair("k", values, "k-new", "object")  # 5000 categories, then 5001


PAIRS = {"10 vs 11 integers": _ten_vs_eleven_integers, "one fractional value": _one_fraction,
         "UTC offset": _utc_offset, "constant": _constant, "ID-like": _id_like,
         "over 5000 categories": _too_many_categories}


def _decisions(df: pd.DataFrame, **settings) -> tuple[dict, list[str]]:
    """The DP pipeline's schema and the warnings it printed (no refusal allowed)."""
    synth = Synthesizer(model="tvae", epsilon=1.0, stats_share=0.1, batch_size=10, **settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = pipeline.checked_schema(df, synth._settings())
    return schema.to_dict(), [str(w.message) for w in caught if issubclass(w.category, SynthgenWarning)]


@pytest.mark.parametrize("pair", PAIRS)
def test_neighbours_get_the_same_schema_without_metadata(pair):
    base, neighbour = PAIRS[pair]()
    schema, notes = _decisions(base)
    assert _decisions(neighbour)[0] == schema
    for text in notes + _decisions(neighbour)[1]:  # warnings count nothing: no row count, no distinct count
        assert not any(str(n) in text for n in (len(base), len(neighbour), 98, 99, 10, 11)), text


@pytest.mark.parametrize("pair", PAIRS)
def test_non_private_path_does_flip(pair):
    """The control: these pairs do flip today's value-reading heuristics."""
    base, neighbour = PAIRS[pair]()

    def outcome(df):
        try:
            return pipeline.checked_schema(df, Synthesizer(model="tvae", batch_size=10)._settings()).to_dict()
        except InvalidDataError as exc:
            return str(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert outcome(base) != outcome(neighbour)


def _public(df: pd.DataFrame, **declared) -> dict:
    """Public SDV metadata for the test tables (bounds, categories, nullable all declared)."""
    columns = {"x": {"sdtype": "numerical", "min_value": -5, "max_value": 5, "nullable": False},
               "group": {"sdtype": "categorical", "categories": ["a", "b", "c"], "nullable": False}}
    columns.update(declared)
    return {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "public": True,
            "columns": {c: columns[c] for c in df.columns}}


def _layout(df: pd.DataFrame, meta: dict, tmp_path) -> tuple[dict, dict]:
    """Schema and transformer layout of the DP pipeline with public metadata (no noise in the domain)."""
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    synth = Synthesizer(model="tvae", epsilon=1.0, batch_size=10, metadata=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthgenWarning)
        settings = synth._settings()
        schema = pipeline.checked_schema(df, settings)
        domain = pipeline.dp_domain(df, schema, settings)[1]
        transformer = pipeline.fitted_transformer(df, schema, settings.seed, domain)
        transformer.transform(df)  # encoding takes every row without a refusal
    return transformer.schema.to_dict(), transformer.layout.to_dict()


NEIGHBOURS = {
    "outside the public bounds": ({"x": 50.0}, {}),
    "an unknown category": ({"group": "zzz"}, {}),
    "a null where the metadata says none": ({"group": None}, {}),
    "a numeric null where the metadata says none": ({"x": np.nan}, {}),
    "over 5000 public categories": ({"k": "k-new"}, {"k": {"sdtype": "categorical", "nullable": False, "categories":
                                                           [f"k{i}" for i in range(MAX_CATEGORIES)] + ["k-new"]}}),
}


@pytest.mark.parametrize("case", NEIGHBOURS)
def test_neighbours_get_the_same_layout_with_public_metadata(case, tmp_path):
    row, declared = NEIGHBOURS[case]
    base = _base(2 * MAX_CATEGORIES if declared else ROWS)
    if declared:
        base = base.assign(k=[f"k{i % MAX_CATEGORIES}" for i in range(len(base))])
    meta = _public(base, **declared)
    assert _layout(base, meta, tmp_path) == _layout(_plus(base, row), meta, tmp_path)


def test_datetime_format_is_never_guessed_from_private_values(tmp_path):
    df = _base().assign(when=[f"2024-01-{1 + i % 28:02d}" for i in range(ROWS)])
    meta = _public(df, when={"sdtype": "datetime", "min_value": 0, "max_value": 1, "nullable": False})
    with pytest.raises(InvalidDataError, match="'when'.*not guessed from the private values.*datetime_format"):
        _layout(df, meta, tmp_path)
    meta["columns"]["when"]["datetime_format"] = "%Y-%m-%d"
    meta["columns"]["when"].update(min_value=1.7e18, max_value=1.8e18)
    _layout(df, meta, tmp_path)


def test_kinds_come_from_storage_dtypes():
    df = pd.DataFrame({"i": [1, 2] * 10, "f": [1.0, 2.0] * 10, "b": [True, False] * 10, "s": ["1", "2"] * 10,
                       "t": pd.date_range("2024-01-01", periods=20)})
    kinds = {c.name: c.kind for c in TableSchema.detect(df, private=True).columns}
    assert kinds == {"i": "integer", "f": "continuous", "b": "boolean", "s": "categorical", "t": "datetime"}


def test_ledger_names_what_was_read_without_noise():
    listed = " ".join(raw_quantities(123, kinds_from_metadata=False))
    assert "column names" in listed and "storage dtypes" in listed and "row count (123)" in listed
