"""Masking operations and policies: every operation round-trips types and nulls; bad policies fail clearly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from synthgen.errors import ConfigError, IntegrityError
from synthgen.privacy.masking import Masker, MaskPolicy, mask

KEY = bytes(range(32))


@pytest.fixture
def people() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    names = [f"Person {chr(65 + i % 26)}{i}" for i in range(20)]
    return pd.DataFrame({
        "name": [names[i % 20] if i % 13 else None for i in range(n)],
        "email": [f"user{i % 25}@mail.org" for i in range(n)],
        "ssn": [f"{100 + i:03d}-{10 + i % 80:02d}-{1000 + i:04d}" for i in range(n)],
        "pid": np.arange(1000, 1000 + n),
        "age": rng.integers(18, 95, n),
        "pay": np.where(np.arange(n) % 7 == 0, np.nan, rng.normal(5e4, 1e4, n).round(2)),
        "visit": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "dob": [f"19{50 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "country": rng.choice(["Mexico", "Canada", "Peru", "France"], n),
        "zip": rng.integers(10000, 99999, n),
    })


def test_replace_is_consistent_distinct_and_typed(people):
    out = mask(people, {"columns": {"name": {"op": "replace", "kind": "name"},
                                    "email": {"op": "replace", "kind": "email"},
                                    "zip": {"op": "replace", "kind": "zip"},
                                    "visit": {"op": "replace", "kind": "date"}}})
    pairs = pd.DataFrame({"a": people["email"], "b": out["email"]}).drop_duplicates()
    assert pairs["a"].is_unique and pairs["b"].is_unique  # same in -> same out; distinct in -> distinct out
    assert out["email"].str.fullmatch(r"[\w.+-]+@[\w.-]+\.\w+").all()
    assert not set(out["email"]) & set(people["email"])
    assert out["name"].isna().equals(people["name"].isna())
    assert out["zip"].dtype == people["zip"].dtype and out["visit"].dtype == people["visit"].dtype
    assert out["visit"].between(people["visit"].min(), people["visit"].max()).all()


def test_replace_is_stable_across_runs_only_with_a_key(people):
    policy = {"columns": {"email": {"op": "replace", "kind": "email"}}}
    with_key = [mask(people, policy, key=KEY)["email"] for _ in range(2)]
    assert with_key[0].equals(with_key[1])
    assert not mask(people, policy)["email"].equals(mask(people, policy)["email"])


def test_pseudonymize_one_way_and_reversible(people):
    policy = {"columns": {"pid": {"op": "pseudonymize"}, "name": {"op": "pseudonymize", "reversible": True},
                          "email": {"op": "pseudonymize", "prefix": "u-", "length": 10}}}
    masker = Masker(policy, key=KEY)
    out = masker.apply(people)
    assert out["pid"].dtype == people["pid"].dtype and out["pid"].is_unique
    assert out["email"].str.fullmatch(r"u-[a-z2-7]{10}").all()
    assert (out["email"] == mask(people, policy, key=KEY)["email"]).all()
    assert (out["email"] != mask(people, policy, key=bytes(32))["email"]).all()
    back = masker.reveal(out)
    pd.testing.assert_series_equal(back["name"], people["name"].astype(object), check_dtype=False)
    with pytest.raises(IntegrityError, match="wrong key"):
        Masker(policy, key=bytes(32)).reveal(out)


def test_reversible_integer_ids_come_back_as_integers(people):
    policy = {"columns": {"pid": {"op": "pseudonymize", "reversible": True}}}
    masker = Masker(policy, key=KEY)
    back = masker.reveal(masker.apply(people))
    assert back["pid"].dtype == np.int64 and back["pid"].equals(people["pid"])


def test_reversible_needs_a_key(people):
    with pytest.raises(ConfigError, match="need a key"):
        mask(people, {"columns": {"pid": {"op": "pseudonymize", "reversible": True}}})


def test_mask_keeps_last_digits_and_separators(people):
    out = mask(people, {"columns": {"ssn": {"op": "mask", "keep_last": 4}}})
    assert out["ssn"].str.fullmatch(r"\*\*\*-\*\*-\d{4}").all()
    assert (out["ssn"].str[-4:] == people["ssn"].str[-4:]).all()
    first = mask(people, {"columns": {"email": {"op": "mask", "keep_first": 2, "char": "#",
                                                "keep_separators": False}}})
    assert first["email"].map(lambda s: s[:2] != "##" and set(s[2:]) == {"#"}).all()


def test_generalize_numbers(people):
    out = mask(people, {"columns": {"age": {"op": "generalize", "width": 10, "top": 80}}})
    assert out["age"].dtype == people["age"].dtype
    assert set(out["age"]) <= {10, 20, 30, 40, 50, 60, 70, 80} and (out["age"] <= 80).all()
    assert (out["age"] <= people["age"].clip(upper=80)).all()
    labels = mask(people, {"columns": {"age": {"op": "generalize", "bins": [0, 30, 60, 120], "as": "label"}}})
    assert set(labels["age"]) <= {"[0, 30)", "[30, 60)", "[60, 120)"}
    mid = mask(people, {"columns": {"pay": {"op": "generalize", "bins": [0, 5e4, 2e5], "as": "midpoint"}}})
    assert set(mid["pay"].dropna()) <= {25000.0, 125000.0} and mid["pay"].isna().equals(people["pay"].isna())


def test_generalize_dates_and_categories(people):
    out = mask(people, {"columns": {"visit": {"op": "generalize", "truncate": "month"},
                                    "dob": {"op": "generalize", "truncate": "year"},
                                    "country": {"op": "generalize", "hierarchy": {"Mexico": "Americas",
                                                                                  "Canada": "Americas",
                                                                                  "Peru": "Americas"},
                                                "other": "Elsewhere"}}})
    assert (out["visit"].dt.day == 1).all() and out["visit"].dtype == people["visit"].dtype
    assert out["dob"].str.fullmatch(r"19\d\d-01-01").all()
    assert set(out["country"]) == {"Americas", "Elsewhere"}
    rare = mask(people, {"columns": {"country": {"op": "generalize", "min_count": 16}}})
    counts = people["country"].value_counts()
    assert set(rare["country"]) == set(counts[counts >= 16].index) | ({"Other"} if (counts < 16).any() else set())


def test_noise_is_bounded_clipped_and_typed(people):
    out = mask(people, {"columns": {"age": {"op": "noise", "scale": 2, "bound": 3, "clip": [18, 95]},
                                    "pay": {"op": "noise", "scale": 100, "distribution": "gaussian"},
                                    "visit": {"op": "noise", "scale": 5}}}, seed=1)
    assert out["age"].dtype == people["age"].dtype and (out["age"] - people["age"]).abs().max() <= 3
    assert out["age"].between(18, 95).all() and (out["age"] != people["age"]).any()
    assert out["pay"].isna().equals(people["pay"].isna()) and (out["pay"] - people["pay"]).abs().max() <= 300
    assert (out["visit"] - people["visit"]).abs().max() <= pd.Timedelta(days=15)
    again = mask(people, {"columns": {"age": {"op": "noise", "scale": 2}}}, seed=1)
    assert again["age"].equals(mask(people, {"columns": {"age": {"op": "noise", "scale": 2}}}, seed=1)["age"])


def test_drop_and_report(people):
    masker = Masker({"columns": {"ssn": "drop", "email": {"op": "mask", "keep_last": 3}}})
    out = masker.apply(people)
    assert "ssn" not in out.columns and len(out) == len(people)
    report = masker.report.to_dict()
    assert report["columns"]["email"]["changed"] == len(people)
    assert report["rows_in"] == report["rows_out"] == len(people) and not report["keyed"]
    assert any("no key" in line for line in masker.report.lines())


def test_k_anonymity_block_runs_after_the_operations(people):
    masker = Masker({"columns": {"age": {"op": "generalize", "width": 10}},
                     "k_anonymity": {"columns": ["age", "country"], "k": 5}})
    out = masker.apply(people)
    assert out.groupby(["age", "country"], dropna=False).size().min() >= 5
    assert masker.report.anonymity["k_achieved"] >= 5


@pytest.mark.parametrize(("policy", "message"), [
    ({"columns": {"nope": "drop"}}, r"'nope': is in the policy but not in the table \(fix: use one of name"),
    ({"columns": {"age": {"op": "shuffle"}}}, r"unknown operation 'shuffle' \(fix: use one of \['drop'"),
    ({"columns": {"age": {"op": "noise", "scale": 1, "sigma": 2}}}, r"noise has no option \['sigma'\]"),
    ({"columns": {"age": {"op": "mask"}}}, "mask hides characters of text, but the column is int64"),
    ({"columns": {"age": {"op": "replace", "kind": "name"}}}, "is numeric; replace kind 'name' makes text"),
    ({"columns": {"name": {"op": "replace", "kind": "hobby"}}}, "replace needs a kind, got 'hobby'"),
    ({"columns": {"age": {"op": "generalize", "bins": [30, 60]}}}, r"values lie outside the bins \[30, 60\]"),
    ({"columns": {"age": {"op": "generalize", "bins": [60, 30]}}}, "bins must be at least two increasing"),
    ({"columns": {"age": {"op": "generalize", "width": 5, "truncate": "year"}}}, "generalize needs one of"),
    ({"columns": {"name": {"op": "generalize", "truncate": "month"}}}, "values are not dates"),
    ({"columns": {"country": {"op": "generalize", "hierarchy": {"Mexico": "Americas"}}}},
     r"hierarchy does not cover 3 values"),
    ({"columns": {"name": {"op": "noise", "scale": 1}}}, "noise needs numbers or dates"),
    ({"columns": {"age": {"op": "noise", "scale": -1}}}, "noise needs a positive scale"),
    ({"columns": {"age": "drop"}, "k_anonymity": {"columns": ["age"], "k": 3}}, "policy drops it"),
    ({"columns": {}, "k_anonymity": {"k": 3}}, "k_anonymity needs columns and k"),
])
def test_bad_policies_name_the_column_rule_and_fix(people, policy, message):
    with pytest.raises(ConfigError, match=message):
        mask(people, policy)


def test_all_policy_problems_are_reported_at_once(people):
    with pytest.raises(ConfigError, match=r"\(2 problems\)") as info:
        mask(people, {"columns": {"nope": "drop", "age": {"op": "shuffle"}}})
    assert "nope" in str(info.value) and "shuffle" in str(info.value)


def test_policy_files(tmp_path, people):
    with pytest.raises(ConfigError, match="not found"):
        MaskPolicy.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{columns: ")
    with pytest.raises(ConfigError, match="not valid JSON"):
        MaskPolicy.from_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="unknown policy keys"):
        MaskPolicy.from_dict({"columns": {"age": "drop"}, "colums": {}})
    with pytest.raises(ConfigError, match="masks nothing"):
        MaskPolicy.from_dict({"columns": {}})
    (tmp_path / "p.json").write_text('{"columns": {"email": {"op": "mask", "keep_last": 4, "reason": "email"}}}')
    assert re.fullmatch(r"\*+@\*+l\.org", mask(people, tmp_path / "p.json")["email"].iloc[0])
