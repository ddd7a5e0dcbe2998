"""Sequential tables (a child with a sequence_index): whole ordered histories, spacing kept, events that follow
the event before them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen.errors import InvalidDataError
from synthgen.evaluation.sequences import sequence_quality
from synthgen.relational.synthesizer import RelationalSynthesizer


def visits(seed: int = 0, patients: int = 200) -> dict[str, pd.DataFrame]:
    """Patients (a chronic flag) and their visits: chronic patients come often (every 1-2 weeks), the others
    rarely; each visit's severity drifts from the visit before, and the ward mostly stays the same."""
    rng = np.random.default_rng(seed)
    chronic = rng.random(patients) < 0.4
    patient = pd.DataFrame({"patient_id": np.arange(1, patients + 1), "chronic": chronic,
                            "age": rng.integers(20, 90, patients)})
    rows = []
    for pid, is_chronic in zip(patient.patient_id, chronic, strict=True):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        severity, ward = rng.normal(5, 2), rng.choice(["A", "B", "C"])
        for _ in range(int(rng.integers(6, 12)) if is_chronic else int(rng.integers(1, 4))):
            rows.append({"visit_id": len(rows) + 1, "patient_id": pid, "date": day.strftime("%Y-%m-%d"),
                         "severity": round(severity, 2), "ward": ward})
            day += pd.Timedelta(days=int(rng.integers(7, 15)) if is_chronic else int(rng.integers(60, 120)))
            severity += rng.normal(0, 0.3)
            if rng.random() < 0.1:
                ward = rng.choice(["A", "B", "C"])
    visit = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows out of order
    return {"patient": patient, "visit": visit}


def metadata(sequence: bool = True) -> dict:
    visit = {"primary_key": "visit_id", "columns": {
        "visit_id": {"sdtype": "id"}, "patient_id": {"sdtype": "id"},
        "date": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
        "severity": {"sdtype": "numerical"}, "ward": {"sdtype": "categorical"}}}
    if sequence:
        visit.update(sequence_key="patient_id", sequence_index="date")
    return {"tables": {"patient": {"primary_key": "patient_id", "columns": {
        "patient_id": {"sdtype": "id"}, "chronic": {"sdtype": "boolean"}, "age": {"sdtype": "numerical"}}},
        "visit": visit},
        "relationships": [{"parent_table_name": "patient", "parent_primary_key": "patient_id",
                           "child_table_name": "visit", "child_foreign_key": "patient_id"}]}


@pytest.fixture(scope="module")
def histories():
    data = visits()
    # the relational defaults: a tiny model misses how many visits each kind of patient has
    sequential = RelationalSynthesizer(seed=0).fit(data, metadata()).sample(scale=1.0, seed=1)
    flat = RelationalSynthesizer(seed=0).fit(data, metadata(sequence=False)).sample(scale=1.0, seed=1)
    return data, sequential, flat


def test_histories_come_whole_in_order_with_valid_dates(histories):
    data, synthetic, _ = histories
    visit = synthetic["visit"]
    assert visit.patient_id.isin(synthetic["patient"].patient_id).all()
    assert list(visit.columns) == list(data["visit"].columns)
    dates = pd.to_datetime(visit.date, format="%Y-%m-%d")  # the real format, every value readable
    assert dates.notna().all()
    for _, history in visit.groupby("patient_id", sort=False):
        assert pd.to_datetime(history.date).is_monotonic_increasing  # events in order, gaps never negative


def test_sequences_keep_spacing_and_memory_better_than_independent_children(histories):
    data, sequential, flat = histories
    real = data["visit"]
    seq = sequence_quality(real, sequential["visit"], key="patient_id", index="date")
    ind = sequence_quality(real, flat["visit"], key="patient_id", index="date")
    assert seq["gaps"] > ind["gaps"] + 0.1  # independent children's dates, sorted, are not spaced like visits
    assert seq["lag1"] > ind["lag1"] and seq["coherence"] > ind["coherence"]
    # chronic patients' visits come closer together, as in the real data
    joined = sequential["visit"].merge(sequential["patient"], on="patient_id")
    joined["day"] = pd.to_datetime(joined.date)
    spacing = joined.sort_values(["patient_id", "day"]).groupby("patient_id").day.diff().dt.days
    by_kind = spacing.groupby(joined.sort_values(["patient_id", "day"]).chronic.to_numpy()).median()
    assert by_kind[True] < 30 < by_kind[False]


def test_bad_sequence_metadata_is_refused_with_table_and_column():
    data = visits(patients=30)
    meta = metadata()
    meta["tables"]["visit"]["sequence_index"] = "ward"
    with pytest.raises(InvalidDataError, match="table 'visit', column 'ward': is the sequence index but not a"):
        RelationalSynthesizer(epochs=1).fit(data, meta)
    meta = metadata()
    meta["tables"]["visit"]["sequence_key"] = "visit_id"
    with pytest.raises(InvalidDataError, match="is the sequence key but the entity's foreign key is 'patient_id'"):
        RelationalSynthesizer(epochs=1).fit(data, meta)
