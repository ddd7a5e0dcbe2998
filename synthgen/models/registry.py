"""Model registry: a plain dict behind functions that refuse silent overwrite."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from synthgen.errors import ConfigError

if TYPE_CHECKING:
    from synthgen.models.base import Model

_MODELS: dict[str, type[Model]] = {}
#: the built-in models and the modules that register them, imported on first use
BUILTIN = {"ctgan": "synthgen.models.gan", "tvae": "synthgen.models.vae", "pairwise": "synthgen.models.pairwise",
           "marginals": "synthgen.models.marginals"}


def register_model(name: str, cls: type[Model], *, force: bool = False) -> None:
    """Register ``cls`` under ``name``; re-registering a name needs ``force=True``."""
    if name in _MODELS and _MODELS[name] is not cls and not force:
        raise ConfigError(f"a model named {name!r} is already registered (fix: pick another name or force=True)")
    _MODELS[name] = cls


def get_model(name: str) -> type[Model]:
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
