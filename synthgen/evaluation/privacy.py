"""Privacy: is any synthetic row a near-copy of a training row?

All distances are Euclidean over the real training table's encoding: numbers scaled to 0..1 by
the real range, categories one-hot divided by sqrt(2) (a category mismatch costs 1, as a full
range of one number does).

* DCR share: for each synthetic row, is its closest training row nearer than its closest holdout
  row? The larger of the two sets is subsampled to the other's size so that a generator that
  never saw either set scores 0.5; ties count half. Above 0.5 means the synthetic rows sit closer to the
  rows the generator trained on.
* Exact-copy rate: share of synthetic rows equal to some training row in every column, beside
  the same rate for holdout rows (real tables repeat rows too: that is the baseline).
* NNDR: nearest / second-nearest training distance per synthetic row (near 0: the row is close
  to one specific person rather than to a crowd), beside the holdout's value.
* MIA AUC: a distance attack. Score each training row (member) and holdout row (non-member) by
  minus its distance to the closest synthetic row; the ROC AUC of members vs non-members.
  0.5: the synthetic data says nothing about who was in the training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.evaluation.prep import Featurizer, Tables, category_keys

#: synthetic rows scored for DCR / NNDR, and members / non-members per side for the attack
PRIVACY_ROWS = 10_000


def privacy(tables: Tables, *, seed: int = 0) -> dict:
    """DCR share, exact-copy rates, NNDR and the membership-inference AUC."""
    rng = np.random.default_rng(seed)
    featurizer = Featurizer(tables.schema, list(tables.train.columns), scaling="range").fit(tables.train)
    scale = _column_weights(featurizer)
    n_side = min(len(tables.train), len(tables.test))  # equal sizes: 0.5 is then the ideal share
    train = featurizer.transform(tables.train.iloc[_pick(len(tables.train), n_side, rng)]) * scale
    test = featurizer.transform(tables.test.iloc[_pick(len(tables.test), n_side, rng)]) * scale
    all_synth = featurizer.transform(tables.synthetic) * scale
    synth = all_synth[_pick(len(all_synth), PRIVACY_ROWS, rng)]
    d_train, d_train2 = _nearest(synth, train, k=2)
    d_test, d_test2 = _nearest(synth, test, k=2)
    share = float(np.mean(d_train < d_test) + 0.5 * np.mean(d_train == d_test))
    # the attack: members and non-members (already in random order) scored against every synthetic row
    dist_in = _nearest(train[:PRIVACY_ROWS], all_synth, k=1)[0]
    dist_out = _nearest(test[:PRIVACY_ROWS], all_synth, k=1)[0]
    return {
        "dcr_train_share": round(share, 4),
        "dcr_train_median": round(float(np.median(d_train)), 4),
        "dcr_holdout_median": round(float(np.median(d_test)), 4),
        "exact_copy_rate": round(exact_match_rate(tables.synthetic, tables.train), 4),
        "exact_copy_rate_holdout": round(exact_match_rate(tables.test, tables.train), 4),
        "nndr_median": round(_nndr(d_train, d_train2), 4),
        "nndr_holdout_median": round(_nndr(d_test, d_test2), 4),
        "mia_auc": round(_auc(dist_in, dist_out), 4),
        "histograms": _histograms(d_train, d_test),
    }


def _column_weights(featurizer: Featurizer) -> np.ndarray:
    """Per-feature weights: 1 for numbers and null flags, 1/sqrt(2) for one-hot columns."""
    return np.asarray([2 ** -0.5 if k == "onehot" else 1.0 for k in featurizer.feature_kinds()], np.float32)


def _pick(rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` distinct row positions out of ``rows``, in random order."""
    return rng.choice(rows, min(n, rows), replace=False)


def _nearest(queries: np.ndarray, points: np.ndarray, *, k: int) -> tuple[np.ndarray, ...]:
    """Distances from each query to its k nearest points (one array per rank)."""
    from sklearn.neighbors import NearestNeighbors

    k_eff = min(k, len(points))
    dist, _ = NearestNeighbors(n_neighbors=k_eff, algorithm="brute").fit(points).kneighbors(queries)
    cols = [dist[:, i] for i in range(k_eff)]
    while len(cols) < k:
        cols.append(np.full(len(queries), np.inf))
    return tuple(np.round(c, 6) for c in cols)


def exact_match_rate(rows: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of ``rows`` equal to some row of ``reference`` in every column (nulls equal nulls)."""
    if not len(rows):
        return float("nan")

    def keys(df: pd.DataFrame) -> pd.Series:
        parts = [pd.Series(category_keys(df[c].reset_index(drop=True))) for c in reference.columns]
        return pd.concat(parts, axis=1).agg("\x1f".join, axis=1)

    return float(keys(rows).isin(set(keys(reference))).mean())


def _nndr(d1: np.ndarray, d2: np.ndarray) -> float:
    """Median nearest / second-nearest ratio; undefined (NaN) where there is no second neighbour."""
    ratio = np.full(len(d1), np.nan)
    has_two = np.isfinite(d2)
    ratio[has_two] = np.where(d2[has_two] > 0, d1[has_two] / np.where(d2[has_two] > 0, d2[has_two], 1), 1.0)
    return float(np.nanmedian(ratio)) if has_two.any() else float("nan")


def _auc(dist_members: np.ndarray, dist_outsiders: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(dist_members)), np.zeros(len(dist_outsiders))]
    return float(roc_auc_score(y, -np.r_[dist_members, dist_outsiders]))


def _histograms(d_train: np.ndarray, d_test: np.ndarray, bins: int = 30) -> dict:
    """DCR histograms of both sides over one shared range (for the report)."""
    both = np.r_[d_train, d_test]
    top = float(np.quantile(both[np.isfinite(both)], 0.99)) if np.isfinite(both).any() else 1.0
    edges = np.linspace(0.0, top or 1.0, bins + 1)
    return {"edges": np.round(edges, 5).tolist(),
            "dcr_train": np.histogram(d_train, bins=edges)[0].tolist(),
            "dcr_holdout": np.histogram(d_test, bins=edges)[0].tolist()}
