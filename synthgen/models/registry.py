"""Model registry: a plain dict behind functions that refuse silent overwrite, and what each model can do.

Each model class declares its :class:`Capabilities` once (``capabilities``); :func:`check_capable` is the
one place that refuses a fit a model cannot run, naming the models that can. This module imports neither
torch nor any model: ``synthgen models`` and ``--help`` list names without them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from synthgen.errors import ConfigError


class ModelClass(Protocol):
    """A model class (a subclass of ``synthgen.models.base.Model``) as the registry and its callers use it:
    described here, not imported (the base module imports torch and this module, so this one imports neither).
    """

    name: str
    #: the dataclass of its hyperparameters
    Config: Any
    capabilities: Capabilities
    dp_hyperparameters: dict[str, Any]
    dp_defaults: dict[str, Any]

    def __call__(self, **hyperparameters: Any) -> Any:
        """A new, unfitted model (a ``Model``) with these hyperparameters."""

    def restore(self, hyperparameters: dict[str, Any], layout: Any, tensors: dict[str, Any]) -> Any:
        """A fitted model (a ``Model``) rebuilt from its saved parts."""


_MODELS: dict[str, ModelClass] = {}
#: the built-in models and the modules that register them, imported on first use
BUILTIN = {"ctgan": "synthgen.models.gan", "tvae": "synthgen.models.vae", "pairwise": "synthgen.models.pairwise",
           "marginals": "synthgen.models.marginals"}
#: the model a synthesizer trains when none is named (the best on our benchmark)
DEFAULT_MODEL = "tvae"


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared once on its class (``capabilities = Capabilities(...)``).

    The training fields say which fits it runs: with differential privacy, from a stream of batches
    read from disk, across torchrun processes, and which combinations of those. ``why_not`` explains,
    in the model's own terms, a field left False (``{"streaming": "counts ... over all rows at once"}``);
    the refusal quotes it.
    """

    #: ``fit`` trains with differential privacy (``FitOptions.dp``)
    dp: bool = False
    #: ``fit`` trains from a ``BatchSource`` (minibatches streamed from disk)
    streaming: bool = False
    #: ``fit`` trains across processes (``FitOptions.world`` of several)
    processes: bool = False
    #: ... across processes with differential privacy
    dp_processes: bool = False
    #: ... from a stream with differential privacy
    dp_streaming: bool = False
    #: ... from a stream across processes
    streaming_processes: bool = False
    #: ``fit(context=...)`` conditions every row on a context row (a parent's encoded row in a relational
    #: fit), and ``sample(context=...)`` generates one row per context row
    context: bool = False
    #: ``sample(cond_index=...)`` steers generation (otherwise conditions are rejection-only)
    conditions: bool = False
    #: ``sample`` leaves each one-hot block as logits, for the decoder to draw a value from their
    #: softmax (``TabularTransformer.inverse_transform(uniforms=)``, as the Sampler does); otherwise
    #: the blocks hold the values chosen (decoded by argmax)
    draws_categories: bool = False
    #: why a training field is False, by field name
    why_not: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)

    def missing(self, *, dp: bool = False, streaming: bool = False, processes: bool = False,
                context: bool = False) -> str | None:
        """The first training field a fit with these needs would use that is False, or None."""
        for field, needed in _needs(dp, streaming, processes, context).items():
            if needed and not getattr(self, field):
                return field
        return None


#: per training field: what a refusal says the model cannot do, and how to do without it
_FIELDS = {
    "dp": ("train with differential privacy", "drop --epsilon"),
    "streaming": ("train from a stream", "drop --stream"),
    "processes": ("train across processes", "run one process"),
    "dp_streaming": ("train from a stream with differential privacy",
                     "drop --stream to train with DP in memory, or drop --epsilon"),
    "dp_processes": ("train across processes with differential privacy", "run one process, or drop --epsilon"),
    "streaming_processes": ("train from a stream across processes",
                            "run it without torchrun, or drop --stream"),
    "context": ("generate a table's rows given their parent's row (a child table of several)",
                "train the child tables with tvae"),
}


def _needs(dp: bool, streaming: bool, processes: bool, context: bool = False) -> dict[str, bool]:
    """The training fields a fit uses: the single ones first, then their combinations."""
    return {"dp": dp, "streaming": streaming, "processes": processes, "context": context,
            "dp_streaming": dp and streaming, "dp_processes": dp and processes,
            "streaming_processes": streaming and processes}


def capable_models(*, dp: bool = False, streaming: bool = False, processes: bool = False,
                   context: bool = False) -> list[str]:
    """Names of the models (registered and built-in, sorted) that can run a fit with these needs.

    Imports every built-in model (and so torch): only a train command, or a refusal, asks.
    """
    return [name for name in available_models()
            if get_model(name).capabilities.missing(dp=dp, streaming=streaming, processes=processes,
                                                    context=context) is None]


def unsupported(model: ModelClass, *, dp: bool = False, streaming: bool = False,
                processes: bool = False, context: bool = False) -> ConfigError | None:
    """The error for a fit ``model`` cannot run with these needs (naming the models that can), or None."""
    caps = model.capabilities
    field = caps.missing(dp=dp, streaming=streaming, processes=processes, context=context)
    if field is None:
        return None
    what, without = _FIELDS[field]
    why = caps.why_not.get(field)
    able = capable_models(dp=dp, streaming=streaming, processes=processes, context=context)
    fix = f"use one of: {', '.join(able)}; or {without}" if able else without
    return ConfigError(f"the {model.name} model cannot {what}{f': {why}' if why else ''} (fix: {fix})")


def check_capable(model: ModelClass, *, dp: bool = False, streaming: bool = False, processes: bool = False,
                  context: bool = False) -> None:
    """Refuse a fit ``model`` cannot run: with differential privacy (``dp``), from a stream
    (``streaming``), across processes (``processes``), or a combination of them.

    Raises:
        ConfigError: naming what it cannot do, why, and the models that can.
    """
    error = unsupported(model, dp=dp, streaming=streaming, processes=processes, context=context)
    if error is not None:
        raise error


def register_model(name: str, cls: ModelClass, *, force: bool = False) -> None:
    """Register ``cls`` under ``name``; re-registering a name needs ``force=True``."""
    if name in _MODELS and _MODELS[name] is not cls and not force:
        raise ConfigError(f"a model named {name!r} is already registered (fix: pick another name or force=True)")
    _MODELS[name] = cls


def get_model(name: str) -> ModelClass:
    """The model class registered under ``name`` (a built-in one is imported now)."""
    if name not in _MODELS and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(available_models())
        raise ConfigError(f"unknown model {name!r} (fix: use one of: {known})") from None


def available_models() -> list[str]:
    """Names of all registered and built-in models, sorted (imports none of them)."""
    return sorted(set(_MODELS) | set(BUILTIN))
