"""Model registry: a plain dict behind functions that refuse silent overwrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthgen.errors import ConfigError

if TYPE_CHECKING:
    from synthgen.models.base import Model

_MODELS: dict[str, type[Model]] = {}


def register_model(name: str, cls: type[Model], *, force: bool = False) -> None:
    """Register ``cls`` under ``name``; re-registering a name needs ``force=True``."""
    if name in _MODELS and _MODELS[name] is not cls and not force:
        raise ConfigError(f"a model named {name!r} is already registered (fix: pick another name or force=True)")
    _MODELS[name] = cls


def get_model(name: str) -> type[Model]:
    """The model class registered under ``name``."""
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted(_MODELS))
        raise ConfigError(f"unknown model {name!r} (fix: use one of: {known})") from None


def available_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)
