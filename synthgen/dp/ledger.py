"""The privacy ledger: what a DP fit spent and what it read without noise, written into the model file.

Built from what training really did (the accountant's history, the steps taken), checked against the
plan (:mod:`synthgen.dp.training`): a fit that spent more than its budget is refused, not saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Required, TypedDict

from synthgen.dp.accounting import Mechanism, epsilon
from synthgen.errors import PrivacyError

if TYPE_CHECKING:
    from synthgen.dp.training import PrivacyPlan, PrivateTraining
    from synthgen.transform.transformer import ColumnDomain


class DomainStatistics(TypedDict):
    """What the noisy domain statistics of a DP fit cost (``Ledger["domain_statistics"]``)."""

    epsilon_share: float | None
    histograms: int
    noise_std: float | None
    epsilon_alone: float
    category_threshold: float | None
    delta_threshold: float


class DeltaSplit(TypedDict):
    """How delta was split (``Ledger["delta_split"]``)."""

    accountant: float
    category_threshold: float


class Ledger(TypedDict, total=False):
    """The privacy ledger, ``manifest["privacy"]`` in a model file (JSON; a dict at run time).

    Every ledger says whether the fit was differentially private, its epsilon and delta (None without
    DP), a statement in words and ``raw_quantities``: what was read from the private table without
    noise. A DP fit's ledger (:func:`ledger`) has every other key; a model file written before a key
    was added may lack it, so readers use ``.get`` for those.
    """

    differential_privacy: Required[bool]
    epsilon: Required[float | None]
    delta: Required[float | None]
    statement: Required[str]
    raw_quantities: Required[list[str]]
    epsilon_target: float
    accountant: str
    mechanism: str
    sampling: str
    sample_rate: float
    noise_multiplier: float
    max_grad_norm: float | None
    sensitivity: str
    steps: int
    steps_planned: int
    expected_batch_size: int
    secure_noise: bool
    deterministic: str
    mechanisms: list[dict[str, Any]]
    domain_statistics: DomainStatistics
    delta_split: DeltaSplit
    sources: dict[str, dict[str, str]]
    outside_domain: str
    unit: str
    entities: dict[str, Any]  # entity-level DP over several tables: the entity table, count and cap
    tables: dict[str, Any]  # ... and each table's own ledger

#: what a DP fit does with values outside the domain it may know (public or noisy); never a refusal
OUTSIDE_DOMAIN = ("numbers beyond the bounds are clipped to them; categories outside the released or public set "
                  "are encoded as null, or, in a column without a null slot, as no category (that row teaches "
                  "the column nothing), as are nulls there; nulls in a numeric column without a null slot are "
                  "encoded at its main interval")


def raw_quantities(n_rows: int, *, kinds_from_metadata: bool, unit: str = "row") -> list[str]:
    """What a DP fit reads from the private table without noise: the schema's names and storage dtypes, and
    the row (or entity) count. Nothing else decides anything before training."""
    kinds = ("column kinds and datetime formats from the metadata" if kinds_from_metadata
             else "column kinds from the storage dtypes alone (no value read)")
    return [
        f"column names and their storage dtypes ({kinds}), treated as public",
        f"the {unit} count ({n_rows}), which sets the sampling rate (treated as public, as DP-SGD does)",
    ]


def ledger(plan: PrivacyPlan, training: PrivateTraining, domain: dict[str, ColumnDomain], n_rows: int, *,
           kinds_from_metadata: bool, unit: str = "row") -> Ledger:
    """The privacy ledger written into the model file's manifest, from what training really did.

    ``unit``: ``row``, or ``entity`` when ``n_rows`` counts entities (each with all its rows): sampling,
    clipping and the domain statistics then work on entities (see ``synthgen.pipeline.Entities``)."""
    entity = unit == "entity"
    s = plan.settings
    sched = plan.schedule
    mechanisms = ([plan.stats] if plan.stats else []) + [
        Mechanism(sched.mechanism, s_, q, n) for s_, q, n in _merge(training.accountant.history)]
    delta_acc = plan.delta - plan.delta_threshold
    spent = epsilon(mechanisms, delta_acc, s.accountant)
    if spent > s.epsilon * (1 + 1e-6) or training.steps_taken != plan.sgd.steps:
        raise PrivacyError(f"training spent epsilon {spent:.4g} in {training.steps_taken} steps against a "
                           f"budget of {s.epsilon:g} in {plan.sgd.steps} steps: refusing to save this model")
    sources = {name: dom.sources for name, dom in domain.items()}
    led: Ledger = {
        "differential_privacy": True,
        "epsilon": round(spent, 6), "epsilon_target": s.epsilon, "delta": plan.delta,
        "accountant": s.accountant,
        "mechanism": sched.mechanism,
        "unit": unit,
        "sampling": ("Poisson (each entity, with all its rows, in each batch independently with probability "
                     "sample_rate)" if entity and sched.sample_rate < 1
                     else "Poisson (each row in each batch independently with probability sample_rate)"
                     if sched.sample_rate < 1
                     else f"none: every batch holds every {'entity, with all its rows' if entity else 'row'}"
                     if sched.clipped else "none: every measurement reads every row once"),
        "sample_rate": sched.sample_rate, "noise_multiplier": plan.sgd.noise_multiplier,
        "max_grad_norm": s.max_grad_norm if sched.clipped else None,
        "sensitivity": ("each entity's gradient, summed over its rows, clipped to max_grad_norm (every row of the "
                        "entity scaled by min(1, max_grad_norm / the norm of that sum)); the domain statistics read "
                        "one row per entity, drawn at random" if entity and sched.clipped
                        else "per-sample gradients clipped to max_grad_norm" if sched.clipped
                        else "1 per count table (an entity's rows weigh 1 / its row count each, so it adds at most "
                             "1 to each table)" if entity
                        else "1 per count table (a row adds 1 to one cell of each)"),
        "steps": training.steps_taken, "steps_planned": plan.sgd.steps,
        "expected_batch_size": round(sched.sample_rate * n_rows),
        "secure_noise": not s.deterministic,
        **_deterministic(s.deterministic),
        "mechanisms": [m.to_dict() for m in mechanisms],
        "domain_statistics": {
            "epsilon_share": s.stats_share, "histograms": plan.domain.histograms,
            "noise_std": plan.stats_sigma,
            "epsilon_alone": round(epsilon([plan.stats], delta_acc, s.accountant), 6) if plan.stats else 0.0,
            "category_threshold": None if not plan.domain.discovered else round(plan.category_threshold, 3),
            "delta_threshold": plan.delta_threshold,
        },
        "delta_split": {"accountant": delta_acc, "category_threshold": plan.delta_threshold},
        "sources": sources,
        "outside_domain": OUTSIDE_DOMAIN,
        "raw_quantities": raw_quantities(n_rows, kinds_from_metadata=kinds_from_metadata, unit=unit),
        "statement": f"({spent:.3g}, {plan.delta:.3g})-differentially private with respect to each "
                     f"{'entity (with all its rows)' if entity else 'row of the training table'}, by the accountant "
                     "over every noisy release listed in mechanisms, given the column names, their storage dtypes "
                     f"and the {unit} count, which were read without noise (raw_quantities).",
    }
    return led


class _Seeded(TypedDict, total=False):
    deterministic: str


def _deterministic(seeded: bool) -> _Seeded:
    """The ledger's warning for seeded noise (nothing with secure noise)."""
    return {"deterministic": "NOT FOR RELEASE: seeded noise, reproducible by anyone with the seed"} if seeded else {}


def _merge(history: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Collapse repeated (noise, rate) accountant entries into one entry with their step count."""
    merged: list[list] = []
    for sigma, q, n in history:
        if merged and merged[-1][0] == sigma and merged[-1][1] == q:
            merged[-1][2] += n
        else:
            merged.append([sigma, q, n])
    return [tuple(m) for m in merged]
