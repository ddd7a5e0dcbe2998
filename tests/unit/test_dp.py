"""Differential privacy: the accountant against Opacus, the budget plan, private domains, DP fits and ledgers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from synthgen import Sampler, Synthesizer
from synthgen.datasets import adult_metadata_path
from synthgen.distributed import World
from synthgen.dp.accounting import Mechanism, calibrate, default_delta, epsilon
from synthgen.dp.domain import private_domain, threshold
from synthgen.dp.training import DPSGD, DPSettings, PrivateTraining, Schedule, plan_privacy
from synthgen.errors import ConfigError, DataWarning, InvalidDataError, PrivacyError
from synthgen.schema import TableSchema, schema_from_metadata
from synthgen.transform import TabularTransformer
from synthgen.transform.encoders import BinNormalizer

DP_MODELS = ["tvae", "ctgan", "pairwise"]


def public_schema(df: pd.DataFrame) -> TableSchema:
    return schema_from_metadata(json.loads(adult_metadata_path().read_text()), df)


# ----------------------------------------------------------------------------- accounting
@pytest.mark.parametrize("accountant,cls", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_epsilon_matches_opacus_stepped_accountant(accountant, cls):
    sigma, q, steps, delta = 1.1, 0.02, 300, 1e-5
    opacus = cls()
    for _ in range(steps):
        opacus.step(noise_multiplier=sigma, sample_rate=q)
    ours = epsilon([Mechanism("DP-SGD", sigma, q, steps)], delta, accountant)
    assert ours == pytest.approx(opacus.get_epsilon(delta), rel=0.02)
    assert ours <= opacus.get_epsilon(delta) + 1e-6  # more Renyi orders can only tighten


def test_calibration_agrees_with_opacus_noise_multiplier():
    q, steps, delta = 0.05, 400, 1e-5
    ours = calibrate(2.0, delta, name="DP-SGD", sample_rate=q, steps=steps, accountant="rdp")
    theirs = get_noise_multiplier(target_epsilon=2.0, target_delta=delta, sample_rate=q, steps=steps,
                                  accountant="rdp", epsilon_tolerance=0.001)
    assert ours.noise_multiplier == pytest.approx(theirs, rel=0.02)
    assert epsilon([ours], delta, "rdp") <= 2.0


def test_calibration_composes_with_what_came_before():
    stats = Mechanism("domain statistics", 30.0, 1.0, 20)
    sgd = calibrate(1.0, 1e-5, name="DP-SGD", sample_rate=0.02, steps=500, accountant="rdp", before=(stats,))
    total = epsilon([stats, sgd], 1e-5, "rdp")
    assert 0.97 <= total <= 1.0
    assert sgd.noise_multiplier > calibrate(1.0, 1e-5, name="DP-SGD", sample_rate=0.02, steps=500,
                                            accountant="rdp").noise_multiplier


def test_too_small_budget_is_refused():
    with pytest.raises(PrivacyError, match="too small"):
        calibrate(1e-4, 1e-5, name="DP-SGD", sample_rate=0.5, steps=10_000, accountant="rdp")


def test_default_delta_is_at_most_a_tenth_of_one_over_n():
    for n in (100, 2000, 26_048, 1_000_000):
        assert default_delta(n) <= 1 / (10 * n)
        assert default_delta(n) > 1 / (10 * n) / 5
    assert default_delta(26_048) == pytest.approx(2e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"epsilon": 0}, "epsilon must be a positive"),
    ({"epsilon": -1}, "epsilon must be a positive"),
    ({"epsilon": float("inf")}, "epsilon must be a positive"),
    ({"epsilon": 1, "delta": 0.01}, "delta"),
    ({"epsilon": 1, "accountant": "gdp"}, "unknown accountant"),
    ({"epsilon": 1, "stats_share": 1.5}, "stats_share"),
    ({"epsilon": 1, "max_grad_norm": 0}, "max_grad_norm"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DPSettings(**kwargs).check(n_rows=1000)


# ----------------------------------------------------------------------------- the plan
def test_plan_refuses_without_public_domain_or_budget_share(adult):
    schedule = Schedule("DP-SGD", 0.1, 10, 1)
    with pytest.raises(ConfigError, match="--metadata .*--stats-share"):
        plan_privacy(DPSettings(1.0), TableSchema.detect(adult), n_rows=len(adult), schedule=schedule,
                     frequencies=False)


def test_plan_with_public_metadata_spends_nothing_on_the_domain(adult):
    plan = plan_privacy(DPSettings(1.0, delta=1e-4), public_schema(adult), n_rows=len(adult),
                        schedule=Schedule("DP-SGD", 0.1, 10, 1), frequencies=False)
    assert plan.stats is None and plan.delta_threshold == 0
    assert epsilon([plan.sgd], plan.delta, "rdp") <= 1.0


def test_plan_splits_the_budget(adult):
    settings = DPSettings(2.0, delta=1e-4, stats_share=0.2)
    plan = plan_privacy(settings, TableSchema.detect(adult), n_rows=len(adult),
                        schedule=Schedule("DP-SGD", 0.1, 10, 3), frequencies=True)
    acc_delta = plan.delta - plan.delta_threshold
    assert epsilon([plan.stats], acc_delta, "rdp") == pytest.approx(0.4, rel=0.01)
    assert 1.95 <= epsilon([plan.stats, plan.sgd], acc_delta, "rdp") <= 2.0
    assert plan.sgd.steps == 30 and plan.delta_threshold == pytest.approx(1e-5)


# ----------------------------------------------------------------------------- private domains
def test_public_domain_reads_no_statistics(adult):
    schema = public_schema(adult)
    domain = private_domain(adult, schema, sigma=0.0, category_threshold=np.inf, frequencies=False,
                            rng=np.random.default_rng(0))
    assert domain["workclass"].sources == {"categories": "public", "nullable": "public"}
    assert domain["age"].lower == 17 and domain["age"].upper == 90
    assert domain["capital-gain"].sources["bins"] == "fixed"  # equal-width, no data read
    assert domain["education-num"].categories == list(range(1, 17))


def test_public_domain_violations_are_clipped_or_mapped_and_named_without_values(adult):
    """Refusing them would let one row decide whether a model exists; the warning names no private value."""
    adult.loc[0, "workclass"] = "Astronaut"
    adult.loc[1, "age"] = 120
    with pytest.warns(DataWarning) as caught:
        domain = private_domain(adult, public_schema(adult), sigma=0.0, category_threshold=np.inf,
                                frequencies=False, rng=np.random.default_rng(0))
    text = " ".join(str(w.message) for w in caught)
    assert "'workclass'" in text and "'age'" in text and "clipped" in text
    assert "Astronaut" not in text and "120" not in text
    assert domain["age"].upper == 90 and "Astronaut" not in domain["workclass"].categories


def test_noisy_domain_keeps_zero_spike_and_suppresses_rare_categories():
    rng = np.random.default_rng(0)
    n = 5000
    df = pd.DataFrame({"gain": np.where(rng.random(n) < 0.9, 0, rng.integers(1000, 20000, n)),
                       "city": rng.choice(["a", "b", "c"], n), "age": rng.integers(18, 80, n)})
    df.loc[0, "city"] = "unique-person-town"
    schema = TableSchema.detect(df)
    sigma = 5.0
    tau = threshold(sigma, 1e-6, 1)
    domain = private_domain(df, schema, sigma=sigma, category_threshold=tau, frequencies=False,
                            rng=np.random.default_rng(1))
    assert "unique-person-town" not in domain["city"].categories and domain["city"].nullable
    gain = domain["gain"]
    assert 0.0 in [lo for lo, hi in zip(gain.lows, gain.highs, strict=True) if lo == hi]
    assert gain.lower == 0 and 16_384 <= gain.upper <= 32_768
    assert 18 <= domain["age"].lower <= 20 and 77 <= domain["age"].upper <= 80
    tr = TabularTransformer().fit(df, schema, domain=domain)
    back = tr.inverse_transform(tr.transform(df))
    assert (back["gain"] == 0).mean() == pytest.approx((df["gain"] == 0).mean(), abs=0.002)
    assert back.loc[0, "city"] is np.nan or pd.isna(back.loc[0, "city"])  # suppressed -> null


def test_spurious_top_bucket_bound_does_not_break_an_integer_column(monkeypatch):
    """Noise may mark the 2^63 bucket as present (1% per column): bounds past int64 stay usable."""
    from synthgen.dp import domain as domain_module

    original = domain_module.Measure.__call__

    def spurious_top(self, counts):
        noisy = original(self, counts)
        if len(counts) == 2 * len(domain_module.EXPONENTS) + 1:  # the bounds histogram
            noisy[-1] += 1e6
        return noisy

    monkeypatch.setattr(domain_module.Measure, "__call__", spurious_top)
    df = pd.DataFrame({"age": np.random.default_rng(0).integers(18, 80, 2000)})
    domain = private_domain(df, TableSchema.detect(df), sigma=5.0, category_threshold=30.0, frequencies=False,
                            rng=np.random.default_rng(1))
    age = domain["age"]
    assert isinstance(age.upper, float) and age.lower <= 18 and age.upper > 2.0**40  # widened, not broken
    tr = TabularTransformer().fit(df, TableSchema.detect(df), domain=domain)
    back = tr.inverse_transform(tr.transform(df))
    assert back["age"].dtype == df["age"].dtype and back["age"].between(age.lower, age.upper).all()


def test_lone_bucket_barely_over_the_bar_is_noise_but_a_strong_one_is_data(monkeypatch):
    """A lone magnitude bucket just over the bar (what noise gives 1 column in 100) does not stretch
    the bounds; an isolated bucket with many rows (capital-gain's 99,999) does."""
    from synthgen.dp import domain as domain_module

    original = domain_module.Measure.__call__
    sigma = 5.0

    def spurious_top(self, counts):
        noisy = original(self, counts)
        if len(counts) == 2 * len(domain_module.EXPONENTS) + 1:
            noisy[-1] = domain_module._clear(sigma, len(counts)) + 0.5 * sigma  # over the bar, alone
        return noisy

    monkeypatch.setattr(domain_module.Measure, "__call__", spurious_top)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 3000),
                       "gain": np.r_[np.zeros(2700, dtype=np.int64), rng.integers(70_000, 100_000, 300)]})
    domain = private_domain(df, TableSchema.detect(df), sigma=sigma, category_threshold=30.0, frequencies=False,
                            rng=np.random.default_rng(1))
    assert domain["age"].upper <= 90 and domain["gain"].upper >= 99_000


def test_a_column_in_one_weak_bucket_keeps_its_bounds(monkeypatch):
    """All values in one power-of-two bucket whose count clears the first bar only: it stands alone,
    so it is kept (a lone bucket is dropped only when another one is kept)."""
    from synthgen.dp import domain as domain_module

    def exact(self, counts):  # no noise, still counted as a measurement
        self.calls += 1
        return counts.astype(float)

    monkeypatch.setattr(domain_module.Measure, "__call__", exact)
    df = pd.DataFrame({"hours": np.arange(25) + 35})  # 25 rows in [32, 64): 5 sigma, between the two bars
    domain = private_domain(df, TableSchema.detect(df), sigma=5.0, category_threshold=30.0, frequencies=False,
                            rng=np.random.default_rng(1))
    assert 32 <= domain["hours"].lower <= 35 and 59 <= domain["hours"].upper <= 64


def test_category_threshold_bounds_the_release_probability():
    sigma, delta = 10.0, 1e-6
    tau = threshold(sigma, delta, 3)
    from scipy.stats import norm
    assert norm.sf((tau - 1) / sigma) == pytest.approx(delta / 3, rel=1e-6)


def test_bin_normalizer_round_trip():
    enc = BinNormalizer([0, 1, 10], [0, 10, 100], [0.8, 0.1, 0.1])
    values = np.array([0.0, 0.5, 3.0, 9.9, 10.0, 55.0, 99.0])
    alpha, mode = enc.transform(values, np.random.default_rng(0))
    assert list(mode) == [0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(enc.inverse(alpha, mode)[[0, 2, 5]], [0.0, 3.0, 55.0])


# ----------------------------------------------------------------------------- DP fits and ledgers
@pytest.fixture(scope="module")
def dp_fits(_adult, tiny):
    out = {}
    for name in DP_MODELS:
        params = tiny(name, epochs=2, batch_size=200)
        out[name] = Synthesizer(model=name, seed=0, epsilon=3.0, delta=1e-4, stats_share=0.2,
                                metadata=public_schema(_adult), deterministic=True, **params).fit(_adult)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", DP_MODELS)
def test_ledger_matches_what_training_did(name, dp_fits):
    synth = dp_fits[name]
    led = synth.ledger
    assert led["differential_privacy"] and led["steps"] == led["steps_planned"] > 0
    assert led["epsilon"] <= led["epsilon_target"] and led["epsilon"] >= 0.95 * led["epsilon_target"]
    # the model's own accountant saw exactly the ledger's schedule
    assert synth.model.private.accountant.history == [(led["noise_multiplier"], led["sample_rate"], led["steps"])]
    # recomputing from the listed mechanisms with a fresh Opacus accountant gives the ledger's epsilon
    acc = RDPAccountant()
    acc.history = [(m["noise_multiplier"], m["sample_rate"], m["steps"]) for m in led["mechanisms"]]
    assert acc.get_epsilon(led["delta_split"]["accountant"]) == pytest.approx(led["epsilon"], rel=0.01)
    assert set(led["sources"]) == set(synth.transformer.schema.names)


@pytest.mark.slow
def test_dp_sgd_is_poisson_sampled(dp_fits):
    led = dp_fits["tvae"].ledger
    assert led["mechanism"] == "DP-SGD" and led["sample_rate"] == pytest.approx(200 / 600)
    spec = DPSGD(noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.1, steps_per_epoch=1, epochs=1,
                 accountant="rdp", secure=False, seed=0)
    training = PrivateTraining(spec, 1000, torch.device("cpu"))
    sizes = [len(training.batch()) for _ in range(200)]
    assert 90 < np.mean(sizes) < 110 and np.std(sizes) > 3  # binomial, not a fixed batch size


def _rank_gradient(rank: int, ranks: int, expected_batch: int, clipped_sum: torch.Tensor, sigma: float,
                   monkeypatch) -> torch.Tensor:
    """Rank ``rank``'s share of the step's gradient from Opacus' distributed DP optimizer (the all-reduce
    adds the shares): rank 0 adds the noise to its clipped sum, each divides by its expected batch."""
    from opacus.optimizers import DistributedDPOptimizerFastGradientClipping

    monkeypatch.setattr(torch.distributed, "get_rank", lambda: rank)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: ranks)
    param = torch.nn.Parameter(torch.zeros(clipped_sum.numel(), dtype=torch.float64))
    opt = DistributedDPOptimizerFastGradientClipping(
        torch.optim.SGD([param], lr=1.0), noise_multiplier=sigma, max_grad_norm=1.0,
        expected_batch_size=expected_batch, generator=torch.Generator().manual_seed(rank))
    param.summed_grad = clipped_sum.clone()
    opt.add_noise()
    opt.scale_grad()
    return param.grad / ranks  # reduce_gradients: the sum over ranks, divided by the world size


@pytest.mark.parametrize(("n", "batch", "ranks"), [(1001, 13, 2), (1001, 60, 8), (999, 500, 3)])
def test_distributed_dp_sgd_noise_is_the_planned_sigma(n, batch, ranks, monkeypatch):
    # effective sigma: the noise's std over the most one row (clipped to norm 1) moves the update;
    # with each rank dividing by its own round(q n_r), n = 1001, batch 13 on 2 ranks gave 6/7 sigma
    sigma = 1.3
    spec = DPSGD(noise_multiplier=sigma, max_grad_norm=1.0, sample_rate=batch / n, steps_per_epoch=1, epochs=1,
                 accountant="rdp", secure=False, seed=0)
    worlds = [World(rank, ranks) for rank in range(ranks)]
    batches = [PrivateTraining(spec, len(w.rows(n)), torch.device("cpu"), w, total_rows=n).expected_batch
               for w in worlds]
    assert len(set(batches)) == 1 and batches[0] == round(batch / ranks)
    zeros = torch.zeros(200_000, dtype=torch.float64)
    noise = sum(_rank_gradient(r, ranks, b, zeros, sigma, monkeypatch) for r, b in enumerate(batches))
    one_row = max(float(_rank_gradient(r, ranks, b, torch.ones(1, dtype=torch.float64), 0.0, monkeypatch))
                  for r, b in enumerate(batches))
    assert float(noise.std()) / one_row == pytest.approx(sigma, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", DP_MODELS)
def test_dp_model_samples_the_domain_and_saves_its_ledger(name, dp_fits, tmp_path):
    synth = dp_fits[name]
    out = synth.sample(300, seed=0)
    assert list(out.columns) == list(synth.transformer.schema.names) and len(out) == 300
    path = synth.save(tmp_path / "dp.sgm")
    privacy = Sampler.load(path).privacy
    assert privacy["differential_privacy"] is True and privacy["epsilon"] == synth.ledger["epsilon"]
    assert "NOT FOR RELEASE" in privacy["deterministic"]


@pytest.mark.slow
def test_deterministic_noise_reproduces_and_secure_noise_does_not(_adult, tiny):
    def fit(**kw):
        synth = Synthesizer(model="tvae", seed=0, epsilon=3.0, delta=1e-4, metadata=public_schema(_adult),
                            **tiny("tvae", epochs=1, batch_size=200), **kw).fit(_adult)
        return synth.model.state_tensors()["decoder.net.0.weight"]

    assert torch.equal(fit(deterministic=True), fit(deterministic=True))
    assert not torch.equal(fit(), fit())


def test_non_dp_models_and_options_are_refused(adult):
    with pytest.raises(ConfigError, match=r"marginals model cannot train with differential privacy \(fix: use one of: "
                                          r"ctgan, pairwise, tvae"):
        Synthesizer(model="marginals", epsilon=1.0)
    with pytest.raises(ConfigError, match="pac=1"):
        Synthesizer(model="ctgan", epsilon=1.0, pac=10)


def test_budget_too_small_for_training_fails_before_training(adult, tiny):
    synth = Synthesizer(model="tvae", epsilon=1e-3, delta=1e-4, metadata=public_schema(adult),
                        **tiny("tvae", epochs=50, batch_size=300))
    with pytest.raises(PrivacyError, match="too small"):
        synth.fit(adult)


@pytest.mark.parametrize("public,frequencies", [(False, False), (False, True), (True, True), (True, False)])
def test_every_noisy_histogram_is_paid_for(adult_nulls, public, frequencies, monkeypatch):
    """The private domain measures exactly the histograms the plan charged the accountant for."""
    from synthgen.dp import domain as domain_module
    from synthgen.dp.domain import plan_domain

    calls = []
    original = domain_module.Measure.__call__

    def counting(self, counts):
        calls.append(len(counts))
        return original(self, counts)

    monkeypatch.setattr(domain_module.Measure, "__call__", counting)
    schema = TableSchema.detect(adult_nulls)
    if public:
        schema = public_schema(adult_nulls.fillna({"workclass": "?", "age": 30}))
        adult_nulls = adult_nulls.fillna({"workclass": "?", "age": 30})
    private_domain(adult_nulls, schema, sigma=0.5, category_threshold=3.0, frequencies=frequencies,
                   rng=np.random.default_rng(0))
    assert len(calls) == plan_domain(schema, measure=True, frequencies=frequencies).histograms > 0


@pytest.mark.slow
def test_dp_model_file_keeps_no_unnoised_statistic(adult_nulls, tiny):
    """Losses over real rows, non-public declarations and null-revealing dtypes stay out of a DP model."""
    adult_nulls["hours-per-week"] = adult_nulls["hours-per-week"].astype(float)  # as if one null made it float
    schema = TableSchema.detect(adult_nulls)
    schema["capital-gain"].min_value = 0.0  # declared, but not public
    synth = Synthesizer(model="ctgan", epsilon=4.0, delta=1e-4, stats_share=0.5, metadata=schema,
                        **tiny("ctgan", epochs=2, batch_size=200)).fit(adult_nulls)
    manifest = synth.manifest()
    assert all(set(h) <= {"epoch", "loss_g", "seconds"} for h in manifest["training"]["history"])
    saved = {c["name"]: c for c in manifest["transformer"]["schema"]["columns"]}
    assert "min_value" not in saved["capital-gain"]
    assert saved["hours-per-week"]["dtype"] in ("int64", "Int64")
    with pytest.raises(ConfigError, match="discriminator_steps=1"):
        Synthesizer(model="ctgan", epsilon=1.0, discriminator_steps=5)


def test_dp_point_masses_from_candidates_and_public_metadata():
    """Under DP a point mass comes from noisy counts of exact-value cells chosen without the data: -1 and 0
    always, and the values public metadata declares (a top code of 999 here)."""
    rng = np.random.default_rng(0)
    n = 20_000
    pdays = np.where(rng.random(n) < 0.7, -1, np.where(rng.random(n) < 0.3, 999, rng.integers(1, 400, n)))
    df = pd.DataFrame({"pdays": pdays})
    meta = {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "public": True, "columns": {"pdays": {
        "sdtype": "numerical", "computer_representation": "Int64", "min_value": -1, "max_value": 999,
        "nullable": False, "point_masses": [999]}}}
    schema = schema_from_metadata(meta, df)
    dom = private_domain(df, schema, sigma=2.0, category_threshold=np.inf, frequencies=False,
                         rng=np.random.default_rng(1))["pdays"]
    points = {lo for lo, hi in zip(dom.lows, dom.highs, strict=True) if lo == hi}
    assert points == {-1.0, 999.0}
    undeclared = schema_from_metadata({**meta, "columns": {"pdays": {**meta["columns"]["pdays"],
                                                                     "point_masses": None}}}, df)
    dom = private_domain(df, undeclared, sigma=2.0, category_threshold=np.inf, frequencies=False,
                         rng=np.random.default_rng(1))["pdays"]
    assert {lo for lo, hi in zip(dom.lows, dom.highs, strict=True) if lo == hi} == {-1.0}


def test_point_masses_must_be_numbers_on_a_numerical_column():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    meta = {"columns": {"a": {"sdtype": "numerical", "point_masses": ["zero"]},
                        "b": {"sdtype": "categorical", "point_masses": [0]}}}
    with pytest.raises(InvalidDataError, match="'a'.*point_masses.*'b'.*point_masses"):
        schema_from_metadata(meta, df)
