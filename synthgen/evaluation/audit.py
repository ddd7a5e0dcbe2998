"""Privacy audit: plant canary rows, train once, and turn a membership attack into a lower bound on epsilon.

The one-run audit of Steinke, Nasr and Jagielski (2023, "Privacy auditing with one (1) training
run"): ``m`` canaries (random combinations of each column's values, numbers uniform over their
range: outliers no real row resembles) are each put into the training table with probability
1/2. After training, the attack scores every canary by its distance to the nearest synthetic row
and guesses "member" for the closest ``guess_share`` of them and "non-member" for the farthest as
many. Under (epsilon, delta)-DP the chance of ``v`` or more correct guesses out of ``r`` is at most
``f(v) + 2 m delta * max_i (f(v - i) - f(v)) / i`` with ``f(v) = P[Binomial(r, e^eps / (1 + e^eps)) >= v]``
(their Theorem 3.1; the delta term is at most ``2 m delta``); the audit reports the largest epsilon
that this observation rejects at the given confidence, for the claimed delta. For a DP model it
must stay at or below the claimed epsilon; for a non-DP model it measures how much the synthetic
rows give away. It is a lower bound at that confidence: it exceeds the true epsilon with
probability at most ``1 - confidence`` (ignoring delta would let it exceed the claim of a model
that keeps its (epsilon, delta) promise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom

from synthgen.errors import InvalidDataError, Problem
from synthgen.evaluation.entities import EntityFrame
from synthgen.evaluation.prep import Featurizer
from synthgen.evaluation.privacy import _column_weights, _nearest
from synthgen.metadata import Metadata
from synthgen.schema import TableSchema

NUMERIC = ("continuous", "integer")


@dataclass
class AuditResult:
    """What the audit measured (``empirical_epsilon``: the lower bound at ``confidence``)."""

    canaries: int
    members: int
    guesses: int
    correct: int
    confidence: float
    empirical_epsilon: float
    attack_auc: float
    claimed_epsilon: float | None
    claimed_delta: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        claim = (f"{self.claimed_epsilon:g} (delta {self.claimed_delta:g})" if self.claimed_epsilon is not None
                 else "none (trained without DP)")
        verdict = ""
        if self.claimed_epsilon is not None:
            ok = self.empirical_epsilon <= self.claimed_epsilon
            verdict = "  (consistent with the claim)" if ok else "  (EXCEEDS THE CLAIM: the DP guarantee is broken)"
        return "\n".join([
            f"canaries        {self.canaries} ({self.members} planted in the training table)",
            f"attack          {self.correct} of {self.guesses} membership guesses right, AUC {self.attack_auc:.3f}",
            f"epsilon         empirical lower bound {self.empirical_epsilon:.3f} at {self.confidence:.0%} "
            f"confidence; claimed {claim}{verdict}",
        ])


def audit(data: pd.DataFrame, fit_and_sample: Callable[[pd.DataFrame], pd.DataFrame], *, canaries: int = 500,
          guess_share: float = 0.1, confidence: float = 0.95, seed: int = 0,
          claimed_epsilon: float | None = None, claimed_delta: float = 0.0) -> AuditResult:
    """Plant canaries in ``data``, call ``fit_and_sample(training table)``, attack, bound epsilon.

    Args:
        data: the private table.
        fit_and_sample: trains a generator on the table it is given and returns synthetic rows.
        canaries: number of canary rows (each planted with probability 1/2).
        guess_share: share of canaries guessed on each side (members / non-members).
        confidence: confidence of the lower bound.
        claimed_epsilon: the model's claim, shown beside the bound.
        claimed_delta: the model's delta: the bound allows for it (0 for pure DP or no DP).
    """
    if canaries < 10 or not 0 < guess_share <= 0.5:
        raise InvalidDataError(Problem(None, "an audit needs at least 10 canaries and guess_share in (0, 0.5]",
                                       "use e.g. canaries=500, guess_share=0.1"))
    rng = np.random.default_rng(seed)
    schema = TableSchema.detect(data)
    planted = make_canaries(data, schema, canaries, rng)
    member = rng.random(canaries) < 0.5
    train = pd.concat([data, planted[member]], ignore_index=True)
    train = train.iloc[rng.permutation(len(train))].reset_index(drop=True)
    synthetic = fit_and_sample(train)
    featurizer = Featurizer(schema, list(data.columns), scaling="range").fit(data)
    weights = _column_weights(featurizer)
    distance = _nearest(featurizer.transform(planted) * weights, featurizer.transform(synthetic) * weights, k=1)[0]
    return _attack(member, distance, rng, guess_share, confidence, claimed_epsilon, claimed_delta)


def _attack(member: np.ndarray, distance: np.ndarray, rng: np.random.Generator, guess_share: float,
            confidence: float, claimed_epsilon: float | None, claimed_delta: float) -> AuditResult:
    """Guess "member" for the ``guess_share`` of canaries nearest the synthetic data and "non-member" for as many
    farthest, then bound epsilon from the right guesses."""
    from sklearn.metrics import roc_auc_score

    canaries = len(member)
    k = max(1, int(guess_share * canaries))
    order = np.argsort(distance + rng.random(canaries) * 1e-9)  # random tie-break
    correct = int(member[order[:k]].sum() + (~member[order[-k:]]).sum())
    auc = float(roc_auc_score(member, -distance)) if 0 < member.sum() < canaries else float("nan")
    bound = epsilon_lower_bound(2 * k, correct, confidence, delta=claimed_delta, canaries=canaries)
    return AuditResult(canaries, int(member.sum()), 2 * k, correct, confidence, round(bound, 4), round(auc, 4),
                       claimed_epsilon, claimed_delta)


def p_value(guesses: int, correct: int, epsilon: float, delta: float = 0.0, canaries: int | None = None) -> float:
    """Most an (epsilon, delta)-DP model allows for ``correct`` or more right guesses out of ``guesses``.

    Steinke, Nasr and Jagielski (2023), Theorem 3.1: ``f(v) + 2 m delta max_i (f(v - i) - f(v)) / i``
    for ``v`` correct guesses, ``m`` canaries (default: ``guesses``), ``i`` from 1 to ``v`` and
    ``f(v) = P[Binomial(guesses, e^eps / (1 + e^eps)) >= v]``.
    """
    p = 1 / (1 + math.exp(-epsilon))
    tail = float(binom.sf(correct - 1, guesses, p))
    if delta <= 0 or correct <= 0:
        return tail
    below = binom.pmf(np.arange(correct - 1, -1, -1), guesses, p)  # P[Bin = v - 1], P[Bin = v - 2], ...
    alpha = float(np.max(np.cumsum(below) / np.arange(1, correct + 1)))  # f(v - i) - f(v) = P[v - i <= Bin < v]
    return min(1.0, tail + 2 * (canaries or guesses) * delta * alpha)


def epsilon_lower_bound(guesses: int, correct: int, confidence: float = 0.95, *, delta: float = 0.0,
                        canaries: int | None = None) -> float:
    """Largest epsilon that ``correct`` right guesses out of ``guesses`` reject under (epsilon, ``delta``)-DP.

    0 if none is; ``canaries``: canaries planted or not (default: ``guesses``), see :func:`p_value`.
    """
    beta = 1 - confidence

    def tail(eps: float) -> float:
        return p_value(guesses, correct, eps, delta, canaries)

    if tail(0.0) >= beta:
        return 0.0
    lo, hi = 0.0, 30.0
    if tail(hi) < beta:
        return hi
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) < beta else (lo, mid)
    return lo


def make_canaries(data: pd.DataFrame, schema: TableSchema, m: int, rng: np.random.Generator) -> pd.DataFrame:
    """``m`` outlier rows: each column independently uniform over its values (numbers: over the range)."""
    out = {}
    for spec in schema.columns:
        values = data[spec.name].dropna()
        if spec.kind in NUMERIC and len(values):
            lo, hi = float(values.min()), float(values.max())
            drawn = rng.uniform(lo, hi, m)
            out[spec.name] = pd.Series(np.round(drawn) if spec.kind == "integer" else drawn).astype(values.dtype)
        else:
            distinct = values.unique()
            out[spec.name] = pd.Series(distinct[rng.integers(len(distinct), size=m)], dtype=data[spec.name].dtype)
    return pd.DataFrame(out)[list(data.columns)]


def audit_entities(tables: Mapping[str, pd.DataFrame], metadata: Metadata | Mapping[str, Any], entity: str,
                   fit_and_sample: Callable[[dict[str, pd.DataFrame]], Mapping[str, pd.DataFrame]], *,
                   canaries: int = 200, events: int | None = None, guess_share: float = 0.1,
                   confidence: float = 0.95, seed: int = 0, claimed_epsilon: float | None = None,
                   claimed_delta: float = 0.0) -> AuditResult:
    """The one-run audit with whole canary entities: each a row of ``entity`` (an outlier, as ``make_canaries``
    draws them) with ``events`` outlier rows in each child table (default: the median real number per entity),
    planted with probability 1/2 with all of them. The attack scores each canary entity by the distance of its
    entity frame (its columns and its children's counts, means and shares; ``EntityFrame``) to the nearest
    synthetic entity's. Under entity-level DP the bound must stay at or below the claim; a model whose guarantee
    were per row would let a long history through.

    Args:
        tables: the private tables: ``entity`` and its children (a deeper table is refused).
        fit_and_sample: trains on the tables it is given and returns synthetic tables.
        canaries, guess_share, confidence, seed, claimed_epsilon, claimed_delta: as :func:`audit`.
    """
    meta = metadata if isinstance(metadata, Metadata) else Metadata.from_dict(metadata)
    if canaries < 10 or not 0 < guess_share <= 0.5:
        raise InvalidDataError(Problem(None, "an audit needs at least 10 canaries and guess_share in (0, 0.5]",
                                       "use e.g. canaries=200, guess_share=0.1"))
    deeper = [t for t in meta.tables if t != entity and all(r.parent != entity for r in meta.parents(t))]
    if deeper:
        raise InvalidDataError(Problem(None, f"tables {', '.join(deeper)} are not children of the entity table "
                                       f"{entity!r}", "audit the entity table with its direct children", entity))
    rng = np.random.default_rng(seed)
    planted = _canary_entities(tables, meta, entity, canaries, events, rng)
    member = rng.random(canaries) < 0.5
    keys = planted[entity][meta.primary_key(entity)]
    members = set(keys[member].tolist())
    train = {}
    for name, df in tables.items():
        mine = planted[name]
        owner = mine[meta.primary_key(entity)] if name == entity else mine[meta.parents(name)[0].foreign_key]
        train[name] = pd.concat([df, mine[owner.isin(members).to_numpy()]], ignore_index=True)
    synthetic = dict(fit_and_sample(train))
    frames = EntityFrame(meta, entity).fit(tables)
    real = frames.transform(tables)
    featurizer = Featurizer(frames.schema(real), list(real.columns), scaling="range").fit(real)
    weights = _column_weights(featurizer)
    distance = _nearest(featurizer.transform(frames.transform(planted)) * weights,
                        featurizer.transform(frames.transform(synthetic)) * weights, k=1)[0]
    return _attack(member, distance, rng, guess_share, confidence, claimed_epsilon, claimed_delta)


def _canary_entities(tables: Mapping[str, pd.DataFrame], meta: Metadata, entity: str, m: int, events: int | None,
                     rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """``m`` canary entities with new keys: outlier rows of ``entity`` and ``events`` outlier rows each in every
    child table."""
    out = {}
    pk = meta.primary_key(entity)
    if pk is None:
        raise InvalidDataError(Problem(None, "has no primary key: its rows are not entities", "declare one", entity))
    root = tables[entity]
    out[entity] = _outliers(root, meta, entity, m, rng)
    out[entity][pk] = _new_keys(root[pk], m)
    for rel in meta.children(entity):
        child = tables[rel.child]
        per = events if events is not None else max(1, int(child[rel.foreign_key].value_counts().median()))
        rows = _outliers(child, meta, rel.child, m * per, rng)
        rows[rel.foreign_key] = np.repeat(out[entity][pk].to_numpy(), per)
        own = meta.primary_key(rel.child)
        if own is not None:
            rows[own] = _new_keys(child[own], m * per)
        out[rel.child] = rows[list(child.columns)]
    return out


def _outliers(df: pd.DataFrame, meta: Metadata, table: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows of ``df``'s non-key columns drawn as :func:`make_canaries` draws them (keys left empty)."""
    keys = set(meta.keys(table))
    columns = [c for c in df.columns if c not in keys]
    drawn = make_canaries(df[columns], TableSchema.detect(df[columns]), n, rng) if columns else \
        pd.DataFrame(index=range(n))
    for key in keys:
        drawn[key] = None
    return drawn[list(df.columns)]


def _new_keys(existing: pd.Series, n: int) -> pd.Series:
    """``n`` keys no real row has: whole numbers above the largest, else ``canary-<i>`` text."""
    if pd.api.types.is_integer_dtype(existing.dtype):
        start = int(existing.max()) + 1 if len(existing) else 1
        return pd.Series(np.arange(start, start + n), dtype=existing.dtype)
    return pd.Series([f"canary-{i}" for i in range(n)], dtype=object)
