"""Differentially private training: settings, the budget plan and the Opacus wiring.

The plan splits one (epsilon, delta) budget between the private domain statistics (a stated
share, see :mod:`synthgen.dp.domain`) and DP-SGD, and calibrates the DP-SGD noise so the
composition of both, computed by one Opacus accountant, meets the budget exactly.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from synthgen.dp.accounting import (
    ACCOUNTANTS,
    MAX_COUNT_NOISE,
    MAX_NOISE_MULTIPLIER,
    Mechanism,
    calibrate,
    default_delta,
    epsilon,
)
from synthgen.errors import ConfigError, PrivacyError

if TYPE_CHECKING:  # the domain step reads tables (pandas, scipy); a model loading for sampling needs neither
    from synthgen.dp.domain import DomainPlan
    from synthgen.schema import TableSchema

#: share of delta given to the category-discovery threshold when categories are found privately
THRESHOLD_DELTA_SHARE = 0.1


@dataclass(frozen=True)
class DPSettings:
    """What the user asks for: a total (epsilon, delta) budget and how to spend it.

    Args:
        epsilon: total budget for everything that reads the private table (> 0).
        delta: None for the default, the largest round number at most 1 / (10 n).
        max_grad_norm: per-sample gradient clipping norm C.
        accountant: ``rdp`` (Renyi DP; fast, slightly loose) or ``prv`` (PRV; tighter, slower).
        stats_share: share of epsilon for noisy domain statistics (bounds, categories, bins);
            None: every column's domain must come from public metadata.
        deterministic: seeded noise for debugging; NOT FOR RELEASE (the noise is predictable).
    """

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    stats_share: float | None = None
    deterministic: bool = False

    def check(self, n_rows: int) -> float:
        """Validate against the table size; returns the delta to use."""
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"epsilon must be a positive number, got {self.epsilon} (fix: e.g. --epsilon 1)")
        delta = default_delta(n_rows) if self.delta is None else self.delta
        if not 0 < delta < 1 / n_rows:
            raise ConfigError(f"delta {delta:g} must be in (0, 1/n) = (0, {1 / n_rows:.3g}) for {n_rows} rows; "
                              f"larger deltas allow releasing a row outright (fix: --delta {default_delta(n_rows):g})")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be positive, got {self.max_grad_norm} (fix: e.g. 1.0)")
        if self.accountant not in ACCOUNTANTS:
            raise ConfigError(f"unknown accountant {self.accountant!r} (fix: use one of {', '.join(ACCOUNTANTS)})")
        if self.stats_share is not None and not 0 < self.stats_share < 1:
            raise ConfigError(f"stats_share must be in (0, 1), got {self.stats_share} (fix: e.g. 0.1)")
        return delta


@dataclass(frozen=True)
class Schedule:
    """How a model reads the private rows under DP, declared before training so it can be calibrated.

    DP-SGD: ``steps_per_epoch * epochs`` Poisson-sampled steps at ``sample_rate``. A model that
    measures noisy statistics instead (``pairwise``) declares ``sample_rate`` 1 and one step
    per count table, each with sensitivity 1.
    """

    mechanism: str
    sample_rate: float
    steps_per_epoch: int
    epochs: int
    clipped: bool = True  # per-sample gradient clipping (DP-SGD); False: counts of sensitivity 1


@dataclass(frozen=True)
class DPSGD:
    """What a model needs to train with DP (the model reads nothing else about privacy)."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps_per_epoch: int
    epochs: int
    accountant: str
    secure: bool
    seed: int
    cond_frequencies: np.ndarray | None = None  # noisy shares of the cond slots (ctgan)
    #: the unit of privacy when it is not the row: each row's entity (0 .. entities - 1); Poisson sampling then
    #: draws entities, each with all its rows, and clipping bounds each entity's summed gradient
    groups: np.ndarray | None = None
    entities: int = 0  # how many entities there are (some may have no row here)


@dataclass
class PrivacyPlan:
    """The budget split, decided before any training."""

    settings: DPSettings
    delta: float
    domain: DomainPlan
    stats: Mechanism | None
    stats_sigma: float
    category_threshold: float
    delta_threshold: float
    sgd: Mechanism
    schedule: Schedule


def plan_privacy(settings: DPSettings, schema: TableSchema, *, n_rows: int, schedule: Schedule,
                 frequencies: bool) -> PrivacyPlan:
    """Split the budget and calibrate every noise level, or refuse with the fix.

    Raises:
        ConfigError: invalid settings, or domains neither public nor allowed to be measured.
        PrivacyError: the budget cannot pay for the statistics and one epoch of training.
    """
    from synthgen.dp.domain import missing_public, plan_domain, threshold

    delta = settings.check(n_rows)
    measure = settings.stats_share is not None
    if not measure:
        missing = missing_public(schema)
        if missing or frequencies:
            what = (f"columns {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''} have no public "
                    "bounds/categories/nullable" if missing else "this model needs noisy category frequencies")
            raise ConfigError(
                f"differentially private training cannot read the domain off the private table: {what} (fix: "
                "give --metadata FILE marked \"public\": true with min_value/max_value, categories and nullable "
                "for every column, or let synthgen measure them with DP: --stats-share 0.1 spends 10% of epsilon)")
    domain = plan_domain(schema, measure=measure, frequencies=frequencies)
    delta_threshold = THRESHOLD_DELTA_SHARE * delta if domain.discovered else 0.0
    delta_acc = delta - delta_threshold
    stats, sigma = None, 0.0
    if settings.stats_share is not None and domain.histograms:  # measure
        stats = calibrate(settings.epsilon * settings.stats_share, delta_acc, name="domain statistics",
                          sample_rate=1.0, steps=domain.histograms, accountant=settings.accountant,
                          max_noise=MAX_COUNT_NOISE)
        sigma = stats.noise_multiplier
    sgd = calibrate(settings.epsilon, delta_acc, name=schedule.mechanism, sample_rate=schedule.sample_rate,
                    steps=schedule.steps_per_epoch * schedule.epochs, accountant=settings.accountant,
                    before=(stats,) if stats else (),
                    max_noise=MAX_NOISE_MULTIPLIER if schedule.clipped else MAX_COUNT_NOISE)
    return PrivacyPlan(settings, delta, domain, stats, sigma, threshold(sigma, delta_threshold, domain.discovered),
                       delta_threshold, sgd, schedule)


def sgd_spec(plan: PrivacyPlan, *, seed: int, cond_frequencies: np.ndarray | None,
             groups: np.ndarray | None = None, entities: int = 0) -> DPSGD:
    s, sched = plan.settings, plan.schedule
    return DPSGD(noise_multiplier=plan.sgd.noise_multiplier, max_grad_norm=s.max_grad_norm,
                 sample_rate=sched.sample_rate, steps_per_epoch=sched.steps_per_epoch,
                 epochs=sched.epochs, accountant=s.accountant, secure=not s.deterministic, seed=seed,
                 cond_frequencies=cond_frequencies, groups=groups, entities=entities)


# ----------------------------------------------------------------------------- Opacus wiring
class PrivateTraining:
    """DP-SGD for one model fit: Poisson batches, per-sample clipping and noise, accounting (Opacus).

    ``wrap`` turns a module and its optimizer into Opacus' ``GradSampleModule`` and
    ``DPOptimizer``; every step of every wrapped optimizer is counted by one accountant, so
    ``spent()`` is what training really did.

    Noise: with ``secure`` (the default) the generators are seeded from the OS's CSPRNG and
    Opacus' secure mode draws each noise value as a sum of Gaussians, against floating-point
    attacks (torchcsprng, which Opacus' own secure RNG needs, has no build for torch 2.x).
    Otherwise everything follows ``seed``: reproducible, and not for release.
    """

    def __init__(self, spec: DPSGD, n_rows: int, device: torch.device, world: Any = None, *,
                 total_rows: int | None = None):
        from opacus.accountants import create_accountant

        self.spec, self.n_rows, self.device = spec, n_rows, device
        self.groups: torch.Tensor | None = None
        if spec.groups is not None:  # entity-level DP: the units are entities, each with all its rows
            if world is not None and world.size > 1:
                raise ConfigError("entity-level DP trains in one process (fix: drop torchrun)")
            groups = np.asarray(spec.groups, dtype=np.int64)
            if len(groups) != n_rows or (len(groups) and (groups.min() < 0 or groups.max() >= spec.entities)):
                raise PrivacyError("internal error: the entity of each row must be a number 0 .. entities - 1")
            self.groups = torch.as_tensor(groups, device=device)
            self.n_rows = n_rows = total_rows = spec.entities
            self.norms = EntityNorms()
        self.units = n_rows  # rows, or entities under entity-level DP
        self.distributed = world is not None and world.size > 1
        self.total_rows, self.ranks = total_rows or n_rows, world.size if self.distributed else 1
        if self.distributed and not spec.secure:  # ranks must not draw the same Poisson batches and noise
            spec = dataclasses.replace(spec, seed=spec.seed + 7919 * world.rank)
            self.spec = spec
        self.accountant = create_accountant(spec.accountant)
        self._sample_gen = self._generator(1)
        self._noise_gen = self._generator(3)
        self.steps_taken = 0

    def _generator(self, stream: int) -> torch.Generator:
        seed = secrets.randbits(63) if self.spec.secure else self.spec.seed * 1000 + stream
        return torch.Generator(device=self.device).manual_seed(seed)

    def wrap(self, module: nn.Module, optimizer: torch.optim.Optimizer, *,
             public_rows: int = 0) -> tuple[Any, Any]:
        """Opacus' ghost-clipping module and DP optimizer for ``module`` trained by ``optimizer``.

        ``public_rows``: rows per step that hold no private data (a GAN critic's fake rows);
        they count in the average the noisy gradient sum is divided by.

        Ghost clipping (Opacus' fast gradient clipping) gets each row's gradient norm from the
        layer inputs and output gradients, without materialising per-sample gradients: two
        backward passes instead of a (rows x parameters) tensor, several times faster here.
        """
        from opacus.grad_sample import GradSampleModuleFastGradientClipping
        from opacus.optimizers import DPOptimizerFastGradientClipping
        from opacus.validators import ModuleValidator

        errors = ModuleValidator.validate(module, strict=False)
        if errors:
            raise PrivacyError(f"this network cannot be trained with DP-SGD: {errors[0]}")
        optimizer_cls = DPOptimizerFastGradientClipping
        if self.distributed:  # rank 0's weights everywhere; noise once (rank 0) on the summed clipped gradients
            from opacus.distributed import DifferentiallyPrivateDistributedDataParallel
            from opacus.optimizers import DistributedDPOptimizerFastGradientClipping

            optimizer_cls = DistributedDPOptimizerFastGradientClipping

            DifferentiallyPrivateDistributedDataParallel(module)
        gsm = GradSampleModuleFastGradientClipping(module, max_grad_norm=self.spec.max_grad_norm,
                                                   use_ghost_clipping=True, loss_reduction="mean", strict=False)
        if self.groups is not None:  # each row's norm becomes its entity's: the norm of its rows' summed gradient
            other = sorted({type(m).__name__ for m in module.modules() if not isinstance(m, nn.Linear)
                            and any(p.requires_grad for p in m.parameters(recurse=False))})
            if other:
                raise PrivacyError(f"entity-level DP clips Linear layers only; this network also trains {other}")
            gsm.NORM_SAMPLERS = {nn.Linear: self.norms.linear}  # this module's own, not Opacus' shared table
        opt = optimizer_cls(
            optimizer, noise_multiplier=self.spec.noise_multiplier, max_grad_norm=self.spec.max_grad_norm,
            expected_batch_size=self.expected_batch + public_rows, loss_reduction="mean", generator=self._generator(2),
            secure_mode=self.spec.secure)
        opt.attach_step_hook(self._count)
        return gsm, opt

    @property
    def expected_batch(self) -> int:
        """What the noisy gradient sum is divided by: ``round(q n / W)`` over all ``n`` rows and ``W`` ranks.

        The same on every rank, so the ranks' averages add up to the planned noise on the whole
        expected batch (each rank's own ``round(q n_r)`` would scale its rows' gradients up against
        rank 0's noise wherever rounding differs: up to 1 / round(q n_0) less effective noise).
        """
        return max(1, round(self.spec.sample_rate * self.total_rows / self.ranks))

    def step(self, module: nn.Module, optimizer: Any, loss_per_row: torch.Tensor) -> None:
        """One DP-SGD step: clip each row's gradient (under entity-level DP each entity's: the sum of its rows'
        gradients, see ``EntityNorms``) to the norm, sum, add noise, update."""
        from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

        optimizer.zero_grad(set_to_none=True)
        if loss_per_row.shape[0] == 0:  # an empty Poisson batch still takes a (pure-noise) step
            for p in module.parameters():
                if p.requires_grad:
                    p.grad = torch.zeros_like(p)
        else:
            with warnings.catch_warnings():  # torch's note that the first layer's input needs no gradient
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                DPTensorFastGradientClipping(module, optimizer, loss_per_row, "mean").backward()
        optimizer.step()

    def _count(self, optimizer: Any) -> None:
        self.accountant.step(noise_multiplier=optimizer.noise_multiplier, sample_rate=self.spec.sample_rate)
        self.steps_taken += 1

    def measure(self, counts: torch.Tensor) -> torch.Tensor:
        """``counts`` (a table each row adds 1 to, once) plus Gaussian noise, counted as one step.

        The noise comes from Opacus' generator (secure mode: sums of Gaussians against
        floating-point attacks), with standard deviation ``noise_multiplier`` (sensitivity 1).
        """
        from opacus.optimizers.optimizer import _generate_noise

        noise = _generate_noise(std=self.spec.noise_multiplier, reference=counts, generator=self._noise_gen,
                                secure_mode=self.spec.secure)
        self.accountant.step(noise_multiplier=self.spec.noise_multiplier, sample_rate=1.0)
        self.steps_taken += 1
        return counts + noise

    def batch(self) -> torch.Tensor:
        """Row indices of one Poisson-sampled batch: each row in independently with the sample rate (under
        entity-level DP each entity, with all its rows)."""
        mask = torch.rand(self.n_rows, generator=self._sample_gen, device=self.device) < self.spec.sample_rate
        if self.groups is None:
            return mask.nonzero().squeeze(1)
        rows = mask[self.groups].nonzero().squeeze(1)
        self.norms.select(self.groups[rows])
        return rows

    def spent(self, delta: float) -> float:
        history = [Mechanism("DP-SGD", s, q, n) for s, q, n in self.accountant.history]
        return epsilon(history, delta, self.spec.accountant)


class EntityNorms:
    """Ghost clipping by entity: each row's gradient norm replaced by its entity's, the norm of the sum of the
    entity's rows' gradients (what entity-level DP-SGD clips), so that Opacus' second pass scales every row of an
    entity alike and the entity's summed contribution has norm at most the clipping norm.

    For a Linear layer the entity's weight gradient is ``sum_i b_i a_i^T`` over its rows (``a``: the layer's
    input, ``b``: the gradient at its output), whose squared norm is ``sum_ij (a_i . a_j)(b_i . b_j)`` over pairs
    of the entity's rows (its bias gradient: ``sum_ij b_i . b_j``): computed from the row pairs of each entity in
    the batch, without any per-row gradient.
    """

    #: row pairs handled at once (memory: pairs x layer width)
    CHUNK = 65_536

    def __init__(self) -> None:
        self.first = self.second = self.owner = self.row_entity = torch.zeros(0, dtype=torch.long)
        self.entities = 0

    def select(self, groups: torch.Tensor) -> None:
        """The batch's rows' entities (any ids): every pair of rows of one entity, and each row's entity."""
        local, inverse = torch.unique(groups, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse, minlength=len(local))
        starts = torch.cumsum(counts, 0) - counts
        entity = inverse[order]  # entity of each row in sorted order
        size = counts[entity]
        first = torch.repeat_interleave(torch.arange(len(order), device=groups.device), size)
        offset = torch.arange(len(first), device=groups.device) - torch.repeat_interleave(torch.cumsum(size, 0) - size,
                                                                                          size)
        second = starts[entity][first] + offset
        self.first, self.second = order[first], order[second]
        self.owner, self.row_entity, self.entities = inverse[self.first], inverse, len(local)

    def linear(self, layer: nn.Linear, activations: list[torch.Tensor], backprops: torch.Tensor
               ) -> dict[Any, torch.Tensor]:
        """Opacus' norm sampler for ``nn.Linear``, by entity (each row gets its entity's norm)."""
        a = activations[0].to(backprops.dtype)
        if backprops.dim() != 2:
            raise PrivacyError("entity-level DP clips 2-D Linear layers only")
        weight = torch.zeros(self.entities, dtype=backprops.dtype, device=backprops.device)
        bias = torch.zeros_like(weight)
        for at in range(0, len(self.first), self.CHUNK):
            i, j = self.first[at:at + self.CHUNK], self.second[at:at + self.CHUNK]
            owner = self.owner[at:at + self.CHUNK]
            bb = (backprops[i] * backprops[j]).sum(1)
            weight.index_add_(0, owner, (a[i] * a[j]).sum(1) * bb)
            bias.index_add_(0, owner, bb)
        out: dict[Any, torch.Tensor] = {}  # parameter -> its norm per row
        if layer.weight.requires_grad:
            out[layer.weight] = weight.clamp(min=0).sqrt()[self.row_entity]
        if layer.bias is not None and layer.bias.requires_grad:
            out[layer.bias] = bias.clamp(min=0).sqrt()[self.row_entity]
        return out
