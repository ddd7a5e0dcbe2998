"""Several tables, judged entity by entity: utility, privacy and detection over rows together with their relations.

An *entity* is a row of one table (an account, a player, a user) together with what hangs off it:

* its descendants, as aggregates: per child relationship the number of child rows, the mean of each numeric
  column (datetimes as seconds) and the share of each of the real data's most common categories of each
  categorical column; a child's own children are aggregated into the child's row first, so an account's
  disps carry their cards' counts (down to ``depth`` levels);
* its ancestors, joined: the parent's own columns and the parent's other children's aggregates (an account's
  orders for a loan), up to ``depth`` levels; never the aggregate of the relationship that leads back to the
  entity, which would leak the entity's own values.

:class:`EntityFrame` turns a dataset into one row per entity with fixed columns, fitted on the real training
tables (which categories are counted) and applied to any dataset of the same schema. On those frames:

* :func:`entity_utility`: TSTR and TRTR of the evaluator's MLP on a target column of the entity frame, tested on
  holdout entities (tables split with :func:`split_entities`, so no holdout entity was trained on);
* :func:`entity_privacy`: DCR share and the membership-inference AUC of train entities against holdout
  entities, each entity with its descendants;
* :func:`parent_child_detection`: per relationship, the cross-validated AUC of a classifier telling real
  (child row, parent row) pairs from synthetic ones (0.5 is ideal); the rows of one parent stay in one fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthgen.errors import ConfigError, DataWarning
from synthgen.evaluation.fidelity import detection_frames
from synthgen.evaluation.multitable import joined, scored_schema
from synthgen.evaluation.prep import Tables, category_keys, check_tables, numbers
from synthgen.metadata import Metadata, Relationship
from synthgen.schema import TableSchema

#: the most common real categories counted per categorical child column
TOP_CATEGORIES = 5
#: how :func:`~synthgen.evaluation.prep.category_keys` writes a null
NULL_KEY = "\x00null"
#: the column that carries the parent key through a join (the detection's groups)
GROUP = "\x00parent"
#: levels of descendants aggregated and of ancestors joined
DEPTH = 2


class EntityFrame:
    """One row per row of ``table``: its columns, its ancestors' and its descendants' aggregates.

    Args:
        metadata: the dataset's metadata.
        table: the entity table.
        depth: levels of descendants aggregated and of ancestors joined.
        top: the most common real categories counted per categorical child column.
    """

    def __init__(self, metadata: Metadata | Mapping[str, Any], table: str, *, depth: int = DEPTH,
                 top: int = TOP_CATEGORIES):
        metadata = _as_metadata(metadata)
        if table not in metadata.tables:
            raise ConfigError(f"entity table {table!r} is not in the metadata (fix: one of "
                              f"{', '.join(metadata.tables)})")
        self.metadata, self.table, self.depth, self.top = metadata, table, depth, top
        self._categories: dict[tuple[str, str], list[str]] = {}  # (table, column) -> counted categories
        self._fitted = False

    def fit(self, tables: Mapping[str, pd.DataFrame]) -> EntityFrame:
        """Choose, per categorical column of every table, the real categories its aggregates count."""
        for name in self.metadata.tables:
            schema = scored_schema(self.metadata, name)
            for spec in schema.columns:
                if spec.kind in ("categorical", "boolean"):
                    counts = pd.Series(category_keys(tables[name][spec.name])).value_counts()
                    self._categories[(name, spec.name)] = [str(k) for k in counts.index[:self.top]]
        self._fitted = True
        return self

    def transform(self, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """The entity frame of ``tables`` (columns: ``col``, ``parent.col``, ``child.count``, ``child.col.mean``,
        ``child.col=value``; deeper levels chain the names)."""
        if not self._fitted:
            raise ConfigError("the entity frame is not fitted (fix: call fit on the real training tables first)")
        own = self._down(tables, self.table, self.depth, skip=None)
        return self._up(tables, self.table, own, self.depth).reset_index(drop=True)

    def schema(self, frame: pd.DataFrame) -> TableSchema:
        """The kinds of an entity frame's columns (aggregates are numbers; own and ancestor columns keep theirs)."""
        return TableSchema.detect(frame)

    # ---------------------------------------------------------------- building blocks
    def _own(self, tables: Mapping[str, pd.DataFrame], table: str) -> pd.DataFrame:
        """``table``'s scored columns, indexed by its primary key (by position without one)."""
        df = tables[table]
        out = df[scored_schema(self.metadata, table).names].copy()
        pk = self.metadata.primary_key(table)
        out.index = pd.Index(df[pk].to_numpy()) if pk is not None else pd.RangeIndex(len(df))
        return out

    def _down(self, tables: Mapping[str, pd.DataFrame], table: str, depth: int,
              skip: Relationship | None) -> pd.DataFrame:
        """``table``'s own columns plus the aggregates of its children (except ``skip``), ``depth`` levels down."""
        out = self._own(tables, table)
        if depth <= 0:
            return out
        for rel in self.metadata.children(table):
            if rel == skip:
                continue
            child = self._down(tables, rel.child, depth - 1, skip=None)
            fk = tables[rel.child][rel.foreign_key].to_numpy()
            aggregates = self._aggregate(child, fk, rel, out.index)
            aggregates = aggregates[~aggregates.index.duplicated()].reindex(out.index)
            out = pd.concat([out, aggregates], axis=1)
        return out

    def _aggregate(self, child: pd.DataFrame, fk: np.ndarray, rel: Relationship, index: pd.Index) -> pd.DataFrame:
        """Per parent key in ``index``: the count of child rows, numeric means and category shares."""
        prefix = _prefix(self.metadata, rel)
        keys = pd.Series(fk, index=child.index)
        has_parent = keys.notna().to_numpy()
        child, keys = child[has_parent], keys[has_parent]
        groups = keys.to_numpy()
        columns: dict[str, pd.Series] = {f"{prefix}count": keys.value_counts().reindex(index).fillna(0)}
        for column in child.columns:
            values = child[column]
            if (rel.child, column) in self._categories:  # a child's own categorical column
                codes = category_keys(values)
                for category in self._categories[(rel.child, column)]:
                    hit = pd.Series((codes == category).astype(float), index=child.index)
                    label = "<null>" if category == NULL_KEY else category
                    columns[f"{prefix}{column}={label}"] = hit.groupby(groups).mean().reindex(index)
            else:
                kind = "datetime" if _is_datetime(self.metadata, rel.child, column) else "numerical"
                x = pd.Series(numbers(values, kind), index=child.index)
                columns[f"{prefix}{column}.mean"] = x.groupby(groups).mean().reindex(index)
        return pd.DataFrame(columns, index=index)

    def _up(self, tables: Mapping[str, pd.DataFrame], table: str, frame: pd.DataFrame, depth: int) -> pd.DataFrame:
        """``frame`` (rows of ``table``) with each parent's columns and other children's aggregates joined."""
        if depth <= 0:
            return frame
        df = tables[table]
        for rel in self.metadata.parents(table):
            parent = self._down(tables, rel.parent, depth - 1, skip=rel)
            parent = self._up(tables, rel.parent, parent, depth - 1)
            at = df[rel.foreign_key].to_numpy()
            parent = parent[~parent.index.duplicated()]  # a duplicated key (synthetic data may have one): its first row
            joined_parent = parent.reindex(at)
            joined_parent.index = frame.index
            joined_parent.columns = [f"{_parent_prefix(self.metadata, rel)}{c}" for c in parent.columns]
            frame = pd.concat([frame, joined_parent], axis=1)
        return frame


def split_entities(tables: Mapping[str, pd.DataFrame], metadata: Metadata | Mapping[str, Any], table: str, *,
                   holdout: float = 0.2, seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(train, holdout) datasets: ``table``'s rows split at random, each descendant row following the entity
    it descends from; tables that are not ``table``'s descendants (its ancestors, unrelated tables) are kept
    whole on both sides. A descendant row without any entity above it (null keys) goes to train; one whose
    parents fall on both sides (a second parent below the entity) goes to neither, with a warning.

    Raises:
        ConfigError: an unknown table, a holdout share outside (0, 1), or too few rows for two sides.
    """
    metadata = _as_metadata(metadata)
    if table not in metadata.tables:
        raise ConfigError(f"entity table {table!r} is not in the metadata (fix: one of {', '.join(metadata.tables)})")
    if not 0 < holdout < 1:
        raise ConfigError(f"holdout must be a share in (0, 1), got {holdout}")
    n = len(tables[table])
    n_out = int(round(holdout * n))
    if not 0 < n_out < n:
        raise ConfigError(f"table {table!r} has {n} rows: too few to hold {holdout:.0%} of them out (fix: a table "
                          "with more rows, or another share)")
    rng = np.random.default_rng(seed)
    out_rows = np.zeros(n, dtype=bool)
    out_rows[rng.choice(n, n_out, replace=False)] = True
    descendants = _descendants(metadata, table)
    sides: list[dict[str, pd.DataFrame]] = [dict(tables), dict(tables)]
    sides[0][table] = tables[table][~out_rows].reset_index(drop=True)
    sides[1][table] = tables[table][out_rows].reset_index(drop=True)
    for name in metadata.order():
        if name not in descendants:
            continue
        inside = [r for r in metadata.parents(name) if r.parent == table or r.parent in descendants]
        linked = np.zeros(len(tables[name]), dtype=bool)
        keeps = []
        for side in sides:
            keep = np.ones(len(tables[name]), dtype=bool)
            for rel in inside:
                fk = tables[name][rel.foreign_key]
                linked |= fk.notna().to_numpy()
                keep &= (fk.isna() | fk.isin(side[rel.parent][rel.parent_key])).to_numpy()
            keeps.append(keep)
        train_rows = keeps[0]  # a row with no entity above it fits both sides: it goes to train
        holdout_rows = keeps[1] & linked
        torn = int((~train_rows & ~holdout_rows).sum())
        if torn:
            warnings.warn(DataWarning(f"table {name!r}: {torn:,} rows descend from entities on both sides of the "
                                      "split and are left out of both"), stacklevel=2)
        sides[0][name] = tables[name][train_rows].reset_index(drop=True)
        sides[1][name] = tables[name][holdout_rows].reset_index(drop=True)
    return sides[0], sides[1]


def entity_utility(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, *, target: str,
                   task: str | None = None, seeds: int = 3) -> dict[str, Any]:
    """TRTR and TSTR of the evaluator's MLP on entity frames (see :func:`synthgen.evaluation.utility.utility`);
    ``task``: ``classification`` or ``regression`` (None: from the target's kind)."""
    from synthgen.evaluation.utility import utility

    _nonempty(train=train, holdout=holdout, synthetic=synthetic)
    return utility(check_tables(train, synthetic, holdout, target=target, task=task), seeds=seeds, baselines=False)


def entity_privacy(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, *,
                   seed: int = 0) -> dict[str, Any]:
    """DCR share, exact copies and membership-inference AUC over entity frames (see
    :func:`synthgen.evaluation.privacy.privacy`); each entity is its row with its relations."""
    from synthgen.evaluation.privacy import privacy

    _nonempty(train=train, holdout=holdout, synthetic=synthetic)
    schema = TableSchema.detect(train)
    tables = Tables(train.reset_index(drop=True), synthetic[list(train.columns)].reset_index(drop=True),
                    holdout[list(train.columns)].reset_index(drop=True), schema, str(train.columns[0]),
                    "classification")
    out = privacy(tables, seed=seed)
    out.pop("histograms", None)
    return out


def parent_child_detection(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame],
                           metadata: Metadata | Mapping[str, Any], *, seed: int = 0) -> dict[str, float]:
    """Per relationship (``child.fk -> parent.pk``): the AUC of gradient boosting telling real child rows joined to
    their parent from synthetic ones (0.5: indistinguishable); relationships with fewer than 3 parents on a side
    are left out."""
    metadata = _as_metadata(metadata)
    out = {}
    for rel in metadata.relationships:
        r, s = joined(real, metadata, rel, key=GROUP), joined(synthetic, metadata, rel, key=GROUP)
        groups = (r.pop(GROUP).to_numpy(), s.pop(GROUP).to_numpy())
        if not r.shape[1] or len(r) < 5 or len(s) < 5:
            continue
        specs = []
        for owner in (rel.parent, rel.child):
            for spec in scored_schema(metadata, owner).columns:
                specs.append(type(spec)(f"{owner}.{spec.name}", spec.kind, spec.dtype,
                                        datetime_format=spec.datetime_format))
        if min(len(pd.unique(groups[0])), len(pd.unique(groups[1]))) < 3:  # too few parents for 3 grouped folds
            continue
        auc = detection_frames(r, s, TableSchema(specs), seed=seed, groups=groups)["detection_auc"]
        if not np.isnan(auc):
            out[str(rel)] = auc
    return out


# ---------------------------------------------------------------- helpers
def _nonempty(**frames: pd.DataFrame) -> None:
    empty = [name for name, frame in frames.items() if not len(frame)]
    if empty:
        raise ConfigError(f"the {' and '.join(empty)} entity frame{'s have' if len(empty) > 1 else ' has'} no rows "
                          "(fix: give entities on every side)")


def _as_metadata(metadata: Metadata | Mapping[str, Any]) -> Metadata:
    return metadata if isinstance(metadata, Metadata) else Metadata.from_dict(metadata)


def _descendants(metadata: Metadata, table: str) -> set[str]:
    found: set[str] = set()
    todo = [table]
    while todo:
        for rel in metadata.children(todo.pop()):
            if rel.child not in found:
                found.add(rel.child)
                todo.append(rel.child)
    return found


def _prefix(metadata: Metadata, rel: Relationship) -> str:
    """How a child relationship's aggregates are named: ``child.`` (``child[fk].`` when the parent has several
    relationships to that child)."""
    twins = [r for r in metadata.children(rel.parent) if r.child == rel.child]
    return f"{rel.child}[{rel.foreign_key}]." if len(twins) > 1 else f"{rel.child}."


def _parent_prefix(metadata: Metadata, rel: Relationship) -> str:
    twins = [r for r in metadata.parents(rel.child) if r.parent == rel.parent]
    return f"{rel.parent}[{rel.foreign_key}]." if len(twins) > 1 else f"{rel.parent}."


def _is_datetime(metadata: Metadata, table: str, column: str) -> bool:
    entry = metadata.tables[table]["columns"].get(column)
    return bool(entry) and entry.get("sdtype") == "datetime"
