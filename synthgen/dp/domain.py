"""What the transformer may know about each column under DP: public declarations or noisy statistics.

Without DP the transformer reads bounds, category sets and Gaussian-mixture modes straight off
the private table. Under DP each of those comes either from metadata the user marked public,
or from noisy counts measured here (Gaussian noise, sensitivity 1 per histogram: a row falls in
one cell of each), so the accountant can charge for them:

* numeric bounds: a histogram over fixed signed powers-of-two buckets (smartnoise's approach);
  the outermost buckets whose noisy count clears a threshold give the bounds;
* numeric modes: a histogram over a fixed grid within the bounds (one cell per integer when the
  range is small, a separate cell for exact zero), merged into intervals of about equal noisy
  mass; values are then encoded as (interval, position in it), so zero-inflated columns such as
  capital-gain keep their exact zeros;
* category sets: noisy counts of the values present, released only above a threshold set so
  that a value held by one row is released with probability at most ``delta_threshold``;
  suppressed values come back as null;
* null rates and category frequencies: the null cell and the category counts of those histograms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from synthgen.errors import DataWarning, InvalidDataError, PrivacyError, Problem
from synthgen.schema import MAX_CATEGORIES, ColumnSpec, TableSchema, python_value
from synthgen.transform.transformer import ColumnDomain, to_numbers

#: signed powers-of-two buckets for bounds: |v| in [2^e, 2^(e+1)) for e in this range
EXPONENTS = range(-20, 64)
#: cells of the fine histogram inside the bounds
GRID = 128
#: integer columns with a range this small are one-hot encoded, one slot per value
DISCRETE_RANGE = 32
#: a noisy count must clear this many noise standard deviations to mark a bucket, null or cell as present
PRESENT_SIGMAS = 3.0
#: chance that an empty bucket or grid cell of a column passes as non-empty (and widens its bounds)
SPURIOUS = 0.01
#: the same chance for a magnitude bucket with no other non-empty bucket near it (see _supported)
SPURIOUS_LONE = 1e-6
#: buckets this close (in powers of two) support each other
NEAR_BUCKETS = 2


@dataclass(frozen=True)
class DomainPlan:
    """How many noisy histograms the private-domain step takes, and which columns need them."""

    histograms: int
    discovered: int  # categorical columns whose category set is found with a noisy threshold
    needs: dict[str, list[str]]  # column -> quantities that are measured with noise


def plan_domain(schema: TableSchema, *, measure: bool, frequencies: bool) -> DomainPlan:
    """Count the histograms needed; ``measure``: DP statistics are allowed at all.

    ``frequencies``: the model needs category frequencies (ctgan's conditional sampling), so
    every one-hot column and null flag is measured even when its domain is public.
    """
    histograms, discovered, needs = 0, 0, {}
    for spec in schema.columns:
        need = _needs(spec, measure=measure, frequencies=frequencies)
        if need:
            needs[spec.name] = need
        if "categories" in need:
            discovered += 1
        histograms += ("bounds" in need) + bool(set(need) & {"bins", "categories", "nulls", "frequencies"})
    return DomainPlan(histograms, discovered, needs)


def _needs(spec: ColumnSpec, *, measure: bool, frequencies: bool) -> list[str]:
    public = spec.public
    if spec.kind in ("categorical", "boolean"):
        need = []
        if spec.kind == "categorical" and not (public and spec.categories):
            need.append("categories")
        if not (public and spec.nullable is not None):
            need.append("nulls")
        if frequencies:
            need.append("frequencies")
        return need
    need = []
    if not (public and spec.min_value is not None and spec.max_value is not None):
        need.append("bounds")
    if measure:
        need.append("bins")  # with public bounds and no budget: fixed equal-width intervals
    if not (public and spec.nullable is not None):
        need.append("nulls")
    return need


def missing_public(schema: TableSchema) -> list[str]:
    """Columns whose bounds, categories or nullability are not declared public."""
    return [name for name, need in plan_domain(schema, measure=False, frequencies=False).needs.items() if need]


def threshold(sigma: float, delta_threshold: float, columns: int) -> float:
    """Noisy-count threshold releasing a one-row category with probability <= delta_threshold / columns."""
    if columns == 0:
        return math.inf
    return 1.0 + sigma * float(norm.isf(delta_threshold / columns))


def private_domain(df: pd.DataFrame, schema: TableSchema, *, sigma: float, category_threshold: float,
                   frequencies: bool, rng: np.random.Generator, max_modes: int = 10,
                   secure: bool = True) -> dict[str, ColumnDomain]:
    """Measure each column's domain with Gaussian noise of std ``sigma`` per histogram cell.

    Values outside what the public metadata declares (numbers beyond its bounds, unknown categories,
    nulls in a column declared without) are clipped or mapped, with a warning that counts nothing:
    refusing them would let one row decide whether a model exists.

    Raises:
        InvalidDataError: a column whose noisy statistics are all below the noise (too little budget).
        PrivacyError: more histograms measured than the plan charged (a bug; never silently).
    """
    measure = sigma > 0
    problems: list[Problem] = []
    out: dict[str, ColumnDomain] = {}
    noisy = Measure(sigma, rng, secure)
    for spec in schema.columns:
        need = _needs(spec, measure=measure, frequencies=frequencies)
        if spec.kind in ("categorical", "boolean"):
            out[spec.name] = _onehot_domain(df[spec.name], spec, need, noisy, category_threshold, problems)
        else:
            out[spec.name] = _numeric_domain(df[spec.name], spec, need, noisy, max_modes, problems)
    if problems:
        raise InvalidDataError(problems)
    charged = plan_domain(schema, measure=measure, frequencies=frequencies).histograms if measure else 0
    if noisy.calls != charged:  # the accountant must have paid for every noisy histogram released
        raise PrivacyError(f"internal error: {noisy.calls} noisy histograms measured, {charged} accounted for")
    return out


@dataclass
class Measure:
    """Noisy counts: adds N(0, sigma^2) to each cell of a count vector (one histogram per call).

    The noise is drawn as Opacus draws DP-SGD's (in secure mode, a sum of Gaussians against
    floating-point attacks) from a torch generator seeded by ``rng``.
    """

    sigma: float
    rng: np.random.Generator
    secure: bool = True
    calls: int = 0

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        import torch
        from opacus.optimizers.optimizer import _generate_noise

        self.calls += 1
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        reference = torch.zeros(len(counts), dtype=torch.float64)
        noise = _generate_noise(std=self.sigma, reference=reference, generator=gen, secure_mode=self.secure)
        return counts + noise.numpy()

    @property
    def present(self) -> float:
        return PRESENT_SIGMAS * self.sigma


# ----------------------------------------------------------------------------- one-hot columns
def _onehot_domain(series: pd.Series, spec: ColumnSpec, need: list[str], noisy: Measure,
                   category_threshold: float, problems: list[Problem]) -> ColumnDomain:
    dom = ColumnDomain(spec.name)
    null = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    if "categories" in need:
        # one histogram: every value present, plus null as a fixed key (always released); its
        # noisy counts also give the null flag and the frequencies, so the column is charged once
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        counts = noisy(np.bincount(np.where(codes >= 0, codes, len(uniques)), minlength=len(uniques) + 1)
                       .astype(float))
        keep = np.flatnonzero(counts[:-1] > category_threshold)
        if len(keep) == 0:
            problems.append(Problem(spec.name, "no category clears the DP threshold "
                                    f"({category_threshold:.0f} rows)", "declare its categories in public "
                                    "metadata, raise epsilon or the stats share, or drop the column"))
            return dom
        keep = keep[np.argsort(-counts[keep], kind="stable")][:MAX_CATEGORIES]  # the rest: null, as suppressed
        dom.categories = [python_value(uniques[i]) for i in keep]
        dom.counts = np.maximum(np.append(counts[keep], counts[-1]), 0).tolist()
        dom.sources.update({"categories": "dp", "nullable": "fixed", "frequencies": "dp"})
        dom.nullable = True  # the null slot also takes the suppressed categories
        return dom
    else:
        dom.categories = list(spec.categories) if spec.categories else [False, True]
        dom.sources["categories"] = "public" if spec.categories else "fixed"
        if _has_unknown(values[~null], dom.categories):
            _outside(spec.name, "holds values missing from the public categories: they are encoded as null, or "
                     "as no category where the metadata says it has no nulls",
                     "add them to the metadata's 'categories' or map them before training")
    if "nulls" not in need:
        _public_nullable(dom, spec, null)
    if "nulls" in need or "frequencies" in need:
        _measure_slots(dom, _slot_codes(values, null, dom.categories), need, noisy)
    return dom


def _measure_slots(dom: ColumnDomain, slots: np.ndarray, need: list[str], noisy: Measure) -> None:
    """One noisy histogram over a one-hot column's slots (its last slot: null): frequencies, null flag."""
    assert dom.categories is not None, "a one-hot column's slots are its categories"
    counts = noisy(np.bincount(slots, minlength=len(dom.categories) + 1).astype(float))
    if "nulls" in need:
        dom.nullable = bool(counts[-1] > noisy.present)
        dom.sources["nullable"] = "dp"
    dom.counts = np.maximum(counts if dom.nullable else counts[:-1], 0).tolist()
    dom.sources["frequencies"] = "dp"


def private_schema(schema: TableSchema, domain: dict[str, ColumnDomain]) -> TableSchema:
    """The schema as a DP model file keeps it: public declarations only, and output dtypes from
    each column's kind and its DP null flag (an input dtype can give away one row's null: a CSV
    integer column with a single null reads as float64)."""
    columns = []
    for spec in schema.columns:
        dom, public = domain[spec.name], spec.public
        columns.append(ColumnSpec(
            spec.name, spec.kind, _private_dtype(spec, dom), spec.datetime_format,
            spec.min_value if public else None, spec.max_value if public else None,
            spec.categories if public else None, spec.nullable if public else None, public,
            spec.point_masses if public else None))
    return TableSchema(columns)


def _private_dtype(spec: ColumnSpec, dom: ColumnDomain) -> str:
    values = dom.categories or []
    if spec.kind == "integer" or (spec.kind == "categorical" and values
                                  and all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
        return "Int64" if dom.nullable else "int64"
    if spec.kind == "continuous":
        return "float64"
    if spec.kind == "boolean":
        return "boolean" if dom.nullable else "bool"
    if spec.kind == "categorical" and pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(spec.dtype)):
        return "float64"
    return spec.dtype  # strings, categories and datetimes keep their type whether nulls are present or not


def _public_nullable(dom: ColumnDomain, spec: ColumnSpec, null: np.ndarray) -> None:
    """Nullability as the public metadata declares it; nulls in a column declared not nullable are modelled
    as a fixed value (never refused: one row would decide it)."""
    dom.nullable = bool(spec.nullable)
    dom.sources["nullable"] = "public"
    if null.any() and not dom.nullable:
        _outside(spec.name, "has nulls although the public metadata says it has none: they are encoded as no "
                 "category, or at its main interval", 'set "nullable": true in the metadata')


def _outside(column: str, what: str, fix: str) -> None:
    """A value outside the public domain under DP: handled without a refusal, and said without a count.

    Refusing would make whether a model exists depend on one row without noise.
    """
    warnings.warn(DataWarning(f"column {column!r} {what} (fix: {fix})"), stacklevel=5)


def _slot_codes(values: np.ndarray, null: np.ndarray, categories: list[Any]) -> np.ndarray:
    """Slot of each value: its category's index, or len(categories) for null and unknown values."""
    lookup = {c: i for i, c in enumerate(categories)}
    codes = np.fromiter((lookup.get(python_value(v), -1) for v in values), dtype=np.int64, count=len(values))
    codes[(codes < 0) | null] = len(categories)
    return codes


def _has_unknown(values: np.ndarray, categories: list[Any]) -> bool:
    known = set(categories)
    return any(python_value(v) not in known for v in pd.unique(values))


# ----------------------------------------------------------------------------- numeric columns
def _numeric_domain(series: pd.Series, spec: ColumnSpec, need: list[str], noisy: Measure, max_modes: int,
                    problems: list[Problem]) -> ColumnDomain:
    dom = ColumnDomain(spec.name)
    numbers = to_numbers(series, spec)
    null = np.isnan(numbers)
    present = numbers[~null]
    integer = spec.kind in ("integer", "datetime")
    if "bounds" in need:
        bounds = _noisy_bounds(present, noisy)
        if bounds is None:
            problems.append(Problem(spec.name, "its noisy magnitude histogram is all below the noise",
                                    "declare min_value/max_value in public metadata, or raise epsilon or "
                                    "the stats share"))
            return dom
        dom.lower, dom.upper = bounds
        dom.sources["bounds"] = "dp"
    else:
        assert spec.min_value is not None and spec.max_value is not None, "bounds not measured are declared"
        dom.lower, dom.upper = float(spec.min_value), float(spec.max_value)
        dom.sources["bounds"] = "public"
        if ((present < dom.lower) | (present > dom.upper)).any():
            _outside(spec.name, f"has values outside the public bounds [{dom.lower:g}, {dom.upper:g}]: they are "
                     "clipped to them", "widen min_value/max_value")
    if integer:  # whole numbers, kept as floats: a noisy bound may be 2^64, past int64
        dom.lower, dom.upper = float(math.floor(dom.lower)), float(math.ceil(dom.upper))
    clipped = np.clip(present, dom.lower, dom.upper)
    if spec.kind == "integer" and dom.upper - dom.lower + 1 <= DISCRETE_RANGE:
        if "nulls" not in need:
            _public_nullable(dom, spec, null)
        return _discrete_domain(dom, clipped, null, need, noisy)
    edges, points = _grid(dom.lower, dom.upper, integer=integer, candidates=_mass_candidates(spec))
    if "bins" in need:
        cells = np.append(_cell_counts(clipped, edges, points), null.sum()).astype(float)
        counts = noisy(cells)
        if "nulls" in need:
            dom.nullable = bool(counts[-1] > noisy.present)
            dom.sources["nullable"] = "dp"
        dom.counts = [float(max(counts[:-1].clip(0).sum(), 0)), float(max(counts[-1], 0))]
        mass = counts[:-1].clip(0)
        if "bounds" in need:  # noisy power-of-two bounds are loose; public bounds are kept as declared
            edges, points, mass = _trim(edges, points, mass, counts[:-1], noisy.sigma)
        dom.lower, dom.upper = float(np.append(points, edges[0]).min()), float(np.append(points, edges[-1]).max())
        if integer:
            dom.lower, dom.upper = float(math.ceil(dom.lower)), float(math.floor(dom.upper))
        dom.sources["bins"] = "dp"
    else:  # public bounds and no budget: equal-width intervals, nothing learned from the data
        edges, points = np.linspace(dom.lower, dom.upper, max_modes + 1), np.zeros(0)
        mass = np.ones(max_modes)
        dom.sources["bins"] = "fixed"
    if "nulls" not in need:
        _public_nullable(dom, spec, null)
    dom.lows, dom.highs, dom.weights = _intervals(edges, points, mass, max_modes)
    return dom


def _discrete_domain(dom: ColumnDomain, values: np.ndarray, null: np.ndarray, need: list[str],
                     noisy: Measure) -> ColumnDomain:
    """A small-range integer column: one slot per value in the bounds (a fixed set given them)."""
    assert dom.lower is not None and dom.upper is not None, "its bounds are known before its slots"
    dom.categories = list(range(int(dom.lower), int(dom.upper) + 1))
    dom.sources["categories"] = "fixed"
    if "nulls" in need or "bins" in need:
        slots = np.append(np.rint(values).astype(np.int64) - int(dom.lower), np.full(null.sum(), len(dom.categories)))
        _measure_slots(dom, slots, need, noisy)
    return dom


def _bucket(values: np.ndarray) -> np.ndarray:
    """Signed power-of-two bucket of each value: 0 for |v| < 2^-20, +-(1 + e - min e) otherwise."""
    lo = EXPONENTS.start
    mag = np.abs(values)
    exp = np.clip(np.floor(np.log2(np.where(mag > 0, mag, 1.0))), lo, EXPONENTS.stop - 1)
    idx = (exp - lo + 1).astype(np.int64)
    idx[mag < 2.0**lo] = 0
    return np.sign(values).astype(np.int64) * idx


def _noisy_bounds(present: np.ndarray, noisy: Measure) -> tuple[float, float] | None:
    width = len(EXPONENTS)
    counts = noisy(np.bincount(_bucket(present) + width, minlength=2 * width + 1).astype(float))
    kept = _supported(counts, noisy.sigma) - width
    if len(kept) == 0:
        return None
    return _bucket_edge(int(kept.min()), low=True), _bucket_edge(int(kept.max()), low=False)


def _supported(counts: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude buckets that count as non-empty: over the bar of :func:`_clear`, and either far over
    it (a bar that noise passes with chance SPURIOUS_LONE) or within NEAR_BUCKETS of another bucket over
    it. About 1 column in 100 gets one empty bucket over the first bar; alone, far from the data, it
    would stretch the bounds to as much as 2^64 and leave one grid cell for all the real values.
    The price: a weak real bucket far from the rest is dropped too (its values are clipped). When no
    bucket passes, the largest one over the first bar stands (a column whose values share one
    bucket). Post-processing of the same noisy counts: no privacy cost."""
    over = np.flatnonzero(counts > _clear(sigma, len(counts)))
    near = np.zeros(len(over), dtype=bool)
    close = np.diff(over) <= NEAR_BUCKETS
    near[:-1] |= close
    near[1:] |= close
    keep = near | (counts[over] > sigma * float(norm.isf(SPURIOUS_LONE / len(counts))))
    if len(over) and not keep.any():
        return over[[int(np.argmax(counts[over]))]]
    return over[keep]


def _bucket_edge(bucket: int, *, low: bool) -> float:
    if bucket == 0:
        return 0.0
    exp = abs(bucket) - 1 + EXPONENTS.start
    near, far = 2.0**exp, 2.0 ** (exp + 1)
    if bucket > 0:
        return near if low else far
    return -far if low else -near


#: values that often carry a point mass (the zero of a zero-inflated column, the -1 of "never"): each gets an
#: exact-value cell of its own in the noisy grid histogram, chosen without reading the data
MASS_CANDIDATES = (-1.0, 0.0)


def _mass_candidates(spec: ColumnSpec) -> list[float]:
    """Exact-value cells of a numeric column: MASS_CANDIDATES and, from public metadata, its declared
    ``point_masses`` (sentinels, top codes)."""
    declared = spec.point_masses if spec.public and spec.point_masses else []
    return sorted({*MASS_CANDIDATES, *(float(v) for v in declared)})


def _grid(lower: float, upper: float, *, integer: bool,
          candidates: Sequence[float] = MASS_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges over [lower, upper] and exact-value cells (the candidate point masses inside)."""
    if integer and upper - lower + 1 <= GRID:  # a cell per whole number: each candidate has its own already
        return np.arange(lower - 0.5, upper + 1.0), np.zeros(0)
    edges = np.linspace(lower, upper, GRID + 1)
    points = np.asarray([c for c in candidates if lower <= c <= upper], dtype=float)
    return edges, points


def _cell_counts(values: np.ndarray, edges: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Counts per grid cell, then per exact-value cell (a value in a point cell leaves the grid)."""
    exact = np.isin(values, points)
    cells = np.clip(np.searchsorted(edges, values[~exact], side="right") - 1, 0, len(edges) - 2)
    grid = np.bincount(cells, minlength=len(edges) - 1)
    spikes = np.array([(values == p).sum() for p in points], dtype=np.int64)
    return np.concatenate([grid, spikes])


def _trim(edges: np.ndarray, points: np.ndarray, mass: np.ndarray, noisy: np.ndarray,
          sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop outer grid cells whose noisy counts do not clear the noise (see :func:`_clear`).

    Tightens loose power-of-two bounds (age [16, 128) -> about [17, 90] at small noise); at large
    noise a sparse tail is cut and its values clipped to the new bound: the price of not knowing it.
    """
    grid = noisy[:len(edges) - 1]
    big = np.flatnonzero(grid > _clear(sigma, len(grid)))
    if len(big) == 0:
        return edges, points, mass
    first, last = int(big[0]), int(big[-1])
    edges = edges[first:last + 2]
    # an exact-value cell (zero) stays if it lies inside or clears the noise on its own
    keep = ((points >= edges[0]) & (points <= edges[-1])) | (noisy[len(grid):] > _clear(sigma, len(grid)))
    return edges, points[keep], np.concatenate([mass[first:last + 1], mass[len(grid):][keep]])


def _clear(sigma: float, cells: int) -> float:
    """Count a noisy cell must exceed to count as non-empty: an empty one among ``cells`` passes
    with probability at most SPURIOUS (a Bonferroni bound), so the outermost kept cell is real."""
    return sigma * float(norm.isf(SPURIOUS / cells))


def _intervals(edges: np.ndarray, points: np.ndarray, mass: np.ndarray,
               max_modes: int) -> tuple[list[float], list[float], list[float]]:
    """Merge grid cells into at most ``max_modes`` intervals of about equal mass; heavy points stand alone.

    An interval ``[low, high]`` with ``low == high`` holds one exact value (e.g. zero).
    """
    grid, spikes = mass[:len(edges) - 1].copy(), mass[len(edges) - 1:]
    total = float(mass.sum()) or 1.0
    lows, highs, weights = [], [], []
    for p, m in zip(points, spikes, strict=True):
        if m >= total / (2 * max_modes):
            lows.append(float(p))
            highs.append(float(p))
            weights.append(float(m))
        else:  # too light to stand alone: its mass joins the cell around it
            grid[min(max(np.searchsorted(edges, p, side="right") - 1, 0), len(grid) - 1)] += m
    target = grid.sum() / max(max_modes - len(lows), 1)
    start, acc = 0, 0.0
    for i, m in enumerate(grid):
        acc += m
        if (acc >= target and len(lows) < max_modes - 1) or i == len(grid) - 1:
            lows.append(float(edges[start]))
            highs.append(float(edges[i + 1]))
            weights.append(acc)
            start, acc = i + 1, 0.0
    w = np.maximum(np.asarray(weights), 0) + 1e-9
    order = np.argsort(lows, kind="stable")
    return [lows[i] for i in order], [highs[i] for i in order], (w[order] / w.sum()).tolist()
