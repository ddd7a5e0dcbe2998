"""Checks of a masking policy: its shape (what each key and option must be) and its fit to a table.

Every function returns a list of ``Problem`` (column, rule broken, fix) so that all of them can be
reported at once; nothing here raises on a malformed policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from synthgen.errors import Problem
from synthgen.masking import dates, ops
from synthgen.masking.ops import FAKE_KINDS, NUMERIC_KINDS, TRUNCATE

VERSION = 1
POLICY_KEYS = {"version", "columns", "k_anonymity", "locale", "reason", "note"}
#: options each operation accepts (besides "op" and the free-text "reason" / "note")
OPTIONS = {
    "drop": set(),
    "replace": {"kind", "locale"},
    "pseudonymize": {"reversible", "prefix", "length", "domain"},
    "mask": {"keep_first", "keep_last", "char", "keep_separators"},
    "generalize": {"bins", "width", "origin", "top", "bottom", "as", "truncate", "hierarchy", "min_count", "other"},
    "noise": {"scale", "distribution", "bound", "clip"},
}
FREE_TEXT = {"op", "reason", "note"}
KANON_OPTIONS = {"columns", "k", "max_suppression", "hierarchies", "reason", "note"}


# ----------------------------------------------------------------------------- value kinds
def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _positive(value: Any) -> bool:
    return is_number(value) and value > 0


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or is_number(value)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(is_number(v) for v in value)


def _groups(value: Any) -> bool:
    return isinstance(value, dict) and all(_scalar(v) for v in value.values())


def _locale(value: Any) -> bool:
    from faker.config import AVAILABLE_LOCALES

    return isinstance(value, str) and value in AVAILABLE_LOCALES


#: option -> (test, what it must be, example)
_TYPES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "kind": (lambda v: isinstance(v, str), "a string", '"name"'),
    "locale": (_locale, "a Faker locale", '"fr_FR"'),
    "reversible": (lambda v: isinstance(v, bool), "true or false", "true"),
    "prefix": (lambda v: isinstance(v, str), "a string", '"u-"'),
    "length": (_whole, "a whole number", "16"),
    "domain": (lambda v: isinstance(v, str) and bool(v), "a non-empty string", '"customer"'),
    "keep_first": (lambda v: _whole(v) and v >= 0, "a whole number >= 0", "2"),
    "keep_last": (lambda v: _whole(v) and v >= 0, "a whole number >= 0", "4"),
    "char": (lambda v: isinstance(v, str) and len(v) == 1, "one character", '"*"'),
    "keep_separators": (lambda v: isinstance(v, bool), "true or false", "true"),
    "bins": (_numbers, "a list of numbers", "[0, 18, 65, 120]"),
    "width": (is_number, "a number", "10"),
    "origin": (is_number, "a number", "0"),
    "top": (is_number, "a number", "90"),
    "bottom": (is_number, "a number", "18"),
    "as": (lambda v: isinstance(v, str), "a string", '"midpoint"'),
    "truncate": (lambda v: isinstance(v, str), "a string", '"year"'),
    "hierarchy": (_groups, "an object of value -> group (a string or number)", '{"Mexico": "Americas"}'),
    "min_count": (_whole, "a whole number", "20"),
    "other": (_scalar, "a string or a number", '"Other"'),
    "scale": (is_number, "a number", "5"),
    "distribution": (lambda v: isinstance(v, str), "a string", '"laplace"'),
    "bound": (is_number, "a number", "15"),
    "clip": (_numbers, "a list of numbers", "[0, 120]"),
}


# ----------------------------------------------------------------------------- policy shape
def policy_problems(raw: dict) -> list[Problem]:
    """Problems of the policy's top level: keys, version, locale, nothing to mask."""
    problems = []
    unknown = sorted(map(str, set(raw) - POLICY_KEYS))
    if unknown:
        problems.append(Problem(None, f"unknown policy keys {unknown}", "use version, columns, k_anonymity, locale"))
    version = raw.get("version", VERSION)
    if isinstance(version, bool) or version != VERSION:
        problems.append(Problem(None, f"unknown policy version {version!r}", f"use version {VERSION}"))
    if "locale" in raw and not _locale(raw["locale"]):
        problems.append(Problem(None, f"locale {raw['locale']!r} is not a Faker locale", 'use e.g. "en_US" or "fr_FR"'))
    if not raw.get("columns") and raw.get("k_anonymity") is None:
        problems.append(Problem(None, "the masking policy masks nothing", "add columns or a k_anonymity block"))
    return problems


def entry_problems(name: str, entry: Any) -> list[Problem]:
    """Problems of one column's entry that need no table: its form, operation and option types."""
    if not isinstance(entry, dict):
        return [Problem(name, f"entry must be an operation name or an object, got {entry!r}",
                        'e.g. "drop" or {"op": "mask", "keep_last": 4}')]
    op = entry.get("op")
    if not isinstance(op, str) or op not in OPTIONS:
        what = ("has no operation" if op is None else f"unknown operation {op!r}" if isinstance(op, str)
                else f'"op" must be an operation name (a string), got {op!r}')
        return [Problem(name, what, f"use one of {sorted(OPTIONS)}")]
    extra = set(entry) - OPTIONS[op] - FREE_TEXT
    if extra:
        return [Problem(name, f"{op} has no option {sorted(map(str, extra))}", f"use {sorted(OPTIONS[op]) or 'none'}")]
    return [Problem(name, f"{op} option {key!r} must be {what}, got {entry[key]!r}", f'e.g. "{key}": {example}')
            for key, (test, what, example) in _TYPES.items() if key in entry and not test(entry[key])]


def kanon_problems(block: Any) -> list[Problem]:
    """Problems of the k_anonymity block that need no table."""
    if block is None:
        return []
    if not isinstance(block, dict) or "columns" not in block or "k" not in block:
        return [Problem(None, "k_anonymity needs columns and k", '"k_anonymity": {"columns": ["age", "zip"], "k": 5}')]
    extra = set(block) - KANON_OPTIONS
    if extra:
        return [Problem(None, f"k_anonymity has no option {sorted(map(str, extra))}",
                        f"use {sorted(KANON_OPTIONS - {'reason', 'note'})}")]
    problems = []
    columns, k, share = block["columns"], block["k"], block.get("max_suppression", 0)
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        problems.append(Problem(None, f"k_anonymity columns must be a non-empty list of column names, got {columns!r}",
                                '"columns": ["age", "zip"]'))
    if not (_whole(k) and k >= 2):
        problems.append(Problem(None, f"k_anonymity k must be a whole number >= 2, got {k!r}", '"k": 5'))
    if not (is_number(share) and 0 <= share <= 0.5):
        problems.append(Problem(None, f"k_anonymity max_suppression must be a share in [0, 0.5], got {share!r}",
                                '"max_suppression": 0.01'))
    hierarchies = block.get("hierarchies", {})
    if not (isinstance(hierarchies, dict) and all(isinstance(h, dict) and all(isinstance(p, str) for p in h.values())
                                                  for h in hierarchies.values())):
        problems.append(Problem(None, "k_anonymity hierarchies must map a column to {value: parent name}",
                                '"hierarchies": {"country": {"Mexico": "Americas"}}'))
    return problems


# ----------------------------------------------------------------------------- fit to the table
def fit_problems(df: pd.DataFrame, columns: dict[str, Any], block: Any) -> list[Problem]:
    """Every problem of the entries and the k_anonymity block, shape first, then fit to ``df``."""
    problems = []
    for name, entry in columns.items():
        problems += entry_problems(name, entry) or _entry_fit(df, name, entry)
    shape = kanon_problems(block)
    return problems + (shape or _kanon_fit(df, columns, block))


def _entry_fit(df: pd.DataFrame, name: str, opts: dict[str, Any]) -> list[Problem]:
    if name not in df.columns:
        return [Problem(name, "is in the policy but not in the table",
                        f"use one of {_listing(df.columns)} or remove it from the policy")]
    if opts["op"] == "drop":
        return []
    return _unhashable(df[name], name) or _CHECKS[opts["op"]](df[name], name, opts)


def _kanon_fit(df: pd.DataFrame, columns: dict[str, Any], block: Any) -> list[Problem]:
    if block is None:
        return []
    problems = [Problem(c, "is a k-anonymity quasi-identifier but not a column of the table",
                        f"use one of {_listing(df.columns)}") for c in block["columns"] if c not in df.columns]
    problems += [Problem(c, "is a k-anonymity quasi-identifier but the policy drops it", "keep one or the other")
                 for c in block["columns"] if isinstance(columns.get(c), dict) and columns[c].get("op") == "drop"]
    return problems + [p for c in block["columns"] if c in df.columns for p in _unhashable(df[c], c)]


def _listing(columns: Any) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:12]) + (f" (+{len(names) - 12} more)" if len(names) > 12 else "")


def _unhashable(series: pd.Series, name: str) -> list[Problem]:
    if series.dtype != object:
        return []
    try:
        pd.unique(series.dropna())
        return []
    except TypeError:
        bad = next(v for v in series.dropna() if not _hashable(v))
        return [Problem(name, f"holds {type(bad).__name__} values (e.g. {str(bad)[:30]}), which cannot be masked",
                        "turn them into text first, e.g. df[column].map(json.dumps), or drop the column")]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
        return True
    except TypeError:
        return False


# ----------------------------------------------------------------------------- per operation
def _check_replace(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    kind = opts.get("kind")
    if kind not in FAKE_KINDS:
        return [Problem(name, f"replace needs a kind, got {kind!r}", f"use one of {sorted(FAKE_KINDS)}")]
    if pd.api.types.is_bool_dtype(series.dtype):
        return [Problem(name, "replace does not fit a boolean column", "use drop or keep the column")]
    if dates.is_datetime(series) and kind != "date":
        return [Problem(name, f"is a date column; replace kind {kind!r} makes text", 'use kind "date"')]
    if pd.api.types.is_numeric_dtype(series.dtype) and kind not in NUMERIC_KINDS:
        return [Problem(name, f"is numeric; replace kind {kind!r} makes text",
                        f"use one of {sorted(NUMERIC_KINDS)} or pseudonymize")]
    return []


def _check_pseudonymize(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    length = opts.get("length", 16)
    if not 8 <= length <= 52:
        return [Problem(name, f"pseudonym length {length!r} is out of range", "use an integer from 8 to 52")]
    if "domain" in opts and not opts.get("reversible"):
        return [Problem(name, "domain is the key domain of reversible pseudonyms (one-way ones join across all "
                              "columns already)", 'add "reversible": true, or remove "domain"')]
    return []


def _check_mask(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if not ops.is_text(series):
        return [Problem(name, f"mask hides characters of text, but the column is {series.dtype}",
                        "use pseudonymize, generalize or noise for numbers")]
    return []


def _check_generalize(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    modes = [m for m in ("bins", "width", "truncate", "hierarchy", "min_count") if m in opts]
    coding = "top" in opts or "bottom" in opts
    if len(modes) > 1 or not (modes or coding):
        return [Problem(name, f"generalize needs one of bins, width, top/bottom, truncate, hierarchy, min_count "
                        f"(got {modes or 'none'})", 'e.g. {"op": "generalize", "width": 10}')]
    if opts.get("as", "lower") not in ("lower", "midpoint", "label"):
        return [Problem(name, f"generalize as {opts['as']!r} is unknown", "use lower, midpoint or label")]
    return _GENERALIZE_CHECKS[modes[0] if modes else "coding"](series, name, opts)


def _check_numeric_bins(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return [Problem(name, f"numeric generalization needs numbers, the column is {series.dtype}",
                        "use truncate for dates, hierarchy or min_count for categories")]
    if "width" in opts and not _positive(opts["width"]):
        return [Problem(name, f"width {opts['width']!r} must be a positive number", 'e.g. "width": 10')]
    if "bins" not in opts:
        return []
    edges = opts["bins"]
    if len(edges) < 2 or list(np.diff(edges) > 0).count(False):
        return [Problem(name, "bins must be at least two increasing numbers", 'e.g. "bins": [0, 18, 65, 120]')]
    values = series.astype(float).clip(lower=opts.get("bottom"), upper=opts.get("top"))
    outside = int(((values < edges[0]) | (values > edges[-1])).sum())
    if outside:
        return [Problem(name, f"{outside} values lie outside the bins [{edges[0]}, {edges[-1]}]",
                        "widen the first/last edge, or add bottom/top coding (applied before binning)")]
    return []


def _check_truncate(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if opts["truncate"] not in TRUNCATE:
        return [Problem(name, f"truncate {opts['truncate']!r} is unknown", f"use one of {list(TRUNCATE)}")]
    if dates.is_datetime(series):
        return []
    if not ops.is_text(series):
        return [Problem(name, f"truncate needs dates, the column is {series.dtype}", "use bins or width")]
    parsed = dates.parse_text(series.dropna())
    if parsed.isna().any():
        bad = series.dropna()[parsed.isna()].iloc[0]
        return [Problem(name, f"{int(parsed.isna().sum())} values are not dates (e.g. {bad!r})",
                        "clean the column or use another operation")]
    return []


def _check_categories(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if "min_count" in opts and opts["min_count"] < 2:
        return [Problem(name, f"min_count {opts['min_count']!r} must be an integer >= 2", 'e.g. "min_count": 20')]
    if "hierarchy" not in opts:
        return []
    missing = ops.uncovered(series, opts["hierarchy"])
    if missing and "other" not in opts:
        return [Problem(name, f"hierarchy does not cover {len(missing)} values (e.g. {missing[:5]})",
                        'add them, or give "other": "<group>" for the rest')]
    return []


def _check_noise(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if not (numeric or dates.is_datetime(series)):
        return [Problem(name, f"noise needs numbers or dates, the column is {series.dtype}",
                        "use generalize or pseudonymize")]
    if not _positive(opts.get("scale")):
        return [Problem(name, "noise needs a positive scale", 'e.g. {"op": "noise", "scale": 5}')]
    if opts.get("distribution", "laplace") not in ("laplace", "gaussian", "uniform"):
        return [Problem(name, f"noise distribution {opts['distribution']!r} is unknown",
                        "use laplace, gaussian or uniform")]
    if "bound" in opts and not _positive(opts["bound"]):
        return [Problem(name, "noise bound must be a positive number", 'e.g. "bound": 15')]
    return _check_clip(series, name, opts.get("clip"))


def _check_clip(series: pd.Series, name: str, clip: list | None) -> list[Problem]:
    if clip is None:
        return []
    if dates.is_datetime(series):
        return [Problem(name, "noise clip is for numbers; dates stay within the column's range",
                        "remove clip")]
    if not (len(clip) == 2 and clip[0] < clip[1]):
        return [Problem(name, f"noise clip {clip!r} must be [low, high] with low < high", 'e.g. "clip": [0, 120]')]
    if pd.api.types.is_integer_dtype(series.dtype):
        info = np.iinfo(np.dtype(getattr(series.dtype, "numpy_dtype", series.dtype)))
        if clip[0] < info.min or clip[1] > info.max:
            return [Problem(name, f"noise clip {clip!r} leaves the column's {series.dtype} range "
                            f"[{info.min}, {info.max}]", "clip within that range, or cast the column to int64")]
    return []


_GENERALIZE_CHECKS = {"bins": _check_numeric_bins, "width": _check_numeric_bins, "coding": _check_numeric_bins,
                      "truncate": _check_truncate, "hierarchy": _check_categories, "min_count": _check_categories}
_CHECKS = {"replace": _check_replace, "pseudonymize": _check_pseudonymize, "mask": _check_mask,
           "generalize": _check_generalize, "noise": _check_noise}
