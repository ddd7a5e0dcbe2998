"""The evaluator's metrics on constructed cases with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from synthgen import evaluate
from synthgen.errors import InvalidDataError
from synthgen.evaluation.fidelity import column_pair_trends, column_shapes, fidelity
from synthgen.evaluation.prep import Featurizer, check_tables, split_holdout
from synthgen.evaluation.privacy import exact_match_rate, privacy
from synthgen.evaluation.utility import utility
from synthgen.schema import TableSchema


@pytest.fixture(scope="module")
def parts() -> dict[str, pd.DataFrame]:
    """Three disjoint real slices of Adult: train, another real sample, holdout."""
    from synthgen.datasets import load_adult

    df = load_adult().sample(2400, random_state=1).reset_index(drop=True)
    return {"train": df.iloc[:1200].reset_index(drop=True), "other": df.iloc[1200:1800].reset_index(drop=True),
            "test": df.iloc[1800:].reset_index(drop=True)}


def tables(train, synth, test, target="income"):
    return check_tables(train, synth, test, target=target)


# ------------------------------------------------------------------ input checks

def test_bad_inputs_are_all_reported(parts):
    train, test = parts["train"], parts["test"]
    with pytest.raises(InvalidDataError) as err:
        check_tables(train, train.drop(columns=["age", "income"]), test.iloc[:0], target="income")
    text = str(err.value)
    assert "synthetic" in text and "'income'" in text and "missing: ['age', 'income']" in text
    assert "test table has no rows" in text


def test_one_class_target_refused(parts):
    one = parts["train"].assign(income="<=50K")
    with pytest.raises(InvalidDataError, match="one class"):
        check_tables(one, one, one, target="income")


def test_task_from_target_kind(parts):
    assert tables(parts["train"], parts["other"], parts["test"]).task == "classification"
    assert check_tables(parts["train"], parts["other"], parts["test"], target="fnlwgt").task == "regression"
    with pytest.raises(InvalidDataError, match="unknown task"):
        check_tables(parts["train"], parts["other"], parts["test"], target="age", task="ranking")


def test_split_holdout_is_stratified_and_seeded(parts):
    a_train, a_test = split_holdout(parts["train"], "income", seed=3)
    b_train, _ = split_holdout(parts["train"], "income", seed=3)
    assert a_train.equals(b_train) and len(a_test) == 240
    share = parts["train"]["income"].eq(">50K").mean()
    assert abs(a_test["income"].eq(">50K").mean() - share) < 0.01


def test_featurizer_fitted_on_one_side_only():
    schema = TableSchema.detect(pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.5], "c": list("abcab")}))
    fit_side = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.5], "c": list("abcab")})
    f = Featurizer(schema, ["x", "c"]).fit(fit_side)
    out = f.transform(pd.DataFrame({"x": [np.nan, 100.0], "c": ["zzz", "a"]}))
    assert f.feature_kinds() == ["number", "missing", "onehot", "onehot", "onehot"]
    assert out[0, 1] == 1 and out[0, 2:].sum() == 0  # null flagged; unseen category is all zeros
    assert out[1, 2] == 1 and out[1, 0] > 10  # scaled by the fitting side's mean and std


# ------------------------------------------------------------------ utility

def test_synthetic_equal_to_real_scores_exactly_as_real(parts):
    u = utility(tables(parts["train"], parts["train"], parts["test"]), seeds=1, baselines=False)
    assert u["tstr"]["per_seed"] == u["trtr"]["per_seed"]
    assert u["gap"]["accuracy"] == 0.0
    assert 0.78 < u["trtr"]["accuracy"] < 0.9 and u["trtr"]["auc"] > 0.8


@pytest.mark.slow
def test_pure_noise_drops_tstr_to_the_majority_rate(parts):
    rng = np.random.default_rng(0)
    noise = parts["train"].apply(lambda col: pd.Series(rng.permutation(col.to_numpy()), name=col.name))
    u = utility(tables(parts["train"], noise, parts["test"]), seeds=2)
    majority = parts["test"]["income"].value_counts(normalize=True).max()
    assert abs(u["tstr"]["accuracy"] - majority) < 0.03
    assert u["tstr"]["auc"] < 0.68  # noise labels: a learned ranking transfers by chance (0.37-0.63 seen)
    assert u["trtr"]["auc"] - u["tstr"]["auc"] > 0.2
    assert set(u["linear"]) == {"trtr", "tstr"} and "auc" in u["boosting"]["tstr"]


def test_regression_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=900)
    real = pd.DataFrame({"x": x, "g": rng.choice(list("abc"), 900), "y": 3 * x + rng.normal(0, 0.3, 900)})
    noise = real.assign(y=rng.permutation(real["y"].to_numpy()))
    u = utility(check_tables(real[:600], noise[:600], real[600:], target="y"), seeds=1, baselines=False)
    assert u["task"] == "regression"
    assert u["trtr"]["r2"] > 0.95 and u["tstr"]["r2"] < 0.1
    assert u["tstr"]["rmse"] > 3 * u["trtr"]["rmse"]


# ------------------------------------------------------------------ fidelity

@pytest.mark.slow
def test_identical_tables_score_one(parts):
    t = tables(parts["train"], parts["train"], parts["test"])
    f = fidelity(t)
    assert f["quality"] == 1.0 and f["column_shapes"] == 1.0 and f["column_pair_trends"] == 1.0
    assert f["detection_auc"] == 0.5


@pytest.mark.slow
def test_shuffled_columns_keep_shapes_and_lose_pair_trends(parts):
    rng = np.random.default_rng(0)
    shuffled = parts["train"].apply(lambda col: pd.Series(rng.permutation(col.to_numpy()), name=col.name))
    t = tables(parts["train"], shuffled, parts["test"])
    shapes = column_shapes(t.train, t.synthetic, t)
    assert all(math.isclose(v, 1.0) for v in shapes.values())
    pairs = {tuple(p["columns"]): p["score"] for p in column_pair_trends(t.train, t.synthetic, t)}
    assert pairs[("education", "education-num")] < 0.6  # a perfect dependence, destroyed
    assert fidelity(t)["detection_auc"] > 0.6


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_quality_agrees_with_sdmetrics(parts):
    sdmetrics = pytest.importorskip("sdmetrics.reports.single_table")
    rng = np.random.default_rng(1)
    synth = parts["other"].copy()
    synth["age"] = synth["age"] + rng.integers(-5, 6, len(synth))  # shapes and trends a little off
    synth.loc[rng.random(len(synth)) < 0.3, "occupation"] = "Sales"
    t = tables(parts["train"], synth, parts["test"])
    ours = fidelity(t)
    report = sdmetrics.QualityReport()
    report.generate(parts["train"], synth, t.schema.to_sdv_metadata(), verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    assert abs(ours["quality"] - report.get_score()) < 0.01
    assert abs(ours["column_shapes"] - props["Column Shapes"]) < 0.01
    assert abs(ours["column_pair_trends"] - props["Column Pair Trends"]) < 0.01


# ------------------------------------------------------------------ privacy

def test_copied_rows_raise_dcr_share_and_mia(parts):
    copied = privacy(tables(parts["train"], parts["train"], parts["test"]))
    fresh = privacy(tables(parts["train"], parts["other"], parts["test"]))
    assert copied["exact_copy_rate"] == 1.0 and fresh["exact_copy_rate"] < 0.02
    assert copied["dcr_train_share"] > 0.6 and abs(fresh["dcr_train_share"] - 0.5) < 0.05
    assert copied["mia_auc"] > 0.8 and abs(fresh["mia_auc"] - 0.5) < 0.05
    assert copied["nndr_median"] < fresh["nndr_median"]


def test_dcr_share_is_one_half_when_the_holdout_is_larger(parts):
    big_holdout = pd.concat([parts["train"].iloc[600:], parts["test"]], ignore_index=True)
    fresh = privacy(tables(parts["other"], parts["train"].iloc[:600], big_holdout))
    assert abs(fresh["dcr_train_share"] - 0.5) < 0.05


def test_whole_floats_match_integer_categories():
    from synthgen.evaluation.prep import category_keys

    assert list(category_keys(pd.Series([13, 2, None], dtype="Int64"))) == ["13", "2", "\x00null"]
    assert list(category_keys(pd.Series([13.0, 2.5, np.nan]))) == ["13", "2.5", "\x00null"]
    assert list(category_keys(pd.Series([True, False]))) == ["True", "False"]


def test_exact_match_rate_counts_nulls_as_equal():
    ref = pd.DataFrame({"a": [1, 2, None], "b": ["x", None, "z"]})
    rows = pd.DataFrame({"a": [1, 2, 3, None], "b": ["x", None, "x", "z"]})
    assert exact_match_rate(rows, ref) == 0.75


# ------------------------------------------------------------------ the result object

@pytest.mark.slow
def test_evaluation_keys_json_and_report(parts, tmp_path):
    result = evaluate(parts["train"], parts["other"], parts["test"], target="income", seeds=1)
    for key in ("utility.trtr.accuracy", "utility.tstr.accuracy", "utility.tstr.auc", "utility.gap.auc",
                "fidelity.quality", "fidelity.detection_auc", "privacy.dcr_train_share", "privacy.mia_auc",
                "privacy.exact_copy_rate", "privacy.nndr_median", "interpretability.rank_correlation",
                "interpretability.top5_overlap", "interpretability.pdp_distance"):
        assert isinstance(result[key], float), key
    data = json.loads(result.to_json(tmp_path / "e.json"))
    assert data["utility"]["tstr"]["accuracy"] == result["utility.tstr.accuracy"]
    assert "NaN" not in (tmp_path / "e.json").read_text()
    html = result.to_html(tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 6  # with the importance bars and the dependence curves
    assert "Interpretability" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "utility.tstr.accuracy" in result.summary()


@pytest.mark.slow
def test_one_real_table_is_split(parts):
    result = evaluate(parts["train"], parts["other"], target="income", seeds=1, baselines=False)
    assert result["rows.test"] == 240 and result["rows.real"] == 960
    assert result["holdout"].startswith("split")


def test_split_holdout_with_null_classes_and_many_small_classes():
    nulls = pd.DataFrame({"x": range(20), "y": ["a"] * 8 + ["b"] * 8 + [None] * 4})
    train, test = split_holdout(nulls, "y")
    assert len(test) == 4 and test["y"].isna().sum() == 1  # stratified, null as its own class
    many = pd.DataFrame({"x": range(60), "y": np.repeat(range(20), 3)})
    train, test = split_holdout(many, "y")  # 12 holdout rows cannot hold 20 classes: plain split
    assert len(train) == 48 and len(test) == 12


def test_one_row_holdout_gives_no_nndr_instead_of_zero(parts):
    result = privacy(tables(parts["train"], parts["other"], parts["test"].iloc[:1]))
    assert math.isnan(result["nndr_median"]) and math.isnan(result["nndr_holdout_median"])


def test_datetime_target_is_regression(parts):
    df = parts["train"].assign(when=pd.date_range("2020-01-01", periods=len(parts["train"]), freq="h"))
    assert check_tables(df, df, df, target="when").task == "regression"


def test_point_mass_figures_compare_shares_and_count_gap_values():
    from synthgen.evaluation.fidelity import point_mass_figures

    rng = np.random.default_rng(0)
    n = 4000
    gain = np.where(rng.random(n) < 0.9, 0, rng.integers(114, 20000, n))
    real = pd.DataFrame({"gain": gain, "y": rng.choice(["a", "b"], n)})
    synth = real.copy()
    synth.loc[: n // 2, "gain"] = rng.integers(1, 114, n // 2 + 1)  # half the zeros smeared into the gap
    figures = point_mass_figures(check_tables(real, synth, real, target="y"))
    zero = figures["gain"]["masses"][0]
    assert zero["value"] == 0 and zero["real"] == pytest.approx(np.mean(gain == 0), abs=1e-4)
    assert zero["synthetic"] < zero["real"] - 0.4
    assert figures["gain"]["gap_share"] == {"real": 0.0, "synthetic": pytest.approx(0.5, abs=0.01)}
    assert "y" not in figures


def test_gap_share_of_a_column_of_point_masses_only():
    """Credit limits in multiples of 10,000: a synthetic value between two of them is in a gap."""
    from synthgen.evaluation.fidelity import point_mass_figures

    rng = np.random.default_rng(0)
    limits = rng.choice(np.arange(1, 31) * 10_000.0, 3000)
    real = pd.DataFrame({"limit": limits, "y": rng.choice(["a", "b"], 3000)})
    synth = real.copy()
    synth.loc[:299, "limit"] = 15_000.0  # 10% between two multiples
    figures = point_mass_figures(check_tables(real, synth, real, target="y"))["limit"]
    assert len(figures["masses"]) == 30
    assert figures["gap_share"]["synthetic"] == pytest.approx(0.1, abs=0.001)
