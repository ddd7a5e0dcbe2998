"""The audit with whole canary entities: a generator that copies its training entities is caught, one that
never saw them is not, and an entity-level DP model stays within its claim."""

from __future__ import annotations

import pytest
from test_sequences import metadata, visits

from synthgen.errors import InvalidDataError
from synthgen.evaluation.audit import audit_entities
from synthgen.relational.synthesizer import RelationalSynthesizer


def test_copying_the_training_entities_is_caught():
    data = visits(patients=150)
    result = audit_entities(data, metadata(), "patient", lambda train: train, canaries=60, seed=1)
    assert result.attack_auc == 1.0 and result.correct == result.guesses
    assert result.empirical_epsilon > 1.0


def test_a_generator_that_never_saw_the_canaries_gives_nothing_away():
    data = visits(patients=150)
    result = audit_entities(data, metadata(), "patient", lambda train: data, canaries=60, seed=1)
    assert result.empirical_epsilon == 0.0 and 0.2 < result.attack_auc < 0.8


def test_canary_entities_come_with_their_histories():
    data = visits(patients=150)
    seen = {}

    def keep(train):
        seen.update(train)
        return data

    result = audit_entities(data, metadata(), "patient", keep, canaries=40, events=5, seed=2)
    planted = len(seen["patient"]) - len(data["patient"])
    assert planted == result.members
    assert len(seen["visit"]) - len(data["visit"]) == 5 * planted  # every member with all its events
    assert seen["patient"].patient_id.is_unique and seen["visit"].visit_id.is_unique


def test_audit_refuses_deeper_tables(shop):
    from shop_data import shop_metadata

    with pytest.raises(InvalidDataError, match="not children of the entity table"):
        audit_entities(shop, shop_metadata(), "customer", lambda t: t, canaries=20)


@pytest.mark.slow
def test_entity_level_dp_model_stays_within_its_claim():
    data = visits(patients=1500)

    def fit_and_sample(train):
        synth = RelationalSynthesizer(seed=0, epsilon=8.0, epochs=1, batch_size=300).fit(train, metadata())
        return synth.sample(seed=1)

    result = audit_entities(data, metadata(), "patient", fit_and_sample, canaries=100, seed=3, claimed_epsilon=8.0)
    assert result.empirical_epsilon <= 8.0
