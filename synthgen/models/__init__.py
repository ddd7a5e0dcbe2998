"""Generative models behind a registry; importing this package registers the built-in ones."""

from synthgen.models import gan, marginals, pairwise, vae  # noqa: F401  (registration side effect)
from synthgen.models.base import FitOptions, Model
from synthgen.models.registry import available_models, get_model, register_model

__all__ = ["FitOptions", "Model", "available_models", "get_model", "register_model"]
