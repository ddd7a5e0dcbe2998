"""k-anonymity: class sizes counted by groupby, type-preserving recoding, nulls, booleans, suppression, NCP, errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from synthgen.datasets import load_adult
from synthgen.errors import ConfigError, InvalidDataError
from synthgen.masking.anonymity import AnonymityReport, k_anonymize, k_of

QI = ["age", "sex", "race", "marital-status", "native-country"]
CONTINENT = {
    "Americas": ["United-States", "Mexico", "Canada", "Puerto-Rico", "El-Salvador", "Cuba", "Jamaica",
                 "Dominican-Republic", "Guatemala", "Columbia", "Haiti", "Nicaragua", "Peru", "Ecuador",
                 "Trinadad&Tobago", "Honduras", "Outlying-US(Guam-USVI-etc)"],
    "Asia": ["Philippines", "India", "South", "China", "Vietnam", "Japan", "Taiwan", "Iran", "Hong", "Cambodia",
             "Thailand", "Laos"],
    "Europe": ["Germany", "England", "Italy", "Poland", "Portugal", "France", "Greece", "Ireland", "Yugoslavia",
               "Hungary", "Scotland", "Holand-Netherlands"],
    "Unknown": ["?"],
}
COUNTRIES = {country: continent for continent, members in CONTINENT.items() for country in members}


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return load_adult()


@pytest.fixture(scope="module")
def adult5k(adult: pd.DataFrame) -> pd.DataFrame:
    return adult.head(5000)


def smallest_class(df: pd.DataFrame, columns: list[str]) -> int:
    return int(df.groupby(columns, dropna=False, observed=True).size().min())


def mixed_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "i": rng.integers(0, 100, n),
        "f": rng.normal(size=n).astype("float32"),
        "t": pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC"),
        "s": pd.Series(rng.choice(list("abcde"), n), dtype="string"),
        "o": rng.choice(["x", "y", "z"], n).astype(object),
        "ni": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "other": np.arange(n),
    })
    df.loc[::7, "f"] = np.nan
    df.loc[::9, "s"] = pd.NA
    df.loc[::11, "ni"] = pd.NA
    return df


# ----------------------------------------------------------------------------- k_of
def test_k_of_counts_nulls_as_a_value():
    df = pd.DataFrame({"a": [1.0, 1.0, np.nan, np.nan, np.nan], "b": ["x", "x", None, None, None]})
    assert k_of(df, ["a", "b"]) == 2
    assert k_of(df, ["a"]) == smallest_class(df, ["a"]) == 2
    assert k_of(df.iloc[:0], ["a"]) == 0


# ----------------------------------------------------------------------------- small frames
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_small_frame_is_k_anonymous_and_keeps_types(k):
    df = mixed_frame()
    qi = ["i", "f", "t", "s", "o", "ni"]
    out, report = k_anonymize(df, qi, k)
    assert smallest_class(out, qi) >= k
    assert report.k_achieved == k_of(out, qi) == smallest_class(out, qi)
    assert report.groups == out.groupby(qi, dropna=False).ngroups
    assert out.dtypes.equals(df.dtypes)
    assert out.index.equals(df.index) and report.rows_in == len(df) and report.rows_suppressed == 0
    assert out["other"].equals(df["other"])  # columns that are not QIs are untouched
    assert 0 < report.information_loss <= 1


def test_numeric_representatives_are_medians_of_their_class():
    df = pd.DataFrame({"i": [1, 2, 3, 4, 10, 20, 30, 40], "f": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]})
    out, _ = k_anonymize(df, ["i"], 4)
    assert out["i"].tolist() == [2] * 4 + [20] * 4  # ints: the lower median, a value the class holds
    assert out["i"].dtype == np.int64
    out, _ = k_anonymize(df, ["f"], 4)
    assert out["f"].tolist() == [2.5] * 4 + [25.0] * 4


def test_datetimes_get_the_median_date_and_keep_their_dtype():
    df = pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2021-06-01",
                                            "2021-06-02", "2021-06-03"]).as_unit("s")})
    out, _ = k_anonymize(df, ["t"], 3)
    assert out["t"].dtype == df["t"].dtype
    assert out["t"].tolist() == [pd.Timestamp("2020-01-02")] * 3 + [pd.Timestamp("2021-06-02")] * 3


def test_categorical_set_labels_keep_string_and_category_dtypes():
    values = ["d", "a", "a", "c", "b", "c", "a"]  # frequency order a, c, b, d: cut {a} | {c, b, d}
    df = pd.DataFrame({"s": pd.Series(values, dtype="string"), "c": pd.Categorical(values), "o": values})
    for column in df.columns:
        out, report = k_anonymize(df, [column], 3)
        assert out[column].dtype.name == df[column].dtype.name
        assert out[column].astype(str).tolist() == ["b|c|d", "a", "a", "b|c|d", "b|c|d", "b|c|d", "a"]
        assert report.per_column_loss[column] == pytest.approx(4 / 7 * 2 / 3)  # (3 values - 1) / (4 - 1)


def test_already_k_anonymous_data_is_unchanged_with_zero_loss(adult5k):
    df = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3], "b": ["x", "x", "y", "y", "x", "x"]})
    out, report = k_anonymize(df, ["a", "b"], 2, max_suppression=0.5)
    assert out.equals(df)
    assert report.information_loss == 0 and report.rows_suppressed == 0 and report.k_achieved == 2
    out, report = k_anonymize(adult5k, ["sex", "race"], 5)
    assert out.equals(adult5k) and report.information_loss == 0


# ----------------------------------------------------------------------------- nulls and booleans
def test_nulls_are_a_value_and_never_get_a_value_invented():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan, np.nan, np.nan, 7.0],
                       "s": ["a", "a", "b", None, None, None, "b"]})
    out, report = k_anonymize(df, ["x", "s"], 3)
    assert smallest_class(out, ["x", "s"]) >= 3
    assert out.loc[df["x"].isna(), "x"].isna().all() and out.loc[df["s"].isna(), "s"].isna().all()
    assert out.loc[3:5].isna().all().all() and report.k_achieved >= 3


def test_a_class_mixing_nulls_and_values_is_blanked_with_loss_one():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "s": ["a", "b", None, "a"]})
    out, report = k_anonymize(df, ["x", "s"], 4)
    assert out.isna().all().all() and len(out) == 4
    assert report.per_column_loss == {"x": 1.0, "s": 1.0}
    assert report.cells_blanked == {"x": 3, "s": 3}  # the null cell was null already


def test_nulls_are_split_off_before_the_median_cut():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan, np.nan, np.nan]})
    out, report = k_anonymize(df, ["x"], 3)
    assert report.cells_blanked == {"x": 0} and out["x"].isna().equals(df["x"].isna())
    assert out["x"].tolist()[:6] == [2.0] * 3 + [5.0] * 3 and report.k_achieved == 3
    ints = pd.DataFrame({"i": pd.array([1, 2, 3, 4, 5, 6, None, None, None, None], dtype="Int64"), "s": list("ab") * 5})
    out, report = k_anonymize(ints, ["i", "s"], 2)
    assert report.cells_blanked == {"i": 0, "s": 0} and out["i"].isna().equals(ints["i"].isna())


def test_booleans_are_never_mixed_and_keep_bool_dtype():
    df = pd.DataFrame({"b": [True] * 6 + [False] * 4, "x": range(10)})
    out, report = k_anonymize(df, ["b", "x"], 3)
    assert out["b"].dtype == bool and out["b"].equals(df["b"])
    assert smallest_class(out, ["b", "x"]) >= 3 and report.per_column_loss["b"] == 0
    assert out["x"].tolist() == [1] * 3 + [4] * 3 + [7] * 4  # strata True (3 + 3 rows) and False (4 rows)


def test_a_boolean_stratum_smaller_than_k_is_suppressed_or_refused():
    df = pd.DataFrame({"b": pd.array([True] * 8 + [False] * 2, dtype="boolean"), "x": range(10)})
    with pytest.raises(InvalidDataError, match="raise max_suppression to at least 0.2") as err:
        k_anonymize(df, ["b", "x"], 3)
    assert err.value.problems[0].column == "b"
    out, report = k_anonymize(df, ["b", "x"], 3, max_suppression=0.2)
    assert report.rows_suppressed == 2 and len(out) == 8 and out["b"].dtype == "boolean"
    assert smallest_class(out, ["b", "x"]) >= 3
    obj = df.assign(b=df["b"].astype(object))  # an object column may be generalized instead
    out, report = k_anonymize(obj, ["b", "x"], 3)
    assert "False|True" in set(out["b"]) and report.rows_suppressed == 0


# ----------------------------------------------------------------------------- Adult
@pytest.mark.parametrize("k", [2, 5, 10])
def test_adult_slice_is_k_anonymous(adult5k, k):
    out, report = k_anonymize(adult5k, QI, k)
    assert smallest_class(out, QI) >= k
    assert report.k_achieved == smallest_class(out, QI)
    assert report.groups == out.groupby(QI, dropna=False).ngroups
    assert len(out) == len(adult5k) and out.index.equals(adult5k.index)
    assert out.dtypes.equals(adult5k.dtypes)
    rest = [c for c in adult5k.columns if c not in QI]
    assert out[rest].equals(adult5k[rest])
    assert 0 < report.information_loss < 1
    assert report.information_loss == pytest.approx(np.mean(list(report.per_column_loss.values())))


def test_information_loss_grows_with_k(adult5k):
    losses = [k_anonymize(adult5k, QI, k)[1].information_loss for k in (2, 5, 10, 25, 50)]
    assert all(0 <= x <= 1 for x in losses)
    assert losses == sorted(losses) and losses[0] < losses[-1]
    assert len(set(losses)) == len(losses)


def test_hierarchy_parent_labels_appear(adult5k):
    hierarchy = {"native-country": COUNTRIES}
    out, report = k_anonymize(adult5k, QI, 10, hierarchies=hierarchy)
    assert smallest_class(out, QI) >= 10
    released = set(out["native-country"])
    assert released & set(CONTINENT)
    for value in released - set(COUNTRIES) - set(CONTINENT):  # set labels only across continents
        assert len({COUNTRIES[v] for v in value.split("|")}) > 1
    flat = k_anonymize(adult5k, QI, 10)[1]
    assert report.per_column_loss["native-country"] != flat.per_column_loss["native-country"]


def test_suppression_is_bounded_and_reported(adult5k):
    for share in (0.01, 0.02, 0.05):
        out, report = k_anonymize(adult5k, QI, 10, max_suppression=share)
        assert report.rows_suppressed <= share * len(adult5k)
        assert len(out) == len(adult5k) - report.rows_suppressed
        assert smallest_class(out, QI) >= 10
        assert report.information_loss <= k_anonymize(adult5k, QI, 10)[1].information_loss


def test_suppression_removes_an_outlier_when_that_lowers_loss():
    df = pd.DataFrame({"x": np.r_[np.arange(99) % 10, 1000], "c": ["A"] * 100})
    _, kept = k_anonymize(df, ["x", "c"], 5)
    out, report = k_anonymize(df, ["x", "c"], 5, max_suppression=0.02)
    assert report.rows_suppressed == 1 and 1000 not in set(out["x"]) and len(out) == 99
    assert report.information_loss < kept.information_loss
    assert report.per_column_loss["c"] == pytest.approx(0.01)  # the suppressed row's cell counts 1
    assert smallest_class(out, ["x", "c"]) >= 5


def test_report_to_dict_is_json_ready(adult5k):
    _, report = k_anonymize(adult5k, QI, 5)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["k_requested"] == 5 and set(data["per_column_loss"]) == set(QI)
    assert AnonymityReport(**data) == report


def test_full_adult_timing(adult, capsys):
    start = time.perf_counter()
    out, report = k_anonymize(adult, QI, 10)
    seconds = time.perf_counter() - start
    assert smallest_class(out, QI) >= 10 and len(out) == len(adult)
    with capsys.disabled():  # reported, not asserted
        print(f"\nk_anonymize(adult, 5 QIs, k=10): {seconds:.2f} s, information loss "
              f"{report.information_loss:.4f}, {report.groups} classes")


def test_non_string_column_names():
    df = pd.DataFrame({0: [1, 2, 3, 4], 1: list("abab")})
    out, report = k_anonymize(df, [0, 1], 2)
    assert list(out.columns) == [0, 1] and smallest_class(out, [0, 1]) >= 2


# ----------------------------------------------------------------------------- errors
def test_missing_quasi_identifier_lists_the_available_columns():
    df = pd.DataFrame({"age": [1, 2, 3], "sex": ["a", "b", "a"]})
    with pytest.raises(InvalidDataError) as err:
        k_anonymize(df, ["age", "zip"], 2)
    (problem,) = err.value.problems
    assert problem.column == "zip" and "age, sex" in problem.fix
    with pytest.raises(InvalidDataError, match="zip"):
        k_of(df, ["zip"])


@pytest.mark.parametrize("k", [1, 0, -3, 2.5, "5", True, None])
def test_k_must_be_a_whole_number_of_at_least_two(k):
    df = pd.DataFrame({"a": range(10)})
    with pytest.raises(ConfigError, match="k must be a whole number >= 2") as err:
        k_anonymize(df, ["a"], k)
    assert err.value.problems[0].fix


def test_k_larger_than_the_table():
    with pytest.raises(InvalidDataError, match="k=11 is larger than the table's 10 rows"):
        k_anonymize(pd.DataFrame({"a": range(10)}), ["a"], 11)


@pytest.mark.parametrize("share", [-0.1, 0.51, 1.0, float("nan"), "0.1"])
def test_max_suppression_must_be_in_range(share):
    with pytest.raises(ConfigError, match=r"max_suppression must be a share in \[0, 0.5\]"):
        k_anonymize(pd.DataFrame({"a": range(10)}), ["a"], 2, max_suppression=share)


def test_hierarchy_for_a_column_that_is_not_a_quasi_identifier():
    df = pd.DataFrame({"a": range(10), "c": list("xy") * 5})
    with pytest.raises(ConfigError, match="not a quasi-identifier") as err:
        k_anonymize(df, ["a"], 2, hierarchies={"c": {"x": "X", "y": "X"}})
    assert err.value.problems[0].column == "c"


def test_hierarchy_that_misses_values_names_some(adult5k):
    partial = {c: p for c, p in COUNTRIES.items() if c not in ("Mexico", "Canada")}
    with pytest.raises(InvalidDataError, match="misses 2 of the column's values: 'Canada', 'Mexico'"):
        k_anonymize(adult5k, QI, 5, hierarchies={"native-country": partial})


def test_hierarchy_on_a_numeric_column_is_refused():
    with pytest.raises(InvalidDataError, match="not categorical"):
        k_anonymize(pd.DataFrame({"a": range(10)}), ["a"], 2, hierarchies={"a": {"1": "low"}})


def test_all_problems_are_reported_at_once():
    df = pd.DataFrame({"a": range(10), "c": list("xy") * 5})
    with pytest.raises(InvalidDataError) as err:
        k_anonymize(df, ["a", "c", "zip"], 1, max_suppression=0.9,
                    hierarchies={"c": {"x": "X"}, "b": {"x": "X"}})
    rules = [p.rule for p in err.value.problems]
    assert len(rules) == 5 and all(p.fix for p in err.value.problems)
    assert any("zip" == p.column for p in err.value.problems)
    assert any("k must be" in r for r in rules) and any("max_suppression" in r for r in rules)
    assert any("misses 1" in r for r in rules) and any("not a quasi-identifier" in r for r in rules)
    with pytest.raises(ConfigError) as only_settings:
        k_anonymize(df, ["a"], 1, max_suppression=0.9)
    assert len(only_settings.value.problems) == 2 and "2 problems" in str(only_settings.value)
