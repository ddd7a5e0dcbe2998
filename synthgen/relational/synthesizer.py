"""RelationalSynthesizer: train one model per table of a dataset, each child given its parent's lineage.

For every table, in parent-before-child order, the model learns a frame of:
- the table's own columns (keys excluded: keys are generated, never learned);
- per child relationship, how many child rows reference each row (``#children ...``), so the counts follow
  the row's values;
- per non-context parent, that parent's lineage (``#parent fk: ...``), which sampling uses to pick the
  parent each row references, and a null flag where that key may be null;
given a context row: its context parent's lineage (that parent's columns and counts and those of up to two
ancestors above it), encoded by :class:`~synthgen.relational.context.ContextEncoder`. Root tables have no
context. The single-table layer (``Synthesizer``) does every fit: validation, identifier scan, transformer.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from synthgen import __version__
from synthgen.artifact import Manifest, write_model_file
from synthgen.dp.ledger import Ledger
from synthgen.dp.training import DPSettings
from synthgen.errors import ConfigError, DataWarning, IdentifierWarning, InvalidDataError, NotFittedError
from synthgen.io import TableLike, as_seal, read_table
from synthgen.metadata import Metadata, Relationship
from synthgen.models import get_model
from synthgen.pipeline import Entities
from synthgen.relational import privacy
from synthgen.relational.context import ContextEncoder
from synthgen.relational.keys import key_format
from synthgen.relational.lineage import (
    chain,
    context_parent,
    count_column,
    lineage,
    mean_column,
    null_column,
    shadow_prefix,
)
from synthgen.relational.sequences import (
    FIRST,
    GAP,
    check_sequence,
    events_encoder,
    index_info,
    index_numbers,
    ordered,
    position_features,
    positions,
    repeats,
    same_column,
    sequence_index,
    split_standalone,
    steps,
)
from synthgen.schema import TableSchema, python_value, schema_from_metadata
from synthgen.synthesizer import RAW_QUANTITIES, Synthesizer
from synthgen.transform import TabularTransformer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    from synthgen.relational.sampler import RelationalSampler

#: manifest["kind"] of a model file holding several tables
KIND = "relational"
#: a table's default epochs give its model about this many steps (at most 300 epochs, at least 20) ...
STEP_BUDGET = 600
MIN_EPOCHS, MAX_EPOCHS = 20, 300
#: ... and at most this many steps (a table of 1,000,000 rows trains 2 epochs)
MAX_STEPS = 4_000
#: rows each numeric column's mode mixture is fitted on (the single-table default is 5,000)
MIXTURE_ROWS = 1_000
#: a parent without columns of its own (cdnow's users) learns the mean over its children of up to this many numeric
#: and date columns per child relationship, so that its children differ from parent to parent as the real ones do
MAX_SUMMARIES = 3
#: each table's tvae unless told otherwise: narrower than the single-table default, and codes drawn from the
#: standard normal.
#:
#: Measured on baseball (2,400 players, 80% of 3,000) and cdnow (80% of the users), 2026-12-07, AMD EPYC with
#: avx512_bf16, alone: the single-table defaults with 6,000 steps per table took 155 s on baseball; these
#: layers with 1,000 steps 27 s (quality 0.901), and with the mixtures on 1,000 rows and 600 steps 15 s (0.890,
#: SDV HMA: 20 s, 0.786). The children's means (``MAX_SUMMARIES``) lift cdnow's utility task (R^2 of a user's
#: purchase count from their purchases' means: 0.13-0.16 without, at 10-30 epochs; 0.21 with; HMA 0.18), but for
#: parents with columns they cost: baseball 3 s and 0.012 of quality, berka 0.07 of quality (intertable trends
#: 0.90 to 0.65). Fewer than 20 epochs left cdnow's large child table short (R^2 0.18 at 10).
TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tvae": {"embedding_dim": 32, "compress_dims": (128, 128), "decompress_dims": (128, 128), "latent_components": 0},
}
#: under entity-level DP: the most rows an entity keeps in each child table (public, in the ledger): longer
#: histories keep their first MAX_EVENTS events, other child tables MAX_EVENTS of the entity's rows drawn at random
MAX_EVENTS = 100
#: under DP, each table's share of its budget for noisy domain statistics (bounds, categories, bins), unless given
DP_STATS_SHARE = 0.1
#: each table's tvae under DP unless told otherwise: one hidden layer each way (fewer parameters, less noise)
DP_TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tvae": {"embedding_dim": 32, "compress_dims": (128,), "decompress_dims": (128,), "latent_components": 0},
}
#: what a relational model file holds that was read from the private tables without noise, beyond each
#: table model's own RAW_QUANTITIES
RELATIONAL_RAW_QUANTITIES = [
    "the tables' names, keys and relationships",
    "per table: its row count and its rows with a null context key",
    "per child relationship: how many child rows each parent row has, and for a parent without columns of its "
    "own the mean of up to 3 numeric and date columns over its children (learned as columns of the parent)",
    "per context: category lists, means and standard deviations of the lineage columns",
    "per sequential table: whether its index is whole, and its smallest step between consecutive events",
    "per key column: the largest whole-number key, or the characters text keys use at each position "
    "(new keys are made outside them)",
]


class RelationalSynthesizer:
    """Train generators for a dataset of related tables and save them as one model file.

    Example:
        >>> synth = RelationalSynthesizer(seed=0).fit({"account": acc, "loan": loans}, metadata=meta)  # doctest: +SKIP
        >>> synth.save("bank.sgm")  # doctest: +SKIP

    Args:
        model: the model of every table (``tvae``: child tables need ``capabilities.context``).
        epochs: epochs of every table (None: about ``STEP_BUDGET`` steps per table, 20 to 300 epochs, at most
            ``MAX_STEPS`` steps).
        seed: seed of every fit (each table's model gets its own, derived from it).
        device: ``cpu`` or ``cuda``.
        progress: progress bars.
        allow: ``table.column`` names to train on although they look like identifiers.
        contexts: ``{table: foreign_key}``: the parent that gives a table with several parents its context
            (default: the one with the most rows per parent).
        epsilon: train with entity-level differential privacy at this total budget (None: no DP): the unit is an
            entity, a row of the root table with all its rows in every other table (see ``synthgen.relational.
            privacy``). delta, max_grad_norm, accountant and deterministic as for ``Synthesizer``; stats_share
            (default ``DP_STATS_SHARE``) is each table's share for its noisy domain statistics.
        max_events: under DP, the most rows an entity keeps in each child table (public).
        root_model: under DP, the model of the entity table (one row per entity, no context): ``pairwise`` (the
            default: noisy one- and two-way marginals keep the shape of the history lengths, where DP-SGD's tvae
            piles them onto the commonest length), or None for ``model``.
        context_columns: ``{table: [columns]}``: of a history table alone (a ``sequence_key`` without an entity
            table), the columns that describe its entity, constant over each history (as PAR's
            ``context_columns``); default: those constant within every history (none under DP, where that is
            the rows' to say).
        **hyperparameters: passed to every table's model, over ``TABLE_DEFAULTS``.
    """

    def __init__(self, *, model: str = "tvae", epochs: int | None = None, seed: int = 0, device: str = "cpu",
                 progress: bool = False, allow: Sequence[str] = (), contexts: Mapping[str, str] | None = None,
                 epsilon: float | None = None, delta: float | None = None, max_grad_norm: float = 1.0,
                 accountant: str = "rdp", stats_share: float | None = None, deterministic: bool = False,
                 max_events: int = MAX_EVENTS, context_columns: Mapping[str, Sequence[str]] | None = None,
                 root_model: str | None = "pairwise", **hyperparameters: Any):
        self.privacy = (DPSettings(epsilon, delta, max_grad_norm, accountant,
                                   DP_STATS_SHARE if stats_share is None else stats_share, deterministic)
                        if epsilon is not None else None)
        if not (isinstance(max_events, int) and max_events >= 1):
            raise ConfigError(f"max_events must be a whole number >= 1, got {max_events!r}")
        for given in ("target", "target_span"):
            if given in hyperparameters:
                raise ConfigError(f"{given}: generating rows given a target class applies to a single table; each "
                                  "table of several is generated given its parent (fix: drop it, or train the table "
                                  "alone with synthgen train TABLE --target COLUMN)")
        self.max_events, self.root_model = max_events, root_model
        self.context_columns = {str(t): [str(c) for c in cs] for t, cs in (context_columns or {}).items()}
        self.ledger: Ledger | None = None
        self.model_name, self.epochs, self.seed, self.device = model, epochs, seed, device
        self.progress, self.allow = progress, tuple(allow)
        defaults = (DP_TABLE_DEFAULTS if self.privacy else TABLE_DEFAULTS).get(model, {})
        self.hyperparameters = {**defaults, **hyperparameters}
        self.chosen = dict(contexts or {})
        self.metadata: Metadata | None = None
        self.tables: dict[str, dict[str, Any]] = {}  # per table: what sampling needs (JSON)
        self.synthesizers: dict[str, Synthesizer] = {}
        self.standalone: dict[str, dict[str, Any]] = {}
        self.seconds = 0.0

    # ------------------------------------------------------------------ fit
    def fit(self, tables: Mapping[str, pd.DataFrame | TableLike],
            metadata: Metadata | Mapping[str, Any] | str | os.PathLike | None = None) -> RelationalSynthesizer:
        """Check the tables against the metadata (detected when None), then fit every table's model.

        Raises:
            InvalidDataError: every problem of the tables and keys at once (table, column, rule, fix).
        """
        start = time.perf_counter()
        data = {name: read_table(t) if not isinstance(t, pd.DataFrame) else t for name, t in tables.items()}
        meta = _as_metadata(metadata, data)
        meta.check(data)
        self.output_metadata = meta
        meta, data, self.standalone = split_standalone(  # a history table alone: its entities split off
            meta, data, self.context_columns, detect=self.privacy is None)
        self._check_allow(meta)
        contexts = {t: context_parent(meta, t, data, self.chosen) for t in meta.tables}
        sequence_problems = [p for t in meta.tables for p in check_sequence(meta, t, data[t], contexts[t])]
        if sequence_problems:
            raise InvalidDataError(sequence_problems)
        for table in meta.tables:  # a history's events together, in order
            index = sequence_index(meta, table)
            if index is not None:
                ctx = contexts[table]
                assert ctx is not None, "check_sequence: a sequential table has a parent"
                data[table] = ordered(data[table], ctx.foreign_key, index, meta.tables[table]["columns"][index])
        self._root = None
        if self.privacy is not None:  # the unit is the entity: one root, its children, capped histories
            self._root = privacy.entity_table(meta, data, contexts)
            data = privacy.capped(data, contexts, self._root, self.max_events,
                                  {t: sequence_index(meta, t) is not None for t in meta.tables}, self.seed)
        plans = self._plan(meta, data, contexts)  # every table checked before any model trains
        if self.privacy is not None:  # the tables' shares of epsilon, so that together they spend the budget
            self._share(plans, len(data[str(self._root)]))
        self.metadata, self.tables, self.synthesizers = meta, {}, {}
        ledgers = {}
        for table, plan in plans.items():
            if plan.frame.shape[1]:
                plan.synthesizer.fit(plan.frame, context=plan.context, entities=plan.entities)
                self.synthesizers[table] = plan.synthesizer
                if plan.synthesizer.ledger is not None:
                    ledgers[table] = plan.synthesizer.ledger
            df, ctx_rel = data[table], contexts[table]
            pk = meta.primary_key(table)
            keys = privacy.key_format_private if self.privacy else None
            self.tables[table] = {
                "rows": len(df) if ctx_rel is None or self.privacy is None else None,  # under DP a private count
                "columns": [str(c) for c in df.columns],
                "dtypes": {str(c): str(df[c].dtype) for c in df.columns},
                "null_context_rows": int(df[ctx_rel.foreign_key].isna().sum()) if ctx_rel else 0,
                "keys": {pk: keys(df[pk]) if keys else key_format(df[pk], table=table, column=pk)} if pk else {},
                "generated": {c: keys(df[c]) if keys else key_format(df[c], table=table, column=c)
                              for c in plan.generated},
                "constants": plan.constants,
                **({"sequence": plan.sequence} if plan.sequence else {}),
            }
        self.encoders = {name: enc.to_dict() for name, enc in self._encoders.items()}
        self.contexts = {t: (r.to_dict() if r else None) for t, r in contexts.items()}
        self.ledger = None
        if self.privacy is not None:
            assert self._root is not None
            self.ledger = privacy.entity_ledger(self.privacy, self._delta, ledgers, entities=len(data[self._root]),
                                                max_events=self.max_events, root=self._root)
        self.seconds = time.perf_counter() - start
        return self

    def _plan(self, meta: Metadata, data: Mapping[str, pd.DataFrame],
              contexts: Mapping[str, Relationship | None]) -> dict[str, _TablePlan]:
        """Each table's model frame, schema, context rows and synthesizer, in parent-before-child order; every
        table is validated, and the problems of all of them raised at once."""
        lineages: dict[str, pd.DataFrame] = {}  # real lineage of each parent, indexed by its key
        self._encoders: dict[str, ContextEncoder] = {}
        private = self.privacy is not None
        if private:
            assert self._root is not None
            assert self.privacy is not None
            self._delta = privacy.entity_delta(self.privacy, len(data[self._root]))  # epsilon and delta: _share
            root_keys = data[self._root][meta.primary_key(self._root)]
        plans, problems = {}, []
        self._fitting: dict[str, Synthesizer] = {}
        for i, table in enumerate(meta.order()):
            df, ctx_rel = data[table], contexts[table]
            try:
                attributes, schema, generated = _attributes(meta, table, df)
            except InvalidDataError as exc:
                problems += [dataclasses.replace(p, table=table) for p in exc.problems]
                continue
            self._warn_identifiers(table, attributes)
            others = [r for r in meta.parents(table) if r != ctx_rel]
            if any(r.parent not in lineages for r in meta.parents(table)):
                continue  # a parent failed its checks: reported there
            index = sequence_index(meta, table)
            if index is not None:  # learned as #first and #gap, not as itself
                attributes = attributes.drop(columns=[index])
                schema = TableSchema([c for c in schema.columns if c.name != index])
            full = self._frame(meta, table, df, attributes, data, others, lineages)
            sequence = None
            if index is not None:
                assert ctx_rel is not None, "check_sequence: a sequential table has a parent"
                pos, length = positions(df[ctx_rel.foreign_key])
                entry = meta.tables[table]["columns"][index]
                full[FIRST], full[GAP] = steps(index_numbers(df[index], entry), pos)
                sticky = [c.name for c in schema.columns if c.kind in ("categorical", "boolean")]
                for column in sticky:  # whether an event keeps the category of the event before it
                    full[same_column(column)] = repeats(full[column], pos)
                try:
                    sequence = (index_info(df, index, entry, full[GAP].to_numpy()) if not private
                                else privacy.index_info_private(df, index, entry))
                except InvalidDataError as exc:
                    problems += [dataclasses.replace(p, table=table) for p in exc.problems]
                    continue
                sequence["sticky"] = sticky
            constants = {} if private else {  # under DP, whether a column is constant is the rows' to say
                str(c): python_value(full[c].iloc[0]) for c in full.columns
                if c not in schema.names and len(full) and full[c].nunique(dropna=False) == 1}
            frame = full.drop(columns=list(constants))  # an added column of one value is kept as that value
            internal = frame[[c for c in frame.columns if c not in schema.names]]
            added = TableSchema.detect(internal, private=private).columns if internal.shape[1] else []
            if private:  # the counts' bounds are public: at most max_events rows per entity
                added = [privacy.count_spec(c, self.max_events) if c.name.startswith("#children ") else c
                         for c in added]
            schema = TableSchema(schema.columns + added)
            context: np.ndarray | Callable[[TabularTransformer], np.ndarray] | None = None
            events = ([c for c in frame.columns if c in attributes.columns or c == GAP] if sequence is not None
                      else [])
            if sequence is not None:
                sequence["events"] = events
            if ctx_rel is not None and private:  # encoders from the DP transformers, once they are fitted
                context = self._private_context(table, ctx_rel, df, frame, lineages,
                                                (pos, length) if sequence is not None else None, events)
            elif ctx_rel is not None:
                parent = ctx_rel.parent
                if parent not in self._encoders:
                    self._encoders[parent] = ContextEncoder().fit(lineages[parent])
                context = _context_rows(self._encoders[parent], lineages[parent], df[ctx_rel.foreign_key])
                if sequence is not None:  # each event also given its position and the event before it
                    encoder = ContextEncoder().fit(frame[events])
                    self._encoders[events_encoder(table)] = encoder
                    context = np.hstack([context, position_features(pos, length), _before(encoder, frame[events],
                                                                                          pos)])
            synth = self._table_synthesizer(table, len(df), i, frame, schema, self.privacy,
                                            len(data[self._root]) if private and self._root else 0, ctx_rel is None)
            self._fitting[table] = synth
            entities = (privacy.entities_of(table, df, self._root, root_keys, ctx_rel)  # type: ignore[arg-type]
                        if private else None)
            if frame.shape[1]:
                try:
                    synth.check(frame)
                except InvalidDataError as exc:
                    problems += [dataclasses.replace(p, table=table) for p in exc.problems]
            if meta.children(table):
                own = lineage(table, full, _with_constants(schema, full, constants),
                              lineages[ctx_rel.parent] if ctx_rel else None,
                              df[ctx_rel.foreign_key] if ctx_rel else None,
                              chain(meta, ctx_rel.parent, contexts) if ctx_rel else None)
                own.index = pd.Index(df[meta.primary_key(table)].to_numpy())
                lineages[table] = own
            plans[table] = _TablePlan(frame, context, synth, generated, constants, sequence, entities)
        if problems:
            raise InvalidDataError(problems)
        for rel in meta.relationships:  # a parent that gives no context still needs one for matching
            if rel.parent not in self._encoders and not private:
                self._encoders[rel.parent] = ContextEncoder().fit(lineages[rel.parent])
        return plans

    def _share(self, plans: Mapping[str, _TablePlan], entities: int) -> None:
        """Under DP, calibrate every table's model to the largest common epsilon that keeps one accountant over
        all their planned releases within the budget (``privacy.joint_share``)."""
        assert self.privacy is not None
        fitted = [p.synthesizer for p in plans.values() if p.frame.shape[1]]
        models = []
        for synth in fitted:
            assert isinstance(synth.metadata, TableSchema), "a relational table's schema comes from the metadata"
            models.append((synth.model, synth.metadata))
        share = privacy.joint_share(self.privacy, self._delta, models, entities)
        for synth in fitted:
            assert synth.privacy is not None
            synth.privacy = dataclasses.replace(synth.privacy, epsilon=share, delta=self._delta / len(fitted))

    def _private_context(self, table: str, rel: Relationship, df: pd.DataFrame, frame: pd.DataFrame,
                         lineages: Mapping[str, pd.DataFrame], places: tuple[np.ndarray, np.ndarray] | None,
                         events: list[str]) -> Callable[[TabularTransformer], np.ndarray]:
        """Under DP, the context rows of a child table as a function of its fitted transformer: the parent's
        lineage encoded with the scales and categories of the parent's DP transformer (the parent is fitted
        first), and for a history the event before encoded with the table's own."""
        parent = rel.parent

        def context(transformer: TabularTransformer) -> np.ndarray:
            if parent not in self._encoders:
                names = {c: c[len(parent) + 1:] for c in lineages[parent].columns}
                fitted = self._fitting[parent].transformer
                assert fitted is not None, "a parent is fitted before its children"
                self._encoders[parent] = ContextEncoder.from_transformer(names, fitted)
            rows = _context_rows(self._encoders[parent], lineages[parent], df[rel.foreign_key])
            if places is None:
                return rows
            encoder = ContextEncoder.from_transformer({c: c for c in events}, transformer)
            self._encoders[events_encoder(table)] = encoder
            pos, length = places
            return np.hstack([rows, position_features(pos, length), _before(encoder, frame[events], pos)])

        return context

    def _warn_identifiers(self, table: str, attributes: pd.DataFrame) -> None:
        """The identifier scan of every table: a warning per column the model would learn that looks like a direct
        identifier (names, emails, ...), unless ``allow`` names it (ID-like columns are the metadata's to declare:
        sdtype ``id`` columns are generated, not learned)."""
        from synthgen.masking.identifiers import scan

        for f in scan(attributes):
            if f.role == "direct" and f"{table}.{f.column}" not in self.allow:
                warnings.warn(IdentifierWarning(
                    f"table {table!r}, column {f.column!r} looks like {f.what} ({f.evidence}), a direct identifier "
                    f"left unmasked (fix: mask it first, see synthgen mask --suggest; declare it sdtype id in the "
                    f"metadata to generate it instead; or allow {table}.{f.column})"), stacklevel=4)

    def _check_allow(self, meta: Metadata) -> None:
        bad = [a for a in self.allow if "." not in a or a.split(".", 1)[0] not in meta.tables]
        if bad:
            raise ConfigError(f"allow names {bad}: each must be table.column of a table in the metadata "
                              f"({', '.join(meta.tables)})")

    def _frame(self, meta: Metadata, table: str, df: pd.DataFrame, attributes: pd.DataFrame,
               data: Mapping[str, pd.DataFrame], others: list[Relationship], lineages: Mapping[str, pd.DataFrame]
               ) -> pd.DataFrame:
        """The frame ``table``'s model learns: attributes, child counts, non-context parents' lineage, null flags."""
        frame = attributes.copy()
        pk = meta.primary_key(table)
        for rel in meta.children(table):
            assert pk is not None, "a parent has a primary key (graph_problems)"
            counts = data[rel.child][rel.foreign_key].value_counts()
            frame[count_column(rel)] = counts.reindex(df[pk].to_numpy()).fillna(0).astype(np.int64).to_numpy()
            if attributes.shape[1] or self.privacy is not None:  # a parent with columns of its own: its children
                continue  # are conditioned on those; under DP the summaries' bounds would be private
            for column, values in _summarized(meta, rel, data[rel.child]).items():
                means = values.groupby(data[rel.child][rel.foreign_key].to_numpy()).mean()
                frame[mean_column(rel, column)] = means.reindex(df[pk].to_numpy()).to_numpy()
        for rel in others:
            parent = lineages[rel.parent]
            joined = parent.reindex(df[rel.foreign_key].to_numpy())
            for column in parent.columns:
                frame[shadow_prefix(rel) + column] = joined[column].to_numpy()
            if df[rel.foreign_key].isna().any():
                frame[null_column(rel)] = df[rel.foreign_key].isna().to_numpy()
        return frame.reset_index(drop=True)

    def _table_synthesizer(self, table: str, rows: int, index: int, frame: pd.DataFrame,
                           schema: TableSchema, private: DPSettings | None = None, units: int = 0,
                           root: bool = False) -> Synthesizer:
        """The single-table synthesizer of ``table``: its epochs (from the step budget unless given), its own
        seed, its schema (from the metadata), and the columns it may train on although they look like
        identifiers: those the metadata declares as data (a person reviewed it; ``metadata detect`` makes
        identifier-like columns ``id``), and the columns this layer adds."""
        epochs = self.epochs
        if private is not None:  # DP-SGD's schedule: the model's DP defaults unless given (steps cost noise)
            settings: dict[str, Any] = {
                "epsilon": private.epsilon, "delta": private.delta, "max_grad_norm": private.max_grad_norm,
                "accountant": private.accountant, "stats_share": private.stats_share,
                "deterministic": private.deterministic}
            if root and self.root_model is not None:  # one row per entity, no context: the DP marginal model
                return Synthesizer(model=self.root_model, epochs=epochs, seed=self.seed + 1000 * index,
                                   device=self.device, progress=self.progress,
                                   allow=tuple(str(c) for c in frame.columns), metadata=schema, **settings)
            params = dict(self.hyperparameters)
            model = get_model(self.model_name)
            batch = int(params.get("batch_size", model.dp_defaults.get("batch_size", 500)))  # entities per step
            params["batch_size"] = max(1, min(batch, units or rows, rows))
            return Synthesizer(model=self.model_name, epochs=epochs, seed=self.seed + 1000 * index,
                               device=self.device, progress=self.progress, allow=tuple(str(c) for c in frame.columns),
                               metadata=schema, **settings, **params)
        if epochs is None:
            batch = min(int(self.hyperparameters.get("batch_size", 500)), max(rows, 1))
            epochs = int(np.clip(round(STEP_BUDGET * batch / max(rows, 1)), MIN_EPOCHS, MAX_EPOCHS))
            epochs = max(1, min(epochs, round(MAX_STEPS * batch / max(rows, 1))))  # a large table: fewer epochs
        params = dict(self.hyperparameters)
        if "batch_size" in params:  # one batch size for tables of every size: at most each table's rows
            params["batch_size"] = min(int(params["batch_size"]), max(rows, 1))
        allow = [str(c) for c in frame.columns]
        return Synthesizer(model=self.model_name, epochs=epochs, seed=self.seed + 1000 * index, device=self.device,
                           progress=self.progress, allow=tuple(allow), metadata=schema, mixture_rows=MIXTURE_ROWS,
                           **params)

    # ------------------------------------------------------------------ save / sample
    def manifest(self) -> Manifest:
        """The model file's manifest: the metadata, per table what sampling needs and its model's manifest."""
        if self.metadata is None:
            raise NotFittedError("the relational synthesizer is not fitted (fix: call fit first)")
        import torch

        per_table = {}
        for name, info in self.tables.items():
            entry = dict(info)
            if name in self.synthesizers:
                entry["model"] = self.synthesizers[name].manifest()
            per_table[name] = entry
        manifest: dict[str, Any] = {
            "kind": KIND, "synthgen_version": __version__, "torch_version": torch.__version__,
            "metadata": self.metadata.to_dict(), "order": self.metadata.order(), "tables": per_table,
            "contexts": self.contexts, "encoders": self.encoders,
            **({"standalone": self.standalone, "output_metadata": self.output_metadata.to_dict()}
               if self.standalone else {}),
            "training": {"seconds": round(self.seconds, 3), "seed": self.seed, "model": self.model_name},
            "privacy": self.ledger or {
                "differential_privacy": False, "epsilon": None, "delta": None,
                "statement": "Trained WITHOUT differential privacy: no formal guarantee for the rows of the "
                             "training tables.",
                "raw_quantities": RAW_QUANTITIES + RELATIONAL_RAW_QUANTITIES},
        }
        return manifest  # type: ignore[return-value]  # a relational manifest (kind "relational")

    def tensors(self) -> dict[str, Any]:
        """Every table model's tensors, named ``<table>/<tensor>``."""
        return {f"{name}/{key}": value for name, synth in self.synthesizers.items()
                for key, value in synth.model.state_tensors().items()}

    def save(self, path: str | os.PathLike, *, force: bool = False, key: bytes | None = None,
             recipient: X25519PublicKey | None = None) -> Path:
        """Write one model file for the whole dataset (refuses to overwrite unless ``force``)."""
        return write_model_file(path, self.manifest(), self.tensors(), force=force,
                                seal=as_seal({"key": key, "recipient": recipient}))

    def sampler(self) -> RelationalSampler:
        from synthgen.relational.sampler import RelationalSampler

        return RelationalSampler({n: s.sampler() for n, s in self.synthesizers.items()}, self.manifest())

    def sample(self, *, scale: float | None = None, seed: int | None = None, entities: int | None = None,
               conditions: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
        """Shortcut for ``self.sampler().sample(...)``."""
        return self.sampler().sample(scale=scale, seed=seed, entities=entities, conditions=conditions)

    def sample_sequences(self, context: pd.DataFrame, *, table: str | None = None, seed: int | None = None
                         ) -> pd.DataFrame:
        """Shortcut for ``self.sampler().sample_sequences(...)``."""
        return self.sampler().sample_sequences(context, table=table, seed=seed)


@dataclasses.dataclass
class _TablePlan:
    """One table's fit, prepared: the frame its model learns, its context rows, its synthesizer, and its
    non-key ``id`` columns (generated anew)."""

    frame: pd.DataFrame
    context: np.ndarray | Callable[[TabularTransformer], np.ndarray] | None
    synthesizer: Synthesizer
    generated: list[str]
    constants: dict[str, Any]
    sequence: dict[str, Any] | None = None
    entities: Entities | None = None  # under DP: each row's entity


def _attributes(meta: Metadata, table: str, df: pd.DataFrame) -> tuple[pd.DataFrame, TableSchema, list[str]]:
    """The table's learned columns (neither keys nor sdtype ``id``) read as the metadata declares them, their
    schema, and its ``id`` columns. Text in a column declared numerical is read as null, with a warning."""
    entries = meta.tables[table]["columns"]
    keys = set(meta.keys(table))
    generated = [str(c) for c in df.columns if c not in keys and entries[c].get("sdtype") == "id"]
    learned = [c for c in df.columns if c not in keys and c not in generated]
    frame = df[learned].copy()
    for column in learned:
        if entries[column].get("sdtype") == "numerical" and not pd.api.types.is_numeric_dtype(frame[column].dtype):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = frame[column][numbers.isna() & frame[column].notna()]
            if len(bad):
                warnings.warn(DataWarning(
                    f"table {table!r}, column {column!r}: {len(bad):,} values such as {bad.iloc[0]!r} are not "
                    "numbers: read as nulls (the metadata declares the column numerical)"), stacklevel=4)
            frame[column] = numbers
    schema = schema_from_metadata({"columns": {c: entries[c] for c in learned}}, frame) if learned \
        else TableSchema([])
    return frame.reset_index(drop=True), schema, generated


def _summarized(meta: Metadata, rel: Relationship, child: pd.DataFrame) -> dict[str, pd.Series]:
    """The child's numeric and date columns (dates as days) whose mean over each parent row's children the
    parent learns beside its count, so that children generated given their parent differ from parent to parent
    as the real ones do (at most ``MAX_SUMMARIES`` per relationship, in column order)."""
    out: dict[str, pd.Series] = {}
    keys = set(meta.keys(rel.child))
    for column, entry in meta.tables[rel.child]["columns"].items():
        if column in keys or len(out) >= MAX_SUMMARIES:
            continue
        if entry.get("sdtype") in ("numerical", "datetime"):
            out[column] = pd.Series(index_numbers(child[column], entry), index=child.index)
    return out


def _before(encoder: ContextEncoder, events: pd.DataFrame, pos: np.ndarray) -> np.ndarray:
    """Each event's encoded event before it (zeros at a history's first event)."""
    before = np.roll(encoder.transform(events), 1, axis=0)
    before[pos == 0] = 0.0
    return before


def _with_constants(schema: TableSchema, frame: pd.DataFrame, constants: dict[str, Any]) -> TableSchema:
    """``schema`` with a detected spec for each constant column (the lineage reads their kinds)."""
    if not constants:
        return schema
    return TableSchema(schema.columns + TableSchema.detect(frame[list(constants)]).columns)


def _as_metadata(metadata: Metadata | Mapping[str, Any] | str | os.PathLike | None,
                 data: Mapping[str, pd.DataFrame]) -> Metadata:
    if metadata is None:
        return Metadata.detect(data)[0]
    if isinstance(metadata, Metadata):
        return metadata
    if not isinstance(metadata, Mapping):
        return Metadata.load(metadata, single=next(iter(data)) if len(data) == 1 else None)
    if "tables" not in metadata and "columns" in metadata and len(data) == 1:  # SDV single-table metadata
        metadata = {"tables": {next(iter(data)): dict(metadata)}}
    return Metadata.from_dict(metadata)


def _context_rows(encoder: ContextEncoder, parent_lineage: pd.DataFrame, keys: pd.Series) -> np.ndarray:
    """The context row of each child row: a null-parent flag, then its parent's encoded lineage (zeros for
    a child without a parent)."""
    encoded = encoder.transform(parent_lineage)
    position = pd.Series(np.arange(len(parent_lineage)), index=parent_lineage.index)
    at = position.reindex(keys.to_numpy()).to_numpy()
    missing = np.isnan(at)
    out = np.zeros((len(keys), encoder.width + 1), dtype=np.float32)
    out[missing, 0] = 1.0
    out[~missing, 1:] = encoded[at[~missing].astype(np.int64)]
    return out

