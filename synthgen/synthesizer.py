"""Synthesizer: the training facade (read -> validate -> transform -> fit -> save)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import secrets
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from synthgen import __version__, distributed
from synthgen.artifact import write_model_file
from synthgen.checkpoint_file import Checkpoint, table_sha256, write_checkpoint
from synthgen.dp.domain import private_domain, private_schema
from synthgen.dp.ledger import ledger
from synthgen.dp.training import DPSettings, PrivacyPlan, plan_privacy, sgd_spec
from synthgen.errors import (
    ConfigError,
    IdentifierWarning,
    InvalidDataError,
    NotFittedError,
    Problem,
    TrainingInterrupted,
)
from synthgen.io import TableLike, read_table
from synthgen.masking.identifiers import Finding, scan
from synthgen.models import FitOptions, Model, get_model
from synthgen.models.registry import DEFAULT_MODEL, ModelClass, check_capable
from synthgen.sampler import Sampler
from synthgen.schema import TableSchema, check_structure, load_metadata, validate
from synthgen.stream import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SAMPLE_ROWS,
    DEFAULT_WINDOW,
    ParquetBatches,
    ReservoirSample,
    data_columns,
    file_sha256,
    missing_nulls_warning,
    open_parquet,
    reservoir_sample,
)
from synthgen.transform import TabularTransformer
from synthgen.transform.transformer import ColumnDomain

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
#: what a streamed fit does with values its sample never showed (counted in ``outside_sample``)
OUTSIDE_SAMPLE = ("unseen categories (and nulls in a categorical column without nulls in the sample) -> the "
                  "column's most frequent category; numbers beyond the sample's range -> clipped to it; nulls in "
                  "a numeric column without nulls in the sample -> its main mode")


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
        **hyperparameters: model-specific hyperparameters (see the model's ``Config``).
    """

    def __init__(self, *, model: str = DEFAULT_MODEL, epochs: int | None = None, batch_size: int | None = None,
                 seed: int = 0, device: str = "cpu", metadata: str | os.PathLike | TableSchema | None = None,
                 progress: bool = False, epsilon: float | None = None, delta: float | None = None,
                 max_grad_norm: float = 1.0, accountant: str = "rdp", stats_share: float | None = None,
                 deterministic: bool = False, allow: Sequence[str] = (), **hyperparameters: Any):
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
        #: a batch size the user chose is checked against the table; the default shrinks to fit it
        self._batch_given = params.get("batch_size")
        self.transformer: TabularTransformer | None = None
        self.summary: dict[str, Any] = {}
        self.ledger: dict[str, Any] | None = None
        #: model card figures (set by whoever evaluated the model, e.g. benchmarks/train_shipped.py);
        #: saved in the manifest under "card" when set
        self.card: dict[str, Any] | None = None

    def fit(self, data: TableLike, *, stream: bool = False, sample_rows: int = DEFAULT_SAMPLE_ROWS,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0,
            resume_from: str | os.PathLike | Checkpoint | None = None, seal: dict[str, Any] | None = None,
            secret: dict[str, Any] | None = None) -> Synthesizer:
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
            seal / secret: encrypt the checkpoint (``{"key": ...}``, ``{"passphrase": ...}`` or
                ``{"recipient": ...}``) / open an encrypted one (``{"key": ...}``, ``{"passphrase": ...}`` or
                ``{"private_key": ...}``). A differentially private fit refuses a checkpoint without ``seal``:
                it holds the noise generators' state, and whoever reads it can replay the noise.
        """
        if checkpoint is not None and self.privacy is not None and not seal:
            raise ConfigError("a differentially private fit never writes its checkpoint in plain text: it holds "
                              "the noise generators' state, which would let its reader remove the noise (fix: "
                              "pass seal={'key': ...}, {'passphrase': ...} or {'recipient': ...}, or no checkpoint)")
        saved = self._read_resume(resume_from, secret)
        if saved is not None and bool(saved.body.get("stream")) != bool(stream):
            if not stream:  # a streamed checkpoint resumes streaming
                stream = True
            else:
                raise ConfigError(f"{saved.path} was written by a fit in memory (fix: resume without --stream)")
        if stream:
            return self._fit_stream(data, sample_rows, saved, checkpoint, checkpoint_every, seal)
        df = read_table(data)
        schema = self._checked_schema(df)
        if saved is not None:
            self._check_resumed_data(saved, table_sha256(df))
        world = distributed.current()
        check_capable(type(self.model), dp=self.privacy is not None, processes=world.size > 1)
        start = time.perf_counter()
        options = FitOptions(seed=self.seed, device=distributed.start(world, self.device),
                             progress=self.progress and world.main, world=world, total_rows=len(df))
        plan, domain = self._fit_transformer(df, schema, saved, world)
        if plan is not None:
            freq = self.transformer.cond_frequencies(domain) if self.model.dp_needs_frequencies else None
            options.dp = sgd_spec(plan, seed=self.seed, cond_frequencies=freq)
        matrix = self.transformer.transform(df, seed=self.seed)
        if world.size > 1:
            matrix = matrix[world.rows(len(matrix))]
        transform_s = time.perf_counter() - start
        body = None
        if checkpoint is not None:
            data_id = {"rows": len(df), "columns": [str(c) for c in df.columns], "sha256": table_sha256(df)}
            body = self._checkpoint_body(data_id, domain, schema)
        self._train(matrix, options, checkpoint, checkpoint_every, seal, saved, body)
        if self.privacy is not None:
            self.ledger = ledger(plan, self.model.private, domain, len(df),
                                 kinds_from_metadata=self.metadata is not None)
        self.summary = self._summary(len(df), df.shape[1], start, transform_s, saved)
        return self

    def _fit_transformer(self, df: pd.DataFrame, schema: TableSchema, saved: Checkpoint | None = None,
                         world: distributed.World | None = None) -> tuple[PrivacyPlan | None, dict | None]:
        """Fit ``self.transformer`` (or take it from ``saved``); under DP first plan the budget and measure
        the private domain, the transformer's only source. Returns the plan and domain (None without DP)."""
        if self.privacy is None:
            self.transformer = (TabularTransformer.from_dict(saved.body["transformer"]) if saved
                                else TabularTransformer(seed=self.seed).fit(df, schema))
            return None, None
        plan, domain = self._private_domain(df, schema, saved.body["domain"] if saved else None, world)
        self.transformer = (TabularTransformer.from_dict(saved.body["transformer"]) if saved
                            else TabularTransformer(seed=self.seed).fit(df, private_schema(schema, domain),
                                                                        domain=domain))
        return plan, domain

    def _fit_stream(self, path: TableLike, sample_rows: int, saved: Checkpoint | None,
                    checkpoint: str | os.PathLike | None, checkpoint_every: int,
                    seal: dict[str, Any] | None) -> Synthesizer:
        """``fit(path, stream=True)``: transformer on a reservoir sample, training batches streamed from disk."""
        self._check_streamable(path)
        pf = open_parquet(path)
        start = time.perf_counter()
        settings = dict(saved.body["stream"]) if saved else {
            "sample_rows": int(sample_rows), "chunk_rows": DEFAULT_CHUNK_ROWS, "window": DEFAULT_WINDOW}
        data_id = {"rows": pf.metadata.num_rows, "columns": data_columns(pf),
                   "sha256": file_sha256(path) if checkpoint is not None or saved else None}
        if saved is not None:  # its transformer was fitted on this file's sample: no second pass needed
            self._check_resumed_data(saved, data_id["sha256"])
            self.transformer = TabularTransformer.from_dict(saved.body["transformer"])
            given_schema = self.transformer.schema
        else:
            sample = reservoir_sample(pf, settings["sample_rows"], seed=self.seed)
            given_schema = self._validated_sample(sample)
            missing_nulls_warning(sample, path)
            self.transformer = TabularTransformer(seed=self.seed).fit(sample.frame, given_schema)
            settings["fitted_on"] = len(sample.frame)
            del sample
        source = ParquetBatches(pf, self.transformer, seed=self.seed, chunk_rows=settings["chunk_rows"],
                                window=settings["window"])
        transform_s = time.perf_counter() - start
        options = FitOptions(seed=self.seed, device=self.device, progress=self.progress, total_rows=source.rows)
        body = None
        if checkpoint is not None:
            body = {**self._checkpoint_body(data_id, None, given_schema), "stream": settings}
        self._train(source, options, checkpoint, checkpoint_every, seal, saved, body)
        n = source.rows
        self.summary = {**self._summary(n, len(data_id["columns"]), start, transform_s, saved),
                        "streamed": True,
                        "transformer_fitted_on": {
                            "rows": settings["fitted_on"], "of_rows": n,
                            "how": f"uniform reservoir sample drawn in one pass over the file (seed {self.seed}); "
                                   "the schema, validation and transformer saw only these rows"},
                        "outside_sample": source.outside or {},
                        "outside_sample_handling": OUTSIDE_SAMPLE,
                        "stream": {"row_groups": pf.metadata.num_row_groups, "chunk_rows": settings["chunk_rows"],
                                   "window_row_groups": settings["window"]}}
        return self

    def _check_streamable(self, data: TableLike) -> None:
        """Refuse, before reading anything, what cannot train from a stream (naming what can)."""
        if isinstance(data, pd.DataFrame):
            raise ConfigError("stream=True reads a Parquet file piece by piece; a DataFrame is already in memory "
                              "(fix: fit(df) without stream, or pass the Parquet file's path)")
        check_capable(type(self.model), dp=self.privacy is not None, streaming=True,
                      processes=distributed.current().size > 1)

    def _validated_sample(self, sample: ReservoirSample) -> TableSchema:
        """The schema of the sample, after every check ``fit`` runs on a whole table (problems say "in a sample")."""
        df = sample.frame
        check_structure(df)
        schema = self._schema(df)
        findings = self._identifiers(df)
        whole = len(df) == sample.rows
        try:
            validate(df, schema, batch_size=self._batch_given if whole else None, allow=self.allow,
                     findings=findings)
        except InvalidDataError as exc:
            if whole:
                raise
            where = f" (in a {len(df):,}-row sample of {sample.rows:,} rows)"
            raise InvalidDataError([Problem(p.column, p.rule + where, p.fix) for p in exc.problems]) from None
        return schema

    def _train(self, data: np.ndarray | ParquetBatches, options: FitOptions, checkpoint: str | os.PathLike | None,
               checkpoint_every: int, seal: dict[str, Any] | None,
               saved: Checkpoint | None, body: dict[str, Any] | None) -> None:
        """Fit the model, keeping checkpoints and resuming from ``saved`` when asked."""
        if checkpoint is not None:
            options.checkpoint = lambda tensors, meta: write_checkpoint(checkpoint, {**body, "state": meta},
                                                                        tensors, seal=seal)
            options.checkpoint_every = checkpoint_every
        if saved:
            options.resume = (saved.tensors, saved.body["state"])
        try:
            self.model.fit(data, self.transformer.layout, options)
        except TrainingInterrupted as exc:
            raise TrainingInterrupted(f"{exc}; checkpoint written to {checkpoint} (fix: resume from it)") from None

    def _summary(self, rows: int, columns: int, start: float, transform_s: float,
                 saved: Checkpoint | None) -> dict[str, Any]:
        return {
            "rows": int(rows), "columns": int(columns), "seed": self.seed, "device": self.device,
            "precision": getattr(self.model, "precision", "float32"),
            "epochs": int(getattr(self.model.config, "epochs", 1)),
            "seconds": round(time.perf_counter() - start, 3), "transformer_seconds": round(transform_s, 3),
            "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "history": self.model.history,
            **({"resumed_from_epoch": saved.body["state"]["epoch"]} if saved else {}),
        }

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | Checkpoint, *, secret: dict[str, Any] | None = None,
                        progress: bool = False) -> Synthesizer:
        """A synthesizer with the settings a checkpoint (path, or ``Checkpoint`` already read) was
        written with (then ``fit(data, resume_from=...)``)."""
        body = Checkpoint.of(path, secret=secret).body
        dp = body["privacy"] or {}
        return cls(model=body["model"], seed=body["seed"], device=body["device"], progress=progress,
                   metadata=TableSchema.from_dict(body["schema"]), allow=tuple(body.get("allow", ())),
                   **dp, **body["hyperparameters"])

    def _checkpoint_body(self, data_id: dict[str, Any], domain: dict | None, schema: TableSchema) -> dict[str, Any]:
        return {
            "model": self.model.name, "hyperparameters": self.model.hyperparameters(), "seed": self.seed,
            "device": self.device, "allow": list(self.allow),
            "privacy": dataclasses.asdict(self.privacy) if self.privacy is not None else None,
            "data": data_id, "schema": schema.to_dict(), "transformer": self.transformer.to_dict(),
            "domain": {k: dataclasses.asdict(v) for k, v in domain.items()} if domain is not None else None,
        }

    def _read_resume(self, path: str | os.PathLike | Checkpoint | None, secret: dict[str, Any] | None
                     ) -> Checkpoint | None:
        """The checkpoint to resume from, refused unless it was written by these settings."""
        if path is None:
            return None
        ckpt = Checkpoint.of(path, secret=secret)
        body = ckpt.body
        mine = {"model": self.model.name, "hyperparameters": json.loads(json.dumps(self.model.hyperparameters())),
                "seed": self.seed, "device": self.device,
                "privacy": dataclasses.asdict(self.privacy) if self.privacy is not None else None}
        differ = [k for k, v in mine.items() if body.get(k) != v]
        if differ:
            raise ConfigError(f"{ckpt.path} was written with other settings ({', '.join(differ)}) (fix: resume with "
                              "Synthesizer.from_checkpoint(path), or synthgen train --resume without changing options)")
        return ckpt

    @staticmethod
    def _check_resumed_data(saved: Checkpoint, digest: str | None) -> None:
        """Refuse a checkpoint written while training on another table."""
        data = saved.body["data"]
        if data["sha256"] != digest:
            raise ConfigError(f"{saved.path} was written while training on another table "
                              f"({data['rows']} rows) (fix: resume on the same table, or start over without "
                              "--resume)")

    def _identifiers(self, df: pd.DataFrame) -> list[Finding]:
        """Scan for identifiers; warn about direct ones left unmasked (ID-like ones ``validate`` refuses)."""
        unknown = [c for c in self.allow if c not in df.columns]
        if unknown:
            raise ConfigError(f"--allow names {unknown}, not columns of the table (fix: use one of "
                              f"{', '.join(map(str, df.columns[:12]))})")
        findings = scan(df)
        for f in findings:
            if f.role == "direct" and f.column not in self.allow:
                evidence = "" if self.privacy is not None else f" ({f.evidence})"  # DP: no count of the rows
                warnings.warn(IdentifierWarning(
                    f"column {f.column!r} looks like {f.what}{evidence}, a direct identifier left unmasked "
                    f"(fix: mask it first, see synthgen mask --suggest; or --allow {f.column})"), stacklevel=4)
        return findings

    def _private_domain(self, df: pd.DataFrame, schema: TableSchema, saved: dict | None = None,
                        world: distributed.World | None = None) -> tuple[PrivacyPlan, dict]:
        """Plan the budget, then measure the domain statistics the plan pays for (once: a resumed
        fit takes the measured domain from its checkpoint, and across processes rank 0 measures it
        and sends it to the others, so nothing is measured or paid twice)."""
        plan = plan_privacy(self.privacy, schema, n_rows=len(df),
                            schedule=self.model.dp_schedule(len(df), len(schema.columns)),
                            frequencies=self.model.dp_needs_frequencies)
        if saved is None and world is not None and world.size > 1:
            measured = self._private_domain(df, schema)[1] if world.main else None
            saved = distributed.share(None if measured is None else
                                      {k: dataclasses.asdict(v) for k, v in measured.items()}, world)
        if saved is not None:
            return plan, {name: ColumnDomain(**d) for name, d in saved.items()}
        seed = self.seed if self.privacy.deterministic else secrets.randbits(63)
        domain = private_domain(df, schema, sigma=plan.stats_sigma, category_threshold=plan.category_threshold,
                                frequencies=self.model.dp_needs_frequencies, rng=np.random.default_rng(seed),
                                secure=not self.privacy.deterministic)
        return plan, domain

    def _checked_schema(self, df: pd.DataFrame) -> TableSchema:
        """The table's schema, after every check of its names and values (under DP: only those that read
        no value refuse; see ``validate``)."""
        check_structure(df)  # names must be usable before anything looks columns up
        schema = self._schema(df)
        validate(df, schema, batch_size=self._batch_given, allow=self.allow, findings=self._identifiers(df),
                 private=self.privacy is not None)
        return schema

    def _schema(self, df: pd.DataFrame) -> TableSchema:
        """Column kinds from the metadata, else detected (under DP from the storage dtypes alone)."""
        private = self.privacy is not None
        if isinstance(self.metadata, TableSchema):
            return self.metadata
        if self.metadata is not None:
            return load_metadata(self.metadata, df, private=private)
        return TableSchema.detect(df, private=private)

    def manifest(self) -> dict[str, Any]:
        """Everything but the weights: versions, model, transformer, training summary, privacy."""
        if self.transformer is None:
            raise NotFittedError("the synthesizer is not fitted (fix: call fit first)")
        privacy = self.ledger or {
            "differential_privacy": False, "epsilon": None, "delta": None,
            "statement": "Trained WITHOUT differential privacy: no formal guarantee for the rows of "
                         "the training table.",
            "raw_quantities": STREAMED_RAW_QUANTITIES if self.summary.get("streamed") else RAW_QUANTITIES,
        }
        if self.card is not None:  # its figures were computed on the training rows, without noise
            privacy = {**privacy, "raw_quantities": [*privacy.get("raw_quantities", []), CARD_RAW_QUANTITY]}
        return {
            "synthgen_version": __version__, "torch_version": torch.__version__,
            "model": {"name": self.model.name, "hyperparameters": self.model.hyperparameters()},
            "transformer": self.transformer.to_dict(),
            "layout": self.transformer.layout.to_dict(),
            "training": self.summary,
            "privacy": privacy,
            **({"card": self.card} if self.card is not None else {}),
        }

    def save(self, path: str | os.PathLike, *, force: bool = False, key: bytes | None = None,
             recipient: Any = None) -> Path:
        """Write the model file (refuses to overwrite unless ``force``).

        Encrypted with ``key`` (from ``synthgen keygen``) or to an X25519 public ``recipient``
        (``synthgen.crypto.keypairs.read_public_key``), if given.
        """
        return write_model_file(path, self.manifest(), self.model.state_tensors(), force=force, key=key,
                                recipient=recipient)

    def sampler(self) -> Sampler:
        """A Sampler over the fitted model, without a round trip through a file."""
        return Sampler(self.model, self.transformer, self.manifest())

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

