"""synthgen: train GAN/VAE generators on private tables and share look-alike synthetic data."""

__version__ = "0.1.0"

from synthgen.errors import (  # noqa: E402
    ConfigError,
    IntegrityError,
    InvalidDataError,
    NotFittedError,
    PrivacyError,
    SynthgenError,
)
from synthgen.evaluation import Evaluation, evaluate  # noqa: E402
from synthgen.privacy.masking import Masker, MaskPolicy, mask  # noqa: E402
from synthgen.sampler import Sampler  # noqa: E402
from synthgen.schema import ColumnSpec, TableSchema  # noqa: E402
from synthgen.synthesizer import Synthesizer  # noqa: E402

__all__ = [
    "ColumnSpec", "ConfigError", "Evaluation", "IntegrityError", "InvalidDataError", "MaskPolicy", "Masker",
    "NotFittedError", "PrivacyError", "Sampler", "Synthesizer", "SynthgenError", "TableSchema", "__version__",
    "evaluate", "mask",
]
