"""De-identification before training: a JSON policy of per-column operations, then k-anonymity.

A policy::

    {"version": 1,
     "columns": {"name":  {"op": "replace", "kind": "name"},
                 "ssn":   {"op": "mask", "keep_last": 4},
                 "id":    {"op": "pseudonymize", "reversible": true},
                 "notes": "drop",
                 "age":   {"op": "generalize", "width": 10, "top": 90},
                 "dob":   {"op": "generalize", "truncate": "year"},
                 "pay":   {"op": "noise", "scale": 500}},
     "k_anonymity": {"columns": ["age", "sex", "zip"], "k": 5, "max_suppression": 0.01}}

Every entry may carry a ``"reason"`` (``mask --suggest`` writes one). The policy is checked against
the table before anything runs, and every problem (unknown column, unknown operation or option,
an operation that does not fit the column's type) is reported at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthgen.errors import ConfigError, Problem
from synthgen.privacy import mask_ops
from synthgen.privacy.mask_ops import FAKE_KINDS, NUMERIC_KINDS, TRUNCATE, MaskContext

#: operation name -> function (drop removes the column and needs none)
OPERATIONS = {
    "replace": mask_ops.replace,
    "pseudonymize": mask_ops.pseudonymize,
    "mask": mask_ops.mask,
    "generalize": mask_ops.generalize,
    "noise": mask_ops.noise,
}
#: options each operation accepts (besides "op" and the free-text "reason" / "note")
OPTIONS = {
    "drop": set(),
    "replace": {"kind", "locale"},
    "pseudonymize": {"reversible", "prefix", "length"},
    "mask": {"keep_first", "keep_last", "char", "keep_separators"},
    "generalize": {"bins", "width", "origin", "top", "bottom", "as", "truncate", "hierarchy", "min_count", "other"},
    "noise": {"scale", "distribution", "bound", "clip"},
}
KANON_OPTIONS = {"columns", "k", "max_suppression", "hierarchies", "reason", "note"}


@dataclass(frozen=True)
class MaskPolicy:
    """A parsed masking policy: per-column operations and an optional k-anonymity block."""

    columns: dict[str, dict[str, Any]]
    k_anonymity: dict[str, Any] | None = None
    locale: str = "en_US"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MaskPolicy:
        """Parse a policy dictionary; shape errors (not column fit) are raised here."""
        if not isinstance(raw, dict) or not isinstance(raw.get("columns", {}), dict):
            raise ConfigError('a masking policy is a JSON object with a "columns" object (fix: see synthgen mask '
                              '--suggest for an example)')
        unknown = set(raw) - {"version", "columns", "k_anonymity", "locale", "reason", "note"}
        if unknown:
            raise ConfigError(f"unknown policy keys {sorted(unknown)} (fix: use columns, k_anonymity, locale)")
        columns = {str(k): ({"op": v} if isinstance(v, str) else dict(v)) for k, v in raw.get("columns", {}).items()}
        if not columns and not raw.get("k_anonymity"):
            raise ConfigError("the masking policy masks nothing (fix: add columns or a k_anonymity block)")
        return cls(columns, raw.get("k_anonymity"), str(raw.get("locale", "en_US")))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> MaskPolicy:
        """Read a policy JSON file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} not found (fix: check the path, or write one with synthgen "
                              "mask --suggest)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"policy file {path} is not valid JSON ({exc}) (fix: correct the JSON)") from None

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-ready data."""
        out: dict[str, Any] = {"version": 1, "columns": self.columns}
        if self.k_anonymity:
            out["k_anonymity"] = self.k_anonymity
        return out

    def check(self, df: pd.DataFrame) -> None:
        """Raise one ``ConfigError`` naming every policy entry that does not fit ``df``."""
        problems = [p for name, opts in self.columns.items() for p in _entry_problems(df, name, opts)]
        problems += _kanon_problems(df, self)
        if problems:
            head = "invalid masking policy" + (f" ({len(problems)} problems)" if len(problems) > 1 else "")
            raise ConfigError(head + ": " + "; ".join(str(p) for p in problems))


@dataclass
class MaskReport:
    """What masking did: per column operation, values changed and dtypes; rows suppressed; k achieved."""

    rows_in: int
    rows_out: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    anonymity: dict[str, Any] | None = None
    keyed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return asdict(self)

    def lines(self) -> list[str]:
        """One human-readable line per fact, for the CLI."""
        out = [f"{self.rows_in} rows in, {self.rows_out} rows out"]
        for name, info in self.columns.items():
            dtype = "" if info["dtype_in"] == info["dtype_out"] else f", {info['dtype_in']} -> {info['dtype_out']}"
            changed = "" if info["op"] == "drop" else f": {info['changed']} values changed{dtype}"
            out.append(f"  {name}: {info['op']}{changed}")
        if self.anonymity:
            a = self.anonymity
            out.append(f"  k-anonymity over {', '.join(a['columns'])}: k = {a['k_achieved']} "
                       f"(asked {a['k_requested']}), {a['groups']} groups, {a['rows_suppressed']} rows suppressed, "
                       f"information loss {a['information_loss']:.3f}")
        if not self.keyed:
            out.append("  no key: replacements and pseudonyms hold within this run only")
        return out


class Masker:
    """Apply a masking policy to tables.

    Args:
        policy: a ``MaskPolicy``, its dictionary, or the path of its JSON file.
        key: 256-bit owner key (``synthgen keygen``): replacements and pseudonyms then stay the same
            across runs, and reversible pseudonyms can be revealed. Without one, a random key lives
            for this masker only.
        seed: seed for the ``noise`` operation (default: fresh OS randomness).
    """

    def __init__(self, policy: MaskPolicy | dict | str | os.PathLike, *, key: bytes | None = None,
                 seed: int | None = None):
        self.policy = _as_policy(policy)
        self.context = MaskContext(key=key, seed=seed, locale=self.policy.locale)
        self.report: MaskReport | None = None

    def apply(self, data: pd.DataFrame) -> pd.DataFrame:
        """The masked copy of ``data`` (same row order; rows only go when k-anonymity suppresses them)."""
        self.policy.check(data)
        out, info = data.copy(), {}
        for name, opts in self.policy.columns.items():
            before = out[name]
            if opts["op"] == "drop":
                out = out.drop(columns=[name])
            else:
                out[name] = OPERATIONS[opts["op"]](before, _options(opts), self.context)
            info[name] = _column_info(before, out.get(name), opts["op"])
        out, anonymity = self._anonymize(out)
        self.report = MaskReport(len(data), len(out), info, anonymity, self.context.key is not None)
        return out

    def reveal(self, data: pd.DataFrame) -> pd.DataFrame:
        """Undo the reversible pseudonyms of ``data`` (needs the key it was masked with)."""
        columns = [n for n, o in self.policy.columns.items() if o["op"] == "pseudonymize" and o.get("reversible")]
        if not columns:
            raise ConfigError("the policy has no reversible pseudonyms to reveal (fix: mark them reversible: true)")
        if self.context.key is None:
            raise ConfigError("revealing needs the key the table was masked with (fix: --key-file PATH)")
        out = data.copy()
        for name in columns:
            if name not in out.columns:
                raise ConfigError(f"column {name!r} is not in the table (fix: reveal the table this policy masked)")
            out[name] = mask_ops.reveal_values(out[name], self.policy.columns[name], self.context)
        return out

    def _anonymize(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict | None]:
        block = self.policy.k_anonymity
        if not block:
            return df, None
        from synthgen.privacy.anonymity import k_anonymize

        out, report = k_anonymize(df, list(block["columns"]), int(block["k"]),
                                  max_suppression=float(block.get("max_suppression", 0.0)),
                                  hierarchies=block.get("hierarchies"))
        return out, {"columns": list(block["columns"]), **report.to_dict()}


def mask(data: pd.DataFrame, policy: MaskPolicy | dict | str | os.PathLike, *, key: bytes | None = None,
         seed: int | None = None) -> pd.DataFrame:
    """Mask ``data`` by ``policy`` (see ``Masker``); the masked copy is returned.

    Example:
        >>> masked = synthgen.mask(df, {"columns": {"email": {"op": "replace", "kind": "email"}}})
    """
    return Masker(policy, key=key, seed=seed).apply(data)


# ----------------------------------------------------------------------------- checks
def _as_policy(policy: MaskPolicy | dict | str | os.PathLike) -> MaskPolicy:
    if isinstance(policy, MaskPolicy):
        return policy
    if isinstance(policy, dict):
        return MaskPolicy.from_dict(policy)
    return MaskPolicy.from_file(policy)


def _options(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k not in ("op", "reason", "note")}


def _column_info(before: pd.Series, after: pd.Series | None, op: str) -> dict[str, Any]:
    info = {"op": op, "dtype_in": str(before.dtype), "dtype_out": None if after is None else str(after.dtype)}
    if after is not None:
        same = (before.astype(object) == after.astype(object)) | (before.isna() & after.isna())
        info["changed"] = int((~same).sum())
    return info


def _entry_problems(df: pd.DataFrame, name: str, opts: dict[str, Any]) -> list[Problem]:
    if name not in df.columns:
        return [Problem(name, "is in the policy but not in the table",
                        f"use one of {_listing(df.columns)} or remove it from the policy")]
    op = opts.get("op")
    if op not in OPTIONS:
        return [Problem(name, f"unknown operation {op!r}", f"use one of {sorted(OPTIONS)}")]
    extra = set(opts) - OPTIONS[op] - {"op", "reason", "note"}
    if extra:
        return [Problem(name, f"{op} has no option {sorted(extra)}", f"use {sorted(OPTIONS[op]) or 'no options'}")]
    check = _CHECKS.get(op)
    return check(df[name], name, opts) if check else []


def _listing(columns: Any) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:12]) + (f" (+{len(names) - 12} more)" if len(names) > 12 else "")


def _check_replace(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    kind = opts.get("kind")
    if kind not in FAKE_KINDS:
        return [Problem(name, f"replace needs a kind, got {kind!r}", f"use one of {sorted(FAKE_KINDS)}")]
    if pd.api.types.is_bool_dtype(series.dtype):
        return [Problem(name, "replace does not fit a boolean column", "use drop or keep the column")]
    datetime = pd.api.types.is_datetime64_any_dtype(series.dtype)
    if datetime and kind != "date":
        return [Problem(name, f"is a date column; replace kind {kind!r} makes text", 'use kind "date"')]
    if pd.api.types.is_numeric_dtype(series.dtype) and kind not in NUMERIC_KINDS:
        return [Problem(name, f"is numeric; replace kind {kind!r} makes text",
                        f"use one of {sorted(NUMERIC_KINDS)} or pseudonymize")]
    return []


def _check_pseudonymize(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    length = opts.get("length", 16)
    if not isinstance(length, int) or not 8 <= length <= 52:
        return [Problem(name, f"pseudonym length {length!r} is out of range", "use an integer from 8 to 52")]
    return []


def _check_mask(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if not mask_ops.is_text(series):
        return [Problem(name, f"mask hides characters of text, but the column is {series.dtype}",
                        "use pseudonymize, generalize or noise for numbers")]
    bad = [k for k in ("keep_first", "keep_last") if not (isinstance(opts.get(k, 0), int) and opts.get(k, 0) >= 0)]
    if bad or len(str(opts.get("char", "*"))) != 1:
        return [Problem(name, "mask options are keep_first / keep_last (integers >= 0) and char (one character)",
                        'e.g. {"op": "mask", "keep_last": 4}')]
    return []


def _check_generalize(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    modes = [m for m in ("bins", "width", "truncate", "hierarchy", "min_count") if m in opts]
    coding = "top" in opts or "bottom" in opts
    if len(modes) > 1 or not (modes or coding):
        return [Problem(name, f"generalize needs one of bins, width, top/bottom, truncate, hierarchy, min_count "
                        f"(got {modes or 'none'})", 'e.g. {"op": "generalize", "width": 10}')]
    mode = modes[0] if modes else "coding"
    if opts.get("as", "lower") not in ("lower", "midpoint", "label"):
        return [Problem(name, f"generalize as {opts['as']!r} is unknown", "use lower, midpoint or label")]
    return _GENERALIZE_CHECKS[mode](series, name, opts)


def _check_numeric_bins(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return [Problem(name, f"numeric generalization needs numbers, the column is {series.dtype}",
                        "use truncate for dates, hierarchy or min_count for categories")]
    if "width" in opts and not _positive(opts["width"]):
        return [Problem(name, f"width {opts['width']!r} must be a positive number", 'e.g. "width": 10')]
    if "bins" not in opts:
        return []
    edges = opts["bins"]
    if (not isinstance(edges, list) or len(edges) < 2 or not all(_number(e) for e in edges)
            or list(np.diff(edges) > 0).count(False)):
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
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return []
    if not mask_ops.is_text(series):
        return [Problem(name, f"truncate needs dates, the column is {series.dtype}", "use bins or width")]
    parsed = pd.to_datetime(series.dropna(), errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = series.dropna()[parsed.isna()].iloc[0]
        return [Problem(name, f"{int(parsed.isna().sum())} values are not dates (e.g. {bad!r})",
                        "clean the column or use another operation")]
    return []


def _check_categories(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    if "min_count" in opts and not (isinstance(opts["min_count"], int) and opts["min_count"] >= 2):
        return [Problem(name, f"min_count {opts['min_count']!r} must be an integer >= 2", 'e.g. "min_count": 20')]
    hierarchy = opts.get("hierarchy")
    if hierarchy is None:
        return []
    if not isinstance(hierarchy, dict):
        return [Problem(name, "hierarchy must map each value to its group", 'e.g. {"Mexico": "Americas"}')]
    missing = sorted({str(v) for v in series.dropna().unique()} - {str(k) for k in hierarchy})
    if missing and "other" not in opts:
        return [Problem(name, f"hierarchy does not cover {len(missing)} values (e.g. {missing[:5]})",
                        'add them, or give "other": "<group>" for the rest')]
    return []


def _check_noise(series: pd.Series, name: str, opts: dict) -> list[Problem]:
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if not (numeric or pd.api.types.is_datetime64_any_dtype(series.dtype)):
        return [Problem(name, f"noise needs numbers or dates, the column is {series.dtype}",
                        "use generalize or pseudonymize")]
    if not _positive(opts.get("scale")):
        return [Problem(name, "noise needs a positive scale", 'e.g. {"op": "noise", "scale": 5}')]
    if opts.get("distribution", "laplace") not in ("laplace", "gaussian", "uniform"):
        return [Problem(name, f"noise distribution {opts['distribution']!r} is unknown",
                        "use laplace, gaussian or uniform")]
    if "bound" in opts and not _positive(opts["bound"]):
        return [Problem(name, "noise bound must be a positive number", 'e.g. "bound": 15')]
    clip = opts.get("clip")
    if clip is not None and not (isinstance(clip, list) and len(clip) == 2 and all(_number(c) for c in clip)
                                 and clip[0] < clip[1]):
        return [Problem(name, f"noise clip {clip!r} must be [low, high] with low < high", 'e.g. "clip": [0, 120]')]
    return []


def _kanon_problems(df: pd.DataFrame, policy: MaskPolicy) -> list[Problem]:
    block = policy.k_anonymity
    if not block:
        return []
    if not isinstance(block, dict) or "columns" not in block or "k" not in block:
        return [Problem(None, "k_anonymity needs columns and k", '"k_anonymity": {"columns": ["age", "zip"], "k": 5}')]
    extra = set(block) - KANON_OPTIONS
    if extra:
        return [Problem(None, f"k_anonymity has no option {sorted(extra)}",
                        f"use {sorted(KANON_OPTIONS - {'reason', 'note'})}")]
    dropped = [c for c in block["columns"] if policy.columns.get(c, {}).get("op") == "drop"]
    return [Problem(c, "is a k-anonymity quasi-identifier but the policy drops it", "keep one or the other")
            for c in dropped]


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


_GENERALIZE_CHECKS = {"bins": _check_numeric_bins, "width": _check_numeric_bins, "coding": _check_numeric_bins,
                      "truncate": _check_truncate, "hierarchy": _check_categories, "min_count": _check_categories}
_CHECKS = {"replace": _check_replace, "pseudonymize": _check_pseudonymize, "mask": _check_mask,
           "generalize": _check_generalize, "noise": _check_noise}
