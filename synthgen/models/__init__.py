"""Generative models behind a registry. The built-in models are imported when first asked for
(``get_model``), so listing their names imports no torch."""

from __future__ import annotations

from typing import Any

from synthgen.models.registry import available_models, get_model, register_model

__all__ = ["FitOptions", "Model", "available_models", "get_model", "register_model"]


def __getattr__(name: str) -> Any:
    if name in ("FitOptions", "Model"):
        from synthgen.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'synthgen.models' has no attribute {name!r}")
