"""Fidelity: sdmetrics' quality score computed here, per-column distances and a detection AUC.

The quality score follows sdmetrics' QualityReport definitions (sdmetrics is not a runtime
dependency; a test checks agreement within 0.01):

* Column Shapes: per column, KSComplement (1 - two-sample KS statistic, nulls dropped, values
  rounded to 15 decimals) for numerical and datetime columns, TVComplement (1 - total variation
  distance of category shares, nulls dropped) for categorical and boolean ones; the mean.
* Column Pair Trends: per pair of columns, CorrelationSimilarity (1 - |r_real - r_synth| / 2,
  Pearson, rows with nulls dropped) for two numerical columns, else ContingencySimilarity
  (1 - total variation distance of the joint distribution) where each numerical column is cut
  into 10 equal-width bins, taken separately on each table as sdmetrics does. The property is
  the mean over the pairs that are related in the real table: |Pearson r| > 0.5, or Cramér's V
  > 0.3 (sdmetrics' QualityReport thresholds); every pair's score is listed.
* Quality: the mean of the two (of the one, if no pair is related).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd

from synthgen.evaluation.prep import NUMERIC_KINDS, Featurizer, Tables, category_keys, numbers
from synthgen.schema import TableSchema
from synthgen.transform.encoders import point_masses


class Kinds(Protocol):
    """What the shape and pair scores read: the columns' kinds (``Tables`` has them)."""

    @property
    def schema(self) -> TableSchema: ...

#: sdmetrics subsamples contingency tables above this many rows
CONTINGENCY_MAX_ROWS = 50_000
#: a pair counts towards Column Pair Trends if the real table relates it more than this
CORRELATION_THRESHOLD, ASSOCIATION_THRESHOLD = 0.5, 0.3
#: rows per side for the detection classifier
DETECTION_ROWS = 10_000


def fidelity(tables: Tables, *, seed: int = 0) -> dict:
    """Quality score with its two parts, per-column and per-pair scores, and detection AUCs."""
    shapes = column_shapes(tables.train, tables.synthetic, tables)
    pairs = column_pair_trends(tables.train, tables.synthetic, tables, seed=seed)
    shape_score = _mean(shapes.values())
    pair_score = _mean(p["score"] for p in pairs if p["counted"])
    parts = [s for s in (shape_score, pair_score) if not np.isnan(s)]
    return {
        "quality": round(float(np.mean(parts)), 4) if parts else float("nan"),
        "column_shapes": round(shape_score, 4),
        "column_pair_trends": round(pair_score, 4),
        "columns": {name: round(score, 4) for name, score in shapes.items()},
        "pairs": pairs,
        "point_masses": point_mass_figures(tables),
        **detection_aucs(tables, seed=seed),
    }


def point_mass_figures(tables: Tables) -> dict[str, dict]:
    """Per numeric column that piles up on values in the real table (``transform.encoders.point_masses``):
    each point mass's share of the non-null values, real vs synthetic, and the synthetic share in the
    empty gaps that separate point masses from the rest of the column, where no real value lies
    (capital-gain between its 0 and its smallest other value, 114)."""
    out = {}
    for name in tables.train.columns:
        kind = tables.schema[name].kind
        if kind not in NUMERIC_KINDS:
            continue
        real, syn = (v[~np.isnan(v)] for v in (numbers(df[name], kind) for df in (tables.train, tables.synthetic)))
        masses = point_masses(real)
        if not len(masses) or not len(syn):
            continue
        out[name] = {"masses": [{"value": float(m), "real": round(float(np.mean(real == m)), 4),
                                 "synthetic": round(float(np.mean(syn == m)), 4)} for m in masses],
                     "gap_share": {"real": 0.0, "synthetic": round(float(np.mean(_in_gaps(syn, real, masses))), 4)}}
    return out


def _in_gaps(values: np.ndarray, real: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Whether each value lies strictly between two consecutive points of (point masses below the rest of the
    column, the rest's minimum) or of (its maximum, point masses above it); in a column of point masses only,
    strictly between two consecutive ones."""
    rest = real[~np.isin(real, masses)]
    inside = np.zeros(len(values), dtype=bool)
    if not len(rest):
        runs: tuple[np.ndarray, ...] = (np.sort(masses),)
    else:
        low, high = float(rest.min()), float(rest.max())
        runs = (np.append(masses[masses < low], low), np.insert(masses[masses > high], 0, high))
    for points in runs:
        for a, b in zip(points[:-1], points[1:], strict=True):
            inside |= (values > a) & (values < b)
    return inside


def _mean(values) -> float:
    vals = [v for v in values if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _is_numeric(tables: Kinds, name: str) -> bool:
    return tables.schema[name].kind in NUMERIC_KINDS


def ks_complement(real: np.ndarray, synth: np.ndarray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic (nulls dropped)."""
    from scipy.stats import ks_2samp

    real, synth = real[~np.isnan(real)].round(15), synth[~np.isnan(synth)].round(15)
    if not len(real) or not len(synth):
        return float("nan")
    with warnings.catch_warnings():  # scipy notes when it falls back to the asymptotic p-value
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(1 - ks_2samp(real, synth).statistic)


def tv_complement(real: pd.Series, synth: pd.Series) -> float:
    """1 - total variation distance between category shares (nulls dropped)."""
    r, s = real.dropna(), synth.dropna()
    if not len(r) or not len(s):
        return float("nan")
    p = category_keys(r)
    q = category_keys(s)
    pr = pd.Series(p).value_counts(normalize=True)
    ps = pd.Series(q).value_counts(normalize=True)
    index = pr.index.union(ps.index)  # synthetic-only categories count too
    return float(1 - 0.5 * np.abs(pr.reindex(index, fill_value=0.0) - ps.reindex(index, fill_value=0.0)).sum())


def column_shapes(real: pd.DataFrame, synth: pd.DataFrame, tables: Kinds) -> dict[str, float]:
    """KSComplement or TVComplement per column."""
    out = {}
    for name in real.columns:
        kind = tables.schema[name].kind
        if kind in NUMERIC_KINDS:
            out[name] = ks_complement(numbers(real[name], kind), numbers(synth[name], kind))
        else:
            out[name] = tv_complement(real[name], synth[name])
    return out


def _binned(values: np.ndarray) -> np.ndarray:
    """sdmetrics' discretization: 10 equal-width bins over this table's own non-null values."""
    present = values[~np.isnan(values)]
    if not len(present):
        return np.zeros(len(values), dtype=np.int64)
    return np.digitize(values, bins=np.histogram_bin_edges(present))


def column_pair_trends(real: pd.DataFrame, synth: pd.DataFrame, tables: Kinds, *, seed: int = 0) -> list[dict]:
    """CorrelationSimilarity or ContingencySimilarity for every pair of columns."""
    sides = []
    for df in (real, synth):
        nums = {n: numbers(df[n], tables.schema[n].kind) for n in df.columns if _is_numeric(tables, n)}
        keys = {n: _binned(nums[n]).astype(str) if n in nums else category_keys(df[n]) for n in df.columns}
        sides.append((nums, keys))
    out = []
    for a, b in itertools.combinations(list(real.columns), 2):
        if a in sides[0][0] and b in sides[0][0]:
            r_real = _pearson(sides[0][0][a], sides[0][0][b])
            r_syn = _pearson(sides[1][0][a], sides[1][0][b])
            score = 1 - abs(r_real - r_syn) / 2
            out.append({"columns": [a, b], "metric": "correlation", "score": _round(score),
                        "real": _round(r_real), "synthetic": _round(r_syn),
                        "counted": bool(abs(r_real) > CORRELATION_THRESHOLD and not np.isnan(score))})
        else:
            real_v = _cramers_v(sides[0][1][a], sides[0][1][b])
            score = _contingency(sides[0][1][a], sides[0][1][b], sides[1][1][a], sides[1][1][b], seed)
            out.append({"columns": [a, b], "metric": "contingency", "score": _round(score),
                        "real": _round(real_v), "counted": bool(real_v > ASSOCIATION_THRESHOLD)})
    return out


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of two key arrays (no bias correction, as scipy and sdmetrics compute it)."""
    from scipy.stats.contingency import association, crosstab

    table = crosstab(a, b).count
    if table.sum() == 0 or min(table.shape) < 2:
        return float("nan")
    return float(association(table, method="cramer"))


def _round(x: float) -> float:
    return round(float(x), 4) if not np.isnan(x) else float("nan")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _contingency(ra: np.ndarray, rb: np.ndarray, sa: np.ndarray, sb: np.ndarray, seed: int) -> float:
    rng = np.random.default_rng(seed)

    def shares(a: np.ndarray, b: np.ndarray) -> pd.Series:
        if len(a) > CONTINGENCY_MAX_ROWS:
            keep = rng.choice(len(a), CONTINGENCY_MAX_ROWS, replace=False)
            a, b = a[keep], b[keep]
        return pd.Series(1.0, index=pd.MultiIndex.from_arrays([a, b])).groupby(level=[0, 1]).sum() / len(a)

    pr, ps = shares(ra, rb), shares(sa, sb)
    index = pr.index.union(ps.index)
    return float(1 - 0.5 * np.abs(pr.reindex(index, fill_value=0) - ps.reindex(index, fill_value=0)).sum())


def detection_aucs(tables: Tables, *, seed: int = 0) -> dict[str, float]:
    """Cross-validated ROC AUC of classifiers telling real training rows from synthetic ones (0.5 is ideal);
    see :func:`detection_frames`."""
    return detection_frames(tables.train, tables.synthetic, tables.schema, seed=seed)


def detection_frames(real_rows: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, *,
                     seed: int = 0, groups: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Cross-validated ROC AUC of classifiers telling real rows from synthetic ones (0.5 is ideal).

    ``groups``: per row of each side, the group it belongs to (child rows of one parent); a group's rows stay
    in one fold, so that a classifier cannot score by recognising a group it has seen.

    ``detection_auc``: gradient boosting; ``detection_auc_logistic``: logistic regression, on
    the same rows and features. Balanced: up to DETECTION_ROWS rows from each side; features
    are fitted on the real rows. An AUC below 0.5 (chance, or synthetic rows that duplicate real
    ones, whose twins then carry the other label in another fold) is reported as 0.5, as
    sdmetrics' detection metrics do.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(real_rows), len(synthetic), DETECTION_ROWS)
    if n < 5:
        return {"detection_auc": float("nan"), "detection_auc_logistic": float("nan")}
    pick_real, pick_synth = rng.choice(len(real_rows), n, replace=False), rng.choice(len(synthetic), n, replace=False)
    real, synth = real_rows.iloc[pick_real], synthetic.iloc[pick_synth]
    featurizer = Featurizer(schema, list(real_rows.columns)).fit(real)
    x = np.vstack([featurizer.transform(real), featurizer.transform(synth)])
    y = np.r_[np.zeros(n), np.ones(n)]
    if groups is None:
        folds: Any = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        group = None
    else:
        folds = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed)
        group = np.r_[pd.factorize(pd.Series(groups[0]).astype(str))[0][pick_real],
                      pd.factorize(pd.Series(groups[1]).astype(str))[0][pick_synth] + len(groups[0])]
    models = {"detection_auc": HistGradientBoostingClassifier(random_state=seed),
              "detection_auc_logistic": LogisticRegression(max_iter=1000)}
    return {key: round(max(float(np.mean(cross_val_score(est, x, y, cv=folds, groups=group, scoring="roc_auc"))),
                           0.5), 4)
            for key, est in models.items()}


def correlation_matrix(df: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    """Pairwise association in [-1, 1] / [0, 1]: Pearson for numeric pairs, Cramer's V otherwise."""
    names = list(df.columns)
    nums = {n: numbers(df[n], tables.schema[n].kind) for n in names if _is_numeric(tables, n)}
    keys = {n: (_binned(nums[n]).astype(str) if n in nums else category_keys(df[n])) for n in names}
    mat = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for a, b in itertools.combinations(names, 2):
        if a in nums and b in nums:
            value = _pearson(nums[a], nums[b])
        else:
            value = _cramers_v(keys[a], keys[b])
        mat.loc[a, b] = mat.loc[b, a] = value
    return mat
