"""Value helpers of the masking operations: typed identity of values, one call per distinct value,
and results cast back into the column's dtype family.

Text keeps its family (``string`` stays ``string`` with ``pd.NA``; ``category`` stays ``category``);
integer results that do not fit the column's integer type widen to int64, never wrap around.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def distinct(series: pd.Series) -> list[Any]:
    """The distinct non-null values of a column; in object columns ``1``, ``1.0`` and ``True`` stay apart."""
    values = series.dropna()
    if values.dtype != object:
        return list(pd.unique(values))
    return [v for _, v in dict.fromkeys(zip(map(type, values), values, strict=True))]


def canonical(value: Any) -> bytes:
    """Typed bytes that identify a value for keyed hashing: ``1`` -> ``b"i:1"``, ``"1"`` -> ``b"s:1"``,
    ``True`` -> ``b"b:True"``, ``1.5`` -> ``b"f:1.5"``; a whole float is its int (``5.0`` -> ``b"i:5"``),
    as a CSV round trip turns integers with nulls into floats."""
    if isinstance(value, bool | np.bool_):
        return b"b:" + str(bool(value)).encode()
    if isinstance(value, int | np.integer):
        return b"i:%d" % int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return b"i:%d" % int(number) if number.is_integer() else b"f:" + repr(number).encode()
    if isinstance(value, pd.Timestamp):
        return b"t:" + value.isoformat().encode()
    return b"s:" + str(value).encode("utf-8")


def apply(series: pd.Series, func: Callable[[Any], Any], dtype: Any = None) -> pd.Series:
    """``func`` once per distinct non-null value (``1`` and ``True`` apart); nulls stay null.

    The result has ``dtype`` when given, else the input's text family (see ``like_text``).
    """
    present = series.notna().to_numpy()
    values = series[present]
    if values.dtype == object:
        done: dict[tuple[type, Any], Any] = {}
        for key in zip(map(type, values), values, strict=True):
            if key not in done:
                done[key] = func(key[1])
        results = [done[key] for key in zip(map(type, values), values, strict=True)]
    else:
        codes, uniques = pd.factorize(values)
        made = _objects([func(u) for u in uniques])
        results = made[codes] if len(codes) else []
    out = series.astype(object).to_numpy(copy=True)
    if series.dtype != object:  # NaT / pd.NA in an object column of text: plain None
        out[~present] = None
    out[present] = _objects(results)
    if dtype is not None:
        return pd.Series(pd.array(out, dtype=dtype), index=series.index, name=series.name)
    return like_text(series, out)


def _objects(values: Any) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def like_text(series: pd.Series, values: np.ndarray, keep: list[Any] | None = None) -> pd.Series:
    """Text results in the input's dtype family: ``string`` stays ``string`` (nulls ``pd.NA``), ``category``
    stays ``category`` (categories: ``keep``, then the new values), anything else becomes object."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        new = distinct(pd.Series(values, dtype=object))
        categories = list(dict.fromkeys([*(keep or []), *new]))
        ordered = bool(series.cat.ordered) and keep is not None
        return pd.Series(pd.Categorical(values, categories=categories, ordered=ordered), index=series.index,
                         name=series.name)
    if isinstance(series.dtype, pd.StringDtype):
        return pd.Series(pd.array(values, dtype=series.dtype), index=series.index, name=series.name)
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def int64_for(series: pd.Series) -> str:
    """``Int64`` for a column with nulls or of a nullable dtype, else ``int64``."""
    nullable = isinstance(series.dtype, pd.api.extensions.ExtensionDtype) or bool(series.isna().any())
    return "Int64" if nullable else "int64"


def restore_numeric(values: pd.Series, like: pd.Series) -> pd.Series:
    """Numeric results in ``like``'s dtype, nulls kept: integers rounded, and widened to int64 (or float64
    past int64) when they do not fit ``like``'s integer type."""
    if pd.api.types.is_integer_dtype(like.dtype):
        return _as_integers(values.round(), like)
    if like.dtype.kind == "f" and all_integral(like):
        return values.round().astype(like.dtype)
    return values.astype(like.dtype)


def _as_integers(values: pd.Series, like: pd.Series) -> pd.Series:
    base = np.dtype(getattr(like.dtype, "numpy_dtype", like.dtype))
    present = values.dropna()
    for target in (base, np.dtype(np.int64)):
        info = np.iinfo(target)
        if present.empty or (present.min() >= info.min and present.max() <= info.max):
            nullable = isinstance(like.dtype, pd.api.extensions.ExtensionDtype) or bool(values.isna().any())
            return values.astype(_nullable(target) if nullable else target)
    return values.astype(float)


def _nullable(dtype: np.dtype) -> str:
    name = dtype.name
    return "UInt" + name[4:] if name.startswith("uint") else "Int" + name[3:]


def all_integral(series: pd.Series) -> bool:
    """Whether a numeric column has values and all of them are whole."""
    values = series.dropna().to_numpy(dtype=float)
    return len(values) > 0 and bool(np.all(values == np.round(values)))
