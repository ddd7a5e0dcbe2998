"""What fit and sample share: the names of the columns the relational layer adds to a table's model, which
parent gives a table its context, and a row's lineage (its columns and its context ancestors')."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from synthgen.metadata import Metadata, Relationship
from synthgen.schema import TableSchema, parse_datetimes

#: tables of a lineage: the row's own and up to this many context ancestors above it
LINEAGE_LEVELS = 3


def count_column(rel: Relationship) -> str:
    """The parent's column holding how many rows of ``rel.child`` reference each of its rows."""
    return f"#children {rel.child}({rel.foreign_key})"


def mean_column(rel: Relationship, column: str) -> str:
    """The parent's column holding the mean of ``rel.child``'s ``column`` over each of its rows' children."""
    return f"#mean {rel.child}({rel.foreign_key}): {column}"


def shadow_prefix(rel: Relationship) -> str:
    """Prefix of a child's columns holding the lineage of its (non-context) parent through ``rel``."""
    return f"#parent {rel.foreign_key}: "


def null_column(rel: Relationship) -> str:
    """A child's column saying that its foreign key ``rel.foreign_key`` is null."""
    return f"#null ({rel.foreign_key})"


def context_parent(meta: Metadata, table: str, data: Mapping[str, pd.DataFrame] | None = None,
                   chosen: Mapping[str, str] | None = None) -> Relationship | None:
    """The relationship whose parent gives ``table`` its context: the foreign key with the fewest nulls (a
    row without a parent has no context), then the one with the most rows per parent (so its counts carry
    the most), the first in metadata order among equals; ``chosen`` (table -> foreign key) overrides it."""
    parents = meta.parents(table)
    if not parents:
        return None
    if chosen and table in chosen:
        picked = [r for r in parents if r.foreign_key == chosen[table]]
        if picked:
            return picked[0]
    if data is None or len(parents) == 1:
        return parents[0]

    def rank(rel: Relationship) -> tuple[int, float]:
        keys = data[rel.child][rel.foreign_key]
        linked = keys.dropna()
        return -int(keys.isna().sum()), len(linked) / max(linked.nunique(), 1)

    return max(parents, key=rank)


def chain(meta: Metadata, table: str, contexts: Mapping[str, Relationship | None]) -> list[str]:
    """``table`` and its context ancestors, nearest first, at most LINEAGE_LEVELS tables."""
    tables = [table]
    while len(tables) < LINEAGE_LEVELS and contexts.get(tables[-1]) is not None:
        rel = contexts[tables[-1]]
        assert rel is not None
        tables.append(rel.parent)
    return tables


def lineage(table: str, frame: pd.DataFrame, schema: TableSchema, parent_lineage: pd.DataFrame | None,
            parent_keys: pd.Series | None, parent_chain: list[str] | None = None) -> pd.DataFrame:
    """Each row of ``table``'s model frame (attributes and child counts) with its ancestors' lineage joined on,
    columns prefixed ``<table>.``, dates parsed: one row per ``frame`` row, in order.

    ``parent_lineage`` is indexed by the parent's key (its tables ``parent_chain``, of which the first
    LINEAGE_LEVELS - 1 are kept), and ``parent_keys`` are this table's foreign key values (a null key gives an
    all-null ancestry).
    """
    own = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        if str(name).startswith(("#parent ", "#null ")):  # about another parent: not this row's lineage
            continue
        values = frame[name]
        kind = schema[name].kind if name in schema.names else "integer"
        if kind == "datetime":
            values = parse_datetimes(values, schema[name].datetime_format)
        own[f"{table}.{name}"] = values.to_numpy()
    if parent_lineage is None or parent_keys is None:
        return own
    kept = tuple(f"{t}." for t in (parent_chain or [])[:LINEAGE_LEVELS - 1])
    joined = parent_lineage[[c for c in parent_lineage.columns if c.startswith(kept)]].reindex(parent_keys.to_numpy())
    joined.index = own.index
    return pd.concat([own, joined], axis=1)


def repeat_rows(matrix: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each row of ``matrix`` ``counts`` times, in order."""
    return np.repeat(matrix, counts.astype(np.int64), axis=0)
