"""Synthesizer(target=): tvae generates each row given its target class, drawn at the training class shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen import Sampler, Synthesizer
from synthgen.artifact import read_model_file, write_model_file
from synthgen.checkpoint_file import read_checkpoint, write_checkpoint
from synthgen.errors import ConfigError, IntegrityError
from synthgen.relational.synthesizer import RelationalSynthesizer
from synthgen.synthesizer import TARGET_RAW_QUANTITY

SMALL = {"epochs": 2, "batch_size": 200, "compress_dims": (32,), "decompress_dims": (32,), "embedding_dim": 16}


@pytest.fixture(scope="module")
def conditioned(_adult):
    return Synthesizer(model="tvae", seed=0, target="income", **SMALL).fit(_adult)


def test_the_class_comes_at_the_training_share(conditioned, _adult):
    real = float((_adult["income"] == ">50K").mean())
    rows = conditioned.sample(20_000, seed=1)
    share = float((rows["income"] == ">50K").mean())
    sigma = np.sqrt(real * (1 - real) / len(rows))
    assert abs(share - real) < 4 * sigma
    shares = conditioned.model.target_shares
    categories = conditioned.transformer.categories("income")
    assert shares is not None and float(shares[categories.index(">50K")]) == pytest.approx(real, abs=1e-6)


def test_the_span_is_the_targets_block(conditioned):
    layout = conditioned.transformer.layout
    column = conditioned.transformer.fitted_schema.names.index("income")
    assert layout.cond_keys[conditioned.model.config.target_span] == (column, "category")


def test_the_model_generates_the_class_asked_for(conditioned):
    """At model level (no Sampler filter behind it): every row's target block decodes to the asked class."""
    model, layout = conditioned.model, conditioned.transformer.layout
    start, width = layout.cond_spans[model.config.target_span]
    first = sum(w for _, w in layout.cond_spans[:model.config.target_span])
    for c in range(width):
        rows = model.sample(2000, seed=c, cond_index=first + c)
        assert (rows[:, start:start + width].argmax(1) == c).all()
        assert np.isinf(rows[:, start:start + width]).sum() == 2000 * (width - 1)  # the others: probability 0
    drawn = model.sample(4000, seed=9)[:, start:start + width].argmax(1)
    assert 0 < (drawn == 1).mean() < 1  # unasked: both classes


def test_a_condition_on_the_target_generates_that_class(conditioned):
    sampler = conditioned.sampler()
    assert sampler._cond_index({"income": ">50K"}) is not None  # steered, not filtered
    assert sampler._cond_index({"sex": "Female"}) is None  # any other column is filtered
    rows = sampler.sample(3000, seed=2, conditions={"income": ">50K"})
    assert len(rows) == 3000 and (rows["income"] == ">50K").all()
    # the rows of a class differ from the rows of the other: the rest of the row is learned given it
    other = sampler.sample(3000, seed=2, conditions={"income": "<=50K"})
    assert not rows.drop(columns="income").equals(other.drop(columns="income"))


def test_the_model_file_keeps_the_target(conditioned, tmp_path):
    path = conditioned.save(tmp_path / "m.sgm")
    loaded = Sampler.load(path)
    assert loaded.sample(500, seed=3).equals(conditioned.sample(500, seed=3))
    manifest, tensors = read_model_file(path)
    assert manifest["training"]["target"] == "income"
    assert TARGET_RAW_QUANTITY in manifest["privacy"]["raw_quantities"]
    assert tensors["target.shares"].shape == (2,)


def test_damaged_class_shares_are_refused(conditioned, tmp_path):
    manifest, tensors = read_model_file(conditioned.save(tmp_path / "m.sgm"))
    path = write_model_file(tmp_path / "bad.sgm", manifest, {**tensors, "target.shares": torch.tensor([-1.0, 0.5])})
    with pytest.raises(IntegrityError, match="target.shares"):
        Sampler.load(path)


def test_a_file_without_a_target_has_no_target_tensor(_adult, tmp_path):
    plain = Synthesizer(model="tvae", seed=0, **SMALL).fit(_adult)
    assert plain.model.config.target_span == -1 and "target.shares" not in plain.model.state_tensors()
    assert "target" not in plain.manifest()["training"]
    assert TARGET_RAW_QUANTITY not in plain.manifest()["privacy"]["raw_quantities"]


@pytest.mark.parametrize("settings,message", [
    ({"target": "salary"}, "not a column of the table.*income"),
    ({"target": "age"}, "age.*is integer.*categorical"),
    ({"target": "income", "model": "ctgan"}, "ctgan does not generate rows given a target"),
    ({"target": "income", "epsilon": 1.0}, "without noise"),
    ({"target_span": 3}, "target_span is set from the target column"),
])
def test_bad_targets_are_refused_with_a_fix(_adult, settings, message):
    params = {"model": "tvae", **SMALL, **settings}
    if params["model"] != "tvae":
        params = {"model": params["model"], "target": params["target"], "epochs": 1}
    with pytest.raises(ConfigError, match=message) as refused:
        Synthesizer(**params).fit(_adult)
    assert "(fix: " in str(refused.value)


def test_a_boolean_target(_adult):
    table = _adult.assign(rich=_adult["income"] == ">50K").drop(columns="income")
    synth = Synthesizer(model="tvae", seed=0, target="rich", **SMALL).fit(table)
    rows = synth.sample(300, seed=1, conditions={"rich": True})
    assert rows["rich"].dtype == bool and rows["rich"].all()


def test_a_target_is_refused_beside_a_context_and_for_several_tables(_adult):
    with pytest.raises(ConfigError, match="given their parent, not a target class"):
        Synthesizer(model="tvae", target="income", **SMALL).fit(_adult, context=np.zeros((len(_adult), 2), np.float32))
    for given in ("target", "target_span"):
        with pytest.raises(ConfigError, match="applies to a single table"):
            RelationalSynthesizer(**{given: "income"})


def test_a_checkpoint_resumes_with_its_target(_adult, tmp_path):
    ckpt = tmp_path / "m.ckpt"
    whole = Synthesizer(model="tvae", seed=4, target="income", **SMALL).fit(_adult)
    Synthesizer(model="tvae", seed=4, target="income", **SMALL).fit(_adult, checkpoint=ckpt, checkpoint_every=1)
    body, _ = read_checkpoint(ckpt)
    assert body["target"] == "income" and "target_span" not in body["hyperparameters"]
    resumed = Synthesizer.from_checkpoint(ckpt).fit(_adult, resume_from=ckpt)
    assert resumed.target == "income"
    a, b = whole.model.state_tensors(), resumed.model.state_tensors()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the same settings given directly resume too; another target is refused
    Synthesizer(model="tvae", seed=4, target="income", **SMALL).fit(_adult, checkpoint=ckpt, checkpoint_every=1)
    with pytest.raises(ConfigError, match="other settings.*target"):
        Synthesizer(model="tvae", seed=4, target="sex", **SMALL).fit(_adult, resume_from=ckpt)


def test_a_checkpoint_written_before_targets_resumes(_adult, tmp_path):
    """A checkpoint's hyperparameters lack those added since (class_latents) and its body the target."""
    ckpt = tmp_path / "m.ckpt"
    whole = Synthesizer(model="tvae", seed=4, **SMALL).fit(_adult)
    Synthesizer(model="tvae", seed=4, **SMALL).fit(_adult, checkpoint=ckpt, checkpoint_every=1)
    body, tensors = read_checkpoint(ckpt)
    body.pop("target")
    body["hyperparameters"].pop("class_latents")
    write_checkpoint(ckpt, body, tensors)
    resumed = Synthesizer.from_checkpoint(ckpt).fit(_adult, resume_from=ckpt)
    a, b = whole.model.state_tensors(), resumed.model.state_tensors()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="other settings.*hyperparameters"):  # a value that differs still refuses
        Synthesizer(model="tvae", seed=4, class_latents=False, **SMALL).fit(_adult, resume_from=ckpt)


def test_a_streamed_fit_takes_a_target(_adult, tmp_path):
    path = tmp_path / "adult.parquet"
    _adult.to_parquet(path)
    synth = Synthesizer(model="tvae", seed=0, target="income", **SMALL).fit(path, stream=True, sample_rows=400)
    assert synth.summary["streamed"] and synth.summary["target"] == "income"
    rows = synth.sample(4000, seed=1)
    real = float((_adult["income"] == ">50K").mean())
    assert abs(float((rows["income"] == ">50K").mean()) - real) < 0.03


def test_each_class_decodes_codes_of_its_own_components(_adult, tmp_path, monkeypatch):
    monkeypatch.setattr("synthgen.models.latent.ROWS_PER_COMPONENT", 50)  # 600 rows: classes of 150 and 450
    synth = Synthesizer(model="tvae", seed=0, target="income", latent_components=3, **SMALL).fit(_adult)
    owner = synth.model.component_class
    assert owner is not None and sorted(set(owner.tolist())) == [0, 1] and len(owner) == len(synth.model.latent.weights)
    shares = synth.model.target_shares
    for c in (0, 1):  # a class's components weigh its share
        assert float(synth.model.latent.weights[owner == c].sum()) == pytest.approx(float(shares[c]), abs=1e-5)
    rows = synth.sample(20_000, seed=1)
    real = float((_adult["income"] == ">50K").mean())
    assert abs(float((rows["income"] == ">50K").mean()) - real) < 4 * np.sqrt(real * (1 - real) / 20_000)
    assert (synth.sample(300, seed=1, conditions={"income": ">50K"})["income"] == ">50K").all()
    loaded = Sampler.load(synth.save(tmp_path / "m.sgm"))
    assert loaded.sample(500, seed=3).equals(synth.sample(500, seed=3))
    manifest, tensors = read_model_file(tmp_path / "m.sgm")
    bad = tmp_path / "bad.sgm"
    lopsided = torch.zeros_like(owner)  # every component given to class 0: class 1 could not be generated
    latent_free = {k: v for k, v in tensors.items() if not k.startswith("latent.")}
    for weights in ({**tensors, "target.component_class": torch.full_like(owner, 5)},  # a class it lacks
                    {**tensors, "target.component_class": lopsided},
                    {**latent_free, "target.component_class": owner[:0]}):  # no mixture at all
        write_model_file(bad, manifest, weights, force=True)
        with pytest.raises(IntegrityError, match="component_class must give every class"):
            Sampler.load(bad)
