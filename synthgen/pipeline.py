"""The steps of a fit, in the order a row goes through them.

read -> validate (names first, then values; the identifier check warns about direct identifiers
left unmasked) -> schema -> DP domain (under DP: the budget's plan, then the noisy statistics the
transformer is fitted from) -> transform -> model. :func:`fit_table` runs them on a table in memory,
:func:`fit_stream` on a Parquet file read in batches (the checks and the transformer on a uniform
sample of its rows); ``Synthesizer.fit`` chooses one and ``Synthesizer.save`` writes the result.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import secrets
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from synthgen import distributed
from synthgen.artifact import SampleInfo, StreamInfo, TrainingSummary
from synthgen.checkpoint_file import Checkpoint, table_sha256, write_checkpoint
from synthgen.dp.domain import private_domain, private_schema
from synthgen.dp.ledger import Ledger, ledger
from synthgen.dp.training import DPSettings, PrivacyPlan, plan_privacy, sgd_spec
from synthgen.errors import ConfigError, IdentifierWarning, InvalidDataError, Problem, TrainingInterrupted
from synthgen.io import TableLike, read_table
from synthgen.masking.identifiers import Finding, scan
from synthgen.models import FitOptions, Model
from synthgen.models.registry import check_capable, get_model, unsupported
from synthgen.schema import TableSchema, check_structure, load_metadata, validate
from synthgen.stream import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_WINDOW,
    ParquetBatches,
    data_columns,
    file_sha256,
    missing_nulls_warning,
    open_parquet,
    reservoir_sample,
    too_big_for_memory,
)
from synthgen.transform import TabularTransformer
from synthgen.transform.transformer import ColumnDomain

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from synthgen.crypto.sealing import Seal, Secret

#: what a streamed fit does with values its sample never showed (counted in ``outside_sample``)
OUTSIDE_SAMPLE = ("unseen categories (and nulls in a categorical column without nulls in the sample) -> the "
                  "column's most frequent category; numbers beyond the sample's range -> clipped to it; nulls in "
                  "a numeric column without nulls in the sample -> its main mode")


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """What a fit was asked for: everything its steps read besides the data (a ``Synthesizer``'s settings).

    Attributes:
        model: the model to train (unfitted, or fitted again).
        batch_size: the batch size the user chose, checked against the table (None: the model's
            default, which shrinks to fit it).
    """

    model: Model
    seed: int = 0
    device: str = "cpu"
    metadata: str | os.PathLike | TableSchema | None = None
    progress: bool = False
    privacy: DPSettings | None = None
    allow: tuple[str, ...] = ()
    batch_size: int | None = None
    mixture_rows: int = 5000
    #: the column rows are generated given (``Synthesizer(target=)``)
    target: str | None = None

    @property
    def private(self) -> bool:
        """Whether the fit is differentially private."""
        return self.privacy is not None

    def resume_key(self) -> dict[str, Any]:
        """The settings a checkpoint must have been written with to be resumed by this fit."""
        # the target's span follows from the target and the table (whose digest is checked apart)
        hyperparameters = {k: v for k, v in self.model.hyperparameters().items() if k != "target_span"}
        return {"model": self.model.name, "hyperparameters": hyperparameters, "seed": self.seed,
                "device": self.device,
                "privacy": dataclasses.asdict(self.privacy) if self.privacy is not None else None,
                "target": self.target}


@dataclasses.dataclass
class Checkpointing:
    """Where a fit keeps its checkpoint (``path``, every ``every`` epochs, encrypted with ``seal``) and the
    checkpoint it resumes from (``saved``)."""

    path: str | os.PathLike | None = None
    every: int = 0
    seal: Seal | None = None
    saved: Checkpoint | None = None


@dataclasses.dataclass
class Fitted:
    """What a fit leaves beside the trained model: the fitted transformer, the training summary, and the
    privacy ledger (None without DP)."""

    transformer: TabularTransformer
    summary: TrainingSummary
    ledger: Ledger | None = None


# ----------------------------------------------------------------------------------- before reading


def checkpointing(settings: FitSettings, path: str | os.PathLike | None, every: int, seal: Seal | None,
                  resume_from: str | os.PathLike | Checkpoint | None, secret: Secret | None) -> Checkpointing:
    """The fit's checkpointing, refused when unsafe, and the checkpoint to resume from, refused unless it
    was written with these settings."""
    if path is not None and settings.private and seal is None:
        raise ConfigError("a differentially private fit never writes its checkpoint in plain text: it holds "
                          "the noise generators' state, which would let its reader remove the noise (fix: "
                          "pass seal={'key': ...}, {'passphrase': ...} or {'recipient': ...}, or no checkpoint)")
    saved = None
    if resume_from is not None:
        saved = Checkpoint.of(resume_from, secret=secret)
        # a hyperparameter added since the checkpoint was written counts as its default there
        defaults = dataclasses.asdict(type(settings.model.config)())
        saved.check_settings(settings.resume_key(), defaults=defaults)
    return Checkpointing(path, every, seal, saved)


def streams_by_default(path: TableLike, model: str, *, private: bool) -> tuple[bool, str | None]:
    """Whether a fit of ``model`` should stream ``path`` when not told: when the table would take more than
    half the free memory and the model can train from a stream here; with a note saying why (None when
    it fits in memory)."""
    if isinstance(path, pd.DataFrame):
        return False, None
    why = too_big_for_memory(path)
    if why is None:
        return False, None
    refusal = unsupported(get_model(model), dp=private, streaming=True, processes=distributed.current().size > 1)
    if refusal is None:
        return True, f"{why}: streaming it from disk (--stream; --no-stream loads it whole)"
    return False, f"{why}: it may not fit in memory, and {refusal}"


# ------------------------------------------------------------------------------------ in memory
@dataclasses.dataclass(frozen=True)
class Entities:
    """The entity (0 .. count - 1) of each row of a table, the unit of privacy of a relational DP fit (entities
    with no row in this table count too)."""

    of_rows: np.ndarray
    count: int

    def one_row_each(self, rng: np.random.Generator) -> np.ndarray:
        """One row of each entity that has rows, drawn at random: the rows the domain statistics read."""
        order = rng.permutation(len(self.of_rows))
        _, first = np.unique(self.of_rows[order], return_index=True)
        return np.sort(order[first])




def entities_by_column(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, Entities]:
    """The table without its entity column, and each row's entity (rows with the same value share one)."""
    if column not in df.columns:
        raise ConfigError(f"entity column {column!r} is not a column of the table (fix: use one of "
                          f"{', '.join(map(str, df.columns[:12]))})")
    if df[column].isna().any():
        raise InvalidDataError(Problem(column, "is the entity column but has nulls: every row needs its entity",
                                       "fill them, or drop those rows"))
    codes, uniques = pd.factorize(df[column])
    return df.drop(columns=[column]).reset_index(drop=True), Entities(codes.astype(np.int64), len(uniques))


def fit_table(data: TableLike, settings: FitSettings, run: Checkpointing,
              context: np.ndarray | Callable[[TabularTransformer], np.ndarray] | None = None,
              entities: Entities | None = None) -> Fitted:
    """Read ``data`` and take its rows through every step: validate, schema, DP domain, transform, model.

    ``context``: a conditioning row per data row (a relational fit's parent context; see ``Model.fit``), or a
    function giving them from the fitted transformer (under DP, whose domain alone may shape an encoding).
    ``entities``: under DP, the unit of privacy when it is not the row (a relational fit's entities): the
    budget is planned over entities, the domain statistics read one row per entity, and DP-SGD samples and
    clips whole entities.
    """
    df = read_table(data)
    if (context is not None or entities is not None) and (run.path is not None or run.saved is not None):
        raise ConfigError("a fit with a context or an entity per row (a relational fit, or an entity column) takes "
                          "no checkpoint (fix: drop it)")
    if context is not None and settings.target is not None:
        raise ConfigError("a fit with a context (a child table) generates rows given their parent, not a target class "
                          "(fix: drop target)")
    if context is not None and settings.private and entities is None:
        raise ConfigError("a private fit with a context needs the entity of each row: the unit of privacy "
                          "(fix: train the tables with RelationalSynthesizer)")
    schema = checked_schema(df, settings)
    if run.saved is not None:
        run.saved.check_table(table_sha256(df))
    world = distributed.current()
    check_capable(type(settings.model), dp=settings.private, processes=world.size > 1)
    start = time.perf_counter()
    options = FitOptions(seed=settings.seed, device=distributed.start(world, settings.device),
                         progress=settings.progress and world.main, world=world, total_rows=len(df))
    plan, domain = dp_domain(df, schema, settings, run.saved, world, entities)
    transformer = fitted_transformer(df, schema, settings.seed, domain, run.saved, mixture_rows=settings.mixture_rows)
    condition_on_target(settings, transformer)
    if plan is not None and domain is not None:  # both or neither
        freq = transformer.cond_frequencies(domain) if settings.model.dp_needs_frequencies else None
        options.dp = sgd_spec(plan, seed=settings.seed, cond_frequencies=freq,
                              groups=entities.of_rows if entities else None, entities=entities.count if entities else 0)
    matrix = encode(df, transformer, settings.seed, world)
    transform_s = time.perf_counter() - start
    body = None
    if run.path is not None:
        data_id = {"rows": len(df), "columns": [str(c) for c in df.columns], "sha256": table_sha256(df)}
        body = checkpoint_body(settings, transformer, data_id, schema, domain)
    rows = context(transformer) if callable(context) else context
    if rows is not None and world.size > 1:
        rows = rows[world.rows(len(rows))]
    train(settings.model, matrix, transformer, options, run, body, rows)
    led = None
    if plan is not None:
        private = settings.model.private
        assert private is not None and domain is not None, "a DP fit keeps its accountant and its domain"
        led = ledger(plan, private, domain, entities.count if entities else len(df),
                     kinds_from_metadata=settings.metadata is not None, unit="entity" if entities else "row")
    return Fitted(transformer, summary(settings, len(df), df.shape[1], start, transform_s, run.saved), led)


def condition_on_target(settings: FitSettings, transformer: TabularTransformer) -> None:
    """Point the model at the target column's one-hot block (``Synthesizer(target=)``), refusing a target
    that is not a categorical column of the table."""
    target = settings.target
    if target is None:
        if hasattr(settings.model.config, "target_span"):  # a model fitted again without one
            settings.model.config.target_span = -1
        return
    names = transformer.fitted_schema.names
    if target not in names:
        raise ConfigError(f"target {target!r} is not a column of the table (fix: one of: "
                          f"{', '.join(map(str, names[:20]))})")
    key = (names.index(target), "category")
    if key not in transformer.layout.cond_keys:
        kind = transformer.fitted_schema[target].kind
        raise ConfigError(f"target {target!r} is {kind}: rows are generated given a class of a categorical or "
                          "boolean column (fix: declare it categorical in the metadata, or give no target)")
    settings.model.config.target_span = transformer.layout.cond_keys.index(key)


def checked_schema(df: pd.DataFrame, settings: FitSettings, *, of_rows: int | None = None) -> TableSchema:
    """The validate step: the table's schema, after every check of its names and values (under DP: only
    those that read no value refuse; see ``validate``).

    ``of_rows``: ``df`` is a uniform sample of a table of that many rows (a streamed fit's): the batch
    size is then checked against the whole table only, and problems say "in a sample".
    """
    check_structure(df)  # names must be usable before anything looks columns up
    schema = table_schema(df, settings)
    findings = identifiers(df, settings)
    sampled = of_rows is not None and of_rows > len(df)
    try:
        validate(df, schema, batch_size=None if sampled else settings.batch_size, allow=settings.allow,
                 findings=findings, private=settings.private)
    except InvalidDataError as exc:
        if not sampled:
            raise
        where = f" (in a {len(df):,}-row sample of {of_rows:,} rows)"
        raise InvalidDataError([Problem(p.column, p.rule + where, p.fix) for p in exc.problems]) from None
    return schema


def table_schema(df: pd.DataFrame, settings: FitSettings) -> TableSchema:
    """The schema step: column kinds from the metadata, else detected (under DP from the storage dtypes alone)."""
    if isinstance(settings.metadata, TableSchema):
        return settings.metadata
    if settings.metadata is not None:
        return load_metadata(settings.metadata, df, private=settings.private)
    return TableSchema.detect(df, private=settings.private)


def identifiers(df: pd.DataFrame, settings: FitSettings) -> list[Finding]:
    """The mask check: scan for identifiers; warn about direct ones left unmasked (``validate`` refuses
    ID-like ones)."""
    unknown = [c for c in settings.allow if c not in df.columns]
    if unknown:
        raise ConfigError(f"--allow names {unknown}, not columns of the table (fix: use one of "
                          f"{', '.join(map(str, df.columns[:12]))})")
    if set(map(str, df.columns)) <= set(settings.allow):  # nothing the scan finds would be acted on
        return []
    findings = scan(df)
    for f in findings:
        if f.role == "direct" and f.column not in settings.allow:
            evidence = "" if settings.private else f" ({f.evidence})"  # DP: no count of the rows
            warnings.warn(IdentifierWarning(
                f"column {f.column!r} looks like {f.what}{evidence}, a direct identifier left unmasked "
                f"(fix: mask it first, see synthgen mask --suggest; or --allow {f.column})"), stacklevel=5)
    return findings


def dp_domain(df: pd.DataFrame, schema: TableSchema, settings: FitSettings, saved: Checkpoint | None = None,
              world: distributed.World | None = None, entities: Entities | None = None
              ) -> tuple[PrivacyPlan | None, dict[str, ColumnDomain] | None]:
    """The DP domain step: plan the budget, then measure the domain statistics the plan pays for
    (None, None without DP).

    Measured once: a resumed fit takes the domain from its checkpoint, and across processes rank 0
    measures it and sends it to the others, so nothing is measured or paid twice. Under entity-level DP
    (``entities``) the statistics read one row per entity, drawn at random, so that each histogram
    counts an entity at most once (sensitivity 1, as for rows).
    """
    if settings.privacy is None:
        return None, None
    model = settings.model
    units = entities.count if entities is not None else len(df)
    plan = plan_privacy(settings.privacy, schema, n_rows=units, schedule=model.dp_schedule(units, len(schema.columns)),
                        frequencies=model.dp_needs_frequencies)
    if entities is not None:
        df = df.iloc[entities.one_row_each(np.random.default_rng(
            settings.seed if settings.privacy.deterministic else secrets.randbits(63)))].reset_index(drop=True)
    measured = saved.body["domain"] if saved is not None else None
    if measured is None and world is not None and world.size > 1:
        mine = _measure_domain(df, schema, settings, plan) if world.main else None
        measured = distributed.share(None if mine is None else {k: dataclasses.asdict(v) for k, v in mine.items()},
                                     world)
    if measured is not None:
        return plan, {name: ColumnDomain(**d) for name, d in measured.items()}
    return plan, _measure_domain(df, schema, settings, plan)


def _measure_domain(df: pd.DataFrame, schema: TableSchema, settings: FitSettings,
                    plan: PrivacyPlan) -> dict[str, ColumnDomain]:
    """The noisy domain statistics ``plan`` pays for (seeded noise only with ``deterministic``)."""
    deterministic = plan.settings.deterministic
    seed = settings.seed if deterministic else secrets.randbits(63)
    return private_domain(df, schema, sigma=plan.stats_sigma, category_threshold=plan.category_threshold,
                          frequencies=settings.model.dp_needs_frequencies, rng=np.random.default_rng(seed),
                          secure=not deterministic)


def fitted_transformer(df: pd.DataFrame, schema: TableSchema, seed: int, domain: dict[str, ColumnDomain] | None,
                       saved: Checkpoint | None = None, *, mixture_rows: int = 5000) -> TabularTransformer:
    """The transformer: the checkpoint's when resuming, else fitted on the table (under DP on the private
    domain alone)."""
    if saved is not None:
        return TabularTransformer.from_dict(saved.body["transformer"])
    if domain is None:
        return TabularTransformer(seed=seed, gmm_sample_size=mixture_rows).fit(df, schema)
    return TabularTransformer(seed=seed, gmm_sample_size=mixture_rows).fit(df, private_schema(schema, domain),
                                                                           domain=domain)


def encode(df: pd.DataFrame, transformer: TabularTransformer, seed: int, world: distributed.World) -> np.ndarray:
    """The transform step: the encoded rows this process trains on (every ``world.size``-th across processes)."""
    matrix = transformer.transform(df, seed=seed)
    return matrix[world.rows(len(matrix))] if world.size > 1 else matrix


# ------------------------------------------------------------------------------------- streamed


def fit_stream(path: TableLike, sample_rows: int, settings: FitSettings, run: Checkpointing) -> Fitted:
    """The steps on a Parquet file read in batches: validate, schema and transformer on a uniform sample of
    ``sample_rows`` rows (or the checkpoint's transformer), then the model on batches streamed from disk."""
    check_streamable(path, settings)
    pf = open_parquet(path)
    start = time.perf_counter()
    saved = run.saved
    stream = dict(saved.body["stream"]) if saved else {
        "sample_rows": int(sample_rows), "chunk_rows": DEFAULT_CHUNK_ROWS, "window": DEFAULT_WINDOW}
    data_id = {"rows": pf.metadata.num_rows, "columns": data_columns(pf),
               "sha256": file_sha256(path) if run.path is not None or saved else None}
    if saved is not None:  # its transformer was fitted on this file's sample: no second pass needed
        saved.check_table(data_id["sha256"])
        transformer = TabularTransformer.from_dict(saved.body["transformer"])
        schema = transformer.fitted_schema
    else:
        transformer, schema = sample_transformer(path, pf, settings, stream)
    condition_on_target(settings, transformer)
    source = ParquetBatches(pf, transformer, seed=settings.seed, chunk_rows=stream["chunk_rows"],
                            window=stream["window"])
    transform_s = time.perf_counter() - start
    options = FitOptions(seed=settings.seed, device=settings.device, progress=settings.progress,
                         total_rows=source.rows)
    body = None
    if run.path is not None:
        body = {**checkpoint_body(settings, transformer, data_id, schema, None), "stream": stream}
    train(settings.model, source, transformer, options, run, body)
    base = summary(settings, source.rows, len(data_id["columns"]), start, transform_s, saved)
    return Fitted(transformer, stream_summary(base, source, pf, stream, settings.seed))


def stream_summary(base: TrainingSummary, source: ParquetBatches, pf: pq.ParquetFile, stream: dict[str, Any],
                   seed: int) -> TrainingSummary:
    """``base`` with what a streamed fit adds: the sample the transformer saw, the values outside it, how
    the file was read."""
    fitted_on: SampleInfo = {
        "rows": stream["fitted_on"], "of_rows": source.rows,
        "how": f"uniform reservoir sample drawn in one pass over the file (seed {seed}); "
               "the schema, validation and transformer saw only these rows"}
    read: StreamInfo = {"row_groups": pf.metadata.num_row_groups, "chunk_rows": stream["chunk_rows"],
                        "window_row_groups": stream["window"]}
    return {**base, "streamed": True, "transformer_fitted_on": fitted_on, "outside_sample": source.outside or {},
            "outside_sample_handling": OUTSIDE_SAMPLE, "stream": read}


def check_streamable(data: TableLike, settings: FitSettings) -> None:
    """Refuse, before reading anything, what cannot train from a stream (naming what can)."""
    if isinstance(data, pd.DataFrame):
        raise ConfigError("stream=True reads a Parquet file piece by piece; a DataFrame is already in memory "
                          "(fix: fit(df) without stream, or pass the Parquet file's path)")
    check_capable(type(settings.model), dp=settings.private, streaming=True,
                  processes=distributed.current().size > 1)


def sample_transformer(path: TableLike, pf: pq.ParquetFile, settings: FitSettings, stream: dict[str, Any]
                       ) -> tuple[TabularTransformer, TableSchema]:
    """The validate, schema and transformer steps on a reservoir sample of ``stream["sample_rows"]`` rows
    (``stream["fitted_on"]``: the rows it has)."""
    sample = reservoir_sample(pf, stream["sample_rows"], seed=settings.seed)
    schema = checked_schema(sample.frame, settings, of_rows=sample.rows)
    missing_nulls_warning(sample, path)
    stream["fitted_on"] = len(sample.frame)
    return TabularTransformer(seed=settings.seed).fit(sample.frame, schema), schema


# ---------------------------------------------------------------------------------------- model


def train(model: Model, data: np.ndarray | ParquetBatches, transformer: TabularTransformer, options: FitOptions,
          run: Checkpointing, body: dict[str, Any] | None, context: np.ndarray | None = None) -> None:
    """The model step: fit, keeping checkpoints (``body`` and the training state) and resuming from
    ``run.saved`` when asked."""
    if run.path is not None and body is not None:  # both or neither
        path, seal, kept = run.path, run.seal, body
        options.checkpoint = lambda tensors, meta: write_checkpoint(path, {**kept, "state": meta}, tensors, seal=seal)
        options.checkpoint_every = run.every
    if run.saved:
        options.resume = (run.saved.tensors, run.saved.body["state"])
    try:
        model.fit(data, transformer.layout, options, context=context)
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(f"{exc}; checkpoint written to {run.path} (fix: resume from it)") from None


def checkpoint_body(settings: FitSettings, transformer: TabularTransformer, data_id: dict[str, Any],
                    schema: TableSchema, domain: dict[str, ColumnDomain] | None) -> dict[str, Any]:
    """What a checkpoint holds besides the training state: the settings, the table's identity, the schema,
    the transformer and the DP domain."""
    key = settings.resume_key()
    return {"model": key["model"], "hyperparameters": key["hyperparameters"], "seed": key["seed"],
            "device": key["device"], "allow": list(settings.allow), "privacy": key["privacy"], "target": key["target"],
            "data": data_id,
            "schema": schema.to_dict(), "transformer": transformer.to_dict(),
            "domain": {k: dataclasses.asdict(v) for k, v in domain.items()} if domain is not None else None}


def summary(settings: FitSettings, rows: int, columns: int, start: float, transform_s: float,
            saved: Checkpoint | None) -> TrainingSummary:
    """The training summary a model file keeps (``manifest["training"]``)."""
    model = settings.model
    done: TrainingSummary = {
        "rows": int(rows), "columns": int(columns), "seed": settings.seed, "device": settings.device,
        "precision": getattr(model, "precision", "float32"),
        "epochs": int(getattr(model.config, "epochs", 1)),
        "seconds": round(time.perf_counter() - start, 3), "transformer_seconds": round(transform_s, 3),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "history": model.history,
    }
    if saved:
        done["resumed_from_epoch"] = saved.body["state"]["epoch"]
    if settings.target is not None:
        done["target"] = settings.target
    return done
