"""Synthesizer: the training facade. ``fit`` runs the steps of ``synthgen.pipeline`` (read -> validate ->
schema -> DP domain -> transform -> model), ``save`` writes the model file."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from synthgen import __version__, pipeline
from synthgen.artifact import Manifest, TrainingSummary, write_model_file
from synthgen.checkpoint_file import Checkpoint
from synthgen.dp.ledger import Ledger
from synthgen.dp.training import DPSettings
from synthgen.errors import ConfigError, NotFittedError
from synthgen.io import SealLike, SecretLike, TableLike, as_seal, as_secret, read_table
from synthgen.models import Model, get_model
from synthgen.models.registry import DEFAULT_MODEL, ModelClass, check_capable
from synthgen.sampler import Sampler
from synthgen.schema import TableSchema
from synthgen.stream import DEFAULT_SAMPLE_ROWS
from synthgen.transform import TabularTransformer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

#: what a non-DP model file holds that was computed from the private table without noise
RAW_QUANTITIES = [
    "column names and kinds",
    "category sets and their frequencies",
    "per-column minimum and maximum",
    "Gaussian-mixture modes (means, stds, weights) of numeric columns",
    "null rates",
    "the network weights (trained without differential privacy)",
]
#: named in the ledger when a model card is saved with the model
CARD_RAW_QUANTITY = ("the model card's figures (TRTR scores, DCR share, MIA AUC, column shapes), computed on the "
                     "training rows without noise")
#: named in the ledger of a fit given a target column
TARGET_RAW_QUANTITY = "the target column's class shares (rows are generated at them)"
#: the same for a streamed fit: the transformer's quantities come from a uniform sample of the rows
STREAMED_RAW_QUANTITIES = [
    "column names and kinds",
    "category sets and their frequencies, of a uniform sample of the rows (categories only outside it are "
    "absent from the model)",
    "per-column minimum and maximum of that sample (values beyond them were clipped to them in training)",
    "Gaussian-mixture modes (means, stds, weights) of numeric columns, from that sample",
    "null rates, of that sample",
    "the row count of the whole table",
    "the network weights (trained without differential privacy, on every row)",
]


class Synthesizer:
    """Train a generator on a table and save it as a model file.

    Example:
        >>> Synthesizer(model="ctgan", epochs=300, seed=0).fit(df).save("m.sgm")  # doctest: +SKIP

    Args:
        model: a registered model name: ``tvae`` (the default: best on our benchmark), ``ctgan``, ``marginals``.
        epochs: training epochs (None: the model's default).
        batch_size: rows per step (None: the model's default).
        seed: seed for the transformer and the model; the same seed gives the same model here.
        device: ``cpu`` or ``cuda``.
        metadata: SDV single-table metadata JSON path, or a ``TableSchema``, instead of detection.
        progress: show a progress bar with epoch and losses.
        epsilon: train with differential privacy at this total budget (None: no DP). The
            options below apply only with it; see :class:`synthgen.dp.training.DPSettings`.
        delta: DP delta (None: the largest round number at most 1 / (10 n)).
        max_grad_norm: per-sample gradient clipping norm.
        accountant: ``rdp`` or ``prv``.
        stats_share: share of epsilon for noisy bounds, categories and bins of columns that the
            metadata does not declare public (None: every column must be declared public).
        deterministic: seeded DP noise for debugging, NOT FOR RELEASE.
        allow: columns to train on although they look like identifiers: lifts the refusal of ID-like
            columns and the warning about direct identifiers (emails, names, ...) left unmasked.
        mixture_rows: rows (a uniform sample) each numeric column's mode mixture is fitted on.
        entity: under DP, the column naming each row's entity (a customer id on a table of purchases): the unit
            of privacy is then the entity with all its rows (DP-SGD samples and clips entities whole; ``pairwise``
            weighs each row by 1 / its entity's row count, so an entity adds at most 1 to every count table),
            and the column itself is not learned.
        target: a categorical (or boolean) column a downstream model will predict: every row is then generated
            given its target class, drawn at the training rows' class shares (``tvae``, without DP). On
            Adult it lifted TSTR accuracy and AUC (see the README's suite); a condition on it
            (``sample(conditions={target: value})``) generates that class directly.
        **hyperparameters: model-specific hyperparameters (see the model's ``Config``).
    """

    def __init__(self, *, model: str = DEFAULT_MODEL, epochs: int | None = None, batch_size: int | None = None,
                 seed: int = 0, device: str = "cpu", metadata: str | os.PathLike | TableSchema | None = None,
                 progress: bool = False, epsilon: float | None = None, delta: float | None = None,
                 max_grad_norm: float = 1.0, accountant: str = "rdp", stats_share: float | None = None,
                 deterministic: bool = False, allow: Sequence[str] = (), mixture_rows: int = 5000,
                 entity: str | None = None, target: str | None = None, **hyperparameters: Any):
        if "target_span" in hyperparameters:
            raise ConfigError("target_span is set from the target column (fix: target=COLUMN, or synthgen train "
                              "--target COLUMN)")
        params = {**hyperparameters, **({"epochs": epochs} if epochs is not None else {}),
                  **({"batch_size": batch_size} if batch_size is not None else {})}
        cls = get_model(model)
        self.privacy = None
        if epsilon is not None:
            self.privacy = DPSettings(epsilon, delta, max_grad_norm, accountant, stats_share, deterministic)
            check_capable(cls, dp=True)
            params = {**cls.dp_defaults, **params, **_dp_hyperparameters(cls, params)}
        self.model: Model = cls(**params)
        self.seed, self.device, self.metadata, self.progress = seed, device, metadata, progress
        self.allow = tuple(allow)
        if mixture_rows < 10:
            raise ConfigError(f"mixture_rows must be at least 10, got {mixture_rows}")
        if entity is not None and epsilon is None:
            raise ConfigError(f"entity={entity!r} sets the unit of differential privacy (fix: give epsilon too, or "
                              "drop entity)")
        self.entity = entity
        if target is not None:
            if not self.takes_target(model):
                raise ConfigError(f"{cls.name} does not generate rows given a target class (fix: model tvae, or "
                                  "no target / --target)")
            if epsilon is not None:
                raise ConfigError("target: the class shares rows are generated at are read without noise (fix: no "
                                  "target / --target for a differentially private fit)")
        self.target = target
        self.mixture_rows = mixture_rows
        #: a batch size the user chose is checked against the table; the default shrinks to fit it
        self._batch_given = params.get("batch_size")
        self.transformer: TabularTransformer | None = None
        self.summary: TrainingSummary = {}  # type: ignore[typeddict-item]  # empty until fit sets it
        self.ledger: Ledger | None = None
        #: model card figures (set by whoever evaluated the model, e.g. benchmarks/train_shipped.py);
        #: saved in the manifest under "card" when set
        self.card: dict[str, Any] | None = None

    @staticmethod
    def takes_target(model: str) -> bool:
        """Whether ``model`` can generate rows given a target class (``target=``)."""
        return "target_span" in {f.name for f in dataclasses.fields(get_model(model).Config)}

    def fit(self, data: TableLike, *, stream: bool = False, sample_rows: int = DEFAULT_SAMPLE_ROWS,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0,
            resume_from: str | os.PathLike | Checkpoint | None = None, seal: SealLike | None = None,
            secret: SecretLike | None = None,
            context: np.ndarray | Callable[[TabularTransformer], np.ndarray] | None = None,
            entities: pipeline.Entities | None = None) -> Synthesizer:
        """Validate ``data`` (DataFrame, CSV or Parquet path), fit the transformer and the model.

        Args:
            data: the training table.
            stream: read a Parquet file (larger than memory) in batches instead of loading it (models
                whose ``capabilities`` allow it, e.g. ``tvae`` without DP, in one process): the schema,
                validation and transformer come from a uniform sample of ``sample_rows`` rows drawn in one
                pass, and training batches are streamed from disk every epoch (see ``synthgen.stream``).
                The summary says so.
            sample_rows: rows of that sample.
            checkpoint: where to keep a checkpoint (``synthgen.checkpoint_file``): written every
                ``checkpoint_every`` epochs and when Ctrl-C asks training to stop, which then
                raises ``TrainingInterrupted``.
            resume_from: a checkpoint (path, or ``Checkpoint`` already read) of this synthesizer on
                this table: training continues from it to exactly the result of an uninterrupted
                run (same seed and device); one written by a streamed fit resumes streaming, with
                its sample's transformer.
            seal / secret: encrypt the checkpoint (a ``Seal``, or ``{"key": ...}``, ``{"passphrase": ...}`` or
                ``{"recipient": ...}``) / open an encrypted one (a ``Secret``, or ``{"key": ...}``,
                ``{"passphrase": ...}`` or ``{"private_key": ...}``; see ``synthgen.crypto.sealing``). A
                differentially private fit refuses a checkpoint without ``seal``:
                it holds the noise generators' state, and whoever reads it can replay the noise.
            context: one conditioning row per table row (float32; a child table's parent context in a
                relational fit): the model learns the rows given it, and ``Sampler.sample_given`` generates
                rows for given context rows (models with ``capabilities.context``: tvae).
            entities: under DP, each row's entity (``pipeline.Entities``), the unit of privacy of a relational
                fit: sampled and clipped whole (the relational layer passes it).
        """
        settings = self._settings()
        run = pipeline.checkpointing(settings, checkpoint, checkpoint_every, as_seal(seal), resume_from,
                                     as_secret(secret))
        if run.saved is not None:  # a streamed checkpoint resumes streaming
            stream = run.saved.check_streaming(stream or None)
        if stream and (context is not None or self.entity is not None):
            raise ConfigError("a fit with a context or an entity column reads its table in memory (fix: drop stream)")
        if self.entity is not None:
            if entities is not None:
                raise ConfigError("give the entity column or the entities, not both")
            data, entities = pipeline.entities_by_column(read_table(data), self.entity)
        fitted = (pipeline.fit_stream(data, sample_rows, settings, run) if stream
                  else pipeline.fit_table(data, settings, run, context, entities))
        self.transformer, self.summary = fitted.transformer, fitted.summary
        if fitted.ledger is not None:
            self.ledger = fitted.ledger
        return self

    def check(self, data: TableLike) -> None:
        """Run the validate step alone: raise ``InvalidDataError`` listing every problem of ``data`` a fit
        would refuse (nothing is trained)."""
        pipeline.checked_schema(read_table(data), self._settings())

    def _settings(self) -> pipeline.FitSettings:
        """What a fit of this synthesizer is asked for (its model and settings), as the pipeline's steps read it."""
        return pipeline.FitSettings(self.model, seed=self.seed, device=self.device, metadata=self.metadata,
                                    progress=self.progress, privacy=self.privacy, allow=self.allow,
                                    batch_size=self._batch_given, mixture_rows=self.mixture_rows, target=self.target)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | Checkpoint, *, secret: SecretLike | None = None,
                        progress: bool = False) -> Synthesizer:
        """A synthesizer with the settings a checkpoint (path, or ``Checkpoint`` already read) was
        written with (then ``fit(data, resume_from=...)``)."""
        return cls(**Checkpoint.of(path, secret=secret).settings(), progress=progress)

    def manifest(self) -> Manifest:
        """Everything but the weights: versions, model, transformer, training summary, privacy."""
        transformer = self._fitted_transformer()
        privacy: Ledger = self.ledger or {
            "differential_privacy": False, "epsilon": None, "delta": None,
            "statement": "Trained WITHOUT differential privacy: no formal guarantee for the rows of "
                         "the training table.",
            "raw_quantities": STREAMED_RAW_QUANTITIES if self.summary.get("streamed") else RAW_QUANTITIES,
        }
        if self.summary.get("target") is not None:
            privacy = {**privacy, "raw_quantities": [*privacy.get("raw_quantities", []), TARGET_RAW_QUANTITY]}
        if self.card is not None:  # its figures were computed on the training rows, without noise
            privacy = {**privacy, "raw_quantities": [*privacy.get("raw_quantities", []), CARD_RAW_QUANTITY]}
        manifest: Manifest = {
            "synthgen_version": __version__, "torch_version": torch.__version__,
            "model": {"name": self.model.name, "hyperparameters": self.model.hyperparameters()},
            "transformer": transformer.to_dict(),
            "layout": transformer.layout.to_dict(),
            "training": self.summary,
            "privacy": privacy,
        }
        if self.card is not None:
            manifest["card"] = self.card
        return manifest

    def _fitted_transformer(self) -> TabularTransformer:
        if self.transformer is None:
            raise NotFittedError("the synthesizer is not fitted (fix: call fit first)")
        return self.transformer

    def save(self, path: str | os.PathLike, *, force: bool = False, key: bytes | None = None,
             recipient: X25519PublicKey | None = None) -> Path:
        """Write the model file (refuses to overwrite unless ``force``).

        Encrypted with ``key`` (from ``synthgen keygen``) or to an X25519 public ``recipient``
        (``synthgen.crypto.keypairs.read_public_key``), if given (not both).
        """
        return write_model_file(path, self.manifest(), self.model.state_tensors(), force=force,
                                seal=as_seal({"key": key, "recipient": recipient}))

    def sampler(self) -> Sampler:
        """A Sampler over the fitted model, without a round trip through a file."""
        return Sampler(self.model, self._fitted_transformer(), self.manifest())

    def sample(self, n: int, *, seed: int | None = None, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """Shortcut for ``self.sampler().sample(...)``."""
        return self.sampler().sample(n, seed=seed, conditions=conditions)


def _dp_hyperparameters(cls: ModelClass, params: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters DP training needs, refusing a user value that contradicts one."""
    for key, value in cls.dp_hyperparameters.items():
        if key in params and params[key] != value:
            raise ConfigError(f"{cls.name} with differential privacy needs {key}={value}, got {params[key]} "
                              f"(fix: drop the {key} option)")
    return dict(cls.dp_hyperparameters)

