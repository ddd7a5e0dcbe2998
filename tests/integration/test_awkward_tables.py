"""Awkward tables: each is either handled correctly or refused with a clear message.

"Handled" means: the same columns in the same order, the same dtypes (Int64, boolean,
string[pyarrow], tz-aware datetime64 included), categories only from the training set, numbers
and datetimes within the training range (non-negative columns never negative, huge integers exact
at the bounds), and nulls where the training table had them, at about its rate. "Refused" means a
``SynthgenError`` (``InvalidDataError`` naming the column) whose message gives a fix, and through
``synthgen train`` exit code 1, one ``error:`` line and no traceback.

The models are tiny and train one epoch: the tests check the data path (schema, transformer, file
reading), not what a model learns. Null rates are checked with ``marginals``, which samples each
column's own distribution.
"""

from __future__ import annotations

import json
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen import Sampler, Synthesizer
from synthgen.cli import main
from synthgen.errors import ConfigError, DataWarning, InvalidDataError, SynthgenError
from synthgen.schema import MIN_ROWS

#: a tvae small enough that one epoch takes milliseconds
TVAE: dict[str, Any] = {"model": "tvae", "epochs": 1, "embedding_dim": 8, "compress_dims": (16,),
                        "decompress_dims": (16,)}
#: a ctgan of the same size; pac 10 (its default) needs a batch size that is a multiple of 10
CTGAN: dict[str, Any] = {"model": "ctgan", "epochs": 1, "embedding_dim": 8, "generator_dim": (16,),
                         "discriminator_dim": (16,)}
N = 200


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def base(rng: np.random.Generator, n: int = N) -> pd.DataFrame:
    """A plain table to add one awkward column to."""
    return pd.DataFrame({"x": rng.normal(50, 10, n), "c": rng.choice(["a", "b", "c"], n)})


def train_sample(df: pd.DataFrame, rows: int = 500, *, params: dict[str, Any] | None = None,
                 tmp_path: Path | None = None, **kwargs: Any) -> pd.DataFrame:
    """Fit, then sample ``rows`` (through a saved model file when ``tmp_path`` is given)."""
    if kwargs.get("model") == "marginals":  # no epochs, no batches
        params = kwargs
    else:
        params = {**(params or TVAE), **kwargs}
        params.setdefault("batch_size", min(len(df), 100))
    synth = Synthesizer(**params).fit(df)
    if tmp_path is None:
        return synth.sample(rows, seed=0)
    return Sampler.load(synth.save(tmp_path / "m.sgm", force=True)).sample(rows, seed=0)


def assert_like(real: pd.DataFrame, fake: pd.DataFrame, *, null_tol: float | None = None,
                dtypes: dict[str, str] | None = None, formats: dict[str, str] | None = None) -> None:
    """Same columns, dtypes (``dtypes`` overrides expected ones), domains; null rates within ``null_tol``.

    ``formats``: date-string columns and their format; their values must parse with it and lie in range.
    """
    assert list(fake.columns) == list(real.columns)
    expected = {c: real[c].dtype for c in real.columns} | {c: pd.api.types.pandas_dtype(d)
                                                           for c, d in (dtypes or {}).items()}
    # dtype objects, not their names: string[pyarrow] and string[python] are both called "string"
    assert {c: fake[c].dtype for c in fake.columns} == expected
    for col in real.columns:
        r, f = real[col], fake[col]
        if not r.isna().any():
            assert not f.isna().any(), f"{col}: nulls appeared"
        elif null_tol is not None:
            assert abs(f.isna().mean() - r.isna().mean()) <= null_tol, f"{col}: null rate"
        r, f = r.dropna(), f.dropna()
        if col in (formats or {}):
            fmt = formats[col]
            r, f = (pd.to_datetime(v, format=fmt, utc="%z" in fmt) for v in (r, f))  # raises on a misfit
            assert f.min() >= r.min() and f.max() <= r.max(), col
        elif pd.api.types.is_datetime64_any_dtype(r.dtype) or pd.api.types.is_datetime64_any_dtype(f.dtype):
            r_utc, f_utc = pd.to_datetime(r, utc=True), pd.to_datetime(f, utc=True)
            assert f_utc.min() >= r_utc.min() and f_utc.max() <= r_utc.max(), col
        elif pd.api.types.is_numeric_dtype(r.dtype) and not pd.api.types.is_bool_dtype(r.dtype):
            # compared as Python numbers: exact for integers beyond 2**53
            assert min(f.tolist()) >= min(r.tolist()) and max(f.tolist()) <= max(r.tolist()), col
        else:
            assert set(f.tolist()) <= set(r.tolist()), f"{col}: unseen values {set(f.tolist()) - set(r.tolist())}"


def refused(excinfo: pytest.ExceptionInfo, column: str | None, *words: str) -> None:
    """The error names ``column``, says each of ``words`` and gives a fix."""
    message = str(excinfo.value)
    if column is not None:
        assert f"column {column!r}" in message, message
        assert column in {p.column for p in excinfo.value.problems}
    for word in words:
        assert word in message, message
    assert "(fix: " in message, message


# ----------------------------------------------------------------------------- nulls, constants
def test_nan_in_continuous_and_categorical_columns_are_modelled(rng):
    df = base(rng, 1000)
    df.loc[rng.random(1000) < 0.2, "x"] = np.nan
    df.loc[rng.random(1000) < 0.3, "c"] = None
    assert_like(df, train_sample(df, 4000, model="marginals"), null_tol=0.04)
    assert_like(df, train_sample(df))  # a network model too: dtypes and domains


@pytest.mark.parametrize("empty", [np.nan, None, pd.NA])
def test_all_null_column_refused(rng, empty):
    df = base(rng).assign(z=empty)
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, "z", "all values are null", "drop the column")


def test_constant_column_refused(rng):
    df = base(rng).assign(k=7)
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, "k", "single value (7)", "add it back as a constant")


def test_infinite_values_refused(rng):
    df = base(rng)
    df.loc[3, "x"] = np.inf
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, "x", "1 infinite value", "replace them with nulls")


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("shape", ["one categorical", "numeric only", "categorical only"])
@pytest.mark.parametrize("params", [TVAE, {**CTGAN, "batch_size": 100}], ids=["tvae", "ctgan"])
def test_narrow_tables(rng, shape, params):
    df = {"one categorical": pd.DataFrame({"c": rng.choice(["a", "b", "c"], N)}),
          "numeric only": pd.DataFrame({"x": rng.normal(size=N), "n": rng.integers(0, 1000, N)}),
          "categorical only": pd.DataFrame({"c": rng.choice(["a", "b", "c"], N),
                                            "d": rng.choice(["x", "y"], N)})}[shape]
    assert_like(df, train_sample(df, params=params))


@pytest.mark.parametrize("rows", [1, 2, MIN_ROWS - 1])
def test_too_few_rows_refused(rng, rows):
    with pytest.raises(InvalidDataError) as info:
        train_sample(base(rng, rows))
    refused(info, None, f"only {rows} row", "too few to learn from", f"at least {MIN_ROWS} rows")
    assert len(info.value.problems) == 1  # not one "single value" complaint per column


@pytest.mark.parametrize("params", [{**TVAE, "batch_size": 10}, {**CTGAN, "batch_size": 10}], ids=["tvae", "ctgan"])
def test_ten_rows_train_with_a_small_batch(rng, params):
    df = base(rng, 10)
    assert_like(df, train_sample(df, params=params))


def test_fewer_rows_than_the_batch_size_refused_then_the_fix_works(rng):
    df = base(rng, 120)
    with pytest.raises(InvalidDataError) as info:
        Synthesizer(**TVAE, batch_size=500).fit(df)
    refused(info, None, "120 rows is fewer than the batch size 500", "batch size of at most 120")
    assert_like(df, train_sample(df, batch_size=120))


def test_batch_size_not_a_multiple_of_pac_refused_then_the_fix_works(rng):
    with pytest.raises(ConfigError, match=r"batch_size 55 is not a multiple of pac 10 \(fix: use a batch size such "
                                          r"as 50\)"):
        Synthesizer(**CTGAN, batch_size=55)
    df = base(rng)
    assert_like(df, train_sample(df, params=CTGAN, batch_size=50))


@pytest.mark.slow
def test_two_thousand_columns(rng):
    """200 rows x 2,000 columns (1,000 categorical, 900 few-valued integers, 100 continuous).

    Continuous columns cost about 50 ms each (a Gaussian mixture per column; an all-continuous
    table of 2,000 columns takes about 100 s to fit the transformer), the rest are one-hot.
    """
    n = 200
    cols: dict[str, Any] = {f"cat{i}": rng.choice(["a", "b", "c", "d"], n) for i in range(1000)}
    cols |= {f"int{i}": rng.integers(0, 12, n) for i in range(900)}
    cols |= {f"num{i}": rng.lognormal(0, 1, n) for i in range(100)}
    df = pd.DataFrame(cols)
    start = time.perf_counter()
    fake = train_sample(df, 200, batch_size=100)
    assert time.perf_counter() - start < 60
    assert_like(df, fake)


# ----------------------------------------------------------------------------- identifiers, cardinality
@pytest.mark.parametrize("kind", ["string", "int"])
def test_near_unique_id_columns_refused_unless_allowed(rng, kind):
    ids = rng.choice(100_000, N, replace=False)
    ids[:5] = ids[5:10]  # near-unique, not unique
    name, values = ("ticket", [f"T-{i:06d}" for i in ids]) if kind == "string" else ("customer_id", ids)
    df = base(rng).assign(**{name: values})
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, name, "looks like an ID" if kind == "string" else "looks like an identifier", f"--allow {name}")
    assert_like(df, train_sample(df, allow=[name]))  # kept on purpose: modelled


def test_ten_thousand_categories_refused(rng):
    n = 30_000
    df = base(rng, n).assign(code=[f"k{i}" for i in rng.integers(0, 10_000, n)])
    with pytest.raises(InvalidDataError) as info:
        Synthesizer(**TVAE, batch_size=500).fit(df)
    refused(info, "code", "categories (more than 5000)", "group rare categories")


# ----------------------------------------------------------------------------- datetimes
def test_tz_aware_datetimes_keep_their_zone(rng, tmp_path):
    start = pd.Timestamp("2024-03-25", tz="Europe/Paris")  # the range crosses a DST change
    df = base(rng).assign(t=start + pd.to_timedelta(rng.integers(0, 30 * 86400, N), unit="s"))
    df.loc[::10, "t"] = pd.NaT
    fake = train_sample(df, tmp_path=tmp_path)
    assert str(fake["t"].dtype) == "datetime64[ns, Europe/Paris]"
    assert_like(df, fake)


def test_mixed_time_zones_are_converted_to_utc_and_said_so(rng):
    paris = pd.Timestamp("2024-01-01 10:00", tz="Europe/Paris")
    york = pd.Timestamp("2024-01-01 10:00", tz="America/New_York")
    df = base(rng).assign(t=[(paris if i % 2 else york) + pd.Timedelta(hours=int(h))
                             for i, h in enumerate(rng.integers(0, 1000, N))])
    assert df["t"].dtype == object  # pandas cannot hold two zones in one datetime64 column
    with pytest.warns(DataWarning, match=r"column 't' mixes time zones \(America/New_York, Europe/Paris\).*UTC"):
        fake = train_sample(df)
    assert_like(df, fake, dtypes={"t": "datetime64[ns, UTC]"})


def test_mixed_utc_offsets_in_strings_are_sampled_in_utc(rng):
    df = base(rng).assign(t=[f"2024-0{1 + i % 2}-{d:02d} 10:00:00{'+01:00' if i % 2 else '-05:00'}"
                             for i, d in enumerate(rng.integers(1, 29, N))])
    with pytest.warns(DataWarning, match=r"column 't' has datetimes with different UTC offsets.*\+0000"):
        fake = train_sample(df)
    assert_like(df, fake, formats={"t": "%Y-%m-%d %H:%M:%S%z"})
    assert fake["t"].str.endswith("+0000").all()


@pytest.mark.parametrize("suffix", ["+01:00", "Z", "-0530"])
def test_one_utc_offset_in_strings_is_kept(rng, suffix):
    df = base(rng).assign(t=[f"2024-01-{d:02d}T{h:02d}:30:00{suffix}" for d, h in
                             zip(rng.integers(1, 29, N), rng.integers(0, 24, N), strict=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing to warn about: nothing is converted
        fake = train_sample(df)
    assert_like(df, fake, formats={"t": "%Y-%m-%dT%H:%M:%S%z"})  # the same instants: range in UTC
    assert fake["t"].str.endswith(suffix).all()


def test_date_strings_come_back_in_their_format_and_range(rng):
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, N), unit="D")
    df = base(rng).assign(day=days.strftime("%d/%m/%Y"))
    df.loc[::8, "day"] = None
    assert_like(df, train_sample(df, 2000, model="marginals"), null_tol=0.04, formats={"day": "%d/%m/%Y"})
    assert_like(df, train_sample(df), formats={"day": "%d/%m/%Y"})


def test_dates_stored_as_integers_stay_integers(rng, tmp_path):
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, N), unit="D")
    df = base(rng).assign(day=days.strftime("%Y%m%d").astype(np.int64),
                          epoch=1_600_000_000 + rng.integers(0, 10**8, N))
    assert_like(df, train_sample(df))  # whole numbers in the seen range, int64
    meta = {"columns": {"x": {"sdtype": "numerical"}, "c": {"sdtype": "categorical"},
                        "day": {"sdtype": "datetime", "datetime_format": "%Y%m%d"},
                        "epoch": {"sdtype": "numerical", "computer_representation": "Int64"}}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    fake = train_sample(df, metadata=tmp_path / "meta.json")
    assert_like(df, fake)  # declared a date: still int64, and every value a real date
    assert pd.to_datetime(fake["day"].astype(str), format="%Y%m%d").notna().all()
    meta["columns"]["epoch"] = {"sdtype": "datetime"}  # a unit would have to be guessed: refused
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidDataError) as info:
        train_sample(df, metadata=tmp_path / "meta.json")
    refused(info, "epoch", "declared datetime without a datetime_format", "declare it numerical")


def test_declared_datetime_format_that_does_not_fit_refused(rng, tmp_path):
    df = base(rng).assign(day=[f"2021-03-{d:02d}" for d in rng.integers(1, 29, N)])
    meta = {"columns": {"x": {"sdtype": "numerical"}, "c": {"sdtype": "categorical"},
                        "day": {"sdtype": "datetime", "datetime_format": "%d/%m/%Y"}}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidDataError) as info:  # not silently turned into nulls
        train_sample(df, metadata=tmp_path / "meta.json")
    refused(info, "day", f"{N} values cannot be read as the format '%d/%m/%Y'", "datetime_format")


# ----------------------------------------------------------------------------- column names and types
def test_integer_column_names_refused_then_the_fix_works(rng):
    df = base(rng)
    df.columns = [0, 1]
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, "0", "column name is not a string", "df.columns.astype(str)")
    df.columns = df.columns.astype(str)
    assert_like(df, train_sample(df))


def test_duplicate_column_names_refused(rng):
    df = pd.concat([base(rng), base(rng)[["x"]]], axis=1)
    with pytest.raises(InvalidDataError) as info:
        train_sample(df)
    refused(info, "x", "duplicate column name", "rename or drop")


def test_mixed_numbers_and_strings(rng, tmp_path):
    few = pd.Series([1, 2, "n/a", 3.5, "unknown"] * 40, dtype=object)
    df = base(rng).assign(m=few)
    fake = train_sample(df, tmp_path=tmp_path)  # a few values: categories of their own types
    assert_like(df, fake)
    assert {type(v) for v in fake["m"]} <= {int, float, str}
    many = pd.Series(rng.normal(size=N).round(3), dtype=object)
    many[::20] = "unknown"
    with pytest.raises(InvalidDataError) as info:  # many numbers and some text: not an "ID"
        train_sample(base(rng).assign(m=many))
    refused(info, "m", "mixes numbers and text", "'unknown'", "pd.to_numeric")


def test_unicode_and_emoji_in_names_and_categories(rng, tmp_path):
    df = pd.DataFrame({"Straße 🚗": rng.choice(["Köln", "Zürich", "東京", "🙂", "naïve café"], N),
                       "données ∑": rng.normal(size=N), "ключ": rng.choice(["да", "нет"], N)})
    assert_like(df, train_sample(df, tmp_path=tmp_path))


# ----------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("params", [TVAE, {**CTGAN, "batch_size": 100}], ids=["tvae", "ctgan"])
def test_skewed_non_negative_numbers_never_come_back_negative(rng, params):
    n = 1000
    df = pd.DataFrame({
        "income": rng.lognormal(3, 2.5, n),  # heavy right tail
        "claims": np.where(rng.random(n) < 0.7, 0.0, rng.exponential(2000, n)),  # zero-inflated
        "visits": rng.negative_binomial(1, 0.05, n),  # skewed counts
        "c": rng.choice(["a", "b"], n),
    })
    fake = train_sample(df, 5000, params=params)
    assert_like(df, fake)
    assert (fake[["income", "claims", "visits"]] >= 0).all().all()


def test_huge_integers(rng, tmp_path):
    big = 2**60
    df = base(rng).assign(
        code=rng.choice([big + 1, big + 3, 2**62 + 7], N),  # few values: categories, exact
        wide=big + rng.integers(0, 2**40, N),  # continuous beyond 2**53
        top=np.iinfo(np.int64).max - rng.integers(0, 10**6, N),  # next to int64's limit
        unsigned=(np.uint64(2**63) + rng.integers(0, 10**6, N).astype(np.uint64)),
        nullable=pd.array(big + rng.integers(0, 2**40, N), dtype="Int64"),
    )
    df.loc[::7, "nullable"] = pd.NA
    fake = train_sample(df, 2000, tmp_path=tmp_path)
    assert_like(df, fake)
    assert set(fake["code"].tolist()) <= {big + 1, big + 3, 2**62 + 7}


def test_booleans_and_pandas_nullable_dtypes(rng, tmp_path):
    n = 1000
    df = pd.DataFrame({
        "flag": rng.random(n) < 0.3,
        "maybe": pd.array(rng.random(n) < 0.4, dtype="boolean"),
        "count": pd.array(rng.integers(0, 500, n), dtype="Int64"),
        "few": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "label": pd.array(rng.choice(["u", "v", "w"], n), dtype="string[pyarrow]"),
        "score": pd.array(rng.normal(size=n), dtype="Float64"),
        "kind": pd.Categorical(rng.choice(["p", "q"], n)),
    })
    for col, rate in [("maybe", 0.2), ("count", 0.1), ("few", 0.15), ("label", 0.25), ("score", 0.1)]:
        df.loc[rng.random(n) < rate, col] = pd.NA
    assert_like(df, train_sample(df, 4000, model="marginals", tmp_path=tmp_path), null_tol=0.04)
    assert_like(df, train_sample(df, tmp_path=tmp_path))


# ----------------------------------------------------------------------------- files, through the CLI
def train_file(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["train", str(path), "--out", str(path.parent / "m.sgm"), "--epochs", "1",
                                       "--batch-size", "10", "-q", *args])
    return result.exit_code, result.stderr, result.output


def _png(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")


def _text(content: str, encoding: str = "utf-8"):
    return lambda path: path.write_bytes(content.encode(encoding))


_TABLE = "city,amount\n" + "".join(f"{c},{i * 1.5}\n" for i, c in enumerate(["Köln", "Málaga", "Zürich"] * 10))


@pytest.mark.parametrize(("name", "make", "words"), [
    ("empty.csv", _text(""), ["is empty", "give a file with a header row"]),
    ("header.csv", _text("a,b\n"), ["the table is empty"]),
    ("semicolon.csv", _text(_TABLE.replace(",", ";")), ["looks semicolon-separated", "sep=';'"]),
    ("tabs.csv", _text(_TABLE.replace(",", "\t")), ["looks tab-separated", "name it .tsv"]),
    # decimal commas: read with commas, the rows have more fields than the header and parsing fails
    ("decimal_commas.csv", _text(_TABLE.replace(",", ";").replace(".", ",")), ["looks semicolon-separated"]),
    ("latin1.csv", _text(_TABLE, "latin-1"), ["is not UTF-8 text (byte 0xf6", "re-save it as UTF-8"]),
    ("cp1252.csv", _text(_TABLE.replace("Zürich", "Zürich €"), "cp1252"), ["not UTF-8", "iconv -f cp1252"]),
    ("utf16.csv", _text(_TABLE, "utf-16"), ["is UTF-16 text", "re-save it as UTF-8"]),
    ("image.csv", _png, ["not a CSV table: it looks like a PNG image"]),
    ("sheet.csv", _zip, ["looks like a zip archive", "export the sheet as CSV"]),
    ("packed.csv", lambda p: p.write_bytes(__import__("gzip").compress(_TABLE.encode())),
     ["gzip-compressed", "name it .csv.gz"]),
    ("text.parquet", _text(_TABLE), ["is not a Parquet file (it looks like text)"]),
    ("image.parquet", _png, ["is not a Parquet file (it looks like a PNG image)"]),
    ("dupes.csv", _text("a,b,a\n" + "".join(f"{i % 3},{i % 5},{i % 7}\n" for i in range(30))),
     ["column 'a': duplicate column name"]),
])
def test_files_that_are_not_usable_tables_are_refused_in_one_line(tmp_path, name, make, words):
    path = tmp_path / name
    make(path)
    code, stderr, output = train_file(path)
    assert code == 1, output
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in output
    for word in words:
        assert word in lines[0], lines[0]
    assert "(fix: " in lines[0]


def test_cli_batch_size_not_a_multiple_of_pac(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(_TABLE)
    code, stderr, output = train_file(path, "--model", "ctgan", "--batch-size", "15")
    assert code == 1 and "Traceback" not in output
    assert stderr.strip().splitlines() == ["error: batch_size 15 is not a multiple of pac 10 (fix: use a batch size "
                                           "such as 10)"]


def test_cli_round_trip_keeps_unicode_names_and_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(_TABLE.replace("city,amount", "Straße 🚗,données ∑"), encoding="utf-8")
    code, _, output = train_file(path)
    assert code == 0, output
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "m.sgm"), "--rows", "50", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    real, fake = pd.read_csv(path), pd.read_csv(out)
    assert_like(real, fake)


def test_read_errors_are_synthgen_errors_in_python_too(tmp_path):
    path = tmp_path / "semicolon.csv"
    path.write_text(_TABLE.replace(",", ";"))
    with pytest.raises(SynthgenError, match="looks semicolon-separated"):
        Synthesizer(**TVAE).fit(path)
