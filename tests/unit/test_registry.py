"""The model registry: no silent overwrite, force works, unknown names list the known ones; a fit a model
cannot run is refused naming the models that can."""

from __future__ import annotations

import pytest

from synthgen import Sampler, Synthesizer
from synthgen.errors import ConfigError
from synthgen.models import available_models, get_model, register_model, registry
from synthgen.models.marginals import MarginalsModel
from synthgen.models.registry import Capabilities, capable_models, check_capable, unsupported
from synthgen.models.vae import TVAEModel


class Plugin(MarginalsModel):
    """A stand-in third-party model."""

    name = "plugin"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Each test works on a copy of the registry; the real one is restored afterwards (with every built-in
    model in it: one imported first during a test would register in the copy only)."""
    for name in registry.BUILTIN:
        get_model(name)
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_builtins_listed_sorted():
    names = available_models()
    assert names == sorted(names)
    assert {"ctgan", "tvae", "marginals"} <= set(names)


def test_register_and_get():
    register_model("plugin", Plugin)
    assert get_model("plugin") is Plugin
    assert "plugin" in available_models()
    register_model("plugin", Plugin)  # the same class again is a no-op, not an error
    assert get_model("plugin") is Plugin


def test_refuses_silent_overwrite():
    original = get_model("ctgan")
    with pytest.raises(
        ConfigError,
        match=r"a model named 'ctgan' is already registered "
        r"\(fix: pick another name or force=True\)",
    ):
        register_model("ctgan", Plugin)
    assert get_model("ctgan") is original


def test_force_overwrites_and_cleanup_restores(monkeypatch):
    register_model("tvae", Plugin, force=True)
    register_model("plugin", Plugin)
    assert get_model("tvae") is Plugin
    monkeypatch.undo()  # what the fixture does after every test
    assert get_model("tvae") is TVAEModel
    assert "plugin" not in available_models()


def test_unknown_model_lists_known_names():
    known = ", ".join(available_models())
    with pytest.raises(ConfigError, match=rf"unknown model 'nope' \(fix: use one of: {known}\)"):
        get_model("nope")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        Synthesizer(model="nope")


def test_registered_plugin_trains_saves_and_loads(tmp_path, adult):
    register_model("plugin", Plugin)
    path = Synthesizer(model="plugin").fit(adult).save(tmp_path / "p.sgm")
    sampler = Sampler.load(path)
    assert type(sampler.model) is Plugin
    assert list(sampler.sample(5, seed=0).columns) == list(adult.columns)


def test_a_refusal_says_why_and_names_the_models_that_can():
    assert str(unsupported(get_model("pairwise"), streaming=True)) == (
        "the pairwise model cannot train from a stream: it counts its one- and two-way tables over all rows at once "
        "(fix: use one of: tvae; or drop --stream)")
    with pytest.raises(ConfigError, match=r"^the marginals model cannot train with differential privacy \(fix: use "
                                          r"one of: ctgan, pairwise, tvae; or drop --epsilon\)$"):
        check_capable(get_model("marginals"), dp=True)
    assert unsupported(get_model("tvae"), dp=True, processes=True) is None


def test_a_combination_no_model_runs_says_what_to_drop():
    with pytest.raises(ConfigError, match=r"tvae model cannot train from a stream with differential privacy: DP-SGD's "
                                          r".* \(fix: drop --stream to train with DP in memory, or drop --epsilon\)$"):
        check_capable(get_model("tvae"), dp=True, streaming=True)
    assert capable_models(streaming=True, processes=True) == []


def test_the_models_offered_come_from_the_registry():
    class Streaming(Plugin):
        capabilities = Capabilities(streaming=True)

    register_model("plugin", Streaming)
    assert capable_models(streaming=True) == ["plugin", "tvae"]
    assert "use one of: plugin, tvae;" in str(unsupported(get_model("ctgan"), streaming=True))
    assert Plugin.capabilities == get_model("marginals").capabilities  # a subclass inherits what it does not say
