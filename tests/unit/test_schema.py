"""Column kind detection, SDV metadata in and out, and validation that lists every problem."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthgen.errors import InvalidDataError
from synthgen.schema import (
    LOW_CARDINALITY_INT,
    ColumnSpec,
    TableSchema,
    detect_column,
    load_metadata,
    schema_from_metadata,
    validate,
)

N = 40


def kinds(schema: TableSchema) -> dict[str, str]:
    return {c.name: c.kind for c in schema.columns}


@pytest.fixture
def mixed() -> pd.DataFrame:
    """One column of every kind, each with a pattern (no IDs, no constants)."""
    rng = np.random.default_rng(0)
    days = pd.Series(
        pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 400, N), unit="D")
    )
    return pd.DataFrame(
        {
            "height": rng.normal(170, 10, N),
            "income": rng.integers(0, 50, N) * 1000 + 7,
            "city": rng.choice(["Oslo", "Lima", "Pune"], N),
            "stars": rng.integers(1, 6, N),
            "member": rng.random(N) < 0.5,
            "joined": days.dt.strftime("%Y-%m-%d"),
            "seen": days + pd.to_timedelta(rng.integers(0, 86400, N), unit="s"),
        }
    )


# ----------------------------------------------------------------------------- detection
def test_detect_kinds(mixed):
    schema = TableSchema.detect(mixed)
    assert schema.names == list(mixed.columns)
    assert kinds(schema) == {
        "height": "continuous",
        "income": "integer",
        "city": "categorical",
        "stars": "categorical",
        "member": "boolean",
        "joined": "datetime",
        "seen": "datetime",
    }
    assert schema["joined"].datetime_format == "%Y-%m-%d"
    assert schema["seen"].datetime_format is None
    assert schema["seen"].dtype == "datetime64[ns]"
    assert schema["stars"].dtype == "int64"  # restored as int on sampling


def test_low_cardinality_threshold():
    few = pd.Series(np.arange(LOW_CARDINALITY_INT).repeat(3))
    many = pd.Series(np.arange(LOW_CARDINALITY_INT + 1).repeat(3))
    assert detect_column(few, "x").kind == "categorical"
    assert detect_column(many, "x").kind == "integer"


def test_integral_floats_with_nulls_are_integer():
    s = pd.Series(np.r_[np.arange(30, dtype=float), np.nan])
    spec = detect_column(s, "age")
    assert (spec.kind, spec.dtype) == ("integer", "float64")


def test_object_booleans_with_nulls_are_boolean():
    s = pd.Series([True, False, None] * 5, dtype=object)
    assert detect_column(s, "flag").kind == "boolean"


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["2020-01-02", "2020-12-31"], "%Y-%m-%d"),
        (["01/02/2020 10:00", "12/31/2020 11:30"], "%m/%d/%Y %H:%M"),
        # the first value is ambiguous; a later one shows the day comes first
        (["01/02/2020", "13/02/2020"], "%d/%m/%Y"),
    ],
)
def test_datetime_strings_detected_with_format(values, fmt):
    spec = detect_column(pd.Series(values), "when")
    assert (spec.kind, spec.datetime_format) == ("datetime", fmt)


@pytest.mark.parametrize("values", [["2020-01-02", "soon"], ["A-1", "B-2"], ["12", "13"]])
def test_non_dates_stay_categorical(values):
    assert detect_column(pd.Series(values), "c").kind == "categorical"


def test_tz_aware_datetime64_is_datetime():
    s = pd.Series(pd.date_range("2020-01-01", periods=5, tz="Europe/Paris"))
    spec = detect_column(s, "t")
    assert spec.kind == "datetime" and spec.dtype == "datetime64[ns, Europe/Paris]"


def test_schema_dict_round_trip(mixed):
    schema = TableSchema.detect(mixed)
    schema.columns[0].min_value = 0.0
    again = TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert "datetime_format" not in schema.to_dict()["columns"][0]  # None fields are left out


# ----------------------------------------------------------------------------- SDV metadata
def test_sdv_metadata_round_trip(mixed):
    schema = TableSchema.detect(mixed)
    meta = schema.to_sdv_metadata()
    assert meta["METADATA_SPEC_VERSION"] == "SINGLE_TABLE_V1"
    assert meta["columns"]["height"] == {"sdtype": "numerical", "computer_representation": "Float"}
    assert meta["columns"]["income"] == {"sdtype": "numerical", "computer_representation": "Int64"}
    assert meta["columns"]["joined"] == {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"}
    assert schema_from_metadata(json.loads(json.dumps(meta)), mixed) == schema


def test_read_single_table_metadata_file(tmp_path, mixed):
    meta = {
        "columns": {
            "height": {"sdtype": "numerical", "min_value": 0, "max_value": 300},
            "income": {"sdtype": "numerical", "computer_representation": "UInt32"},
            "city": {"sdtype": "categorical"},
            "stars": {"sdtype": "categorical"},
            "member": {"sdtype": "boolean"},
            "joined": {"sdtype": "datetime"},
            "seen": {"sdtype": "datetime"},
        }
    }
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    schema = load_metadata(path, mixed)
    assert kinds(schema) == {**kinds(TableSchema.detect(mixed)), "stars": "categorical"}
    assert (schema["height"].min_value, schema["height"].max_value) == (0, 300)
    assert schema["joined"].datetime_format == "%Y-%m-%d"  # guessed when the file gives none


def test_read_multi_table_metadata_with_one_table(mixed):
    one = TableSchema.detect(mixed).to_sdv_metadata()
    meta = {"METADATA_SPEC_VERSION": "V1", "tables": {"people": {"columns": one["columns"]}}}
    assert schema_from_metadata(meta, mixed) == TableSchema.detect(mixed)


def test_metadata_with_two_tables_is_refused(mixed):
    meta = {"tables": {"a": {"columns": {}}, "b": {"columns": {}}}}
    with pytest.raises(InvalidDataError, match="metadata describes 2 tables"):
        schema_from_metadata(meta, mixed)


def test_metadata_without_columns_is_refused(mixed):
    with pytest.raises(InvalidDataError, match="metadata has no 'columns' mapping"):
        schema_from_metadata({"primary_key": "x"}, mixed)


def test_metadata_problems_are_all_reported(mixed):
    columns = TableSchema.detect(mixed).to_sdv_metadata()["columns"]
    columns["city"] = {"sdtype": "id"}
    columns["height"] = {"sdtype": "email"}
    del columns["stars"]
    columns["ghost"] = {"sdtype": "categorical"}
    with pytest.raises(InvalidDataError, match=r"invalid data \(4 problems\)") as info:
        schema_from_metadata({"columns": columns}, mixed)
    text = str(info.value)
    assert "column 'height': has sdtype 'email', which synthgen does not model" in text
    assert "column 'city': is an id column" in text
    assert "column 'stars': missing from the metadata" in text
    assert "column 'ghost': in the metadata but not in the data" in text
    assert {p.column for p in info.value.problems} == {"height", "city", "stars", "ghost"}


def test_metadata_file_missing_or_broken(tmp_path, mixed):
    with pytest.raises(InvalidDataError, match="metadata file .*nope.json not found"):
        load_metadata(tmp_path / "nope.json", mixed)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidDataError, match="is not valid JSON"):
        load_metadata(bad, mixed)


# ----------------------------------------------------------------------------- validation
def test_valid_table_passes(mixed):
    validate(mixed, TableSchema.detect(mixed), batch_size=N)


def test_every_problem_in_one_error(mixed):
    df = mixed.assign(
        empty=np.nan,
        constant="x",
        ticket=[f"T-{i:05d}" for i in range(N)],
        row_no=np.arange(N),
    )
    with pytest.raises(InvalidDataError, match=r"invalid data \(5 problems\)") as info:
        validate(df, TableSchema.detect(df), batch_size=500)
    problems = info.value.problems
    assert len(problems) == 5
    by_column = {p.column: p for p in problems}
    assert by_column[None].rule == f"{N} rows is fewer than the batch size 500"
    assert by_column[None].fix == f"pass a batch size of at most {N} or give more rows"
    assert by_column["empty"].rule == "all values are null"
    assert by_column["constant"].rule == "has a single value ('x')"
    assert by_column["ticket"].rule == f"looks like an ID ({N} distinct values in {N} rows)"
    assert by_column["row_no"].rule == f"looks like an ID ({N} distinct integers in {N} rows)"
    assert all(p.fix for p in problems)


@pytest.mark.parametrize(
    "df", [pd.DataFrame(), pd.DataFrame({"a": []}), pd.DataFrame(index=range(3))]
)
def test_empty_table(df):
    with pytest.raises(InvalidDataError, match="the table is empty") as info:
        validate(df, TableSchema.detect(df))
    assert len(info.value.problems) == 1


def test_single_value_numpy_scalar_shown_plainly():
    df = pd.DataFrame({"n": np.full(30, 7, dtype=np.int64), "k": ["a", "b", "c"] * 10})
    with pytest.raises(InvalidDataError, match=r"column 'n': has a single value \(7\)"):
        validate(df, TableSchema.detect(df))


def test_single_value_with_nulls_is_allowed():
    df = pd.DataFrame({"v": ["x", None] * 15, "k": ["a", "b", "c"] * 10})
    validate(df, TableSchema.detect(df))


def test_id_like_int_by_name_with_wide_span():
    rng = np.random.default_rng(0)
    ids = rng.choice(10**9, size=N, replace=False)
    ok = pd.DataFrame({"amount": ids, "k": ["a", "b"] * (N // 2)})
    validate(ok, TableSchema.detect(ok))  # unique, wide-spread values with a neutral name: fine
    bad = ok.rename(columns={"amount": "customer_id"})
    with pytest.raises(InvalidDataError, match="column 'customer_id': looks like an ID"):
        validate(bad, TableSchema.detect(bad))


def test_duplicate_column_names_reported_not_crashing():
    df = pd.DataFrame(np.arange(90).reshape(30, 3) % 7, columns=["a", "a", "b"])
    schema = TableSchema.detect(df)  # detection copes with duplicates ...
    assert schema.names == ["a", "b"]
    with pytest.raises(InvalidDataError, match="column 'a': duplicate column name") as info:
        validate(df, schema)  # ... and validation names them
    assert len(info.value.problems) == 1
    with pytest.raises(InvalidDataError, match="duplicate column name"):
        validate(
            df,
            schema_from_metadata(
                {"columns": {"a": {"sdtype": "categorical"}, "b": {"sdtype": "categorical"}}}, df
            ),
        )


def test_non_string_column_names_reported():
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 2)))
    with pytest.raises(
        InvalidDataError, match="column name is not a string .*df.columns.astype"
    ) as info:
        validate(df, TableSchema.detect(df))
    assert [p.column for p in info.value.problems] == ["0", "1"]


def test_declared_numeric_column_with_text():
    df = pd.DataFrame({"x": [f"v{i % 5}" for i in range(30)]})
    schema = TableSchema([ColumnSpec("x", "continuous", "object")])
    with pytest.raises(
        InvalidDataError, match="column 'x': is declared continuous but holds non-numbers"
    ):
        validate(df, schema)
