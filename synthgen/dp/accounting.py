"""Privacy accounting: every noisy release is a Gaussian mechanism composed by one Opacus accountant.

Preprocessing statistics (noisy histograms, q = 1) and DP-SGD steps (Poisson-subsampled
Gaussian, q < 1) go into the same history, so the epsilon in a ledger is the accountant's
figure for everything that touched the data, never a sum of guesses.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

from synthgen.errors import PrivacyError

ACCOUNTANTS = ("rdp", "prv")
#: Renyi orders: Opacus' defaults (RDPAccountant.DEFAULT_ALPHAS) plus the large ones small epsilons need
RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 192, 256, 512, 1024]
#: the most DP-SGD noise calibration will use: beyond it a model learns nothing
MAX_NOISE_MULTIPLIER = 100.0
#: the most noise (in rows) on a count: beyond it no histogram cell of a realistic table survives
MAX_COUNT_NOISE = 10_000.0


@dataclass(frozen=True)
class Mechanism:
    """One Gaussian mechanism applied ``steps`` times with Poisson sampling rate ``sample_rate``.

    ``noise_multiplier`` is the noise standard deviation divided by the L2 sensitivity
    (the clipping norm for DP-SGD, 1 for a count histogram).
    """

    name: str
    noise_multiplier: float
    sample_rate: float
    steps: int

    def to_dict(self) -> dict:
        return asdict(self)


def epsilon(mechanisms: list[Mechanism], delta: float, accountant: str) -> float:
    """Epsilon of the composition of ``mechanisms`` at ``delta`` (0 for an empty list)."""
    from opacus.accountants import create_accountant  # imported here: opacus takes ~2 s to import

    history = [(m.noise_multiplier, m.sample_rate, m.steps) for m in mechanisms if m.steps > 0]
    if not history:
        return 0.0
    acc = create_accountant(accountant)
    acc.history = history
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PRV's log(0) warnings and RDP's order-range hint
        if accountant == "rdp":
            return float(acc.get_epsilon(delta, alphas=RDP_ORDERS))
        return float(acc.get_epsilon(delta))


def calibrate(target_epsilon: float, delta: float, *, name: str, sample_rate: float, steps: int,
              accountant: str, before: tuple[Mechanism, ...] = (),
              max_noise: float = MAX_NOISE_MULTIPLIER) -> Mechanism:
    """The least-noise mechanism of ``steps`` steps that keeps ``before`` + it within ``target_epsilon``.

    Raises:
        PrivacyError: the budget cannot be met even with noise multiplier ``max_noise``.
    """
    def spent(sigma: float) -> float:
        return epsilon([*before, Mechanism(name, sigma, sample_rate, steps)], delta, accountant)

    hi = max_noise
    if spent(hi) > target_epsilon:
        already = epsilon(list(before), delta, accountant)
        raise PrivacyError(
            f"epsilon {target_epsilon:g} is too small for {steps} step(s) of {name}: even noise "
            f"multiplier {hi:g} spends more (the rest of the pipeline already spends {already:.3g}) "
            f"(fix: raise epsilon, or train fewer epochs / with a smaller batch)")
    lo = 0.05 if max_noise <= MAX_NOISE_MULTIPLIER else 0.5
    if accountant == "prv":  # PRV is slow (seconds a call): start from RDP's answer, which is looser
        hi = calibrate(target_epsilon, delta, name=name, sample_rate=sample_rate, steps=steps,
                       accountant="rdp", before=before, max_noise=max_noise).noise_multiplier
        lo = hi / 2
    if spent(lo) <= target_epsilon:
        return Mechanism(name, lo, sample_rate, steps)
    while hi - lo > 0.002 * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if spent(mid) <= target_epsilon else (mid, hi)
    return Mechanism(name, hi, sample_rate, steps)


def default_delta(n_rows: int) -> float:
    """The largest "round" delta at most 1 / (10 n): 1, 2 or 5 times a power of ten."""
    bound = 1.0 / (10 * n_rows)
    exp = math.floor(math.log10(bound))
    for lead in (5, 2, 1):
        if lead * 10.0**exp <= bound:
            return lead * 10.0**exp
    return 10.0**exp
