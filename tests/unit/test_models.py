"""Every registered model: shapes, seeding, gradient flow, save/restore; plus the shared layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthgen.errors import ConfigError, NotFittedError
from synthgen.models import FitOptions, available_models, get_model
from synthgen.models.base import MAX_LAYERS, MAX_WIDTH
from synthgen.models.conditional import ConditionalSampler
from synthgen.models.layers import FastMLP, FoldedResidualNet, LayoutOps, Segments, mlp, residual_net
from synthgen.models.pairwise import MAX_ENSEMBLE
from synthgen.models.training import TorchModel, resolve_device

MODELS = available_models()
TORCH_MODELS = [m for m in MODELS if issubclass(get_model(m), TorchModel)]
N = 257
ROWS = 300


def fit(name: str, matrix: np.ndarray, layout, tiny, seed: int = 0):
    return get_model(name)(**tiny(name)).fit(matrix, layout, FitOptions(seed=seed))


@pytest.fixture(scope="module")
def matrix(adult_matrix) -> np.ndarray:
    """The first 300 encoded Adult rows (a writable copy: models train on it)."""
    return np.array(adult_matrix[:ROWS])


@pytest.fixture(scope="module")
def fitted(matrix, adult_transformer, tiny):
    """name -> model fitted with seed 0 (shared: sample from it, do not refit it)."""
    return {name: fit(name, matrix, adult_transformer.layout, tiny) for name in MODELS}


def test_builtin_models_registered():
    assert {"ctgan", "tvae", "marginals"} <= set(MODELS)
    assert {"ctgan", "tvae"} <= set(TORCH_MODELS)


# ----------------------------------------------------------------------------- every model
@pytest.mark.parametrize("name", MODELS)
def test_sample_shape(name, fitted, adult_transformer):
    out = fitted[name].sample(N, seed=0)
    assert out.shape == (N, adult_transformer.layout.dim)
    assert np.isfinite(out).all()
    assert adult_transformer.inverse_transform(out).shape == (
        N,
        len(adult_transformer.schema.columns),
    )


@pytest.mark.parametrize("name", MODELS)
def test_sample_seeding(name, fitted):
    model = fitted[name]
    np.testing.assert_array_equal(model.sample(N, seed=5), model.sample(N, seed=5))
    assert not np.array_equal(model.sample(N, seed=5), model.sample(N, seed=6))


@pytest.mark.parametrize("name", MODELS)
def test_sample_into_a_column_major_view(name, fitted, adult_transformer):
    model, dim = fitted[name], adult_transformer.layout.dim
    wide = np.full((dim, 3 * N), np.nan, dtype=np.float32)
    got = model.sample(N, seed=5, out=wide[:, N:2 * N])
    np.testing.assert_array_equal(got, model.sample(N, seed=5))
    np.testing.assert_array_equal(wide[:, N:2 * N].T, got)
    assert np.isnan(wide[:, :N]).all() and np.isnan(wide[:, 2 * N:]).all()
    with pytest.raises(ValueError, match="out must be float32 of shape"):
        model.sample(N, seed=5, out=np.empty((dim, N), dtype=np.float64))


def test_add_gumbel_adds_in_place_and_a_zero_uniform_loses():
    from synthgen.models.layers import add_gumbel_

    class Uniforms:  # a generator that hands out the given uniforms
        def random(self, shape, dtype):
            return np.array([[0.0, 0.5, np.exp(-1.0)]], dtype=dtype)

    x = torch.tensor([[50.0, 0.0, 0.0]])
    assert add_gumbel_(Uniforms(), x) is x
    assert x[0, 0] == -torch.inf and x.argmax() == 1  # G(0.5) = -log(log 2) = 0.37 > G(1/e) = 0
    torch.testing.assert_close(x[0, 1:], torch.tensor([-np.log(np.log(2.0)), 0.0], dtype=torch.float32))


@pytest.mark.parametrize("name", MODELS)
def test_sampling_leaves_global_rng_alone(name, fitted):
    before = torch.get_rng_state()
    fitted[name].sample(N, seed=0)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("name", MODELS)
def test_state_tensors_restore_identical_samples(name, fitted, adult_transformer):
    model = fitted[name]
    tensors = {k: v.clone() for k, v in model.state_tensors().items()}
    assert tensors and all(isinstance(v, torch.Tensor) for v in tensors.values())
    again = get_model(name).restore(model.hyperparameters(), adult_transformer.layout, tensors)
    np.testing.assert_array_equal(again.sample(N, seed=3), model.sample(N, seed=3))
    for cond in (0, adult_transformer.layout.cond_dim - 1):
        np.testing.assert_array_equal(
            again.sample(N, seed=3, cond_index=cond), model.sample(N, seed=3, cond_index=cond)
        )


@pytest.mark.parametrize("name", MODELS)
def test_fitted_model_keeps_no_training_rows(name, fitted):
    """Neither the saved tensors nor the model's attributes hold the training matrix."""
    rows = ROWS
    model = fitted[name]
    assert all(rows not in t.shape for t in model.state_tensors().values())
    for attr, value in vars(model).items():
        if isinstance(value, (np.ndarray, torch.Tensor)):
            assert rows not in value.shape, attr


@pytest.mark.parametrize("name", MODELS)
def test_same_fit_seed_same_weights(name, fitted, matrix, adult_transformer, tiny):
    before = torch.get_rng_state()
    again = fit(name, matrix, adult_transformer.layout, tiny, seed=0)
    assert torch.equal(torch.get_rng_state(), before)  # seeding is scoped to the fit
    ref, got = fitted[name].state_tensors(), again.state_tensors()
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    assert len(again.history) == fitted[name].history[-1]["epoch"]


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_other_fit_seed_other_weights(name, fitted, matrix, adult_transformer, tiny):
    other = fit(name, matrix, adult_transformer.layout, tiny, seed=1)
    ref, got = fitted[name].state_tensors(), other.state_tensors()
    assert any(not torch.equal(ref[k], got[k]) for k in ref if ref[k].is_floating_point())


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_history_records_finite_losses(name, fitted):
    history = fitted[name].history
    assert [h["epoch"] for h in history] == [1]
    losses = {k: v for k, v in history[0].items() if k not in ("epoch", "seconds")}
    assert losses and all(np.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_one_step_moves_every_parameter(name, matrix, adult_transformer, tiny):
    """Gradient flow: one training step gives every parameter a gradient and changes it.

    Biases may get an exact zero gradient (the critic's output bias cancels in the Wasserstein
    loss), so the non-zero check is on weight matrices.
    """
    model = get_model(name)(**tiny(name))
    model.layout = adult_transformer.layout
    torch.manual_seed(0)
    model._setup(torch.as_tensor(matrix), 0)
    modules = {k: v for k, v in vars(model).items() if isinstance(v, torch.nn.Module)}
    params = {f"{m}.{p}": t for m, mod in modules.items() for p, t in mod.named_parameters()}
    assert len(modules) >= 2 and params
    before = {k: v.detach().clone() for k, v in params.items()}
    losses = model._train_step()
    assert all(torch.isfinite(v) for v in losses.values())
    for key, param in params.items():
        assert param.grad is not None, key
        assert param.dim() < 2 or param.grad.abs().sum() > 0, key
        assert not torch.equal(param.detach(), before[key]), key


def test_marginals_reproduce_category_shares(fitted, matrix, adult_transformer):
    out = fitted["marginals"].sample(20_000, seed=0)
    start, width = adult_transformer.layout.cond_spans[-1]  # income
    real = matrix[:, start : start + width].mean(axis=0)
    fake = out[:, start : start + width].mean(axis=0)
    np.testing.assert_allclose(fake, real, atol=0.02)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", MODELS)
def test_unknown_hyperparameter(name):
    with pytest.raises(
        ConfigError, match=rf"{name} has no hyperparameter bogus, zeta \(fix: use one of: "
    ):
        get_model(name)(zeta=1, bogus=2)


def test_batch_size_must_be_multiple_of_pac():
    with pytest.raises(
        ConfigError,
        match=r"batch_size 105 is not a multiple of pac 10 "
        r"\(fix: use a batch size such as 100\)",
    ):
        get_model("ctgan")(batch_size=105)
    get_model("ctgan")(batch_size=105, pac=5)


@pytest.mark.parametrize("name", TORCH_MODELS)
@pytest.mark.parametrize("bad", [{"epochs": 0}, {"batch_size": 0}])
def test_epochs_and_batch_size_positive(name, bad):
    with pytest.raises(ConfigError, match="epochs and batch_size must be at least 1"):
        get_model(name)(**bad)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_tvae_ema_decay_range(decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        get_model("tvae")(ema_decay=decay)


def test_tvae_samples_from_the_weight_average(matrix, adult_transformer, tiny):
    layout = adult_transformer.layout
    last = get_model("tvae")(**tiny("tvae", epochs=2)).fit(matrix, layout, FitOptions(seed=0))
    averaged = get_model("tvae")(**tiny("tvae", epochs=2, ema_decay=0.9)).fit(matrix, layout, FitOptions(seed=0))
    w_last, w_avg = last.state_tensors(), averaged.state_tensors()
    assert w_last.keys() == w_avg.keys()
    assert any(not torch.equal(w_last[k], w_avg[k]) for k in w_last)  # same run, other weights
    assert averaged.sample(50, seed=0).shape == (50, layout.dim)


def test_list_hyperparameters_become_tuples():
    model = get_model("ctgan")(generator_dim=[8, 8])
    assert model.config.generator_dim == (8, 8)
    assert model.hyperparameters()["generator_dim"] == (8, 8)


@pytest.mark.parametrize("name,bad,rule", [
    ("tvae", {"embedding_dim": "16"}, "embedding_dim must be a whole number, got '16'"),
    ("tvae", {"epochs": True}, "epochs must be a whole number, got True"),
    ("ctgan", {"generator_dim": [8, 2.5]}, r"generator_dim must be a list of whole numbers, got \(8, 2.5\)"),
    ("ctgan", {"tau": float("nan")}, "tau must be a finite number, got nan"),
    ("pairwise", {"cosine": 1}, "cosine must be true or false, got 1"),
])
def test_hyperparameter_types(name, bad, rule):
    """What a model file's manifest says is checked like what a user says (before anything is built)."""
    with pytest.raises(ConfigError, match=f"{name} hyperparameter {rule}"):
        get_model(name)(**bad)
    assert get_model("tvae")(embedding_dim=np.int64(8), lr=1).config.embedding_dim == 8  # any integer, any number


@pytest.mark.parametrize("name,bad", [
    ("tvae", {"decompress_dims": (MAX_WIDTH + 1,)}),
    ("tvae", {"embedding_dim": 0}),
    ("ctgan", {"generator_dim": (8,) * (MAX_LAYERS + 1)}),
    ("pairwise", {"hidden": (0,)}),
    ("pairwise", {"quantiles": 10**6}),
    ("marginals", {"quantiles": 0}),
])
def test_network_sizes_are_bounded(name, bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=rf"{key}=.* is out of range: each size from 1 to 65,536, at most 64 layers "
                       r"\(fix: smaller networks\)"):
        get_model(name)(**bad)


def test_pairwise_ensemble_is_bounded():
    with pytest.raises(ConfigError, match=r"ensemble=65 is more than 64 generators \(fix: a few are enough"):
        get_model("pairwise")(ensemble=MAX_ENSEMBLE + 1)
    get_model("pairwise")(ensemble=MAX_ENSEMBLE)


@pytest.mark.parametrize("name,change", [  # sizes that a regression could still build without harm
    ("tvae", {"decompress_dims": (4096, 4096)}),
    ("ctgan", {"generator_dim": (4096, 4096)}),
    ("ctgan", {"embedding_dim": 17}),
    ("pairwise", {"ensemble": MAX_ENSEMBLE, "hidden": (512,)}),
])
def test_restore_checks_shapes_before_building(name, change, fitted, adult_transformer, monkeypatch):
    """Hyperparameters that disagree with the saved tensors are refused from the networks' shapes on the meta
    device: nothing is allocated or initialized."""
    monkeypatch.setattr(torch.nn.Module, "to_empty", lambda *a, **k: pytest.fail("allocated"))
    hyperparameters = {**fitted[name].hyperparameters(), **change}
    with pytest.raises(ValueError, match=r"the weights do not fit the model the manifest describes: "
                       r"\w+\.[\w.]+ is \([\d, ]+\) in the file, \([\d, ]+\) by the manifest"):
        get_model(name).restore(hyperparameters, adult_transformer.layout, fitted[name].state_tensors())


@pytest.mark.parametrize("name", MODELS)
def test_restore_refuses_tensors_unlike_the_layout(name, fitted, adult_transformer):
    """A frequency, quantile or condition table of another shape, or one tensor more: refused, not sampled from."""
    tensors = dict(fitted[name].state_tensors())
    other = next((k for k in sorted(tensors) if not k.startswith(("generator", "decoder"))), None)
    if other is not None:
        tensors[other] = torch.cat([tensors[other], tensors[other][:1]])
    else:
        tensors["extra"] = torch.zeros(3)
    with pytest.raises(ValueError, match="the weights do not fit the model the manifest describes"):
        get_model(name).restore(fitted[name].hyperparameters(), adult_transformer.layout, tensors)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_width_and_not_fitted(name, matrix, adult_transformer, tiny):
    model = get_model(name)(**tiny(name))
    with pytest.raises(NotFittedError, match=f"the {name} model is not fitted"):
        model.sample(3, seed=0)
    with pytest.raises(
        ConfigError,
        match=rf"data has shape \({ROWS}, 5\), the layout expects width "
        rf"{adult_transformer.layout.dim}",
    ):
        model.fit(matrix[:, :5], adult_transformer.layout)


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is available"):
            resolve_device("cuda")


# ----------------------------------------------------------------------------- layers
@pytest.fixture
def layout(adult_transformer):
    return adult_transformer.layout


@pytest.fixture
def raw(layout) -> torch.Tensor:
    return torch.randn(16, layout.dim, generator=torch.Generator().manual_seed(0)) * 3


def softmax_spans(layout):
    return [
        (int(st), s.width)
        for s, st in zip(layout.spans, layout.starts, strict=True)
        if s.activation == "softmax"
    ]


def test_segment_softmax_matches_torch(layout, raw):
    ops = LayoutOps(layout, torch.device("cpu"))
    got = ops.softmax.softmax(raw[:, ops.softmax.index])
    got_log = ops.softmax.log_softmax(raw[:, ops.softmax.index])
    spans = softmax_spans(layout)
    assert len(spans) == layout.n_softmax > 10
    want = torch.cat([torch.softmax(raw[:, s : s + w], dim=1) for s, w in spans], dim=1)
    want_log = torch.cat([torch.log_softmax(raw[:, s : s + w], dim=1) for s, w in spans], dim=1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_log, want_log)


def test_segments_stable_on_huge_logits():
    seg = Segments(np.arange(5), np.array([0, 0, 1, 1, 1]), torch.device("cpu"))
    x = torch.tensor([[1000.0, -1000.0, 500.0, 500.0, -3.0]])
    out = seg.softmax(x)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, 0.5, 0.5, 0.0]]))
    assert torch.isfinite(seg.log_softmax(x)[:, [0, 2, 3]]).all()


def test_activate_applies_tanh_and_softmax_by_span(layout, raw):
    ops = LayoutOps(layout, torch.device("cpu"))
    out = ops.activate(raw, tau=0.2)
    idx = torch.as_tensor(layout.tanh_idx)
    torch.testing.assert_close(out[:, idx], torch.tanh(raw[:, idx]))
    for s, w in softmax_spans(layout):
        torch.testing.assert_close(out[:, s : s + w].sum(dim=1), torch.ones(raw.shape[0]))
        assert (out[:, s : s + w] >= 0).all()


def test_conditional_loss_is_cross_entropy_of_the_asked_span(layout, raw):
    ops = LayoutOps(layout, torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    pos = torch.randint(layout.cond_dim, (raw.shape[0],), generator=gen)
    cond = F.one_hot(pos, layout.cond_dim).float()
    offsets = np.cumsum([0] + [w for _, w in layout.cond_spans])
    want = []
    for i, p in enumerate(pos.tolist()):
        j = int(np.searchsorted(offsets, p, side="right") - 1)
        start, width = layout.cond_spans[j]
        target = torch.tensor([p - offsets[j]])
        want.append(F.cross_entropy(raw[i : i + 1, start : start + width], target))
    torch.testing.assert_close(ops.conditional_loss(raw, cond), torch.stack(want).mean())


def test_reconstruction_loss_matches_direct_formula(layout, raw, adult_matrix):
    ops = LayoutOps(layout, torch.device("cpu"))
    target = torch.as_tensor(np.array(adult_matrix[: raw.shape[0]]))
    sigma = torch.linspace(0.05, 0.5, layout.dim)
    idx = torch.as_tensor(layout.tanh_idx)
    gauss = ((target[:, idx] - torch.tanh(raw[:, idx])) ** 2 / (2 * sigma[idx] ** 2)).sum()
    gauss = gauss + torch.log(sigma[idx]).sum() * raw.shape[0]
    ce = sum(
        F.cross_entropy(raw[:, s : s + w], target[:, s : s + w].argmax(dim=1), reduction="sum")
        for s, w in softmax_spans(layout)
    )
    torch.testing.assert_close(ops.reconstruction_loss(raw, target, sigma), gauss + ce)


# ----------------------------------------------------------------------------- conditional sampling
def test_conditional_sampler_rows_have_the_category(layout, adult_matrix):
    data = torch.as_tensor(np.array(adult_matrix))
    sampler = ConditionalSampler(data, layout)
    gen = torch.Generator().manual_seed(0)
    cond, pos = sampler.sample_train(5000, gen)
    torch.testing.assert_close(cond, F.one_hot(pos, layout.cond_dim).float())
    rows = sampler.rows_for(pos, gen)
    cat_columns = torch.as_tensor(
        np.concatenate([np.arange(s, s + w) for s, w in layout.cond_spans])
    )
    assert (data[rows, cat_columns[pos]] == 1).all()
    assert len(torch.unique(pos)) > 0.8 * layout.cond_dim  # log-frequency reaches rare categories
    assert len(torch.unique(rows)) > 0.5 * data.shape[0]


def test_conditional_sampler_frequencies(layout, adult_matrix):
    sampler = ConditionalSampler(torch.as_tensor(np.array(adult_matrix)), layout)
    freq = sampler.frequencies
    assert freq.shape == (layout.cond_dim,)
    torch.testing.assert_close(freq.sum(), torch.tensor(1.0))
    start, width = layout.cond_spans[0]
    n_spans = len(layout.cond_spans)
    want = torch.as_tensor(adult_matrix[:, start : start + width].mean(axis=0)) / n_spans
    torch.testing.assert_close(freq[:width], want.float())


@pytest.mark.parametrize("hidden", [(32,), (32, 16), (8, 8, 8)])
def test_folded_generator_equals_the_trained_net(hidden):
    torch.manual_seed(0)
    net = residual_net(12 + 5, hidden, 9)
    for _ in range(3):  # give BatchNorm running statistics and affine parameters that matter
        net(torch.randn(64, 17) * 3 + 1)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    folded = FoldedResidualNet(net, dense_dim=12)
    z, pos = torch.randn(50, 12), torch.randint(5, (50,))
    with torch.no_grad():
        expected = net(torch.cat([z, F.one_hot(pos, 5).float()], dim=1))
        same_for_all = net(torch.cat([z, F.one_hot(torch.full((50,), 3), 5).float()], dim=1))
    torch.testing.assert_close(folded(z, pos), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(folded(z, 3), same_for_all, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hidden", [(32,), (64, 64)])
def test_bf16_folded_generator_keeps_the_precise_columns_float32(hidden):
    torch.manual_seed(0)
    net = residual_net(12 + 5, hidden, 9).eval()
    precise = np.array([1, 4])
    fast = FoldedResidualNet(net, dense_dim=12, dtype=torch.bfloat16, precise=precise)
    z, pos = torch.randn(200, 12), torch.randint(5, (200,))
    with torch.no_grad():
        expected = net(torch.cat([z, F.one_hot(pos, 5).float()], dim=1))
    for p, want in ((pos, expected), (2, None)):
        got = fast(z, p)
        assert got.dtype == torch.float32
        if want is not None:
            # the precise columns come from bf16-rounded hidden activations but are summed in float32:
            # close to the float32 net and, unlike a bf16 output, not on a 3-digit grid
            torch.testing.assert_close(got[:, precise], want[:, precise], atol=0.05, rtol=0.02)
            torch.testing.assert_close(got, want, atol=0.1, rtol=0.05)
            assert len(torch.unique(got[:, 1])) == len(got)


def test_fast_mlp_matches_the_decoder_and_keeps_the_precise_columns_float32():
    torch.manual_seed(0)
    net = mlp(8, (32, 32), 9).eval()
    z, precise = torch.randn(300, 8), np.array([0, 5])
    with torch.no_grad():
        expected = net(z)
    torch.testing.assert_close(FastMLP(net)(z), expected, atol=1e-5, rtol=1e-5)
    got = FastMLP(net, dtype=torch.bfloat16, precise=precise)(z)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=0.1, rtol=0.05)
    torch.testing.assert_close(got[:, precise], expected[:, precise], atol=0.05, rtol=0.02)
    assert len(torch.unique(got[:, 5])) == len(got)  # summed in float32: not on a bf16 grid
    for odd in ([torch.nn.Linear(2, 2), torch.nn.Tanh()], [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)],
                [torch.nn.Linear(2, 2), torch.nn.ReLU()]):
        with pytest.raises(TypeError, match="Linear, ReLU"):
            FastMLP(torch.nn.Sequential(*odd))


def test_sampling_precision_can_be_forced_to_float32(monkeypatch):
    from synthgen.models.layers import fast_dtype

    assert fast_dtype("cuda") == torch.float32
    monkeypatch.setenv("SYNTHGEN_PRECISION", "fp32")
    assert fast_dtype("cpu") == torch.float32


def test_exact_fp32_matmuls_keeps_float32_results_and_restores_the_setting():
    from synthgen.models.layers import exact_fp32_matmuls

    a = 1 + torch.randint(1, 8, (300, 96)).float() * 2.0**-10  # bf16 would round every entry to 1
    w = torch.randn(96, 7)
    expected = (a.double() @ w.double()).float()
    with exact_fp32_matmuls():
        got = a @ w
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.skipif(not hasattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision"),
                    reason="torch < 2.9 has no fp32_precision setting")
@pytest.mark.parametrize("exact", [True, False])
def test_exact_fp32_matmuls_sets_the_flag_only_where_exact_and_restores_it(monkeypatch, exact):
    from synthgen.models import layers

    flags = torch.backends.mkldnn.matmul
    before = flags.fp32_precision
    monkeypatch.setattr(layers, "_fast_fp32_is_exact", lambda: exact)
    with layers.exact_fp32_matmuls():
        assert flags.fp32_precision == ("bf16" if exact else before)
    assert flags.fp32_precision == before
    with pytest.raises(KeyError), layers.exact_fp32_matmuls():
        raise KeyError("inside")
    assert flags.fp32_precision == before


def test_folded_generator_without_a_one_hot_input_uses_the_bias_alone():
    torch.manual_seed(0)
    net = residual_net(12, (16, 16), 9).eval()
    folded = FoldedResidualNet(net, dense_dim=12)
    z = torch.randn(40, 12)
    with torch.no_grad():
        expected = net(z)
    torch.testing.assert_close(folded(z, None), expected, atol=1e-5, rtol=1e-5)


def test_ctgan_batch_share_across_processes_is_equal_and_whole_pac_groups():
    from synthgen.distributed import World
    from synthgen.errors import ConfigError

    model = get_model("ctgan")(batch_size=500, pac=10)
    model.world, model.total_rows = World(1, 3), 30_001
    assert model._local_batch(10_000) == 160  # 500 / 3 = 166 -> whole pac groups
    model.total_rows = 61  # partitions of 21, 20, 20 rows: every rank takes 20
    assert model._local_batch(21) == model._local_batch(20) == 20
    model.total_rows = 25  # fewer than pac rows per process
    with pytest.raises(ConfigError, match="ctgan across 3 processes needs at least"):
        model._local_batch(9)
    model.world = World()
    assert model._local_batch(25) == 20


def test_tvae_trains_in_bfloat16_where_the_cpu_is_fast_at_it(matrix, adult_transformer, tiny, monkeypatch):
    from synthgen.models.layers import fast_dtype

    fast = fit("tvae", matrix, adult_transformer.layout, tiny)
    assert fast.precision == ("bfloat16" if fast_dtype("cpu") == torch.bfloat16 else "float32")
    assert all(t.dtype == torch.float32 for t in fast.state_tensors().values())  # weights stay float32
    monkeypatch.setenv("SYNTHGEN_PRECISION", "fp32")
    exact = fit("tvae", matrix, adult_transformer.layout, tiny)
    assert exact.precision == "float32"
    assert fit("ctgan", matrix, adult_transformer.layout, tiny).precision == "float32"


def test_pairwise_counts_are_exact_beyond_float32s_integers():
    from synthgen.models.pairwise import pair_counts

    n = 2**24 + 1  # float32 stops at 2^24: one more row would leave the cell where it was (or move it by 2)
    counts = pair_counts(torch.zeros(n, 1, dtype=torch.int64), 2)
    assert counts.dtype == torch.float64 and counts[0, 0].item() == n and counts.sum().item() == n


def test_pairwise_shares_are_fractions_of_each_noisy_tables_own_total(matrix, adult_transformer):
    from synthgen.models.pairwise import attribute_codes, attributes

    class Noise:  # stands in for PrivateTraining.measure: every table's cells move, and so does its total
        groups = None  # rows are the unit

        def measure(self, table: torch.Tensor) -> torch.Tensor:
            return table + torch.arange(table.numel(), dtype=table.dtype).view_as(table) % 2 * 0.1

    model = get_model("pairwise")()
    model.private, attrs = Noise(), attributes(adult_transformer.layout)
    offsets = np.cumsum([0] + [a.width for a in attrs])
    model._slices = [slice(int(offsets[j]), int(offsets[j + 1])) for j in range(len(attrs))]
    codes = torch.as_tensor(attribute_codes(matrix, adult_transformer.layout, attrs) + offsets[:-1])
    one_way, two_way, _ = model._measure(codes, int(offsets[-1]), len(matrix))
    for a, sa in enumerate(model._slices):
        assert float(one_way[sa].sum()) == pytest.approx(1.0, abs=1e-5)
        for sb in model._slices[a + 1:]:
            assert float(two_way[sa, sb].sum()) == pytest.approx(1.0, abs=1e-5)
