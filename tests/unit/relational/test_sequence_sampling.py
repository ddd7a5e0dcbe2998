"""Sampling histories: a number of entities, entities with given column values, histories for entities the
caller gives, and a history table on its own (its entities split off and joined back)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_sequences import metadata, visits

from synthgen.errors import ConfigError, InvalidDataError
from synthgen.relational.synthesizer import RelationalSynthesizer
from synthgen.sampler import Sampler


@pytest.fixture(scope="module")
def synth() -> RelationalSynthesizer:
    return RelationalSynthesizer(seed=0).fit(visits(), metadata())


def per_patient(visit: pd.DataFrame, patient: pd.DataFrame) -> pd.Series:
    """Visits per patient, by the patient's chronic flag."""
    counts = visit.patient_id.value_counts().reindex(patient.patient_id).fillna(0).to_numpy()
    return pd.Series(counts).groupby(patient.chronic.astype(bool).to_numpy()).mean()


def test_entities_sets_the_number_of_histories(synth):
    tables = synth.sample(entities=57, seed=2)
    assert len(tables["patient"]) == 57
    assert tables["visit"].patient_id.isin(tables["patient"].patient_id).all()
    with pytest.raises(ConfigError, match="not both"):
        synth.sample(entities=5, scale=1.0)


def test_conditions_steer_the_entities_and_their_histories_follow(synth):
    chronic = synth.sample(entities=60, conditions={"chronic": True}, seed=3)
    other = synth.sample(entities=60, conditions={"chronic": False}, seed=3)
    assert chronic["patient"].chronic.astype(bool).all() and not other["patient"].chronic.astype(bool).any()
    # chronic patients come often (6-11 visits in the real data), the others rarely (1-3)
    assert len(chronic["visit"]) / 60 > 2 * len(other["visit"]) / 60
    with pytest.raises(ConfigError, match="unknown column 'ward'"):
        synth.sample(entities=5, conditions={"ward": "A"})


def test_sample_sequences_for_given_entities(synth, tmp_path):
    synth.save(tmp_path / "visits.sgm")
    sampler = Sampler.load(tmp_path / "visits.sgm")  # a relational file: the relational sampler
    given = pd.DataFrame({"patient_id": np.arange(9001, 9081), "chronic": [True, False] * 40,
                          "age": np.tile([30, 70], 40)})
    history = sampler.sample_sequences(given, seed=4)
    assert list(history.columns) == list(visits()["visit"].columns)
    assert set(history.patient_id) <= set(given.patient_id)  # the caller's keys
    means = per_patient(history, given)
    assert means[True] > 2 * means[False]
    for _, events in history.groupby("patient_id", sort=False):
        assert pd.to_datetime(events.date).is_monotonic_increasing
    # the same seed, the same histories; given entities without keys get new ones
    assert history.equals(sampler.sample_sequences(given, seed=4))
    keyless = sampler.sample_sequences(given.drop(columns=["patient_id"]), seed=4)
    assert not keyless.patient_id.isin(given.patient_id).any()
    with pytest.raises(ConfigError, match="lack column.*'age'.*fix"):
        sampler.sample_sequences(given.drop(columns=["age"]))
    with pytest.raises(ConfigError, match="'patient' is not a sequential table"):
        sampler.sample_sequences(given, table="patient")


def flat_visits() -> pd.DataFrame:
    """Visits with their patient's columns on every row: a history table on its own."""
    data = visits()
    return data["visit"].merge(data["patient"], on="patient_id").drop(columns=["visit_id"])


FLAT_METADATA = {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "sequence_key": "patient_id", "sequence_index": "date",
                 "columns": {"patient_id": {"sdtype": "id"}, "date": {"sdtype": "datetime",
                                                                      "datetime_format": "%Y-%m-%d"},
                             "severity": {"sdtype": "numerical"}, "ward": {"sdtype": "categorical"},
                             "chronic": {"sdtype": "boolean"}, "age": {"sdtype": "numerical"}}}


def test_a_history_table_alone_splits_off_its_entities():
    real = flat_visits()
    synth = RelationalSynthesizer(seed=0).fit({"visits": real}, FLAT_METADATA)
    assert synth.standalone["visits"]["context"] == ["chronic", "age"]  # constant within every history
    out = synth.sample(seed=1)
    assert list(out) == ["visits"] and list(out["visits"].columns) == list(real.columns)
    visits_ = out["visits"]
    spread = visits_.groupby("patient_id")[["chronic", "age"]].nunique().max()
    assert (spread <= 1).all()  # an entity's context is the same on each of its events
    lengths = visits_.groupby("patient_id").size().groupby(visits_.groupby("patient_id").chronic.first()).mean()
    assert lengths[True] > 2 * lengths[False]
    given = pd.DataFrame({"chronic": [True] * 20, "age": [50] * 20})
    history = synth.sample_sequences(given, seed=2)
    assert list(history.columns) == list(real.columns) and history.chronic.all() and (history.age == 50).all()
    manifest = synth.manifest()
    assert manifest["output_metadata"]["tables"]["visits"]["sequence_key"] == "patient_id"


def test_a_history_table_alone_with_bad_keys_is_refused():
    real = flat_visits()
    real.loc[3, "patient_id"] = None
    with pytest.raises(InvalidDataError, match="patient_id.*nulls"):
        RelationalSynthesizer(epochs=1).fit({"visits": real}, FLAT_METADATA)
    no_index = {k: v for k, v in FLAT_METADATA.items() if k != "sequence_index"}
    with pytest.raises(InvalidDataError, match="without a sequence index"):
        RelationalSynthesizer(epochs=1).fit({"visits": flat_visits()}, no_index)
