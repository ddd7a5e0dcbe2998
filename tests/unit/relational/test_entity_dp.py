"""Entity-level differential privacy: the unit is an entity with all its rows. One entity's removal must be
covered: its whole history moves at most one Poisson draw and one clipped gradient per step; the ledger says
so, and nothing in the model file is read off the rows without noise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_sequences import metadata, visits
from torch import nn

from synthgen.dp.training import DPSGD, PrivateTraining
from synthgen.errors import ConfigError, InvalidDataError
from synthgen.relational.synthesizer import RelationalSynthesizer


def spec(groups: np.ndarray, entities: int, *, rate: float = 0.5, sigma: float = 0.0) -> DPSGD:
    return DPSGD(noise_multiplier=sigma, max_grad_norm=1.0, sample_rate=rate, steps_per_epoch=1, epochs=1,
                 accountant="rdp", secure=False, seed=0, groups=groups, entities=entities)


def test_poisson_sampling_draws_whole_entities():
    groups = np.repeat(np.arange(50), np.arange(1, 51))  # entity e has e + 1 rows
    training = PrivateTraining(spec(groups, 60), len(groups), torch.device("cpu"))  # 10 entities without rows
    drawn = []
    for _ in range(300):
        rows = training.batch().numpy()
        entities = np.unique(groups[rows])
        # every drawn entity comes with all its rows, each once: one draw per entity per step
        assert len(rows) == np.isin(groups, entities).sum() == len(np.unique(rows))
        drawn.append(len(entities))
    assert training.expected_batch == 30  # the rate times the entities (those without rows count too)
    assert 22 < np.mean(drawn) < 28  # about half of the 50 entities with rows, at random
    assert np.std(drawn) > 1.5


def clipped_sum(groups: np.ndarray, entities: int, x: torch.Tensor, y: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """The summed clipped gradient of one step over ``rows`` (no noise), from the DP optimizer."""
    torch.manual_seed(0)
    module = nn.Linear(3, 1)
    with torch.no_grad():
        module.weight.fill_(0.5)
        module.bias.fill_(0.0)
    training = PrivateTraining(spec(groups, entities, rate=1.0), len(groups), torch.device("cpu"))
    gsm, opt = training.wrap(module, torch.optim.SGD(module.parameters(), lr=0.0))
    training.norms.select(training.groups[torch.as_tensor(rows)])
    loss = ((gsm(x[rows]).squeeze(1) - y[rows]) ** 2)
    training.step(gsm, opt, loss)
    return torch.cat([p.grad.flatten() for p in module.parameters()]) * training.expected_batch


def test_one_entity_moves_the_summed_gradient_by_at_most_the_clipping_norm():
    rng = np.random.default_rng(0)
    groups = np.array([0] * 200 + [1] * 3 + [2] * 5)  # entity 0 has a long history of huge losses
    x = torch.as_tensor(rng.normal(size=(len(groups), 3)) * 10, dtype=torch.float32)
    y = torch.as_tensor(rng.normal(size=len(groups)) * 100, dtype=torch.float32)
    everyone = np.arange(len(groups))
    without = np.flatnonzero(groups != 0)
    with_all, without_0 = clipped_sum(groups, 3, x, y, everyone), clipped_sum(groups, 3, x, y, without)
    moved = float((with_all - without_0).norm())
    assert moved <= 1.0 + 1e-4  # C = 1, however many rows the entity has (rows clipped alone: up to 200 C)
    assert moved > 0.99  # and exactly C: the entity's summed gradient is clipped, not each row apart
    assert float(with_all.norm()) <= 3.0 + 1e-4


def test_entity_norms_are_the_norms_of_the_summed_gradients():
    from synthgen.dp.training import EntityNorms

    rng = np.random.default_rng(1)
    groups = torch.as_tensor(rng.integers(0, 7, 40))
    layer = nn.Linear(5, 3)
    a, b = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, 3, dtype=torch.float64)
    norms = EntityNorms()
    norms.select(groups * 10 + 3)  # any ids
    out = norms.linear(layer, [a], b)
    for row in range(40):
        mine = groups == groups[row]
        weight = (b[mine].T @ a[mine]).norm()  # the entity's summed per-row gradients
        assert float(out[layer.weight][row]) == pytest.approx(float(weight))
        assert float(out[layer.bias][row]) == pytest.approx(float(b[mine].sum(0).norm()))


@pytest.fixture(scope="module")
def private():
    synth = RelationalSynthesizer(seed=0, epsilon=8.0, epochs=1, max_events=8, batch_size=200)
    return synth.fit(visits(patients=1000), metadata())


def test_entity_level_ledger(private):
    led = private.manifest()["privacy"]
    assert led["differential_privacy"] and led["unit"] == "entity"
    assert 7.6 < led["epsilon"] <= 8.0 and led["delta"] <= 1 / (10 * 1000)  # nearly the whole budget
    assert led["entities"] == {**led["entities"], "table": "patient", "count": 1000, "max_events": 8}
    for table in ("patient", "visit"):
        part = led["tables"][table]
        assert part["unit"] == "entity"
        assert 4.0 < part["epsilon_target"] < 8.0  # more than an even split: Renyi composition is tighter
    visit, patient = led["tables"]["visit"], led["tables"]["patient"]
    assert "each entity, with all its rows" in visit["sampling"] and visit["sample_rate"] == pytest.approx(0.2)
    assert visit["expected_batch_size"] == round(visit["sample_rate"] * 1000)  # entities, not rows
    assert patient["mechanism"] == "pairwise marginals"  # the entity table: one row each, noisy marginals
    names = {m["name"] for m in led["mechanisms"]}
    assert {"DP-SGD", "domain statistics"} <= names


def test_entity_level_model_file_reads_nothing_else_off_the_rows(private, tmp_path):
    manifest = private.manifest()
    visit = manifest["tables"]["visit"]
    assert visit["rows"] is None  # the number of events is private; the entities' count is not
    assert manifest["tables"]["patient"]["rows"] == 1000
    assert visit["keys"]["visit_id"] == {"kind": "integer", "start": 1, "dtype": "int64"}
    assert visit["sequence"]["min_gap"] == 0.0
    # encoders take their scales from the DP transformers' bounds, not from the rows' means
    age = next(c for c in manifest["encoders"]["patient"]["columns"] if c["name"] == "patient.age")
    low, high, _ = private.synthesizers["patient"].transformer.numeric_range("age")
    assert age["mean"] == pytest.approx((low + high) / 2)
    count = next(c for c in manifest["encoders"]["patient"]["columns"] if c["name"].startswith("patient.#children"))
    assert count["kind"] == "category" and count["categories"] == list(range(9))  # the public bounds 0 .. 8
    text = json.dumps(manifest)
    assert "#mean" not in text  # no unnoised summaries of the children
    tables = private.sample(seed=1)
    lengths = tables["visit"].patient_id.value_counts()
    assert lengths.max() <= 8  # histories capped at max_events
    for _, events in tables["visit"].groupby("patient_id", sort=False):
        assert pd.to_datetime(events.date).is_monotonic_increasing


def test_entity_level_dp_refuses_what_it_cannot_cover(shop):
    with pytest.raises((ConfigError, InvalidDataError), match="entity"):
        RelationalSynthesizer(epsilon=1.0, epochs=1).fit(shop)
    data = visits()
    data["visit"].loc[0, "patient_id"] = None
    meta = metadata()
    with pytest.raises(InvalidDataError, match="patient_id.*nulls"):
        RelationalSynthesizer(epsilon=1.0, epochs=1).fit(data, meta)


@pytest.mark.parametrize("model", ["pairwise", "tvae"])
def test_a_single_table_with_an_entity_column_is_private_per_entity(model):
    from synthgen import Synthesizer

    events = visits(patients=1500)["visit"].drop(columns=["visit_id", "date"])
    synth = Synthesizer(model=model, epsilon=4.0, stats_share=0.2, entity="patient_id", epochs=2, seed=0)
    synth.fit(events)
    led = synth.ledger
    assert led["unit"] == "entity" and "1500" in " ".join(led["raw_quantities"])
    assert ("1 / its row count" in led["sensitivity"]) == (model == "pairwise")
    assert 0 < led["epsilon"] <= 4.0
    out = synth.sample(200, seed=0)
    assert list(out.columns) == ["severity", "ward"]  # the entity column is not learned
    with pytest.raises(ConfigError, match="entity"):
        Synthesizer(entity="patient_id")


def test_pairwise_weighs_each_entity_to_at_most_one_per_table():
    from synthgen.models.pairwise import pair_counts

    codes = torch.as_tensor([[0, 2], [0, 3], [1, 3], [0, 2]])  # entity 0: rows 0, 1, 3; entity 1: row 2
    groups = torch.as_tensor([0, 0, 1, 0])
    weights = 1.0 / torch.bincount(groups).to(torch.float64)[groups]
    counts = pair_counts(codes, 4, weights)
    without = pair_counts(codes[[2]], 4, torch.ones(1, dtype=torch.float64))
    moved = counts - without  # entity 0's whole contribution
    assert float(moved[:2, 2:].abs().sum()) == pytest.approx(1.0)  # at most 1 in the (a, b) table
    assert float(moved[:2, :2].diagonal().abs().sum()) == pytest.approx(1.0)
