"""The one-run privacy audit: the bound's arithmetic, canaries, and that it catches a leak."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from synthgen import Synthesizer
from synthgen.datasets import adult_metadata_path
from synthgen.errors import InvalidDataError
from synthgen.evaluation.audit import audit, epsilon_lower_bound, make_canaries, p_value
from synthgen.schema import TableSchema, schema_from_metadata


def test_lower_bound_is_zero_at_chance_and_grows_with_correct_guesses():
    assert epsilon_lower_bound(100, 50) == 0.0
    assert epsilon_lower_bound(100, 55) == 0.0  # P[Bin(100, 1/2) >= 55] = 0.18: not significant
    bounds = [epsilon_lower_bound(100, v) for v in (70, 80, 90, 100)]
    assert bounds == sorted(bounds) and bounds[0] > 0


def test_lower_bound_solves_the_binomial_tail():
    eps = epsilon_lower_bound(200, 170, 0.95)
    p = 1 / (1 + math.exp(-eps))
    assert binom.sf(169, 200, p) == pytest.approx(0.05, abs=1e-3)


def test_p_value_adds_steinke_nasr_jagielskis_delta_term():
    r, v, m, eps, delta = 200, 130, 500, 0.5, 1e-4
    q = 1 / (1 + math.exp(-eps))
    f = [binom.sf(w - 1, r, q) for w in range(v + 1)]  # f(w) = P[Binomial(r, q) >= w]
    alpha = max((f[v - i] - f[v]) / i for i in range(1, v + 1))
    assert p_value(r, v, eps) == pytest.approx(f[v])
    assert p_value(r, v, eps, delta, m) == pytest.approx(f[v] + 2 * m * delta * alpha)
    assert p_value(r, v, eps, delta, m) - f[v] <= 2 * m * delta  # the delta term is at most 2 m delta


def test_bound_with_delta_keeps_an_epsilon_delta_dp_mechanism_within_its_claim():
    # randomized response at epsilon 1 that also reveals each bit with probability delta: (1, delta)-DP
    eps, delta, m, runs = 0.5, 0.03, 10_000, 20
    rng = np.random.default_rng(0)
    q = 1 / (1 + math.exp(-eps))
    over_pure, over = 0, 0
    for _ in range(runs):
        right = int(((rng.random(m) < delta) | (rng.random(m) < q)).sum())
        over_pure += epsilon_lower_bound(m, right) > eps
        over += epsilon_lower_bound(m, right, delta=delta, canaries=m) > eps
    assert over_pure > runs / 2  # ignoring delta, a true (epsilon, delta)-DP mechanism "exceeds" its claim
    assert over <= 0.05 * runs + 1


def test_canaries_stay_in_each_columns_domain(adult):
    canaries = make_canaries(adult, TableSchema.detect(adult), 200, np.random.default_rng(0))
    assert list(canaries.columns) == list(adult.columns) and canaries.dtypes.equals(adult.dtypes)
    assert canaries["age"].between(adult["age"].min(), adult["age"].max()).all()
    assert set(canaries["workclass"]) <= set(adult["workclass"])


def test_audit_catches_a_generator_that_copies_its_training_rows(adult):
    result = audit(adult, lambda train: train.copy(), canaries=200, seed=0)
    assert result.correct == result.guesses and result.empirical_epsilon > 2.0
    assert result.attack_auc > 0.95 and result.claimed_epsilon is None


def test_audit_of_a_dp_model_stays_within_its_claim(adult, tiny):
    def fit_and_sample(train: pd.DataFrame) -> pd.DataFrame:
        schema = schema_from_metadata(json.loads(adult_metadata_path().read_text()), train)
        synth = Synthesizer(model="pairwise", epsilon=1.0, delta=1e-4, metadata=schema,
                            **tiny("pairwise", epochs=2)).fit(train)
        return synth.sample(len(train), seed=0)

    result = audit(adult, fit_and_sample, canaries=200, seed=0, claimed_epsilon=1.0, claimed_delta=1e-4)
    assert result.empirical_epsilon <= 1.0 and result.claimed_delta == 1e-4
    assert "consistent with the claim" in result.summary() and "delta 0.0001" in result.summary()


def test_audit_refuses_too_few_canaries(adult):
    with pytest.raises(InvalidDataError, match="at least 10 canaries"):
        audit(adult, lambda t: t, canaries=5)
