"""Explanation fidelity on tables with known answers: a copy, shuffled columns, one deciding column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen.evaluation.interpretability import interpretability
from synthgen.evaluation.prep import check_tables
from synthgen.evaluation.utility import fit_mlps


def decided(n: int, seed: int) -> pd.DataFrame:
    """x1 alone decides y; x2 and the colour are noise, x3 a weak echo of x1."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": rng.normal(size=n), "x3": x1 + rng.normal(scale=3, size=n),
                         "colour": rng.choice(["red", "green", "blue"], size=n),
                         "y": np.where(x1 > 0, "yes", "no")})


def graded(n: int, seed: int) -> pd.DataFrame:
    """y depends on a, b and the group, in that order of strength, and not on noise."""
    rng = np.random.default_rng(seed)
    a, b, noise = rng.normal(size=(3, n))
    group = rng.choice(["g1", "g2", "g3", "g4"], size=n)
    logit = 3 * a + 1.5 * b + np.where(group == "g1", 1.0, 0.0)
    return pd.DataFrame({"a": a, "b": b, "noise": noise, "group": group,
                         "y": np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), 1, 0).astype(str)})


def explain(train: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame, seeds: int = 2) -> dict:
    tables = check_tables(train, synthetic, test, target="y")
    return interpretability(tables, fit_mlps(tables, seeds=seeds), repeats=2)


def test_a_verbatim_copy_explains_exactly_as_the_real_table():
    train, test = graded(1500, 0), graded(800, 1)
    x = explain(train, train.copy(), test)
    assert x["rank_correlation"] == 1.0 and x["top5_overlap"] == 1.0
    assert x["importance"]["real"] == x["importance"]["synthetic"]
    assert x["pdp_distance"] == 0.0
    assert x["top_features"]["real"][:2] == ["a", "b"]  # the true order of strength
    assert x["importance"]["real"]["noise"] < 0.01 < x["importance"]["real"]["group"]


def test_columns_shuffled_apart_leave_nothing_to_explain():
    train, test = graded(1500, 0), graded(800, 1)
    rng = np.random.default_rng(2)
    shuffled = pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns})
    x = explain(train, shuffled, test)
    real, synthetic = x["importance"]["real"], x["importance"]["synthetic"]
    assert real["a"] > 0.5  # the real side relies on a (log-loss up by more than 0.5 without it)
    assert max(abs(v) for v in synthetic.values()) < 0.05 * real["a"]  # the synthetic side on nothing
    assert x["partial_dependence"]["a"]["distance"] > 0.2  # a flat curve against a steep one


def test_one_deciding_column_explains_both_sides():
    train, synthetic, test = decided(1500, 0), decided(1500, 3), decided(800, 1)
    x = explain(train, synthetic, test)
    for side in ("real", "synthetic"):
        imp = x["importance"][side]
        assert x["top_features"][side][0] == "x1"
        assert imp["x1"] > 5 * max(abs(v) for k, v in imp.items() if k != "x1"), (side, imp)
    curve = x["partial_dependence"]["x1"]
    assert curve["shows"] == "probability of class 'yes'"
    assert curve["real"][0] < 0.1 and curve["real"][-1] > 0.9  # the step at 0, seen on the grid
    assert curve["distance"] < 0.1


def test_a_regression_target_is_explained_by_r2():
    rng = np.random.default_rng(0)

    def table(n):
        u, v = rng.normal(size=(2, n))
        return pd.DataFrame({"u": u, "v": v, "y": 4 * u + 0.2 * rng.normal(size=n)})
    train, test = table(1200), table(600)
    tables = check_tables(train, train.copy(), test, target="y", task="regression")
    x = interpretability(tables, fit_mlps(tables, seeds=1), repeats=1)
    assert x["metric"] == "r2" and x["top_features"]["real"][0] == "u"
    assert x["importance"]["real"]["u"] > 1.0  # shuffling u loses all of R^2 and more
    assert x["partial_dependence"]["u"]["distance"] == 0.0


@pytest.mark.parametrize("n_classes", [3])
def test_several_classes_use_the_log_loss_and_total_variation(n_classes):
    rng = np.random.default_rng(0)

    def table(n):
        z = rng.normal(size=n)
        return pd.DataFrame({"z": z, "w": rng.normal(size=n),
                             "y": np.select([z < -0.5, z < 0.5], ["low", "mid"], "high")})
    train, test = table(1500), table(800)
    x = explain(train, train.copy(), test, seeds=1)
    assert x["metric"] == "log_loss" and x["top_features"]["real"][0] == "z"
    assert x["partial_dependence"]["z"]["distance"] == 0.0


def test_a_column_null_throughout_the_holdout_has_no_curve():
    train, test = decided(600, 0), decided(300, 1)
    train["x2"] = train["x2"].where(np.arange(600) % 2 == 0)  # nulls in training, a flag the model can use
    test["x2"] = np.nan
    tables = check_tables(train, train.copy(), test, target="y")
    fitted = fit_mlps(tables, seeds=1)
    from synthgen.evaluation.interpretability import _partial_dependence

    curve = _partial_dependence(tables, fitted, "x2", np.arange(len(test)))
    assert curve["grid"] == [] and np.isnan(curve["distance"])
    x = interpretability(tables, fitted, repeats=1)
    assert x["top_features"]["real"][0] == "x1" and not np.isnan(x["pdp_distance"])
