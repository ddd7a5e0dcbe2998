"""Column kinds: detection from data, SDV single-table metadata JSON in and out, validation."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import warnings
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from synthgen.errors import DataWarning, InvalidDataError, Problem

Kind = Literal["continuous", "integer", "categorical", "boolean", "datetime"]
KINDS: tuple[str, ...] = ("continuous", "integer", "categorical", "boolean", "datetime")

#: integer columns with at most this many distinct values are modelled as categories
LOW_CARDINALITY_INT = 10
#: a categorical column with more distinct values than this cannot be one-hot encoded sensibly
MAX_CATEGORIES = 5000
#: fewer rows than this are refused: nothing to learn, and a generator would only echo them
MIN_ROWS = 10
_ID_FIX = ("drop it before training (it has no pattern to learn) or mask it (synthgen mask --suggest); "
           "to keep it anyway, --allow {}")
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|ssn|number)$", re.IGNORECASE)


@dataclass
class ColumnSpec:
    """What synthgen knows about one column before learning from it.

    Attributes:
        name: column name.
        kind: one of ``KINDS``.
        dtype: pandas dtype of the input column, restored on sampling.
        datetime_format: strftime format when datetimes arrive as strings.
        min_value / max_value: user-declared bounds that widen the seen range.
        categories: user-declared category set (categorical and boolean columns).
        nullable: user-declared: whether the column may hold nulls.
        public: the declarations above come from public knowledge, not from the private table,
            so differentially private training may use them without spending budget.
        point_masses: user-declared values a numeric column piles up on (sentinels, top codes):
            under DP with public metadata each gets an exact-value cell of its own.
    """

    name: str
    kind: str
    dtype: str
    datetime_format: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    categories: list[Any] | None = None
    nullable: bool | None = None
    public: bool = False
    point_masses: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and not (k == "public" and not v)}


@dataclass
class TableSchema:
    """The ordered list of column specs for one table."""

    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        return cls([ColumnSpec(**c) for c in data["columns"]])

    @classmethod
    def detect(cls, df: pd.DataFrame, *, private: bool = False) -> TableSchema:
        """Guess each column's kind from its values (a duplicated name once; validate reports it).

        ``private`` (differentially private training): from each column's storage dtype alone, so
        that no row can change a kind (see :func:`kind_from_dtype`).
        """
        detect = kind_from_dtype if private else detect_column
        return cls([detect(df.iloc[:, i], str(df.columns[i])) for i in _first_occurrences(df)])

    def to_sdv_metadata(self) -> dict[str, Any]:
        """Export as SDV single-table metadata (``METADATA_SPEC_VERSION: SINGLE_TABLE_V1``)."""
        sdtypes = {"continuous": "numerical", "integer": "numerical"}
        columns: dict[str, Any] = {}
        for col in self.columns:
            entry: dict[str, Any] = {"sdtype": sdtypes.get(col.kind, col.kind)}
            if col.kind == "integer":
                entry["computer_representation"] = "Int64"
            if col.kind == "continuous":
                entry["computer_representation"] = "Float"
            if col.datetime_format:
                entry["datetime_format"] = col.datetime_format
            columns[col.name] = entry
        return {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "columns": columns}


def _first_occurrences(df: pd.DataFrame) -> list[int]:
    """Positions of the columns whose name has not appeared before."""
    return [int(i) for i in np.flatnonzero(~df.columns.duplicated())]


def detect_column(series: pd.Series, name: str) -> ColumnSpec:
    """Detect one column's kind; ``dtype`` records what to restore."""
    dtype = dtype_name(series.dtype)
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return ColumnSpec(name, "boolean", dtype)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return ColumnSpec(name, "datetime", dtype)
    if pd.api.types.is_numeric_dtype(series.dtype):
        integral = len(values) > 0 and bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        if integral:
            if values.nunique() <= LOW_CARDINALITY_INT:
                return ColumnSpec(name, "categorical", dtype)
            return ColumnSpec(name, "integer", dtype)
        return ColumnSpec(name, "continuous", dtype)
    if len(values) and values.map(type).eq(bool).all():
        return ColumnSpec(name, "boolean", dtype)
    stamps = _datetime_objects(values, name) if series.dtype == object else None
    if stamps is not None:
        return ColumnSpec(name, "datetime", stamps)
    fmt = _datetime_format(values)
    if fmt is not None:
        return ColumnSpec(name, "datetime", dtype, datetime_format=_fixed_offset(fmt, values, name))
    return ColumnSpec(name, "categorical", dtype)


def kind_from_dtype(series: pd.Series, name: str) -> ColumnSpec:
    """A column's kind from its storage dtype alone, reading no value (the DP path without metadata).

    Booleans are boolean, datetime64 columns datetime, integer dtypes integer, other numbers
    continuous, everything else (text, objects, categoricals) categorical: no low-cardinality
    integer becomes a category and no datetime format is guessed, since one row could flip either.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        kind = "boolean"
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        kind = "datetime"
    elif pd.api.types.is_integer_dtype(dtype):
        kind = "integer"
    elif pd.api.types.is_numeric_dtype(dtype):
        kind = "continuous"
    else:
        kind = "categorical"
    return ColumnSpec(name, kind, dtype_name(dtype))


def _datetime_objects(values: pd.Series, name: str) -> str | None:
    """The datetime64 dtype for an object column of datetime objects (None if it holds anything else).

    pandas keeps such a column as ``object`` when its values mix time zones (or naive and aware
    ones): they are then modelled, and sampled, in UTC, and a ``DataWarning`` says so.
    """
    if len(values) == 0 or not all(isinstance(v, dt.datetime) for v in values):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inferred = pd.Series(list(values))
    if pd.api.types.is_datetime64_any_dtype(inferred.dtype):  # one zone (or all naive)
        return str(inferred.dtype)
    zones = sorted({str(v.tzinfo) if v.tzinfo is not None else "no zone (taken as UTC)" for v in values})
    warnings.warn(DataWarning(
        f"column {name!r} mixes time zones ({', '.join(zones[:4])}{', ...' if len(zones) > 4 else ''}): "
        "it is modelled and sampled in UTC (dtype datetime64[ns, UTC])"), stacklevel=4)
    return "datetime64[ns, UTC]"


#: a UTC offset or zone at the end of a date string: what ``%z`` / ``%Z`` matched
_ZONE_TAIL = re.compile(r"(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$")


def _fixed_offset(fmt: str, values: pd.Series, name: str) -> str:
    """``fmt`` with a trailing ``%z`` / ``%Z`` replaced by the offset text when every value has the same one.

    ``2024-01-05 10:00:00+01:00`` then comes back as ``... +01:00`` (local time at that offset)
    instead of being shifted to UTC. Values with different offsets keep the directive: they are
    modelled in UTC, sampled with offset +0000, and a ``DataWarning`` says so.
    """
    if "%z" not in fmt and "%Z" not in fmt:
        return fmt
    if fmt.endswith(("%z", "%Z")):
        tails = values.astype(str).str.extract(f"({_ZONE_TAIL.pattern})", expand=False)
        distinct = tails.dropna().unique()
        if tails.notna().all() and len(distinct) == 1:
            literal = fmt[:-2] + str(distinct[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if pd.to_datetime(values, format=literal, errors="coerce").notna().all():
                    return literal
        shown = sorted(map(str, distinct))[:4]
    else:
        shown = []
    warnings.warn(DataWarning(
        f"column {name!r} has datetimes with different UTC offsets ({', '.join(shown) or 'various'}): "
        "they are modelled in UTC and sampled with offset +0000"), stacklevel=4)
    return fmt


def _datetime_format(values: pd.Series) -> str | None:
    """Return a strftime format if every value is a date string in one format, else None."""
    if len(values) == 0 or not values.map(type).eq(str).all():
        return None
    first = str(values.iloc[0])
    if not re.search(r"\d", first) or not re.search(r"[-/:T ]", first):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the first value may be ambiguous (01/02/2020): try month-first, then day-first
        guesses = [pd.tseries.api.guess_datetime_format(first, dayfirst=d) for d in (False, True)]
        for fmt in dict.fromkeys(g for g in guesses if g is not None):
            zoned = "%z" in fmt or "%Z" in fmt  # mixed offsets parse only as UTC
            if pd.to_datetime(values, format=fmt, errors="coerce", utc=zoned).notna().all():
                return fmt
    return None


def parse_datetimes(series: pd.Series, fmt: str | None) -> pd.Series:
    """A datetime column as naive ``datetime64`` (UTC wall time for zoned values); NaT for nulls and misfits.

    Strings are parsed with ``fmt`` (values with a ``%z`` offset are converted to UTC), whole
    numbers with a format are read as digits (20240131 with ``%Y%m%d``), datetime objects of
    mixed zones are converted to UTC.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            parsed = series
        elif fmt:
            text = series
            if _is_number(series):
                numbers = pd.to_numeric(series, errors="coerce").astype("Float64")
                text = numbers.where(numbers % 1 == 0).astype("Int64").astype("string")
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt or "%Z" in fmt)
        else:
            parsed = pd.to_datetime(series, errors="coerce", utc=series.dtype == object)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


# ----------------------------------------------------------------------------- SDV metadata
_SDTYPE_TO_KIND = {"categorical": "categorical", "boolean": "boolean", "datetime": "datetime"}


def load_metadata(path: str | os.PathLike, df: pd.DataFrame, *, private: bool = False) -> TableSchema:
    """Read an SDV single-table metadata JSON file (plain JSON, no SDV import) against ``df``.

    ``private``: nothing is read from the values (a datetime format must then be declared).
    """
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDataError(Problem(None, f"metadata file {path} not found", "check the path")) from None
    except json.JSONDecodeError as exc:
        raise InvalidDataError(Problem(None, f"metadata {path} is not valid JSON ({exc})", "fix the JSON")) from None
    return schema_from_metadata(meta, df, private=private)


def schema_from_metadata(meta: dict[str, Any], df: pd.DataFrame, *, private: bool = False) -> TableSchema:
    """Build a schema from an SDV metadata dict (single-table or a one-table multi-table file)."""
    if "tables" in meta:
        tables = meta["tables"]
        if len(tables) != 1:
            raise InvalidDataError(Problem(None, f"metadata describes {len(tables)} tables",
                                           "give metadata for exactly one table"))
        meta = next(iter(tables.values()))
    columns = meta.get("columns")
    if not isinstance(columns, dict):
        raise InvalidDataError(Problem(None, "metadata has no 'columns' mapping",
                                       "use SDV single-table metadata JSON"))
    problems: list[Problem] = []
    specs: list[ColumnSpec] = []
    public = meta.get("public") is True
    for i in _first_occurrences(df):
        name = df.columns[i]
        entry = columns.get(str(name))
        if entry is None:
            problems.append(Problem(str(name), "missing from the metadata", "add it or drop the column"))
            continue
        spec = _spec_from_entry(df.iloc[:, i], str(name), entry, problems, private=private)
        if spec is not None:
            _declared(spec, entry, public, problems)
            specs.append(spec)
    for name in columns:
        if name not in set(map(str, df.columns)):
            problems.append(Problem(name, "in the metadata but not in the data", "remove it from the metadata"))
    if problems:
        raise InvalidDataError(problems)
    return TableSchema(specs)


def _spec_from_entry(series: pd.Series, name: str, entry: dict[str, Any], problems: list[Problem], *,
                     private: bool = False) -> ColumnSpec | None:
    sdtype = entry.get("sdtype")
    dtype = dtype_name(series.dtype)
    low, high = entry.get("min_value"), entry.get("max_value")
    if sdtype == "numerical":
        rep = str(entry.get("computer_representation", "Float"))
        kind = "integer" if rep.lower().startswith(("int", "uint")) else "continuous"
        return ColumnSpec(name, kind, dtype, min_value=low, max_value=high)
    if sdtype == "datetime":
        fmt = entry.get("datetime_format")
        if fmt is None and _is_number(series):
            problems.append(Problem(name, "holds numbers but is declared datetime without a datetime_format",
                                    "add a datetime_format such as \"%Y%m%d\" for numbers like 20240131, or "
                                    "declare it numerical (epoch seconds then stay whole numbers)"))
            return None
        if fmt is None and not pd.api.types.is_datetime64_any_dtype(series.dtype):
            if private:
                problems.append(Problem(name, "is declared datetime without a datetime_format, and under DP the "
                                        "format is not guessed from the private values",
                                        "add its datetime_format to the metadata, e.g. \"%Y-%m-%d\""))
                return None
            fmt = _datetime_format(series.dropna())
        return ColumnSpec(name, "datetime", dtype, datetime_format=fmt, min_value=low, max_value=high)
    if sdtype in _SDTYPE_TO_KIND:
        return ColumnSpec(name, _SDTYPE_TO_KIND[sdtype], dtype)
    if sdtype == "id":
        problems.append(Problem(name, "is an id column (no pattern to learn)",
                                "drop it before training and regenerate keys after sampling"))
    else:
        problems.append(Problem(name, f"has sdtype {sdtype!r}, which synthgen does not model",
                                "mask or drop it, or declare it numerical/categorical/boolean/datetime"))
    return None


def _declared(spec: ColumnSpec, entry: dict[str, Any], public: bool, problems: list[Problem]) -> None:
    """Copy the optional domain declarations (categories, nullable, public) onto ``spec``."""
    categories = entry.get("categories")
    if categories is not None:
        if spec.kind not in ("categorical", "boolean") or not isinstance(categories, list) or not categories:
            problems.append(Problem(spec.name, "'categories' must be a non-empty list on a categorical or "
                                    "boolean column", "fix or remove 'categories'"))
        else:
            spec.categories = categories
    masses = entry.get("point_masses")
    if masses is not None:
        numbers = isinstance(masses, list) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                   and np.isfinite(v) for v in masses)
        if spec.kind not in ("continuous", "integer") or not numbers:
            problems.append(Problem(spec.name, "'point_masses' must be a list of finite numbers on a numerical "
                                    "column", "fix or remove 'point_masses'"))
        else:
            spec.point_masses = [float(v) for v in masses]
    if "nullable" in entry:
        spec.nullable = bool(entry["nullable"])
    spec.public = bool(entry.get("public", public))


# ----------------------------------------------------------------------------- validation
class IdentifierFinding(Protocol):
    """What validation reads of a column that looks like an identifier.

    ``synthgen.masking.identifiers.Finding`` is one; the masking layer sits above this module,
    so the schema names only the fields it reads.
    """

    @property
    def column(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def what(self) -> str: ...
    @property
    def evidence(self) -> str: ...


def validate(df: pd.DataFrame, schema: TableSchema, *, batch_size: int | None = None,
             allow: Collection[str] = (), findings: Sequence[IdentifierFinding] | None = None,
             private: bool = False) -> None:
    """Check ``df`` against every rule at once; raise one ``InvalidDataError`` listing all problems.

    Args:
        allow: columns the user keeps on purpose although they look like IDs.
        findings: ``identifiers.scan(df)`` when the caller has it; ID-like ones are refused too.
        private: differentially private training: only rules that read no value refuse (names,
            storage dtypes, the row count); the rules that read values (a single value, an ID, too
            many categories, ...) could flip with one row, so they only warn, with no count or value.
    """
    if private:
        return _validate_private(df, schema, batch_size=batch_size, allow=allow, findings=findings)
    _refuse_empty(df)
    problems = structure_problems(df)
    structural = bool(problems)
    problems += _row_count_problems(df, batch_size)
    if not structural:
        for spec in schema.columns:
            problems.extend(_column_problems(df[spec.name], spec, allowed=spec.name in allow))
        reported = {p.column for p in problems}
        problems.extend(Problem(f.column, f"looks like {f.what} ({f.evidence})", _ID_FIX.format(f.column))
                        for f in findings or () if f.role == "id" and f.column not in set(allow) | reported)
    if problems:
        raise InvalidDataError(problems)


def duplicate_name_problems(names: list[Any], where: str = "") -> list[Problem]:
    """One problem per column name that repeats in ``names`` (``where``: e.g. " in the Parquet file")."""
    index = pd.Index(names)
    return [Problem(name, f"duplicate column name{where}", "rename or drop one of the columns")
            for name in sorted({str(n) for n in index[index.duplicated()]})]


def structure_problems(df: pd.DataFrame) -> list[Problem]:
    """Duplicate and non-string column names: with either, no column can be looked up by its name."""
    problems = duplicate_name_problems(list(df.columns))
    problems += [Problem(str(name), "column name is not a string", "name the columns with strings, e.g. "
                         "df.columns = df.columns.astype(str)")
                 for name in dict.fromkeys(df.columns) if not isinstance(name, str)]
    return problems


def check_structure(df: pd.DataFrame) -> None:
    """Raise ``InvalidDataError`` for an empty table or unusable column names (before anything reads columns)."""
    _refuse_empty(df)
    problems = structure_problems(df)
    if problems:
        raise InvalidDataError(problems)


def _refuse_empty(df: pd.DataFrame) -> None:
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InvalidDataError(Problem(None, "the table is empty", "give a table with rows and columns"))


#: what differentially private training does with a column a value-reading rule would refuse:
#: warned about by rule, with no count or value of the private table
_PRIVATE_NOTES = {
    "null": "holds no value to learn: under DP it is trained on as it is (drop it to save budget)",
    "constant": "holds a single value: under DP it is trained on as it is (drop it to save budget)",
    "infinite": "holds infinite values: under DP they are clipped to the column's bounds",
    "unreadable": "holds values that cannot be read as datetimes: under DP they are modelled as nulls",
    "mixed": "mixes numbers and text: under DP it is modelled as categories",
    "id": "looks like an ID: under DP its rare values fall below the noise threshold and come back as the "
          "column's null or most frequent value (fix: drop or mask it)",
    "too_many": f"has very many categories: under DP only those whose noisy count clears the threshold, at most "
                f"{MAX_CATEGORIES}, are kept (fix: group rare categories)",
}


def _validate_private(df: pd.DataFrame, schema: TableSchema, *, batch_size: int | None, allow: Collection[str],
                      findings: Sequence[IdentifierFinding] | None) -> None:
    """``validate`` under DP: refuse only on names, storage dtypes and the row count; warn on the rest."""
    _refuse_empty(df)
    problems = structure_problems(df) + _row_count_problems(df, batch_size)
    if problems:
        raise InvalidDataError(problems)
    for spec in schema.columns:
        problem = _dtype_problem(df[spec.name], spec)
        if problem is not None:
            problems.append(problem)
            continue
        rules = [rule for rule, _ in _coded_problems(df[spec.name], spec, allowed=spec.name in allow)]
        rules += ["id" for f in findings or () if f.column == spec.name and f.role == "id" and f.column not in allow]
        for rule in dict.fromkeys(rules):
            warnings.warn(DataWarning(f"column {spec.name!r} {_PRIVATE_NOTES[rule]}"), stacklevel=4)
    if problems:
        raise InvalidDataError(problems)


def _row_count_problems(df: pd.DataFrame, batch_size: int | None) -> list[Problem]:
    """Too few rows to learn from, or fewer than a batch."""
    problems = []
    if len(df) < MIN_ROWS:
        problems.append(Problem(None, f"only {len(df)} row{'s' * (len(df) != 1)}: too few to learn from",
                                f"give at least {MIN_ROWS} rows"))
    if batch_size is not None and len(df) < batch_size:
        problems.append(Problem(None, f"{len(df)} rows is fewer than the batch size {batch_size}",
                                f"pass a batch size of at most {len(df)} or give more rows"))
    return problems


def _dtype_problem(series: pd.Series, spec: ColumnSpec) -> Problem | None:
    """A numeric kind over a column whose storage dtype is not numeric (reads no value)."""
    if spec.kind in ("continuous", "integer") and not pd.api.types.is_numeric_dtype(series.dtype):
        return Problem(spec.name, f"is declared {spec.kind} but holds non-numbers",
                       "clean the column or declare it categorical")
    return None


def broken_rule(series: pd.Series, spec: ColumnSpec) -> str | None:
    """The code of the first rule the column breaks (``id``, ``mixed``, ``constant``, ``null``, ...), or None."""
    found = _coded_problems(series, spec)
    return found[0][0] if found else None


def _column_problems(series: pd.Series, spec: ColumnSpec, *, allowed: bool = False) -> list[Problem]:
    return [problem for _, problem in _coded_problems(series, spec, allowed=allowed)]


def _coded_problems(series: pd.Series, spec: ColumnSpec, *, allowed: bool = False) -> list[tuple[str, Problem]]:
    """The first rule the column breaks, as (rule code, problem); the codes key ``_PRIVATE_NOTES``."""
    name = spec.name
    values = series.dropna()
    if len(values) == 0:
        return [("null", Problem(name, "all values are null", "drop the column"))]
    distinct = values.nunique()
    if distinct == 1 and not series.isna().any() and len(series) >= MIN_ROWS:  # else: too few rows
        return [("constant", Problem(name, f"has a single value ({python_value(values.iloc[0])!r})",
                                     "drop it and add it back as a constant after sampling"))]
    dtype = _dtype_problem(series, spec)
    if dtype is not None:
        return [("dtype", dtype)]
    count = int(np.isinf(values.to_numpy(dtype=float)).sum()) if _is_number(series) else 0
    if count:
        return [("infinite", Problem(name, f"holds {count} infinite value{'s' * (count > 1)}",
                                     f"replace them with nulls or finite numbers, e.g. df[{name!r}].replace("
                                     "[np.inf, -np.inf], np.nan)"))]
    if spec.kind == "datetime":
        misfits = parse_datetimes(series, spec.datetime_format).isna().to_numpy() & series.notna().to_numpy()
        unparsed = int(misfits.sum())
        if unparsed:
            example = series[misfits].iloc[0]
            how = f"the format {spec.datetime_format!r}" if spec.datetime_format else "a datetime"
            return [("unreadable", Problem(name, f"{unparsed} value{'s' * (unparsed > 1)} cannot be read as {how} "
                                           f"(e.g. {python_value(example)!r})",
                                           "fix those values or the datetime_format in the metadata"))]
    too_many = spec.kind == "categorical" and distinct > MAX_CATEGORIES
    id_like = spec.kind == "categorical" and distinct > 20 and distinct >= 0.9 * len(values) and not allowed
    if (too_many or id_like) and series.dtype == object:
        mixed = _numbers_and_text(values)
        if mixed is not None:
            numbers, texts, example = mixed
            return [("mixed", Problem(name, f"mixes numbers and text ({numbers} numbers, {texts} text values such "
                                      f"as {example!r})", f"turn the text into nulls to model it as a number, e.g. "
                                      f"df[{name!r}] = pd.to_numeric(df[{name!r}], errors='coerce'), or drop the "
                                      "column"))]
    if id_like:
        return [("id", Problem(name, f"looks like an ID ({distinct} distinct values in {len(values)} rows)",
                               _ID_FIX.format(name)))]
    if too_many:
        return [("too_many", Problem(name, f"has {distinct} categories (more than {MAX_CATEGORIES})",
                                     "group rare categories or drop the column"))]
    if spec.kind == "integer" and not allowed and _looks_like_int_id(values, name):
        return [("id", Problem(name, f"looks like an ID ({distinct} distinct integers in {len(values)} rows)",
                               _ID_FIX.format(name)))]
    return []


def _numbers_and_text(values: pd.Series) -> tuple[int, int, Any] | None:
    """(numbers, text values, an example text) when most values are numbers and some are not."""
    plain = values.map(lambda v: v if isinstance(v, (int, float, str, np.number)) and not isinstance(v, bool)
                       else None)
    numeric = pd.to_numeric(plain, errors="coerce")
    numbers, texts = int(numeric.notna().sum()), int(numeric.isna().sum())
    if texts == 0 or numbers < texts:
        return None
    return numbers, texts, python_value(values[numeric.isna()].iloc[0])


def _looks_like_int_id(values: pd.Series, name: str) -> bool:
    n, distinct = len(values), values.nunique()
    if n <= 20 or distinct < 0.99 * n:
        return False
    span = float(values.max()) - float(values.min()) + 1
    return span <= 2 * n or bool(_ID_NAME.search(name))


def dtype_name(dtype: Any) -> str:
    """A dtype as a string ``pandas_dtype`` turns back into the same dtype.

    ``str()`` says ``string`` for both string storages; pyarrow's must come back as pyarrow.
    """
    if isinstance(dtype, pd.StringDtype):
        return f"string[{dtype.storage}]"
    return str(dtype)


def _is_number(series: pd.Series) -> bool:
    """A numeric (not boolean, not datetime) column."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def python_value(value: Any) -> Any:
    """A numpy scalar as the plain Python value (what a user would type, what JSON stores); anything else as is."""
    return value.item() if isinstance(value, np.generic) else value
