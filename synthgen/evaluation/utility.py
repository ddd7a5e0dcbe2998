"""Utility: train on real (TRTR) vs train on synthetic (TSTR), both tested on the real holdout.

The heart of the evaluator is one fixed torch MLP with early stopping on a validation slice of
its own training side, run over several seeds. Logistic (or ridge) regression and gradient
boosting run beside it as cross-checks. Preprocessing is fitted on each run's training side.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from synthgen.evaluation.prep import Featurizer, LabelCoder, Tables, numbers

#: the MLP every run uses (hidden widths), and its training schedule
MLP_HIDDEN = (128, 64)
MLP_MAX_EPOCHS, MLP_PATIENCE, MLP_BATCH, MLP_LR = 100, 8, 256, 1e-3
VALIDATION_SHARE = 0.1


@dataclass
class Prepared:
    """One training side, encoded once for every seed and model: features fitted on that side,
    labels as class codes (classification) or standardized values (regression, ``scale``)."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    scale: tuple[float, float] = (0.0, 1.0)
    featurizer: Featurizer | None = None
    #: the class names behind the codes (classification)
    classes: tuple[str, ...] = ()
    #: which holdout rows ``x_test`` holds (rows with an unknown class or a null target are left out)
    test_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


#: a fitted model's prediction: class probabilities, or one column of (standardized) values
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class Fitted:
    """The evaluator's MLPs, one per seed, on each side: "trtr" (trained on real) and "tstr"
    (trained on synthetic); a side is None where a regression has no usable rows."""

    sides: dict[str, Prepared | None]
    models: dict[str, list[Predict]]
    seeds: int


def fit_mlps(tables: Tables, *, seeds: int = 3) -> Fitted:
    """Train the evaluator's MLP on each side, once per seed (used by utility and interpretability)."""
    sides = {"trtr": _prepare(tables, tables.train), "tstr": _prepare(tables, tables.synthetic)}
    models = {side: [_fit("mlp", p.x, p.y, p.n_classes, seed) for seed in range(seeds)] if p is not None else []
              for side, p in sides.items()}
    return Fitted(sides, models, seeds)


def utility(tables: Tables, *, seeds: int = 3, baselines: bool = True, fitted: Fitted | None = None) -> dict:
    """TRTR and TSTR scores of the MLP (mean, std and per-seed), the gap, and baseline models.

    ``fitted`` reuses MLPs already trained by :func:`fit_mlps` (then ``seeds`` is theirs).
    """
    fitted = fitted or fit_mlps(tables, seeds=seeds)
    out: dict = {"task": tables.task, "target": tables.target, "seeds": fitted.seeds, "model": _mlp_name()}
    runs = fitted.sides
    for side, prepared in runs.items():
        per_seed = ([_score(prepared, predict(prepared.x_test)) for predict in fitted.models[side]]
                    if prepared is not None else [_score(None, None)] * fitted.seeds)
        out[side] = _summarize(per_seed)
    out["gap"] = {k: round(out["tstr"][k] - out["trtr"][k], 4) for k in out["trtr"] if not k.endswith("_std")
                  and isinstance(out["trtr"][k], float)}
    if baselines:
        for name in ("linear", "boosting"):
            out[name] = {side: _scores(prepared, 0, name) for side, prepared in runs.items()}
    return out


def _mlp_name() -> str:
    return f"torch MLP {'-'.join(map(str, MLP_HIDDEN))}, ReLU, Adam, early stopping on {VALIDATION_SHARE:.0%}"


def _summarize(per_seed: list[dict[str, float]]) -> dict:
    out: dict = {}
    for key in per_seed[0]:
        values = [s[key] for s in per_seed]
        out[key] = round(statistics.fmean(values), 4)
        out[f"{key}_std"] = round(statistics.pstdev(values), 4) if len(values) > 1 else 0.0
    out["per_seed"] = per_seed
    return out


def _prepare(tables: Tables, train: pd.DataFrame) -> Prepared | None:
    """Encode one training side and the holdout; None for a regression with no usable rows."""
    features = [c for c in tables.train.columns if c != tables.target]
    featurizer = Featurizer(tables.schema, features).fit(train)
    if tables.task == "classification":
        coder = LabelCoder(tables.train[tables.target], tables.test[tables.target])
        y_train, known = coder.encode(train[tables.target])
        y_test, test_known = coder.encode(tables.test[tables.target])
        return Prepared(featurizer.transform(train)[known], y_train[known],
                        featurizer.transform(tables.test)[test_known], y_test[test_known], len(coder.classes),
                        featurizer=featurizer, test_rows=np.flatnonzero(test_known),
                        classes=tuple(str(c).replace("\x00null", "(null)") for c in coder.classes))
    y_train = numbers(train[tables.target], tables.schema[tables.target].kind)
    y_test = numbers(tables.test[tables.target], tables.schema[tables.target].kind)
    keep, keep_test = ~np.isnan(y_train), ~np.isnan(y_test)
    if keep.sum() < 2 or not keep_test.any():  # nothing to learn from or nothing to test on
        return None
    mean, std = float(y_train[keep].mean()), float(y_train[keep].std()) or 1.0
    return Prepared(featurizer.transform(train)[keep], (y_train[keep] - mean) / std,
                    featurizer.transform(tables.test)[keep_test], y_test[keep_test], 0, (mean, std),
                    featurizer=featurizer, test_rows=np.flatnonzero(keep_test))


def _scores(side: Prepared | None, seed: int, model: str) -> dict[str, float]:
    if side is None:
        return _score(None, None)
    return _score(side, _fit(model, side.x, side.y, side.n_classes, seed)(side.x_test))


def _score(side: Prepared | None, out: np.ndarray | None) -> dict[str, float]:
    """Scores of predictions ``out`` on the side's holdout rows (NaN for a side with no model)."""
    if side is None or out is None:
        return {"r2": float("nan"), "rmse": float("nan")}
    if side.n_classes:
        return classification_scores(side.y_test, out, side.n_classes)
    mean, std = side.scale
    return regression_scores(side.y_test, out[:, 0] * std + mean)


def classification_scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and ROC AUC (one-vs-rest macro for more than two classes)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = proba.argmax(axis=1)
    scores = {"accuracy": float(accuracy_score(y, pred)),
              "macro_f1": float(f1_score(y, pred, average="macro", labels=np.arange(n_classes), zero_division=0))}
    present = np.unique(y)
    if len(present) < 2:
        scores["auc"] = float("nan")
    elif n_classes == 2:
        scores["auc"] = float(roc_auc_score(y, proba[:, 1]))
    else:
        p = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        scores["auc"] = float(roc_auc_score(y, p, multi_class="ovr", labels=present)) if len(present) > 2 \
            else float(roc_auc_score(y == present[1], p[:, 1]))
    return {k: round(v, 4) for k, v in scores.items()}


def regression_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R^2 and RMSE on the original scale."""
    from sklearn.metrics import mean_squared_error, r2_score

    return {"r2": round(float(r2_score(y, pred)), 4), "rmse": round(float(np.sqrt(mean_squared_error(y, pred))), 4)}


def _fit(model: str, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> Predict:
    """A fitted model's predict: class probabilities (n_classes > 0) or one column (regression)."""
    if n_classes and len(np.unique(y)) < 2:  # a training side with one class predicts it always
        only = int(y[0]) if len(y) else 0

        def constant(x_test: np.ndarray) -> np.ndarray:
            proba = np.zeros((len(x_test), n_classes))
            proba[:, only] = 1.0
            return proba
        return constant
    if model == "mlp":
        return MLP(seed=seed).fit(x, y, n_classes).predict
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if n_classes:
        est = (LogisticRegression(max_iter=1000) if model == "linear"
               else HistGradientBoostingClassifier(random_state=seed)).fit(x, y)

        def classes(x_test: np.ndarray) -> np.ndarray:
            proba = np.zeros((len(x_test), n_classes))
            proba[:, est.classes_.astype(int)] = est.predict_proba(x_test)
            return proba
        return classes
    reg = (Ridge() if model == "linear" else HistGradientBoostingRegressor(random_state=seed)).fit(x, y)
    return lambda x_test: reg.predict(x_test)[:, None]


class MLP:
    """The evaluator's fixed MLP: ReLU layers, Adam, early stopping on a validation slice.

    Seeded: the same data and seed give the same model.
    """

    def __init__(self, *, hidden: tuple[int, ...] = MLP_HIDDEN, seed: int = 0):
        self.hidden, self.seed = hidden, seed
        self.net: nn.Sequential | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> MLP:
        """Train on features ``x`` and labels ``y`` (class codes, or values when ``n_classes`` is 0)."""
        from synthgen.models.layers import mlp

        gen = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(x))
        n_val = max(int(len(x) * VALIDATION_SHARE), 1) if len(x) >= 10 else 0
        val, fit = order[:n_val], order[n_val:]
        xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y)
        yt = yt.long() if n_classes else yt.float()[:, None]
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net = mlp(x.shape[1], self.hidden, max(n_classes, 1))
        loss_fn = nn.CrossEntropyLoss() if n_classes else nn.MSELoss()
        opt = torch.optim.Adam(self.net.parameters(), lr=MLP_LR)
        best, best_state, waited = float("inf"), None, 0
        fit_idx = torch.from_numpy(fit)
        for _ in range(MLP_MAX_EPOCHS):
            self.net.train()
            for batch in fit_idx[torch.randperm(len(fit_idx), generator=gen)].split(MLP_BATCH):
                opt.zero_grad(set_to_none=True)
                loss_fn(self.net(xt[batch]), yt[batch]).backward()
                opt.step()
            if not n_val:
                continue
            self.net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(self.net(xt[val]), yt[val]))
            if val_loss < best - 1e-4:
                best, waited = val_loss, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                waited += 1
                if waited >= MLP_PATIENCE:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.n_classes = n_classes
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, or predictions as one column for regression."""
        assert self.net is not None, "fit first"
        self.net.eval()
        with torch.no_grad():
            out = self.net(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
            return (torch.softmax(out, dim=1) if self.n_classes else out).numpy().astype(np.float64)
