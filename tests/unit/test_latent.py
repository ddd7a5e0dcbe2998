"""The VAE's learned latent mixture and the one-hot calibration (synthgen/models/latent.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen import Sampler, Synthesizer
from synthgen.models.latent import ROWS_PER_COMPONENT, LatentMixture, marginal_bias
from synthgen.models.layers import Segments


def _codes(rows: int, dim: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes in two far-apart clusters (an N(0, I) prior would put most draws between them)."""
    rng = np.random.default_rng(seed)
    centre = np.where(rng.random(rows) < 0.3, -4.0, 4.0)[:, None]
    return centre + 0.5 * rng.standard_normal((rows, dim)), np.full((rows, dim), 0.01)


def test_mixture_samples_where_the_codes_are():
    mu, var = _codes(4000)
    mixture = LatentMixture.fit(mu, var, components=4, seed=0)
    z = mixture.sample(20_000, np.random.default_rng(1)).numpy()
    assert abs((z[:, 0] < 0).mean() - 0.3) < 0.02  # the clusters' shares
    assert (np.abs(np.abs(z[:, 0]) - 4) < 2).mean() > 0.99  # nothing in the hole between them
    again = mixture.sample(20_000, np.random.default_rng(1)).numpy()
    np.testing.assert_array_equal(z, again)


def test_mixture_components_follow_the_table_size():
    mu, var = _codes(ROWS_PER_COMPONENT * 3)
    assert len(LatentMixture.fit(mu, var, components=10, seed=0).weights) == 3
    assert LatentMixture.fit(mu[: ROWS_PER_COMPONENT - 1], var[: ROWS_PER_COMPONENT - 1], 10, seed=0) is None


def test_mixture_tensors_round_trip_and_are_checked():
    mu, var = _codes(2000)
    mixture = LatentMixture.fit(mu, var, components=2, seed=0)
    tensors = mixture.tensors("latent.")
    back = LatentMixture.from_tensors(tensors, "latent.", dim=4)
    torch.testing.assert_close(back.scale_tril, mixture.scale_tril)
    assert LatentMixture.from_tensors({}, "latent.", dim=4) is None  # a file from before the mixture
    with pytest.raises(ValueError, match="latent.means"):
        LatentMixture.from_tensors(tensors, "latent.", dim=5)
    with pytest.raises(ValueError, match="not a distribution"):
        LatentMixture.from_tensors({**tensors, "latent.weights": -tensors["latent.weights"]}, "latent.", dim=4)
    with pytest.raises(ValueError, match="1 to 64"):
        LatentMixture.from_tensors({"latent.weights": torch.ones(65)}, "latent.", dim=4)


def test_marginal_bias_matches_each_block_to_its_target():
    rng = torch.Generator().manual_seed(0)
    segment = np.array([0, 0, 0, 1, 1])
    blocks = Segments(np.arange(5), segment, torch.device("cpu"))
    logits = torch.randn(5000, 5, generator=rng) + torch.tensor([2.0, 0.0, -1.0, 0.0, 3.0])
    target = torch.tensor([0.2, 0.5, 0.3, 0.9, 0.1])
    bias = marginal_bias(logits, blocks, target)
    torch.testing.assert_close(blocks.softmax(logits + bias).mean(0), target, atol=2e-3, rtol=0)
    absent = marginal_bias(logits, blocks, torch.tensor([0.5, 0.5, 0.0, 0.5, 0.5]))
    assert float(blocks.softmax(logits + absent).mean(0)[2]) < 1e-3  # a share no row has is not drawn


def test_tvae_samples_from_its_mixture_and_keeps_it_in_the_file(adult, tiny, tmp_path):
    synth = Synthesizer(model="tvae", seed=0, progress=False, **tiny("tvae")).fit(adult)
    assert synth.model.latent is not None and len(synth.model.latent.weights) == len(adult) // ROWS_PER_COMPONENT
    path = synth.save(tmp_path / "m.sgm")
    np.testing.assert_array_equal(Sampler.load(path).model.latent.means, synth.model.latent.means)
    assert Sampler.load(path).sample(300, seed=3).equals(synth.sample(300, seed=3))


def test_tvae_calibration_gives_the_training_shares(adult, tiny):
    """Categories come back at their training shares even from a barely trained model."""
    hp = tiny("tvae", epochs=1, batch_size=600)  # one step: the decoder's shares are far from the data's
    raw = Synthesizer(model="tvae", seed=0, progress=False, calibrate=False, **hp).fit(adult).sample(20_000, seed=1)
    cal = Synthesizer(model="tvae", seed=0, progress=False, **hp).fit(adult).sample(20_000, seed=1)
    real = adult["education"].value_counts(normalize=True)
    gap = {name: (df["education"].value_counts(normalize=True).reindex(real.index, fill_value=0) - real).abs().max()
           for name, df in (("raw", raw), ("calibrated", cal))}
    assert gap["calibrated"] < 0.015 < gap["raw"]


def test_tvae_without_a_mixture_samples_the_standard_normal(adult, tiny):
    synth = Synthesizer(model="tvae", seed=0, progress=False, latent_components=0, **tiny("tvae")).fit(adult)
    assert synth.model.latent is None and "latent.weights" not in synth.model.state_tensors()


def test_dp_tvae_reads_no_rows_after_training(adult, tiny, monkeypatch):
    """The mixture and the calibration read the rows without noise: under DP neither runs."""
    from synthgen.models import vae

    def refuse(*args, **kwargs):
        raise AssertionError("read the training rows after a DP fit")

    monkeypatch.setattr(vae.TVAEModel, "_encode_training_rows", refuse)
    synth = Synthesizer(model="tvae", seed=0, progress=False, epsilon=5.0, stats_share=0.2, **tiny("tvae")).fit(adult)
    assert synth.model.latent is None and "latent.weights" not in synth.model.state_tensors()
