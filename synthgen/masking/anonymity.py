"""k-anonymity over declared quasi-identifiers: Mondrian partitioning and type-preserving recoding.

``k_anonymize`` splits the rows recursively (Mondrian, LeFevre et al. 2006): each split cuts one
quasi-identifier (QI), the one whose normalized range in the partition is widest, at the value
boundary nearest the partition's median, and only when both halves keep at least ``k`` rows.
Categories are ordered without looking at any target: by frequency, most common first, and
grouped by parent when a hierarchy is given (a partition spanning several parents is cut between
parents only). Each final partition becomes one equivalence class and its QI values are recoded to one value
of the column's own dtype:

* integer and datetime QIs: the partition's lower median (the median rounded down to a value
  the partition holds, so ints stay ints and dates keep their unit and time zone);
* float QIs: the partition's median;
* categorical and string QIs: the single value if the partition holds one, else the hierarchy
  parent when all its values share one, else the sorted set label ``"A|B|C"`` (object and string
  dtypes are kept; a ``category`` column stays categorical with the labels added to its categories);
* boolean QIs (``bool`` / ``boolean`` dtype) cannot hold a generalized value (a label changes
  the dtype, the majority value fabricates data), so they are never mixed: rows are first
  stratified by their boolean QI values and Mondrian runs within each stratum. A stratum smaller
  than ``k`` is suppressed, within ``max_suppression``; cast the column to object to let it be
  generalized to ``"False|True"`` instead;
* nulls are a value of their own, ordered after every other value. A partition that mixes nulls
  and values in a QI is cut between them first whenever both sides keep ``k`` rows; one that still
  mixes them when no split is left has that QI blanked to null for all its rows (the "unknown" top
  of every hierarchy: nothing is invented, and the dtype already holds nulls). The report counts the
  values blanked per QI (``cells_blanked``).

Information loss is the normalized certainty penalty (NCP) of each released QI cell: a range's
width over the column's range, ``(values covered - 1) / (distinct values - 1)`` for a categorical
(the parent's values when the parent label is released), 0 for an unchanged value and 1 for a
blanked or suppressed cell; ``information_loss`` is the mean over rows and QIs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types

from synthgen.errors import ConfigError, InvalidDataError, PrivacyError, Problem

#: equal-width bins per numeric QI when looking for the rarest QI combinations to suppress
RARITY_BINS = 10


@dataclass(frozen=True)
class AnonymityReport:
    """What ``k_anonymize`` did: the k reached, rows removed, classes formed and the utility lost.

    ``information_loss`` and ``per_column_loss`` are NCP in [0, 1], averaged over the input rows;
    every QI cell of a suppressed row counts as a loss of 1. ``cells_blanked`` counts, per QI, the
    values of kept rows turned to null because their class mixed nulls and values.
    """

    k_requested: int
    k_achieved: int
    rows_in: int
    rows_suppressed: int
    groups: int
    information_loss: float
    per_column_loss: dict[str, float]
    cells_blanked: dict[str, int]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass
class _Coded:
    """A QI column as order-preserving integer codes; a null takes code ``null`` (after every value)."""

    name: Any
    kind: str  # "number" (int), "float", "time", "category" or "strict" (boolean)
    codes: np.ndarray  # per row
    null: int  # code of a null: the number of distinct values
    first: np.ndarray  # per code (null last): position of a row holding it, -1 if none
    #: number/float/time: per code, its value as a float (empty for other kinds)
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    span: float = 0.0  # number/float/time: the column's range; category: distinct values - 1
    values: list[Any] = field(default_factory=list)  # category: the value of each code
    group: np.ndarray | None = None  # category with a hierarchy: per code (null: -1), its parent's id
    #: category with a hierarchy (``group`` set): parent of each id, and how many of the column's values each covers
    parents: list[Any] = field(default_factory=list)
    leaves: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def k_of(df: pd.DataFrame, columns: list[str]) -> int:
    """Size of the smallest equivalence class over ``columns`` (nulls count as a value); 0 with no rows.

    Raises:
        ConfigError: no columns given.
        InvalidDataError: a column is missing from ``df``.
    """
    if isinstance(columns, str) or not columns:
        raise ConfigError("k_of needs a list of quasi-identifier columns (fix: e.g. ['age', 'sex'])")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidDataError([_missing(c, df) for c in missing])
    sizes = _class_sizes(df, list(columns))
    return int(sizes.min()) if len(sizes) else 0


def k_anonymize(df: pd.DataFrame, columns: list[str], k: int, *, max_suppression: float = 0.0,
                hierarchies: dict[str, dict[str, str]] | None = None) -> tuple[pd.DataFrame, AnonymityReport]:
    """Recode the quasi-identifiers ``columns`` so every combination of them is shared by >= ``k`` rows.

    Args:
        df: the table (after any per-column masking); it is not modified.
        columns: the quasi-identifiers.
        k: smallest equivalence class allowed.
        max_suppression: share of rows that may be removed. The rarest QI combinations (numeric
            QIs binned into ``RARITY_BINS`` equal-width bins) are removed, none, half or all of the
            allowance, whichever gives the lowest information loss (suppressed cells counting 1).
        hierarchies: per categorical QI, value -> parent group; it guides the splits and gives
            the label of a partition whose values share a parent.

    Returns:
        The recoded table (same columns, dtypes and index; suppressed rows dropped; columns that
        are not QIs untouched) and its report.

    Raises:
        ConfigError: only the settings are wrong (all problems listed, also in ``.problems``).
        InvalidDataError: the table is at fault (missing QI, fewer rows than k, a hierarchy that
            misses values or sits on a non-categorical column, a boolean stratum that cannot
            be suppressed); settings problems found at the same time are listed too.
    """
    hierarchies = {} if hierarchies is None else hierarchies
    _check(df, columns, k, max_suppression, hierarchies)
    coded = [_encode(df[c], hierarchies.get(c)) for c in columns]
    budget = math.floor(max_suppression * len(df))
    best = None
    for allowance in sorted({0, budget // 2, budget}):
        gone = _suppress(coded, k, allowance)
        if gone.sum() > budget:
            continue
        part = _mondrian(coded, k, gone)
        loss = _losses(coded, part)
        if best is None or loss.mean() < best[1].mean() - 1e-12:
            best = (part, loss)
    if best is None:
        raise InvalidDataError(_strata_problem(coded, k, budget, len(df)))
    part, loss = best
    out = _recode(df, coded, part)
    sizes = _class_sizes(out, list(columns))
    if sizes.min() < k:  # never: the partitions have >= k rows and recoding only merges classes
        raise PrivacyError(f"internal error: a class of {sizes.min()} rows after {k}-anonymization")
    report = AnonymityReport(int(k), int(sizes.min()), len(df), int((part < 0).sum()), len(sizes),
                             float(loss.mean()), {c: float(x) for c, x in zip(columns, loss, strict=True)},
                             {c.name: _blanked(c, part) for c in coded})
    return out, report


# ----------------------------------------------------------------------------- validation
def _check(df: pd.DataFrame, columns: list[str], k: Any, max_suppression: Any, hierarchies: Any) -> None:
    """Every problem at once: InvalidDataError when the data is at fault, else ConfigError."""
    problems: list[Problem] = []
    data: list[Problem] = []  # those of ``problems`` that the table is at fault for
    if isinstance(columns, str) or not columns:
        problems.append(Problem(None, "no quasi-identifier columns given", "list them, e.g. columns=['age', 'sex']"))
        columns = []
    elif len(set(columns)) < len(columns):
        problems.append(Problem(None, "quasi-identifier columns are listed twice", "list each column once"))
    data += [_missing(c, df) for c in columns if c not in df.columns]
    problems += data
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        problems.append(Problem(None, f"k must be a whole number >= 2, got {k!r}", "use e.g. k=5"))
    elif k > len(df):
        data.append(Problem(None, f"k={k} is larger than the table's {len(df)} rows", "lower k or pass more rows"))
        problems.append(data[-1])
    if (isinstance(max_suppression, bool) or not isinstance(max_suppression, int | float | np.number)
            or not 0 <= max_suppression <= 0.5):
        problems.append(Problem(None, f"max_suppression must be a share in [0, 0.5], got {max_suppression!r}",
                                "use e.g. 0.02 to let 2% of the rows be removed, or 0"))
    if not isinstance(hierarchies, Mapping):
        problems.append(Problem(None, "hierarchies must map a column to {value: parent}",
                                "pass e.g. {'native-country': {'Mexico': 'Americas', ...}}"))
        hierarchies = {}
    for name, parents in hierarchies.items():
        if name not in columns:
            problems.append(Problem(name, "has a hierarchy but is not a quasi-identifier",
                                    "add it to the k-anonymity columns or remove its hierarchy"))
        elif not isinstance(parents, Mapping) or not all(isinstance(p, str) for p in parents.values()):
            problems.append(Problem(name, "hierarchy is not a {value: parent name} mapping",
                                    "map each value of the column to the name of its parent group"))
        elif name in df.columns:
            found = _hierarchy_problems(df[name], parents)
            data += found
            problems += found
    if data:
        raise InvalidDataError(problems)
    if problems:
        err = ConfigError(_join("invalid k-anonymity settings", problems))
        err.problems = problems
        raise err


def _missing(column: str, df: pd.DataFrame) -> Problem:
    return Problem(column, "quasi-identifier is not a column of the data",
                   "use one of: " + ", ".join(map(str, df.columns)))


def _hierarchy_problems(series: pd.Series, parents: Mapping) -> list[Problem]:
    if _kind(series.dtype) != "category":
        return [Problem(series.name, f"has a hierarchy but is of dtype {series.dtype}, not categorical",
                        "remove the hierarchy: numeric, datetime and boolean columns are not generalized by one")]
    uncovered = sorted({v for v in series.dropna().unique() if v not in parents}, key=str)
    if not uncovered:
        return []
    shown = ", ".join(repr(v) for v in uncovered[:5]) + (", ..." if len(uncovered) > 5 else "")
    return [Problem(series.name, f"hierarchy misses {len(uncovered)} of the column's values: {shown}",
                    "map every value of the column to a parent group")]


def _join(head: str, problems: list[Problem]) -> str:
    count = "" if len(problems) == 1 else f" ({len(problems)} problems)"
    return f"{head}{count}: " + "; ".join(map(str, problems))


# ----------------------------------------------------------------------------- encoding
def _kind(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if types.is_bool_dtype(dtype):
        return "strict"
    if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
        return "time"
    if types.is_integer_dtype(dtype):
        return "number"
    if types.is_float_dtype(dtype):
        return "float"
    return "category"


def _encode(series: pd.Series, parents: Mapping | None) -> _Coded:
    kind = _kind(series.dtype)
    if kind == "category":
        return _encode_category(series, parents)
    codes, uniques = pd.factorize(series, sort=True)
    codes = np.where(codes < 0, len(uniques), codes).astype(np.int64)
    col = _Coded(series.name, kind, codes, len(uniques), _first_rows(codes, len(uniques)))
    if kind != "strict":
        index = pd.Index(uniques)
        col.scale = (index.asi8 if kind == "time" else index.to_numpy(dtype=float)).astype(float)
        col.span = float(col.scale[-1] - col.scale[0]) if len(uniques) else 0.0
    return col


def _encode_category(series: pd.Series, parents: Mapping | None) -> _Coded:
    """Codes in a target-free order: by frequency (most common first), grouped by parent when given."""
    raw, uniques = pd.factorize(series)
    counts = np.bincount(raw[raw >= 0], minlength=len(uniques))
    values = list(uniques)
    if parents is None:
        order = sorted(range(len(values)), key=lambda i: (-counts[i], str(values[i])))
    else:
        mass: dict[Any, int] = {}
        for v, n in zip(values, counts, strict=True):
            mass[parents[v]] = mass.get(parents[v], 0) + int(n)
        order = sorted(range(len(values)), key=lambda i: (-mass[parents[values[i]]], str(parents[values[i]]),
                                                          -counts[i], str(values[i])))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    codes = np.append(rank, len(values))[np.where(raw < 0, len(values), raw)]
    col = _Coded(series.name, "category", codes, len(values), _first_rows(codes, len(values)),
                 span=float(max(len(values) - 1, 0)), values=[values[i] for i in order])
    if parents is not None:
        names = list(dict.fromkeys(parents[v] for v in col.values))
        ids = {p: i for i, p in enumerate(names)}
        col.group = np.array([ids[parents[v]] for v in col.values] + [-1], dtype=np.int64)
        col.parents = names
        col.leaves = np.bincount(col.group[:-1], minlength=len(names))
    return col


def _first_rows(codes: np.ndarray, null: int) -> np.ndarray:
    present, where = np.unique(codes, return_index=True)
    first = np.full(null + 1, -1, dtype=np.int64)
    first[present] = where
    return first


# ----------------------------------------------------------------------------- suppression
def _suppress(coded: list[_Coded], k: int, allowance: int) -> np.ndarray:
    """Rows to remove: the boolean strata smaller than k (they cannot be generalized), then up to
    ``allowance`` rows in all of the rarest QI combinations shared by fewer than k rows, then the
    strata that this left with fewer than k rows."""
    gone = np.zeros(len(coded[0].codes), dtype=bool)
    _drop_small_strata(coded, k, gone)
    if allowance > gone.sum():
        keys = np.stack([_rarity_key(c) for c in coded], axis=1)
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        size = counts[inverse.ravel()]
        rare = np.flatnonzero((size < k) & ~gone)
        gone[rare[np.argsort(size[rare], kind="stable")][:allowance - gone.sum()]] = True
        _drop_small_strata(coded, k, gone)
    return gone


def _drop_small_strata(coded: list[_Coded], k: int, gone: np.ndarray) -> None:
    for rows in _strata(coded, np.flatnonzero(~gone)):
        if len(rows) < k:
            gone[rows] = True


def _rarity_key(col: _Coded) -> np.ndarray:
    if col.kind in ("category", "strict") or col.span == 0:
        return col.codes
    bins = np.minimum(((col.scale - col.scale[0]) / col.span * RARITY_BINS).astype(np.int64), RARITY_BINS - 1)
    return np.append(bins, RARITY_BINS)[col.codes]


def _strata(coded: list[_Coded], rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` grouped by their boolean QI values (one group when there is no boolean QI)."""
    strict = [c.codes[rows] for c in coded if c.kind == "strict"]
    if not strict or not len(rows):
        return [rows] if len(rows) else []
    _, inverse = np.unique(np.stack(strict, axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    return np.split(rows[order], np.flatnonzero(np.diff(inverse[order])) + 1)


def _strata_problem(coded: list[_Coded], k: int, budget: int, n: int) -> Problem:
    small = sum(len(r) for r in _strata(coded, np.arange(n)) if len(r) < k)
    names = ", ".join(str(c.name) for c in coded if c.kind == "strict")
    return Problem(names, f"{small} rows have a combination of boolean quasi-identifier values held by fewer "
                   f"than k={k} rows; boolean columns cannot be generalized and only {budget} rows may be "
                   "suppressed", f"raise max_suppression to at least {math.ceil(small / n * 1000) / 1000}, "
                   "cast the column to object (it is then generalized to 'False|True'), or drop it from "
                   "the quasi-identifiers")


# ----------------------------------------------------------------------------- Mondrian
def _mondrian(coded: list[_Coded], k: int, gone: np.ndarray) -> np.ndarray:
    """Partition id of each row (-1: suppressed); every partition has >= k rows."""
    free = [c for c in coded if c.kind != "strict"]
    part = np.full(len(gone), -1, dtype=np.int64)
    stack = _strata(coded, np.flatnonzero(~gone))
    leaves = 0
    while stack:
        rows = stack.pop()
        halves = _split(free, rows, k)
        if halves is None:
            part[rows] = leaves
            leaves += 1
        else:
            stack.extend(halves)
    return part


def _split(free: list[_Coded], rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The two halves of the cut on the widest QI that allows one, or None."""
    if len(rows) < 2 * k:
        return None
    codes = [c.codes[rows] for c in free]
    widths = [_width(c, x) for c, x in zip(free, codes, strict=True)]
    for i in np.argsort(widths, kind="stable")[::-1]:
        if widths[i] <= 0:
            return None
        left = _cut(free[i], codes[i], k)
        if left is not None:
            return rows[left], rows[~left]
    return None


def _width(col: _Coded, codes: np.ndarray) -> float:
    """Normalized range of one QI in a partition: its NCP if the partition were released now."""
    lo, hi = int(codes.min()), int(codes.max())
    if lo == hi:
        return 0.0
    if hi == col.null:
        return 1.0  # nulls mixed with values: would be blanked
    if col.kind != "category":
        return float((col.scale[hi] - col.scale[lo]) / col.span)
    if col.group is not None and col.group[lo] == col.group[hi]:  # codes are grouped by parent
        return float((col.leaves[col.group[lo]] - 1) / col.span)
    return float((len(np.unique(codes)) - 1) / col.span)


def _cut(col: _Coded, codes: np.ndarray, k: int) -> np.ndarray | None:
    """Mask of the lower half of the cut between two code values nearest the median, both halves >= k;
    nulls mixed with values are cut off first when both sides allow it (else they would be blanked).
    A categorical partition spanning several parents is cut between parents only."""
    present, counts = np.unique(codes, return_counts=True)
    below = np.cumsum(counts)[:-1]
    allowed = (below >= k) & (len(codes) - below >= k)
    if len(present) > 1 and present[-1] == col.null and allowed[-1]:
        return codes < col.null
    if col.group is not None:
        parent = col.group[present]
        if parent[0] != parent[-1]:
            allowed &= parent[:-1] != parent[1:]
    if not allowed.any():
        return None
    options = np.flatnonzero(allowed)
    best = options[np.argmin(np.abs(below[options] - len(codes) / 2))]
    return codes <= present[best]


# ----------------------------------------------------------------------------- recoding and loss
def _stats(col: _Coded, part: np.ndarray) -> tuple[np.ndarray, pd.api.typing.SeriesGroupBy, np.ndarray]:
    """Kept rows, their codes grouped by partition, and per partition (lowest code, highest code)."""
    kept = np.flatnonzero(part >= 0)
    grouped = pd.Series(col.codes[kept]).groupby(part[kept])
    return kept, grouped, np.stack([grouped.min().to_numpy(), grouped.max().to_numpy()])


def _losses(coded: list[_Coded], part: np.ndarray) -> np.ndarray:
    """Per QI, NCP averaged over all input rows (a suppressed row's cell counts 1)."""
    sizes = np.bincount(part[part >= 0])
    out = []
    for col in coded:
        ncp = _partition_ncp(col, part)
        out.append(((ncp * sizes).sum() + (part < 0).sum()) / len(part))
    return np.array(out)


def _partition_ncp(col: _Coded, part: np.ndarray) -> np.ndarray:
    if col.kind == "strict":
        return np.zeros(part.max() + 1)
    kept, grouped, (lo, hi) = _stats(col, part)
    mixed = (hi == col.null) & (lo < col.null)
    if not col.span:
        ncp = np.zeros(len(lo))
    elif col.kind != "category":
        top = np.minimum(np.where(hi == col.null, lo, hi), col.null - 1)
        ncp = (col.scale[top] - col.scale[np.minimum(lo, col.null - 1)]) / col.span
    else:
        ncp = (grouped.nunique().to_numpy() - 1) / col.span
        if col.group is not None:  # codes are grouped by parent: lo and hi share one iff all do
            one = (lo != hi) & (col.group[lo] == col.group[hi]) & (hi < col.null)
            ncp = np.where(one, (col.leaves[col.group[lo]] - 1) / col.span, ncp)
    return np.where(mixed, 1.0, np.where(lo == hi, 0.0, ncp))


def _blanked(col: _Coded, part: np.ndarray) -> int:
    """Values of kept rows that recoding turns to null: those in a class mixing nulls and values."""
    if col.kind == "strict" or not (part >= 0).any():
        return 0
    kept, _, (lo, hi) = _stats(col, part)
    mixed = (hi == col.null) & (lo < col.null)
    return int((mixed[part[kept]] & (col.codes[kept] != col.null)).sum())


def _recode(df: pd.DataFrame, coded: list[_Coded], part: np.ndarray) -> pd.DataFrame:
    kept = np.flatnonzero(part >= 0)
    out = df.iloc[kept].copy()
    for col in coded:
        if col.kind != "strict":
            out[col.name] = pd.Series(_recode_column(df[col.name], col, part), index=out.index)
    return out


def _recode_column(series: pd.Series, col: _Coded, part: np.ndarray) -> Any:
    kept, grouped, (lo, hi) = _stats(col, part)
    mixed = (hi == col.null) & (lo < col.null)
    rows = part[kept]
    if col.kind == "float":
        codes = col.codes[kept]
        values = np.full(len(kept), np.nan)
        values[codes < col.null] = col.scale[codes[codes < col.null]]
        median = pd.Series(values).groupby(rows).median().to_numpy()
        median[mixed] = np.nan
        return pd.array(median[rows], dtype=series.dtype)
    if col.kind in ("number", "time"):
        middle = grouped.quantile(0.5, interpolation="lower").to_numpy().astype(np.int64)
        middle[mixed] = col.null
        return series.take(col.first[middle[rows]]).array
    code = np.where((lo != hi)[rows], col.null, col.codes[kept])
    picked = series.take(col.first[code]).to_numpy(dtype=object)
    labels = _labels(col, grouped, lo, hi, mixed)
    named = np.flatnonzero(pd.notna(labels)[rows])
    picked[named] = labels[rows[named]]
    if isinstance(series.dtype, pd.CategoricalDtype):
        extra = [v for v in dict.fromkeys(labels[pd.notna(labels)]) if v not in series.cat.categories]
        return pd.Categorical(picked, categories=[*series.cat.categories, *extra], ordered=series.cat.ordered)
    return pd.array(picked, dtype=series.dtype)


def _labels(col: _Coded, grouped: pd.api.typing.SeriesGroupBy, lo: np.ndarray, hi: np.ndarray,
            mixed: np.ndarray) -> np.ndarray:
    """Per partition: the parent or "A|B" set label of a partition of several values, else None."""
    labels = np.full(len(lo), None, dtype=object)
    several = np.flatnonzero((lo != hi) & ~mixed)
    if not len(several):
        return labels
    sets = grouped.unique()
    for p in several:
        if col.group is not None and col.group[lo[p]] == col.group[hi[p]]:
            labels[p] = col.parents[col.group[lo[p]]]
        else:
            labels[p] = "|".join(sorted(str(col.values[c]) for c in sets.iloc[p]))
    return labels


def _class_sizes(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    return df.groupby(columns, dropna=False, observed=True, sort=False).size()
