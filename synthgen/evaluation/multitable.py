"""Several tables: sdmetrics' multi-table quality score computed here, plus key integrity.

The properties follow sdmetrics' multi-table QualityReport (a test checks agreement within 0.01 where the
``sdv`` extra is installed); only columns with an sdtype of numerical, datetime, categorical or boolean are
scored (keys and ``id`` columns are not):

* Column Shapes: each table's columns as in the single-table report (``fidelity``); the mean over every
  column of every table (pooled, not a mean of table means).
* Column Pair Trends: each table's pairs as in the single-table report, counted where the real table relates
  them; the mean over all tables' counted pairs.
* Cardinality: per relationship, 1 - the KS statistic between real and synthetic children-per-parent counts
  (parents without children count 0); the mean over relationships.
* Intertable Trends: per relationship, the child joined to its parent; every (parent column, child column) pair
  scored as a column pair; the mean over all relationships' counted pairs.
* Quality: the mean of the four properties (those that have a value).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthgen.evaluation.fidelity import _mean, column_pair_trends, column_shapes, ks_complement
from synthgen.metadata import Metadata, Relationship
from synthgen.schema import ColumnSpec, TableSchema

#: SDV sdtypes the quality score reads, and the kind each is scored as
SCORED = {"numerical": "continuous", "datetime": "datetime", "categorical": "categorical", "boolean": "boolean"}


@dataclass(frozen=True)
class _Schemed:
    """What the single-table pair and shape scores read: the kinds of the columns."""

    schema: TableSchema


def scored_schema(metadata: Metadata, table: str) -> TableSchema:
    """The kinds of ``table``'s scored columns (neither keys nor ``id``), from the metadata."""
    keys = set(metadata.keys(table))
    specs = []
    for name, entry in metadata.tables[table]["columns"].items():
        kind = SCORED.get(entry.get("sdtype"))
        if kind is not None and name not in keys:
            specs.append(ColumnSpec(name, kind, "object", datetime_format=entry.get("datetime_format")))
    return TableSchema(specs)


def quality(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame], metadata: Metadata, *,
            seed: int = 0) -> dict[str, Any]:
    """The multi-table quality score, its four properties, and their parts per table and relationship."""
    shapes: list[float] = []
    pairs: list[float] = []
    tables: dict[str, Any] = {}
    for table in metadata.tables:
        schema = scored_schema(metadata, table)
        names = schema.names
        r, s = real[table][names], synthetic[table][names]
        shape = column_shapes(r, s, _Schemed(schema)) if names else {}
        pair = column_pair_trends(r, s, _Schemed(schema), seed=seed) if len(names) > 1 else []
        counted = [p["score"] for p in pair if p["counted"]]
        shapes += list(shape.values())
        pairs += counted
        tables[table] = {"column_shapes": _r(_mean(shape.values())), "column_pair_trends": _r(_mean(counted)),
                         "columns": {k: _r(v) for k, v in shape.items()}}
    relationships = {}
    inter: list[float] = []
    cards = []
    for rel in metadata.relationships:
        card = cardinality(real, synthetic, rel)
        trends = intertable_pairs(real, synthetic, metadata, rel, seed=seed)
        counted = [p["score"] for p in trends if p["counted"]]
        inter += counted
        cards.append(card)
        relationships[str(rel)] = {"cardinality": _r(card), "intertable_trends": _r(_mean(counted)),
                                   "referential_integrity": _r(referential_integrity(synthetic, rel)),
                                   "pairs": trends}
    properties = {"column_shapes": _mean(shapes), "column_pair_trends": _mean(pairs),
                  "cardinality": _mean(cards), "intertable_trends": _mean(inter)}
    present = [v for v in properties.values() if not np.isnan(v)]
    return {"quality": _r(float(np.mean(present))) if present else float("nan"),
            **{k: _r(v) for k, v in properties.items()},
            "referential_integrity": _r(min((referential_integrity(synthetic, r) for r in metadata.relationships),
                                            default=1.0)),
            "primary_keys_unique": all(synthetic[t][pk].is_unique and synthetic[t][pk].notna().all()
                                       for t in metadata.tables if (pk := metadata.primary_key(t)) is not None),
            "tables": tables, "relationships": relationships}


def children_per_parent(tables: Mapping[str, pd.DataFrame], rel: Relationship) -> np.ndarray:
    """How many child rows reference each parent row through ``rel`` (0 for a parent without children)."""
    counts = tables[rel.child][rel.foreign_key].dropna().value_counts()
    keys = tables[rel.parent][rel.parent_key]
    return counts.reindex(keys.to_numpy()).fillna(0).to_numpy(dtype=float)


def cardinality(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame], rel: Relationship) -> float:
    """1 - the KS statistic between the real and the synthetic children-per-parent counts."""
    return ks_complement(children_per_parent(real, rel), children_per_parent(synthetic, rel))


def referential_integrity(tables: Mapping[str, pd.DataFrame], rel: Relationship) -> float:
    """The share of non-null foreign keys of ``rel`` that are a key of the parent table."""
    fk = tables[rel.child][rel.foreign_key].dropna()
    if not len(fk):
        return 1.0
    return float(fk.isin(tables[rel.parent][rel.parent_key]).mean())


def joined(tables: Mapping[str, pd.DataFrame], metadata: Metadata, rel: Relationship, *,
           key: str | None = None) -> pd.DataFrame:
    """Each child row with its parent's scored columns (an inner join on the key), columns ``table.column``
    (and the parent's key as column ``key`` where given)."""
    parent_cols = scored_schema(metadata, rel.parent).names
    child_cols = scored_schema(metadata, rel.child).names
    parent = tables[rel.parent][[rel.parent_key, *parent_cols]]
    child = tables[rel.child][[rel.foreign_key, *child_cols]]
    parent = parent.rename(columns={c: f"{rel.parent}.{c}" for c in parent_cols})
    child = child.rename(columns={c: f"{rel.child}.{c}" for c in child_cols})
    out = child.merge(parent, left_on=rel.foreign_key, right_on=rel.parent_key, how="inner")
    columns = [f"{rel.parent}.{c}" for c in parent_cols] + [f"{rel.child}.{c}" for c in child_cols]
    if key is None:
        return out[columns]
    return out[columns].assign(**{key: out[rel.foreign_key].to_numpy()})


def intertable_pairs(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame], metadata: Metadata,
                     rel: Relationship, *, seed: int = 0) -> list[dict[str, Any]]:
    """Every (parent column, child column) pair of the joined tables, scored as a column pair."""
    parent_schema, child_schema = scored_schema(metadata, rel.parent), scored_schema(metadata, rel.child)
    specs = [ColumnSpec(f"{rel.parent}.{c.name}", c.kind, c.dtype, datetime_format=c.datetime_format)
             for c in parent_schema.columns]
    specs += [ColumnSpec(f"{rel.child}.{c.name}", c.kind, c.dtype, datetime_format=c.datetime_format)
              for c in child_schema.columns]
    schema = TableSchema(specs)
    r, s = joined(real, metadata, rel), joined(synthetic, metadata, rel)
    if not len(r) or not len(s) or not parent_schema.names or not child_schema.names:
        return []
    wanted = {(f"{rel.parent}.{a}", f"{rel.child}.{b}")
              for a, b in itertools.product(parent_schema.names, child_schema.names)}
    return [p for p in column_pair_trends(r, s, _Schemed(schema), seed=seed)
            if tuple(p["columns"]) in wanted]


def _r(value: float) -> float:
    return round(float(value), 4) if not np.isnan(value) else float("nan")
