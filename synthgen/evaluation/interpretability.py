"""Interpretability: does a model trained on synthetic rows explain like one trained on real rows?

Both of the utility MLPs (trained on real, trained on synthetic; one per seed) are explained on the
same real holdout rows:

* permutation importance of each input column: how much worse the holdout predictions get (the
  increase of the log-loss for a classification, the drop of R^2 for a regression) when that
  column's values are shuffled across the rows, the mean over ``repeats`` shuffles, then the mean and
  spread over the MLP seeds. The shuffles are the same for both sides, so the two vectors differ only
  by the models. A proper loss, not AUC or accuracy: a model that ignores a column scores exactly 0
  for it (AUC, blind to scale, can swing on a near-constant model's tiny slopes; accuracy moves
  only where a prediction crosses a threshold);
* the Spearman rank correlation of the two importance vectors and the overlap of their top-5 columns;
* partial dependence of the real model's top columns: the mean prediction over the holdout rows with
  the column set to each grid value (ten quantiles of a numeric column, the ten most frequent
  categories), on each side; their distance is the mean over the grid of the total-variation distance
  between the predicted class distributions (for two classes: the difference of the probabilities),
  or of the absolute difference in units of the target's standard deviation for a regression.

SHAP is not used: the ``shap`` package pulls numba and llvmlite (a JIT compiler and LLVM), and
for a model explained through its predictions only, KernelSHAP costs far more model calls than
permutation importance, which needs numpy alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.evaluation.prep import NUMERIC_KINDS, Tables, category_keys, numbers
from synthgen.evaluation.utility import Fitted, Predict, Prepared

#: shuffles per column, holdout rows explained (at most; a seeded random subset, also for the partial
#: dependence), top columns drawn and compared, grid points per curve, the k of the top-k overlap
REPEATS, MAX_ROWS, PDP_TOP, GRID, TOP_K = 3, 5000, 3, 10, 5


def interpretability(tables: Tables, fitted: Fitted, *, seed: int = 0, repeats: int = REPEATS,
                     max_rows: int = MAX_ROWS) -> dict:
    """Permutation importance, its agreement between the two sides, and partial-dependence distances."""
    real, synth = fitted.sides["trtr"], fitted.sides["tstr"]
    if real is None or synth is None or not fitted.seeds:
        return {"available": False, "reason": "a side has no usable rows for the target"}
    rng = np.random.default_rng(seed)
    n = len(real.test_rows)
    pick = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    features = list(real.featurizer.columns) if real.featurizer else []
    shuffles = {f: [rng.permutation(len(pick)) for _ in range(repeats)] for f in features}
    metric = "log_loss" if real.n_classes else "r2"
    imp = {side: _importance(prepared, fitted.models[key], pick, shuffles)
           for side, key, prepared in (("real", "trtr", real), ("synthetic", "tstr", synth))}
    mean = {side: imp[side].mean(axis=0) for side in imp}
    top = {side: [features[i] for i in np.argsort(-mean[side], kind="stable")] for side in mean}
    k = min(TOP_K, len(features))
    curves = {f: _partial_dependence(tables, fitted, f, pick) for f in top["real"][:PDP_TOP]}
    unit = ("mean total variation between the predicted class distributions" if real.n_classes
            else "mean absolute difference of the predictions, in target standard deviations")
    return {
        "available": True,
        "method": f"permutation importance of the utility MLPs on {len(pick):,} real holdout rows, "
                  f"{repeats} shuffles per column, {fitted.seeds} seeds; "
                  + ("increase of the log-loss" if real.n_classes else "drop of R^2"),
        "metric": metric,
        "importance": {side: _by_name(features, mean[side]) for side in mean},
        "importance_std": {side: _by_name(features, imp[side].std(axis=0)) for side in imp},
        "rank_correlation": _spearman(mean["real"], mean["synthetic"]),
        "top5_overlap": round(len(set(top["real"][:k]) & set(top["synthetic"][:k])) / k, 4) if k else float("nan"),
        "top_features": {side: top[side][:k] for side in top},
        "partial_dependence": curves,
        "pdp_distance": _mean([c["distance"] for c in curves.values()]),
        "pdp_unit": unit,
    }


def _mean(values: list[float]) -> float:
    values = [v for v in values if not np.isnan(v)]
    return round(float(np.mean(values)), 4) if values else float("nan")


def _by_name(features: list[str], values: np.ndarray) -> dict[str, float]:
    return {f: round(float(v), 4) for f, v in zip(features, values, strict=True)}


def _score(side: Prepared, y: np.ndarray, out: np.ndarray) -> float:
    """The holdout score whose drop measures importance: minus the log-loss, or R^2 (higher is better)."""
    if side.n_classes:
        return float(np.mean(np.log(np.clip(out[np.arange(len(y)), y], 1e-7, None))))
    mean, std = side.scale
    return 1.0 - float(np.mean((out[:, 0] * std + mean - y) ** 2) / (np.var(y) or 1.0))


def _importance(side: Prepared, models: list[Predict], pick: np.ndarray,
                shuffles: dict[str, list[np.ndarray]]) -> np.ndarray:
    """(seeds, columns): the mean drop of the score over the shuffles of each column, per seed."""
    assert side.featurizer is not None
    blocks = side.featurizer.blocks()
    x, y = side.x_test[pick], side.y_test[pick]
    out = np.zeros((len(models), len(shuffles)))
    for s, predict in enumerate(models):
        base = _score(side, y, predict(x))
        for j, (name, perms) in enumerate(shuffles.items()):
            block, drops = blocks[name], []
            for perm in perms:
                shuffled = x.copy()
                shuffled[:, block] = x[perm, block]
                drops.append(base - _score(side, y, predict(shuffled)))
            out[s, j] = np.mean(drops)
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return round(float(spearmanr(a, b).statistic), 4)


def _grid(values: pd.Series, kind: str) -> list:
    """Raw values of one column to set: ten quantiles of a numeric column, the ten commonest categories."""
    values = values[values.notna()]
    if not len(values):
        return []
    if kind in NUMERIC_KINDS:
        keys = numbers(values, kind)
        order = np.argsort(keys, kind="stable")
        at = np.round(np.linspace(0.05, 0.95, GRID) * (len(values) - 1)).astype(int)
        if len(np.unique(keys[order[at]])) < GRID // 2:  # a point mass takes most quantiles: spread over the values
            _, first = np.unique(keys, return_index=True)
            order = first  # one row per distinct value, in increasing order
            at = np.round(np.linspace(0, 1, GRID) * (len(order) - 1)).astype(int)
        chosen = values.iloc[order[at]]
        _, first = np.unique(numbers(chosen, kind), return_index=True)
        return list(chosen.iloc[np.sort(first)])
    keys = category_keys(values)
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return list(values.iloc[first[np.argsort(-counts, kind="stable")[:GRID]]])


def _partial_dependence(tables: Tables, fitted: Fitted, feature: str, rows: np.ndarray) -> dict:
    """Both sides' partial-dependence curves of one column on the holdout rows, and their distance."""
    real = fitted.sides["trtr"]
    assert real is not None
    holdout = tables.test.iloc[real.test_rows[rows]]
    grid = _grid(holdout[feature], tables.schema[feature].kind)
    if not grid:  # the column is null in every holdout row: nothing to set it to
        return {"grid": [], "shows": "", "real": [], "synthetic": [], "distance": float("nan")}
    curves: dict[str, np.ndarray] = {}
    for side, key in (("real", "trtr"), ("synthetic", "tstr")):
        prepared = fitted.sides[key]
        assert prepared is not None and prepared.featurizer is not None
        block = prepared.featurizer.blocks()[feature]
        x = prepared.x_test[rows]
        probe = holdout.iloc[[0] * len(grid)].copy()
        probe[feature] = pd.Series(grid, index=probe.index, dtype=holdout[feature].dtype)
        encoded = prepared.featurizer.transform(probe)[:, block]
        points = []
        for g in range(len(grid)):
            xg = x.copy()
            xg[:, block] = encoded[g]
            out = np.mean([predict(xg).mean(axis=0) for predict in fitted.models[key]], axis=0)
            points.append(out if prepared.n_classes else out * prepared.scale[1] + prepared.scale[0])
        curves[side] = np.asarray(points).reshape(len(grid), -1)
    if real.n_classes:
        gaps = 0.5 * np.abs(curves["real"] - curves["synthetic"]).sum(axis=1)
        shown = 1 if real.n_classes == 2 else int(np.argmax(np.ptp(curves["real"], axis=0)))
        label = f"probability of class {real.classes[shown]!r}"
        real_curve, synth_curve = curves["real"][:, shown], curves["synthetic"][:, shown]
    else:
        spread = float(np.nanstd(real.y_test)) or 1.0
        gaps = np.abs(curves["real"][:, 0] - curves["synthetic"][:, 0]) / spread
        label = f"predicted {tables.target}"
        real_curve, synth_curve = curves["real"][:, 0], curves["synthetic"][:, 0]
    return {"grid": [_plain(v) for v in grid], "shows": label,
            "real": [round(float(v), 4) for v in real_curve], "synthetic": [round(float(v), 4) for v in synth_curve],
            "distance": round(float(gaps.mean()), 4)}


def _plain(value) -> object:
    """A grid value as JSON can hold it."""
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool)) else str(value)
