"""Generative models behind a registry. The built-in models are imported when first asked for
(``get_model``), so listing their names imports no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthgen.models.registry import available_models, get_model, register_model

if TYPE_CHECKING:  # for the type checker only: at run time they load on first use (below), with torch
    from synthgen.models.base import FitOptions, Model

__all__ = ["FitOptions", "Model", "available_models", "get_model", "register_model"]


def __getattr__(name: str) -> Any:
    if name in ("FitOptions", "Model"):
        from synthgen.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'synthgen.models' has no attribute {name!r}")
