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
the table before anything runs, and every problem (unknown column, unknown operation or option, an
option of the wrong type, an operation that does not fit the column's type) is reported at once.

``replace`` is a pure function of (key, value): the same value gets the same fake in every table
masked with one key, but distinct values may share a fake (small pools: states, countries, first
names) and a fake may equal another row's real value; it never equals the value it replaces. Use
``pseudonymize`` where distinct values must stay distinct (join keys, counts of distinct people).
Reversible pseudonyms are bound to a key domain, the column by default: give a primary key and the
foreign keys that reference it one ``"domain"`` (in every table's policy) to keep them joinable.
Dtype changes (integer tokens widened to int64, numbers or dates turned into text tokens, bins
turned into labels) are listed in the ``MaskReport``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthgen.errors import ConfigError, Problem
from synthgen.masking import checks, ops
from synthgen.masking.checks import OPTIONS
from synthgen.masking.ops import MaskContext

__all__ = ["OPERATIONS", "OPTIONS", "MaskPolicy", "MaskReport", "Masker", "mask"]

#: operation name -> function (drop removes the column and needs none)
OPERATIONS = {
    "replace": ops.replace,
    "pseudonymize": ops.pseudonymize,
    "mask": ops.mask,
    "generalize": ops.generalize,
    "noise": ops.noise,
}


@dataclass(frozen=True)
class MaskPolicy:
    """A parsed masking policy: per-column operations and an optional k-anonymity block.

    ``from_dict`` checks the top level (keys, version, locale); ``check`` checks every entry and the
    k-anonymity block, their form and their fit to a table, and reports all problems at once.
    """

    columns: dict[str, Any]
    k_anonymity: dict[str, Any] | None = None
    locale: str = "en_US"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MaskPolicy:
        """Parse a policy dictionary; problems of its top level are raised here, all at once."""
        if not isinstance(raw, dict) or not isinstance(raw.get("columns", {}), dict):
            raise ConfigError('a masking policy is a JSON object with a "columns" object (fix: see synthgen mask '
                              '--suggest for an example)')
        _raise(checks.policy_problems(raw))
        columns = {str(k): ({"op": v} if isinstance(v, str) else v) for k, v in raw.get("columns", {}).items()}
        return cls(columns, raw.get("k_anonymity"), raw.get("locale", "en_US"))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> MaskPolicy:
        """Read a policy JSON file (UTF-8)."""
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} not found (fix: check the path, or write one with synthgen "
                              "mask --suggest)") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"policy file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}) "
                              "(fix: save it as UTF-8)") from None
        except OSError as exc:
            raise ConfigError(f"policy file {path} cannot be read ({exc.strerror}) (fix: check the path)") from None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"policy file {path} is not valid JSON ({exc}) (fix: correct the JSON)") from None

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-ready data."""
        out: dict[str, Any] = {"version": checks.VERSION, "columns": self.columns}
        if self.locale != "en_US":
            out["locale"] = self.locale
        if self.k_anonymity:
            out["k_anonymity"] = self.k_anonymity
        return out

    def check(self, df: pd.DataFrame) -> None:
        """Raise one ``ConfigError`` naming every policy entry that is malformed or does not fit ``df``."""
        _raise(checks.fit_problems(df, self.columns, self.k_anonymity))


def _raise(problems: list[Problem]) -> None:
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
                       f"{sum(a['cells_blanked'].values())} cells blanked to null, "
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
        seed: seed for the ``noise`` operation, for reproducible runs only: anyone who knows it can
            regenerate the noise and subtract it (default: fresh OS randomness).
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
            elif before.notna().any():  # an empty or all-null column passes through unchanged
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
            out[name] = ops.reveal_values(out[name], self.policy.columns[name], self.context)
        return out

    def _anonymize(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict | None]:
        block = self.policy.k_anonymity
        if not block:
            return df, None
        from synthgen.masking.anonymity import k_anonymize

        out, report = k_anonymize(df, list(block["columns"]), block["k"],
                                  max_suppression=block.get("max_suppression", 0.0),
                                  hierarchies=block.get("hierarchies"))
        return out, {"columns": list(block["columns"]), **report.to_dict()}


def mask(data: pd.DataFrame, policy: MaskPolicy | dict | str | os.PathLike, *, key: bytes | None = None,
         seed: int | None = None, return_report: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, MaskReport]:
    """Mask ``data`` by ``policy`` (see ``Masker``).

    Returns:
        The masked copy, or ``(masked, report)`` with ``return_report=True``.

    Example:
        >>> masked = synthgen.mask(df, {"columns": {"email": {"op": "replace", "kind": "email"}}})
        >>> masked, report = synthgen.mask(df, policy, key=key, return_report=True)
    """
    masker = Masker(policy, key=key, seed=seed)
    masked = masker.apply(data)
    return (masked, masker.report) if return_report else masked


# ----------------------------------------------------------------------------- helpers
def _as_policy(policy: MaskPolicy | dict | str | os.PathLike) -> MaskPolicy:
    if isinstance(policy, MaskPolicy):
        return policy
    if isinstance(policy, dict):
        return MaskPolicy.from_dict(policy)
    return MaskPolicy.from_file(policy)


def _options(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k not in ("op", "reason", "note")}


def _column_info(before: pd.Series, after: pd.Series | None, op: str) -> dict[str, Any]:
    info: dict[str, Any] = {"op": op, "dtype_in": str(before.dtype),
                            "dtype_out": None if after is None else str(after.dtype)}
    if after is not None:
        same = (before.astype(object) == after.astype(object)) | (before.isna() & after.isna())
        info["changed"] = int((~same).sum())
    return info
