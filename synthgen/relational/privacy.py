"""Entity-level differential privacy for related tables: the unit is an entity, a row of the root table with
all its rows in the tables below it (a customer with every purchase), not a row of one table.

What makes it hold:

* every table's model trains with DP-SGD over entities: Poisson sampling draws entities (each with all its
  rows in that table), each entity's summed gradient is clipped (``synthgen.dp.training.PrivateTraining``),
  and the noise is calibrated for the entity count; the root table has one row per entity already;
* each table's domain statistics (bounds, categories, bins) are noisy counts over one row per entity;
* an entity keeps at most ``max_events`` rows in each child table (public), so its count column has public
  bounds;
* the lineage and event encoders that turn rows into a model's context take their categories and scales from
  the DP transformers, not from the rows; keys are made anew from their storage dtype alone;
* each table gets an even share of delta and the same epsilon, the largest for which one accountant over every
  table's planned releases stays within the budget (``joint_share``; more than an even split of epsilon, which
  Renyi composition would leave partly unspent), and the ledger states what that accountant computes over
  every noisy release training really made: at most the budget.

Supported shape: one root table (the entities) and tables whose only parent is it; rows of a child table
always have their entity (a null key would be a row without one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthgen.dp.accounting import Mechanism, default_delta, epsilon
from synthgen.dp.ledger import Ledger
from synthgen.dp.training import DPSettings
from synthgen.errors import ConfigError, InvalidDataError, PrivacyError, Problem
from synthgen.metadata import Metadata, Relationship
from synthgen.pipeline import Entities
from synthgen.schema import ColumnSpec, TableSchema


def entity_table(meta: Metadata, data: Mapping[str, pd.DataFrame],
                 contexts: Mapping[str, Relationship | None]) -> str:
    """The root table whose rows are the entities, after checking the shape entity-level DP supports."""
    roots = [t for t in meta.order() if contexts[t] is None]
    if len(roots) != 1:
        raise ConfigError(f"entity-level DP needs one root table, whose rows are the entities; these tables have "
                          f"several ({', '.join(roots)}) (fix: train the entity table and its children alone)")
    root = roots[0]
    problems = []
    for table in meta.order():
        if table == root:
            continue
        parents = meta.parents(table)
        if len(parents) != 1 or parents[0].parent != root:
            problems.append(Problem(None, f"references {', '.join(str(r) for r in parents)}: under entity-level DP "
                                    f"each table must be a child of the entity table {root!r} alone",
                                    "train the entity table and its direct children (drop deeper or linked "
                                    "tables), or train without --epsilon", table))
            continue
        if data[table][parents[0].foreign_key].isna().any():
            problems.append(Problem(parents[0].foreign_key, "has nulls: under entity-level DP every row needs "
                                    "its entity", "drop the rows without one, or fill their key", table))
    if problems:
        raise InvalidDataError(problems)
    return root


def capped(data: Mapping[str, pd.DataFrame], contexts: Mapping[str, Relationship | None], root: str,
           max_events: int, sequential: Mapping[str, bool], seed: int) -> dict[str, pd.DataFrame]:
    """Each child table with at most ``max_events`` rows per entity: a history's first events (tables in event
    order), else rows drawn at random."""
    out = dict(data)
    rng = np.random.default_rng([seed, 29])
    for table, rel in contexts.items():
        if rel is None or table == root:
            continue
        df = data[table]
        order = np.arange(len(df)) if sequential.get(table) else rng.permutation(len(df))
        keys = df[rel.foreign_key].to_numpy()[order]
        rank = pd.Series(keys).groupby(keys).cumcount().to_numpy()
        keep = np.sort(order[rank < max_events])
        out[table] = df.iloc[keep].reset_index(drop=True)
    return out


def entities_of(table: str, df: pd.DataFrame, root: str, root_keys: pd.Series, rel: Relationship | None) -> Entities:
    """Each row's entity in ``table`` (the root table's row number)."""
    count = len(root_keys)
    if table == root:
        return Entities(np.arange(count), count)
    assert rel is not None
    position = pd.Series(np.arange(count), index=root_keys.to_numpy())
    of_rows = position.reindex(df[rel.foreign_key].to_numpy()).to_numpy()
    if np.isnan(of_rows).any():
        raise InvalidDataError(Problem(rel.foreign_key, "references keys the entity table does not have",
                                       "drop those rows or add their entities", table))
    return Entities(of_rows.astype(np.int64), count)


def entity_delta(settings: DPSettings, entities: int) -> float:
    """The whole delta: the one asked for, else the default for ``entities`` (each table gets an even share of it,
    see ``joint_share``)."""
    delta = default_delta(entities) if settings.delta is None else settings.delta
    if not 0 < delta < 1 / max(entities, 1):
        raise ConfigError(f"delta {delta:g} must be in (0, 1/n) for {entities} entities (fix: --delta "
                          f"{default_delta(entities):g})")
    return delta


def key_format_private(values: pd.Series) -> dict[str, Any]:
    """New keys for a key column, from its storage dtype alone: whole numbers from 1, else UUIDs."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return {"kind": "integer", "start": 1, "dtype": str(values.dtype)}
    return {"kind": "uuid"}


def entity_ledger(settings: DPSettings, delta: float, tables: Mapping[str, Ledger], *, entities: int,
                  max_events: int, root: str) -> Ledger:
    """The relational model's ledger: every table's noisy releases composed by one accountant, with respect to
    one entity."""
    mechanisms = [Mechanism(m["name"], m["noise_multiplier"], m["sample_rate"], m["steps"])
                  for led in tables.values() for m in led["mechanisms"]]
    thresholds = sum(float(led["delta_split"]["category_threshold"]) for led in tables.values())
    spent = epsilon(mechanisms, delta - thresholds, settings.accountant)
    if spent > settings.epsilon * (1 + 1e-6):
        raise PrivacyError(f"the tables spent epsilon {spent:.4g} against a budget of {settings.epsilon:g}: "
                           "refusing to save this model")
    return {
        "differential_privacy": True, "unit": "entity",
        "epsilon": round(spent, 6), "epsilon_target": settings.epsilon, "delta": delta,
        "accountant": settings.accountant, "max_grad_norm": settings.max_grad_norm,
        "entities": {"table": root, "count": entities, "max_events": max_events,
                     "truncation": f"an entity keeps at most {max_events} rows in each child table: a history its "
                                   f"first {max_events} events, another table {max_events} of its rows drawn at "
                                   "random (the rest are not trained on)"},
        "sampling": "Poisson over entities: each entity, with all its rows in a table, in each batch independently "
                    "with that table's sample rate",
        "sensitivity": "one entity: in each table at most one Poisson draw and one clipped gradient per step (its "
                       "rows' gradients summed, then clipped to max_grad_norm), and one row in each noisy "
                       "histogram of the domain statistics",
        "mechanisms": [m.to_dict() for m in mechanisms],
        "delta_split": {"accountant": delta - thresholds, "category_threshold": thresholds},
        "tables": dict(tables),
        "raw_quantities": [
            "the tables' names, keys and relationships, and the column names and storage dtypes of each, treated "
            "as public",
            f"the entity count ({entities}), which sets the sampling rates (treated as public, as DP-SGD does)",
        ],
        "statement": f"({spent:.3g}, {delta:.3g})-differentially private with respect to each entity (a row of "
                     f"{root!r} with all its rows in every other table), by one accountant over every noisy release "
                     "of every table listed in mechanisms, given the names, storage dtypes and entity count read "
                     "without noise (raw_quantities).",
    }


def count_spec(spec: ColumnSpec, max_events: int) -> ColumnSpec:
    """A child-count column under DP: one category per count 0 .. max_events, declared public (the cap is), so
    that every history length has a noisy count of its own (numeric bins would spread a length over its
    interval)."""
    return dataclasses.replace(spec, kind="categorical", categories=list(range(max_events + 1)), min_value=None,
                               max_value=None, nullable=False, public=True)


def index_info_private(df: pd.DataFrame, index: str, entry: dict[str, Any]) -> dict[str, Any]:
    """What sampling needs to rebuild a history's index, under DP: whether it is whole from its storage dtype
    alone, and steps never below 0 (the smallest real step would be read off the rows)."""
    return {"index": index, "sdtype": entry.get("sdtype"), "datetime_format": entry.get("datetime_format"),
            "whole": bool(pd.api.types.is_integer_dtype(df[index].dtype)), "min_gap": 0.0}


#: bisection steps of ``joint_share``: the share is then within (1 - 1/tables) / 2^5 of the budget below the
#: largest that fits (the ledger spends about 98% of the target or more with two tables)
SHARE_STEPS = 5


def joint_share(settings: DPSettings, delta: float, tables: list[tuple[Any, TableSchema]], entities: int) -> float:
    """The epsilon each table may be calibrated to so that one accountant over every table's releases spends the
    whole budget (an even split, ``epsilon / tables``, composes to less: Renyi composition is tighter than adding
    epsilons up). ``tables``: each table's model (unfitted, its DP schedule known) and schema. Found by bisection
    over the planned mechanisms alone (no training), ``SHARE_STEPS`` steps; at least the even split."""
    from synthgen.dp.training import plan_privacy

    count = len(tables)
    if count <= 1:
        return settings.epsilon

    def spent(share: float) -> float:
        mechanisms, thresholds = [], 0.0
        for model, schema in tables:
            plan = plan_privacy(dataclasses.replace(settings, epsilon=share, delta=delta / count), schema,
                                n_rows=entities, schedule=model.dp_schedule(entities, len(schema.columns)),
                                frequencies=model.dp_needs_frequencies)
            mechanisms += ([plan.stats] if plan.stats else []) + [plan.sgd]
            thresholds += plan.delta_threshold
        return epsilon(mechanisms, delta - thresholds, settings.accountant)

    low, high = settings.epsilon / count, settings.epsilon
    for _ in range(SHARE_STEPS):  # each step plans every table: seconds of Renyi accounting
        middle = (low + high) / 2
        low, high = (middle, high) if spent(middle) <= settings.epsilon else (low, middle)
    return low
