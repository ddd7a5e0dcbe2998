"""Sequence scores: lengths, gaps, lag-1 relations and coherence tell real histories from broken ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen.evaluation.sequences import (
    change_rate,
    gaps,
    lag1_correlation,
    lengths,
    sequence_quality,
    transitions,
)


def histories(seed: int, n: int = 300, *, sticky: bool = True, trend: bool = True) -> pd.DataFrame:
    """Customers with 1-10 purchases a week or so apart; the amount drifts from purchase to purchase (trend) and
    the channel mostly stays the same (sticky)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n):
        count = int(rng.integers(1, 11))
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 30)))
        amount = rng.normal(50, 20)
        channel = rng.choice(["web", "shop", "phone"])
        for _ in range(count):
            rows.append({"user": user, "date": day.strftime("%Y-%m-%d"), "amount": round(amount, 2),
                         "channel": channel})
            day += pd.Timedelta(days=int(rng.integers(5, 10)))
            amount = amount + rng.normal(0, 3) if trend else rng.normal(50, 20)
            if not sticky or rng.random() < 0.1:
                channel = rng.choice(["web", "shop", "phone"])
    return pd.DataFrame(rows)


def test_the_building_blocks():
    df = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3], "date": ["2024-01-03", "2024-01-01", "2024-01-10",
                                                             "2024-02-01", "2024-02-02", "2024-03-01"],
                       "amount": [2.0, 1.0, 3.0, 5.0, 5.5, 9.0], "channel": ["a", "a", "b", "c", "c", "a"]})
    assert sorted(lengths(df, "user")) == [1, 2, 3]
    assert sorted(gaps(df, "user", "date", "datetime")) == [1.0, 2.0, 7.0]  # sorted by date within each user
    assert lag1_correlation(df, "user", "date", "amount", "continuous") == pytest.approx(0.9993, abs=1e-3)
    assert change_rate(df, "user", "date", "channel") == pytest.approx(1 / 3)
    shares = transitions(df, "user", "date", "channel")
    assert shares["a\x1fa"] == pytest.approx(1 / 3) and shares["a\x1fb"] == pytest.approx(1 / 3)


def test_alike_histories_score_high_and_broken_ones_lower():
    real = histories(0)
    same = sequence_quality(real, histories(1), key="user", index="date")
    shuffled = histories(1, sticky=False, trend=False)  # the same columns, no memory from event to event
    broken = sequence_quality(real, shuffled, key="user", index="date")
    assert same["score"] > 0.9 and same["length"] > 0.85 and same["gaps"] > 0.9
    assert broken["lag1"] < same["lag1"] - 0.2
    assert broken["coherence"] < same["coherence"] - 0.3
    assert broken["columns"]["amount"]["lag1"]["real"] > 0.9 > broken["columns"]["amount"]["lag1"]["synthetic"]
    one_each = real.drop_duplicates("user")  # every history cut to its first event
    cut = sequence_quality(real, one_each, key="user", index="date")
    assert cut["length"] < 0.2 and np.isnan(cut["gaps"]) and np.isnan(cut["lag1"])


def test_row_order_serves_when_there_is_no_index():
    real = histories(0).drop(columns=["date"])
    out = sequence_quality(real, histories(1).drop(columns=["date"]), key="user", index=None)
    assert np.isnan(out["gaps"]) and out["score"] > 0.85


def test_sequence_figures_find_the_sequential_tables_of_the_metadata():
    from synthgen.evaluation.sequences import sequence_figures
    from synthgen.metadata import Metadata

    events = histories(0).reset_index(drop=True)
    users = pd.DataFrame({"user": events.user.unique()})
    meta = Metadata.from_dict({"tables": {
        "users": {"primary_key": "user", "columns": {"user": {"sdtype": "id"}}},
        "events": {"sequence_index": "date", "columns": {
            "user": {"sdtype": "id"}, "date": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
            "amount": {"sdtype": "numerical"}, "channel": {"sdtype": "categorical"}}}},
        "relationships": [{"parent_table_name": "users", "parent_primary_key": "user",
                           "child_table_name": "events", "child_foreign_key": "user"}]})
    real = {"users": users, "events": events}
    out = sequence_figures(real, real, meta)
    assert list(out) == ["events"] and out["events"]["key"] == "user"  # the parent's key: the entity
    assert out["events"]["score"] == pytest.approx(1.0)
    meta.tables["events"].pop("sequence_index")
    assert sequence_figures(real, real, meta) == {}
