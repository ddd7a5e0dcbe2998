"""synthgen: train GAN/VAE generators on private tables and share look-alike synthetic data.

The public names below load on first use (PEP 562), so ``import synthgen.crypto.streams`` or
``synthgen encrypt`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "synthgen.errors", "IntegrityError": "synthgen.errors", "InvalidDataError": "synthgen.errors",
    "NotFittedError": "synthgen.errors", "PrivacyError": "synthgen.errors", "SynthgenError": "synthgen.errors",
    "Evaluation": "synthgen.evaluation", "evaluate": "synthgen.evaluation",
    "Masker": "synthgen.masking.policy", "MaskPolicy": "synthgen.masking.policy", "mask": "synthgen.masking.policy",
    "Sampler": "synthgen.sampler", "ColumnSpec": "synthgen.schema", "TableSchema": "synthgen.schema",
    "Synthesizer": "synthgen.synthesizer",
}
__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
