"""Per-column reversible encoders (pure numpy): mode-specific normalization and one-hot."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from synthgen.schema import python_value

#: normalized values are divided by this many standard deviations of their mode (as in CTGAN)
STD_SCALE = 4.0
#: columns with values beyond this magnitude are fitted scaled down (their squares would overflow)
HUGE = 1e150
#: the point-mass rule (see :func:`point_masses`): a value's share of the non-null values and its rows, how many
#: times the mean count of its NEIGHBOURS nearest distinct values on each side it must reach, and how many per column
POINT_MASS_SHARE, POINT_MASS_ROWS, POINT_MASS_SPIKE, NEIGHBOURS, MAX_POINT_MASSES = 0.001, 10, 10.0, 3, 64
#: a column of at most this many distinct values, spread thinner than whole numbers, is discrete (see point_masses)
DISCRETE_VALUES = 100


def point_masses(values: np.ndarray) -> np.ndarray:
    """The values a numeric column piles up on (the zero of a zero-inflated column, a -1 sentinel, a top code).

    A value is a point mass when it holds at least 0.1% of the non-null values and 10 rows, and at least
    10 times the mean count of its 3 nearest distinct values on either side: a spike above its own
    neighbourhood, which a smooth mixture would smear into it (capital-gain: 0 holds 92% of the rows,
    and a mixture put half of them at 1, 2, 3, ... where no real value lies). A dense column (age,
    duration) has none; round amounts that many rows share (payments of 1000, 1500, 2000) are. The 64
    heaviest are kept, sorted; none when they would leave no other value.

    A discrete column, one of at most 100 distinct values that are not whole numbers or that fill less
    than half of the whole numbers in their range (a credit limit in multiples of 10,000), has no
    continuum for a mixture to model: every value held by 0.1% of the rows and 10 rows is a point mass,
    even if they leave no other value.
    """
    if len(values) == 0:
        return np.zeros(0)
    uniq, counts = np.unique(values, return_counts=True)
    floor = max(POINT_MASS_ROWS, POINT_MASS_SHARE * len(values))
    if _discrete(uniq):
        return uniq[counts >= floor].astype(float)
    window, pad = np.ones(2 * NEIGHBOURS + 1), np.zeros(NEIGHBOURS)
    around = np.convolve(np.concatenate([pad, counts, pad]), window, mode="valid") - counts
    neighbours = np.convolve(np.concatenate([pad, np.ones(len(counts)), pad]), window, mode="valid") - 1
    bar = np.maximum(floor, POINT_MASS_SPIKE * around / np.maximum(neighbours, 1))
    heavy = np.flatnonzero(counts >= bar)
    heavy = heavy[np.argsort(-counts[heavy], kind="stable")][:MAX_POINT_MASSES]
    if counts[heavy].sum() >= len(values):  # nothing would be left for the continuous part
        return np.zeros(0)
    return np.sort(uniq[heavy]).astype(float)


def _discrete(uniq: np.ndarray) -> bool:
    """Whether sorted distinct values are few and sparse: at most DISCRETE_VALUES of them, and either not
    all whole numbers or filling under half of the whole numbers between the smallest and the largest."""
    if not 2 <= len(uniq) <= DISCRETE_VALUES:
        return False
    whole = bool(np.all(uniq == np.round(uniq)))
    return not whole or len(uniq) < 0.5 * (float(uniq[-1]) - float(uniq[0]) + 1)


class ModeNormalizer:
    """Mode-specific normalization (Xu et al. 2019): a Bayesian Gaussian mixture per column, plus point masses.

    Each value becomes a one-hot mode indicator plus its offset from that mode's mean, scaled to
    [-1, 1]. Point masses (:func:`point_masses`) are modes of their own, after the mixture's: a value
    there comes back exactly, and the mixture models the other values only, decoded within their own
    range, so nothing lands in a gap between a point mass and the rest (capital-gain's 1-113). Fitting
    uses at most ``sample_size`` values so it stays fast on large tables.
    """

    def __init__(self, *, max_modes: int = 10, weight_threshold: float = 0.005,
                 sample_size: int = 5000, seed: int = 0):
        self.max_modes = max_modes
        self.weight_threshold = weight_threshold
        self.sample_size = sample_size
        self.seed = seed
        self.means = np.zeros(0)
        self.stds = np.zeros(0)
        self.weights = np.zeros(0)
        #: exact values modelled as modes of their own, and the range of the other values
        self.masses = np.zeros(0)
        self.rest = (-np.inf, np.inf)

    @property
    def n_modes(self) -> int:
        return len(self.means) + len(self.masses)

    def fit(self, values: np.ndarray) -> ModeNormalizer:
        """Find the point masses of non-null float ``values``, fit the mixture on the other values, then add
        modes for uncovered tails."""
        self.masses = point_masses(values)
        if len(self.masses):
            values = values[~np.isin(values, self.masses)]
            if not len(values):  # a discrete column whose values are all point masses: no mixture
                self.means, self.stds, self.weights = np.zeros(0), np.zeros(0), np.zeros(0)
                self.rest = (float(self.masses[0]), float(self.masses[-1]))
                return self
            self.rest = (float(values.min()), float(values.max()))
        rng = np.random.default_rng(self.seed)
        sample = values if len(values) <= self.sample_size else rng.choice(values, self.sample_size, replace=False)
        # magnitudes near float64's limit (1e300) overflow when squared: fit those in a scaled space
        # (a power of two, so the scaling itself is exact); ordinary columns are left untouched
        peak = float(np.max(np.abs(values))) if len(values) else 0.0
        scale = float(np.ldexp(1.0, np.frexp(peak)[1] - 1)) if peak > HUGE else 1.0  # <= peak, finite
        self._fit_mixture(sample / scale)
        self._cover_tails(values / scale)
        self.means, self.stds = self.means * scale, self.stds * scale
        return self

    def _fit_mixture(self, values: np.ndarray) -> None:
        distinct = np.unique(values)
        scale = float(np.std(values)) or 1.0
        if len(distinct) <= 1:
            self.means, self.stds, self.weights = distinct[:1].astype(float), np.array([scale]), np.ones(1)
            return
        gmm = BayesianGaussianMixture(
            n_components=min(self.max_modes, len(distinct)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001, max_iter=100, n_init=1, random_state=self.seed,
            reg_covar=(1e-3 * scale) ** 2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(values.reshape(-1, 1))
        keep = gmm.weights_ > self.weight_threshold
        self.means = gmm.means_.ravel()[keep]
        self.stds = np.sqrt(gmm.covariances_.ravel()[keep])
        self.weights = gmm.weights_[keep] / gmm.weights_[keep].sum()

    def _cover_tails(self, values: np.ndarray) -> None:
        """Add a mode below and above for values no mode reaches within STD_SCALE stds.

        A rare spike (e.g. a top-coded 99999) would otherwise be clipped to the nearest mode's edge.
        """
        floor = 1e-3 * (float(np.std(values)) or 1.0)
        dist = np.abs(values[:, None] - self.means[None, :]) / (STD_SCALE * self.stds[None, :])
        uncovered = values[dist.min(axis=1) > 0.99]
        center = self.means[np.argmax(self.weights)]
        for part in (uncovered[uncovered < center], uncovered[uncovered >= center]):
            if len(part):
                self.means = np.append(self.means, part.mean())
                self.stds = np.append(self.stds, max(float(part.std()), floor))
                self.weights = np.append(self.weights, len(part) / len(values))
        self.weights = self.weights / self.weights.sum()

    def transform(self, values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return (normalized value in [-0.99, 0.99], mode index), sampling the mixture's mode by posterior;
        a point mass is its own mode, with value 0."""
        if not len(self.masses):
            return self._mixture_transform(values, rng)
        mass = np.searchsorted(self.masses, values)
        hit = (mass < len(self.masses)) & (self.masses[np.minimum(mass, len(self.masses) - 1)] == values)
        if not len(self.means):  # point masses only: a value none of them is (seen after fitting) takes the nearest
            near = np.abs(values[:, None] - self.masses[None, :]).argmin(axis=1) if len(values) else mass
            return np.zeros(len(values)), near.astype(np.int64)
        alpha, mode = np.zeros(len(values)), np.empty(len(values), dtype=np.int64)
        alpha[~hit], mode[~hit] = self._mixture_transform(values[~hit], rng)
        mode[hit] = len(self.means) + mass[hit]
        return alpha, mode

    def _mixture_transform(self, values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        z = (values[:, None] - self.means[None, :]) / self.stds[None, :]
        logp = np.log(self.weights)[None, :] - np.log(self.stds)[None, :] - 0.5 * z**2
        probs = np.exp(logp - logp.max(axis=1, keepdims=True))
        cum = np.cumsum(probs, axis=1)
        u = rng.random(len(values))[:, None] * cum[:, -1:]
        mode = np.minimum((cum < u).sum(axis=1), len(self.means) - 1)
        alpha = (values - self.means[mode]) / (STD_SCALE * self.stds[mode])
        return np.clip(alpha, -0.99, 0.99), mode

    def inverse(self, alpha: np.ndarray, mode: np.ndarray) -> np.ndarray:
        """Map (normalized value, mode index) back to the original scale: a point mass exactly, a mixture
        mode within the range of the values that are no point mass."""
        if not len(self.masses):
            return np.clip(alpha, -1, 1) * STD_SCALE * self.stds[mode] + self.means[mode]
        k = len(self.means)
        if not k:
            return self.masses[mode]
        mass = mode >= k
        m = np.where(mass, 0, mode)
        values = np.clip(np.clip(alpha, -1, 1) * STD_SCALE * self.stds[m] + self.means[m], *self.rest)
        return np.where(mass, self.masses[np.where(mass, mode - k, 0)], values)

    def to_dict(self) -> dict[str, Any]:
        out = {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist()}
        if len(self.masses):  # files without them (written before point masses) load as before
            out.update(masses=self.masses.tolist(), rest=list(self.rest))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModeNormalizer:
        enc = cls()
        enc.means, enc.stds, enc.weights = (np.asarray(data[k], dtype=float) for k in ("means", "stds", "weights"))
        enc.masses = np.asarray(data.get("masses", []), dtype=float)
        low, high = (float(v) for v in data.get("rest", (-np.inf, np.inf)))
        enc.rest = (low, high)
        return enc


class BinNormalizer:
    """Piecewise-uniform encoding over fixed intervals: which interval (the mode) and where in it.

    The DP counterpart of :class:`ModeNormalizer`: its intervals come from public bounds or noisy
    histograms, not from a mixture fitted to private values. An interval with ``low == high``
    holds one exact value (a spike such as zero), which then comes back exactly.
    """

    def __init__(self, lows: list[float], highs: list[float], weights: list[float]):
        self.lows, self.highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.means = (self.lows + self.highs) / 2
        point = self.lows == self.highs
        self._points, self._point_modes = self.lows[point], np.flatnonzero(point)
        self._span_lows, self._span_modes = self.lows[~point], np.flatnonzero(~point)

    @property
    def n_modes(self) -> int:
        return len(self.lows)

    def transform(self, values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(position in the interval scaled to [-0.99, 0.99], interval index) of each value."""
        mode = np.zeros(len(values), dtype=np.int64)
        if len(self._span_modes):
            pick = np.clip(np.searchsorted(self._span_lows, values, side="right") - 1, 0, len(self._span_modes) - 1)
            mode = self._span_modes[pick]
        for point, m in zip(self._points, self._point_modes, strict=True):
            mode[values == point] = m
        width = self.highs[mode] - self.lows[mode]
        alpha = np.where(width > 0, 2 * (values - self.lows[mode]) / np.where(width > 0, width, 1) - 1, 0.0)
        return np.clip(alpha, -0.99, 0.99), mode

    def inverse(self, alpha: np.ndarray, mode: np.ndarray) -> np.ndarray:
        return self.lows[mode] + (np.clip(alpha, -1, 1) + 1) / 2 * (self.highs[mode] - self.lows[mode])

    def to_dict(self) -> dict[str, Any]:
        return {"lows": self.lows.tolist(), "highs": self.highs.tolist(), "weights": self.weights.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinNormalizer:
        return cls(data["lows"], data["highs"], data["weights"])


#: encoders of numeric columns: a (value, mode) pair per row
NUMERIC_ENCODERS = (ModeNormalizer, BinNormalizer)


class OneHot:
    """One-hot encoding over a fixed, ordered list of categories (None stands for null)."""

    def __init__(self, categories: list[Any] | None = None):
        self.categories: list[Any] = list(categories or [])

    def fit(self, values: np.ndarray) -> OneHot:
        """Learn categories (most frequent first; null, if present, last)."""
        codes, uniques = _factorize(values)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        order = np.argsort(-counts, kind="stable")
        self.categories = [python_value(uniques[i]) for i in order]
        if (codes < 0).any():
            self.categories.append(None)
        return self

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Index of each value in ``categories`` (-1 for unseen values)."""
        codes = _codes(values, [c for c in self.categories if c is not None])
        if None in self.categories:
            codes[pd.isna(values)] = len(self.categories) - 1
        return codes


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _codes(values: np.ndarray, known: list[Any]) -> np.ndarray:
    if not known:
        return np.full(len(values), -1, dtype=np.int64)
    try:
        return pd.Categorical(values, categories=known).codes.astype(np.int64)
    except (TypeError, ValueError):  # categories of mixed types
        lookup = {c: i for i, c in enumerate(known)}
        return np.fromiter((lookup.get(python_value(v), -1) for v in values), dtype=np.int64, count=len(values))
