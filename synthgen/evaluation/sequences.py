"""Sequences: how alike are real and synthetic histories (each entity's events in order)?

A sequential table has a sequence key (the entity each event belongs to) and a sequence index (a date, a
number, or plain row order). Every score is in [0, 1], 1 meaning alike:

* Lengths: 1 - the KS statistic between the real and synthetic numbers of events per entity.
* Gaps: 1 - the KS statistic between the differences of the index between consecutive events of an entity
  (days for dates).
* Column shapes: each event column, as in the single-table report (KS or TV complement).
* Lag-1: per numeric column, 1 - |r_real - r_synthetic| / 2 with r the correlation between an event's value and
  the next event's of the same entity; per categorical column, 1 - the total variation distance between the
  real and synthetic shares of (value, next value) transitions.
* Coherence: per categorical column, 1 - |c_real - c_synthetic| with c the share of consecutive events of an
  entity whose value changes (how often an entity's category moves).

``score`` is the mean of the properties that have a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthgen.evaluation.fidelity import _mean, ks_complement, tv_complement
from synthgen.evaluation.prep import category_keys, numbers
from synthgen.metadata import Metadata
from synthgen.schema import TableSchema
from synthgen.transform.transformer import NUMERIC_KINDS


def ordered(df: pd.DataFrame, key: str, index: str | None) -> pd.DataFrame:
    """``df`` with each entity's events together, in index order (stable: ties keep their row order)."""
    columns = [key] if index is None else [key, index]
    return df.sort_values(columns, kind="stable").reset_index(drop=True)


def lengths(df: pd.DataFrame, key: str) -> np.ndarray:
    """Events per entity (entities without events do not appear)."""
    return df[key].value_counts().to_numpy(dtype=float)


def gaps(df: pd.DataFrame, key: str, index: str, kind: str) -> np.ndarray:
    """Differences of the index between consecutive events of each entity (dates in days)."""
    df = ordered(df, key, index)
    x = numbers(df[index], kind)
    if kind == "datetime":
        x = x / 86400.0
    same = df[key].to_numpy()[1:] == df[key].to_numpy()[:-1]
    return np.diff(x)[same]


def _pairs(df: pd.DataFrame, key: str, index: str | None, column: str) -> tuple[pd.Series, pd.Series]:
    """(value, next value of the same entity) over every consecutive pair of events."""
    df = ordered(df, key, index)
    same = np.r_[df[key].to_numpy()[1:] == df[key].to_numpy()[:-1], False]
    values = df[column]
    return values[same].reset_index(drop=True), values.shift(-1)[same].reset_index(drop=True)


def lag1_correlation(df: pd.DataFrame, key: str, index: str | None, column: str, kind: str) -> float:
    """The correlation between an event's value and the next one's, within entities (NaN if undefined)."""
    now, later = _pairs(df, key, index, column)
    a, b = numbers(now, kind), numbers(later, kind)
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def transitions(df: pd.DataFrame, key: str, index: str | None, column: str) -> pd.Series:
    """Shares of (value, next value) pairs of a categorical column within entities."""
    now, later = _pairs(df, key, index, column)
    keys = pd.Series(category_keys(now)) + "\x1f" + pd.Series(category_keys(later))
    return keys.value_counts(normalize=True)


def change_rate(df: pd.DataFrame, key: str, index: str | None, column: str) -> float:
    """The share of consecutive events of an entity whose categorical value differs."""
    now, later = _pairs(df, key, index, column)
    if not len(now):
        return float("nan")
    return float(np.mean(category_keys(now) != category_keys(later)))


def sequence_quality(real: pd.DataFrame, synthetic: pd.DataFrame, *, key: str, index: str | None,
                     schema: TableSchema | None = None) -> dict[str, Any]:
    """The sequence scores (see the module), overall and per column.

    Args:
        real, synthetic: event tables with the same columns.
        key: the sequence key column (the entity).
        index: the sequence index column (None: row order).
        schema: the kinds of the event columns (None: detected from ``real``).
    """
    schema = schema or TableSchema.detect(real.drop(columns=[key]))
    columns = [c for c in schema.names if c not in (key, index)]
    out: dict[str, Any] = {"length": ks_complement(lengths(real, key), lengths(synthetic, key))}
    if index is not None:
        kind = schema[index].kind
        out["gaps"] = ks_complement(gaps(real, key, index, kind), gaps(synthetic, key, index, kind))
    else:
        out["gaps"] = float("nan")
    shapes, lag1, coherence = {}, {}, {}
    for column in columns:
        kind = schema[column].kind
        if kind in NUMERIC_KINDS:
            shapes[column] = ks_complement(numbers(real[column], kind), numbers(synthetic[column], kind))
            r = lag1_correlation(real, key, index, column, kind)
            s = lag1_correlation(synthetic, key, index, column, kind)
            lag1[column] = {"real": _r(r), "synthetic": _r(s),
                            "score": _r(1 - abs(r - s) / 2) if not (np.isnan(r) or np.isnan(s)) else float("nan")}
        else:
            shapes[column] = tv_complement(real[column], synthetic[column])
            pr, ps = transitions(real, key, index, column), transitions(synthetic, key, index, column)
            both = pr.index.union(ps.index)
            tvd = 0.5 * float(np.abs(pr.reindex(both, fill_value=0) - ps.reindex(both, fill_value=0)).sum())
            lag1[column] = {"score": _r(1 - tvd) if len(pr) and len(ps) else float("nan")}
            r, s = change_rate(real, key, index, column), change_rate(synthetic, key, index, column)
            coherence[column] = {"real": _r(r), "synthetic": _r(s),
                                 "score": _r(1 - abs(r - s)) if not (np.isnan(r) or np.isnan(s)) else float("nan")}
    out["column_shapes"] = _mean(shapes.values())
    out["lag1"] = _mean(v["score"] for v in lag1.values())
    out["coherence"] = _mean(v["score"] for v in coherence.values())
    properties = [out[k] for k in ("length", "gaps", "column_shapes", "lag1", "coherence")]
    out["score"] = _mean(properties)
    out = {k: _r(v) for k, v in out.items()}
    out["columns"] = {c: {"shape": _r(shapes[c]), "lag1": lag1[c], **({"coherence": coherence[c]}
                                                                       if c in coherence else {})} for c in columns}
    return out


def _r(value: float) -> float:
    return round(float(value), 4) if not np.isnan(value) else float("nan")


def sequence_figures(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame],
                     metadata: Metadata) -> dict[str, dict[str, Any]]:
    """``sequence_quality`` of every table the metadata declares sequential (a ``sequence_index``, and its
    ``sequence_key`` or else the foreign key of its only parent as the entity), by table name."""
    from synthgen.evaluation.multitable import scored_schema

    out = {}
    for table, entry in metadata.tables.items():
        index = entry.get("sequence_index")
        parents = metadata.parents(table)
        key = entry.get("sequence_key") or (parents[0].foreign_key if len(parents) == 1 else None)
        if index is None or key is None:
            continue
        schema = scored_schema(metadata, table)
        columns = [key, *schema.names]
        out[table] = {"key": key, "index": index,
                      **sequence_quality(real[table][columns], synthetic[table][columns], key=key, index=index,
                                         schema=schema)}
    return out
