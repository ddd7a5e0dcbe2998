"""A row's lineage (its own columns and its ancestors', prefixed by table) as numbers a model conditions on.

The encoding is fixed and simple: numbers and dates standardized (clipped to +-5 standard deviations) with a
null flag where the column has nulls; categories one-hot over the most frequent ones (the rest share one
slot). The same encoder turns real lineages (training) and synthetic ones (sampling) into context rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from synthgen.transform import TabularTransformer

#: categories kept per column (each at least MIN_SHARE of the rows); the others share one slot
MAX_CATEGORIES, MIN_SHARE = 30, 0.005


class ContextEncoder:
    """Fitted on a lineage frame; ``transform`` gives float32 context rows (``width`` columns)."""

    def __init__(self, columns: list[dict[str, Any]] | None = None):
        self.columns: list[dict[str, Any]] = columns or []

    def fit(self, frame: pd.DataFrame) -> ContextEncoder:
        self.columns = []
        for name in frame.columns:
            values = frame[name]
            entry: dict[str, Any] = {"name": str(name)}
            if _numeric(values):
                x = _as_float(values)
                finite = x[np.isfinite(x)]
                entry.update(kind="number", mean=float(finite.mean()) if len(finite) else 0.0,
                             std=float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0,
                             nulls=bool(np.isnan(x).any()), datetime=bool(pd.api.types.is_datetime64_any_dtype(
                                 values.dtype)))
            else:
                shares = values.astype(object).where(values.notna(), None).value_counts(normalize=True, dropna=False)
                kept = [v for v, s in shares.items() if s >= MIN_SHARE][:MAX_CATEGORIES]
                entry.update(kind="category", categories=[_plain(v) for v in kept])
            self.columns.append(entry)
        return self

    @classmethod
    def from_transformer(cls, names: dict[str, str], transformer: TabularTransformer) -> ContextEncoder:
        """An encoder of the columns ``names`` (encoded name -> the transformer's column) whose statistics come
        from a transformer fitted under differential privacy: its released categories, and the middle and a
        quarter of the span of its bounds as mean and standard deviation; nothing is read from the rows."""
        columns: list[dict[str, Any]] = []
        schema = transformer.fitted_schema
        for name, column in names.items():
            categories = transformer.categories(column)
            if categories is not None:
                kept = [_plain(c) for c in categories if c is not None][:MAX_CATEGORIES]
                columns.append({"name": name, "kind": "category", "categories": kept})
                continue
            span = transformer.numeric_range(column)
            assert span is not None, "a column is one-hot or numeric"
            low, high, nullable = span
            dated = schema[column].kind == "datetime"
            if dated:  # the transformer's datetimes are epoch nanoseconds; an encoded lineage's are days
                low, high = low / (1e9 * 86400.0), high / (1e9 * 86400.0)
            columns.append({"name": name, "kind": "number", "mean": (low + high) / 2,
                            "std": (high - low) / 4 if high > low else 1.0, "nulls": bool(nullable),
                            "datetime": dated})
        return cls(columns)

    @property
    def width(self) -> int:
        return sum(_width(c) for c in self.columns)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.width), dtype=np.float32)
        at = 0
        for entry in self.columns:
            values = frame[entry["name"]]
            if entry["kind"] == "number":
                x = (_as_float(values) - entry["mean"]) / entry["std"]
                missing = np.isnan(x)
                out[:, at] = np.clip(np.where(missing, 0.0, x), -5, 5)
                if entry["nulls"]:
                    out[:, at + 1] = missing
            else:
                cats = entry["categories"]
                index = {c: i for i, c in enumerate(cats)}
                plain = values.astype(object).where(values.notna(), None).map(_plain)
                slots = plain.map(lambda v, index=index: index.get(v, len(index))).to_numpy(dtype=np.int64)
                out[np.arange(len(frame)), at + slots] = 1.0
            at += _width(entry)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextEncoder:
        return cls(list(data["columns"]))


def _width(entry: dict[str, Any]) -> int:
    if entry["kind"] == "number":
        return 2 if entry["nulls"] else 1
    return len(entry["categories"]) + 1


def _numeric(values: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)) or \
        pd.api.types.is_datetime64_any_dtype(values.dtype)


def _as_float(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
        days = (stamps - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
        return days.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _plain(value: Any) -> Any:
    """A JSON-able category (numpy scalars to Python, others to text)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)
