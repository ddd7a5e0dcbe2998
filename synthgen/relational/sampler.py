"""RelationalSampler: generate a whole dataset from a relational model file, parents before children.

Root tables get ``scale`` times their training rows. Every other table gets, for each generated row of its
context parent, as many rows as that row's ``#children`` count, generated given the parent's lineage (and
the rows that had no parent, ``scale`` times as many as in training). Foreign keys to other parents are
matched (``synthgen.relational.matching``); primary keys are new (``synthgen.relational.keys``). Every
foreign key is a generated primary key, or null where the training data had nulls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synthgen.artifact import Manifest, build_model, read_model_file
from synthgen.errors import ConfigError, IntegrityError
from synthgen.metadata import Metadata, Relationship
from synthgen.relational.context import ContextEncoder
from synthgen.relational.keys import generate_keys
from synthgen.relational.lineage import chain, count_column, lineage, null_column, repeat_rows, shadow_prefix
from synthgen.relational.matching import capacities, match
from synthgen.relational.sequences import (
    FIRST,
    GAP,
    events_encoder,
    join_standalone,
    position_features,
    rebuild_index,
    same_column,
)
from synthgen.sampler import Sampler
from synthgen.schema import TableSchema

#: ``sample_sequences``: an entity's history length comes from one of its MATCH_NEIGHBOURS nearest among
#: MATCH_CANDIDATES times as many generated entities (at least MATCH_MINIMUM)
MATCH_CANDIDATES, MATCH_MINIMUM, MATCH_NEIGHBOURS = 20, 2_000, 10

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


class RelationalSampler:
    """Generate related tables from a relational model file.

    Example:
        >>> tables = RelationalSampler.load("berka.sgm").sample(scale=1.0, seed=0)  # doctest: +SKIP
    """

    def __init__(self, samplers: dict[str, Sampler], manifest: Manifest | dict[str, Any]):
        self.samplers, self.manifest = samplers, dict(manifest)
        self.metadata = Metadata.from_dict(self.manifest["metadata"])
        self.encoders = {name: ContextEncoder.from_dict(d) for name, d in self.manifest["encoders"].items()}
        self.standalone: dict[str, dict[str, Any]] = self.manifest.get("standalone", {})
        #: the tables as the user declared them (a standalone sequential table in one piece)
        self.output_metadata = (Metadata.from_dict(self.manifest["output_metadata"]) if self.standalone
                                else self.metadata)
        self.contexts = {t: (Relationship(d["parent_table_name"], d["parent_primary_key"], d["child_table_name"],
                                          d["child_foreign_key"]) if d else None)
                         for t, d in self.manifest["contexts"].items()}

    @classmethod
    def load(cls, path: str | os.PathLike, key: bytes | None = None, *, private_key: X25519PrivateKey | None = None,
             verify_key: Ed25519PublicKey | None = None, signature: str | os.PathLike | None = None,
             allow_rename: bool = False) -> RelationalSampler:
        """Open and verify a relational model file (arguments as ``Sampler.load``)."""
        from synthgen.crypto.sealing import Secret

        data = None
        if verify_key is not None:
            from synthgen.artifact import read_file_bytes
            from synthgen.crypto.signing import verify_data

            data = read_file_bytes(Path(path), "model file")
            verify_data(path, data, verify_key, signature=signature, allow_rename=allow_rename)
        secret = (Secret(private_key=private_key) if private_key is not None
                  else Secret(key=key) if key is not None else None)
        manifest, tensors = read_model_file(path, secret, data=data)
        return cls.assemble(path, manifest, tensors)

    @classmethod
    def assemble(cls, path: str | os.PathLike, manifest: Manifest | dict[str, Any], tensors: dict[str, Any]
                 ) -> RelationalSampler:
        """The sampler of a verified relational manifest and its tensors (each table's named ``<table>/...``)."""
        if manifest.get("kind") != "relational":
            raise ConfigError(f"{path} holds a single-table model (fix: use Sampler.load)")
        samplers = {}
        try:
            for name, entry in dict(manifest)["tables"].items():
                if "model" not in entry:
                    continue
                prefix = f"{name}/"
                own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                model = build_model(path, entry["model"], own)
                samplers[name] = Sampler.assemble(path, entry["model"], model)
            return cls(samplers, manifest)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise IntegrityError(f"{path}: the relational model file is malformed ({type(exc).__name__}: "
                                 f"{exc})") from None

    @property
    def tables(self) -> list[str]:
        return list(self.metadata.tables)

    def sample(self, *, scale: float | None = None, seed: int | None = None, entities: int | None = None,
               conditions: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
        """Every table, with new keys and 100% referential integrity; ``scale`` times the root tables' rows.

        Args:
            scale: root rows relative to training (default 1.0: as many); the other tables follow from the counts.
            seed: the same seed gives the same tables (None: fresh randomness).
            entities: instead of ``scale``, this many rows of the entity table (the parent of the sequential
                table, or the only root table); the other root tables scale alike.
            conditions: ``{column: value}`` that every row of the entity table meets (as ``Sampler.sample``'s
                conditions); their children follow.
        """
        roots, scale, entity = self._root_rows(scale, entities, conditions)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        meta, tables = self.metadata, self.manifest["tables"]
        frames: dict[str, pd.DataFrame] = {}  # each table's model frame (internal columns included)
        keys: dict[str, pd.Series] = {}
        lineages: dict[str, pd.DataFrame] = {}
        out: dict[str, pd.DataFrame] = {}
        for i, table in enumerate(meta.order()):
            info = tables[table]
            table_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1, np.uint64)[0] >> 1)
            rng = np.random.default_rng([int(seed), i, 7])
            ctx_rel = self.contexts[table]
            fk_values: dict[str, pd.Series] = {}
            if ctx_rel is None:
                n = roots[table]
                given = conditions if table == entity else None
                frame = (self.samplers[table].sample(n, seed=table_seed, conditions=given) if table in self.samplers
                         else pd.DataFrame(index=range(n)))
            else:
                parent = ctx_rel.parent
                counts = frames[parent][count_column(ctx_rel)]
                counts = np.clip(pd.to_numeric(counts, errors="coerce").fillna(0).round().to_numpy(), 0, None)
                encoded = self.encoders[parent].transform(lineages[parent])
                context = np.zeros((int(counts.sum()), encoded.shape[1] + 1), dtype=np.float32)
                context[:, 1:] = repeat_rows(encoded, counts)
                n_null = int(round(scale * info["null_context_rows"]))
                if n_null:
                    orphans = np.zeros((n_null, context.shape[1]), dtype=np.float32)
                    orphans[:, 0] = 1.0
                    context = np.concatenate([context, orphans])
                parent_keys = np.repeat(keys[parent].to_numpy(), counts.astype(np.int64))
                fk = pd.Series(list(parent_keys) + [None] * n_null, dtype=object)
                fk_values[ctx_rel.foreign_key] = fk
                if "sequence" in info and table in self.samplers:
                    parent_context = np.zeros((len(encoded), encoded.shape[1] + 1), dtype=np.float32)
                    parent_context[:, 1:] = encoded
                    frame = self._histories(table, info, parent_context, counts.astype(np.int64), table_seed)
                else:
                    frame = (self.samplers[table].sample_given(context, seed=table_seed) if table in self.samplers
                             else pd.DataFrame(index=range(len(context))))
            for column, value in info.get("constants", {}).items():
                frame[column] = value
            for rel in meta.parents(table):
                if rel == ctx_rel:
                    continue
                fk_values[rel.foreign_key] = self._matched(rel, frame, frames, lineages, keys, rng)
            pk = meta.primary_key(table)
            if pk is not None:
                keys[table] = generate_keys(info["keys"][pk], len(frame), rng)
            frames[table] = frame
            if meta.children(table):
                schema = self.samplers[table].transformer.fitted_schema if table in self.samplers else TableSchema([])
                constants = list(info.get("constants", {}))
                if constants:
                    schema = TableSchema(schema.columns + TableSchema.detect(frame[constants]).columns)
                own = lineage(table, frame, schema, lineages.get(ctx_rel.parent) if ctx_rel else None,
                              fk_values[ctx_rel.foreign_key] if ctx_rel else None,
                              chain(meta, ctx_rel.parent, self.contexts) if ctx_rel else None)
                own.index = pd.Index(keys[table].to_numpy())
                lineages[table] = own
            generated = {c: generate_keys(fmt, len(frame), rng) for c, fmt in info.get("generated", {}).items()}
            out[table] = _output(info, frame, keys.get(table), pk, fk_values, generated, tables, meta, table)
        return join_standalone(out, self.standalone)

    def sample_sequences(self, context: pd.DataFrame, *, table: str | None = None, seed: int | None = None
                         ) -> pd.DataFrame:
        """Histories of the sequential table ``table`` (default: the only one) for the given entities.

        Each row of ``context`` is an entity: every column the entity table's model learned (its key too, if
        given, else new keys are made). Each entity's history length (and any other learned summary of its
        children) comes from a generated entity much like it (one of the ``MATCH_NEIGHBOURS`` nearest of
        ``MATCH_CANDIDATES`` times as many generated entities, at random); its events are then generated
        given the entity's own columns, as ``sample`` generates them.

        Example:
            >>> Sampler.load("baseball.sgm").sample_sequences(players[["bats", "throws", "height"]])  # doctest: +SKIP
        """
        entity = self.entity_table(table)
        tables, meta = self.manifest["tables"], self.metadata
        if self.contexts[entity] is not None:
            raise ConfigError(f"the entities are rows of {entity!r}, which has a parent itself: histories can be "
                              "generated for given rows of a root table only (fix: sample the whole dataset)")
        sequential = [t for t in meta.order() if "sequence" in tables[t] and self.contexts[t] is not None
                      and self.contexts[t].parent == entity]  # type: ignore[union-attr]
        if not sequential:
            raise ConfigError(f"this model has no sequential table (one with a sequence_index) under {entity!r} (fix: "
                              "declare sequence_key and sequence_index in the metadata and train again)")
        seq = table or sequential[0]
        rel = self.contexts[seq]
        assert rel is not None
        others = [r.foreign_key for r in meta.parents(seq) if r != rel]
        if others:
            raise ConfigError(f"table {seq!r} also references other tables ({', '.join(others)}): its histories "
                              "need them generated too (fix: sample the whole dataset)")
        if not isinstance(context, pd.DataFrame):
            raise ConfigError(f"the entities must be a DataFrame of {entity!r} rows, got {type(context).__name__}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        sampler = self.samplers.get(entity)
        learned = [c for c in (sampler.columns if sampler else []) if not str(c).startswith("#")]
        missing = [c for c in learned if c not in context.columns]
        if missing:
            raise ConfigError(f"the entities lack column(s) {', '.join(map(repr, missing))} of table {entity!r} "
                              f"(fix: give every column the model learned: {', '.join(learned)})")
        n, rng = len(context), np.random.default_rng([int(seed), 11])
        frame = self._entity_rows(entity, context[learned].reset_index(drop=True), int(seed), rng)
        schema = sampler.transformer.fitted_schema if sampler else TableSchema([])
        constants = list(tables[entity].get("constants", {}))
        if constants:
            schema = TableSchema(schema.columns + TableSchema.detect(frame[constants]).columns)
        encoded = self.encoders[entity].transform(lineage(entity, frame, schema, None, None, None))
        parent_context = np.zeros((n, encoded.shape[1] + 1), dtype=np.float32)
        parent_context[:, 1:] = encoded
        counts = np.clip(pd.to_numeric(frame[count_column(rel)], errors="coerce").fillna(0).round().to_numpy(), 0,
                         None).astype(np.int64)
        events_seed = int(np.random.SeedSequence([int(seed), 12]).generate_state(1, np.uint64)[0] >> 1)
        events = self._histories(seq, tables[seq], parent_context, counts, events_seed)
        pk = meta.primary_key(entity)
        if pk is not None and pk in context.columns:
            entity_keys = context[pk].reset_index(drop=True)
        else:
            entity_keys = generate_keys(tables[entity]["keys"][pk], n, rng) if pk else pd.Series(range(n))
        fk = pd.Series(np.repeat(entity_keys.to_numpy(dtype=object), counts), dtype=object)
        own_pk = meta.primary_key(seq)
        own_keys = generate_keys(tables[seq]["keys"][own_pk], len(events), rng) if own_pk else None
        generated = {c: generate_keys(f, len(events), rng) for c, f in tables[seq].get("generated", {}).items()}
        history = _output(tables[seq], events, own_keys, own_pk, {rel.foreign_key: fk}, generated, tables, meta, seq)
        if seq not in self.standalone:
            return history
        given = context[learned].reset_index(drop=True).assign(**{rel.parent_key: entity_keys.to_numpy()})
        return join_standalone({seq: history, entity: given}, {seq: self.standalone[seq]})[seq]

    def _entity_rows(self, entity: str, given: pd.DataFrame, seed: int, rng: np.random.Generator) -> pd.DataFrame:
        """The entity table's model frame for given entities: their own columns, and the learned internal
        columns (child counts, summaries) of generated entities near them."""
        sampler, n = self.samplers.get(entity), len(given)
        if sampler is None:
            frame = pd.DataFrame(index=range(n))
        elif not given.shape[1]:  # nothing to match on: n generated entities as they come
            frame = sampler.sample(n, seed=seed)
        else:
            candidates = sampler.sample(max(MATCH_CANDIDATES * n, MATCH_MINIMUM), seed=seed)
            encoder = ContextEncoder().fit(candidates[given.columns])
            k = min(MATCH_NEIGHBOURS, len(candidates))
            near = NearestNeighbors(n_neighbors=k).fit(encoder.transform(candidates[given.columns])).kneighbors(
                encoder.transform(given), return_distance=False)
            picked = near[np.arange(n), rng.integers(0, k, n)] if n else np.zeros(0, np.int64)
            frame = candidates.iloc[picked].reset_index(drop=True)
            for column in given.columns:
                frame[column] = given[column].to_numpy()
        for column, value in self.manifest["tables"][entity].get("constants", {}).items():
            frame[column] = value
        return frame

    def entity_table(self, table: str | None = None) -> str:
        """The table whose rows are the entities: the parent of the sequential table ``table`` (default: the only
        sequential table), else the only root table."""
        tables = self.manifest["tables"]
        sequential = [t for t in self.metadata.order() if "sequence" in tables[t]]
        if table is not None:
            if table not in sequential:
                raise ConfigError(f"table {table!r} is not a sequential table of this model (fix: use one of: "
                                  f"{', '.join(sequential) or 'none; this model has none'})")
            sequential = [table]
        if len(sequential) == 1:
            rel = self.contexts[sequential[0]]
            assert rel is not None, "a sequential table has a parent (check_sequence)"
            return rel.parent
        roots = [t for t in self.metadata.order() if self.contexts[t] is None]
        if len(sequential) > 1:
            raise ConfigError(f"this model has several sequential tables ({', '.join(sequential)}) (fix: name one)")
        if len(roots) != 1:
            raise ConfigError(f"this model has several root tables ({', '.join(roots)}), so the entities are "
                              "ambiguous (fix: give a scale instead)")
        return roots[0]

    def _root_rows(self, scale: float | None, entities: int | None, conditions: dict[str, Any] | None
                   ) -> tuple[dict[str, int], float, str | None]:
        """Rows of each root table, the scale (of rows without a parent too), and the entity table when
        ``entities`` or ``conditions`` need one."""
        tables = self.manifest["tables"]
        if scale is not None and entities is not None:
            raise ConfigError("give the entities or the scale, not both (fix: drop one)")
        if scale is not None and not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
            raise ConfigError(f"scale must be a number > 0, got {scale!r}")
        if entities is not None and not (isinstance(entities, int | np.integer) and entities >= 0):
            raise ConfigError(f"entities must be a whole number >= 0, got {entities!r}")
        entity = self.entity_table() if entities is not None or conditions else None
        if entity is not None and self.contexts[entity] is not None:
            raise ConfigError(f"the entities are rows of {entity!r}, which is not a root table (its rows follow "
                              f"from its parent's) (fix: give a scale instead)")
        if conditions:
            own = [c for c in (self.samplers[entity].columns if entity in self.samplers else [])
                   if not str(c).startswith("#")]
            unknown = [c for c in conditions if c not in own]
            if unknown:
                raise ConfigError(f"condition on unknown column {unknown[0]!r}: conditions apply to the entities, "
                                  f"rows of table {entity!r} (fix: use one of its columns: "
                                  f"{', '.join(map(str, own)) or 'none; it has no columns of its own'})")
        if entities is not None:
            assert entity is not None
            scale = entities / max(int(tables[entity]["rows"]), 1)
        scale = 1.0 if scale is None else float(scale)
        rows = {t: int(round(scale * tables[t]["rows"])) for t in self.metadata.order() if self.contexts[t] is None}
        if entity is not None and entities is not None:
            rows[entity] = int(entities)
        return rows, scale, entity

    def _histories(self, table: str, info: dict[str, Any], parent_context: np.ndarray, counts: np.ndarray,
                   seed: int) -> pd.DataFrame:
        """A sequential table's events, one position at a time for every history still running: each given its
        parent's context, its position and the event before it; then the index rebuilt from #first and #gaps.
        Rows come history by history (parents in order), each in event order."""
        sequence, sampler = info["sequence"], self.samplers[table]
        encoder = self.encoders[events_encoder(table)]
        before = np.zeros((len(counts), encoder.width), dtype=np.float32)
        sticky = sequence.get("sticky", [])  # files written before it have none
        last = {c: np.empty(len(counts), dtype=object) for c in sticky}  # each history's latest category
        parts, owners, places = [], [], []
        for position in range(int(counts.max()) if len(counts) else 0):
            running = np.flatnonzero(counts > position)
            at = np.full(len(running), position)
            context = np.hstack([parent_context[running], position_features(at, counts[running]), before[running]])
            rows = sampler.sample_given(context, seed=int(np.random.SeedSequence([seed, position]).generate_state(
                1, np.uint64)[0] >> 1))
            for column, value in info.get("constants", {}).items():
                rows[column] = value
            for column in sticky:  # an event that keeps its category takes the one of the event before it
                keep = rows[same_column(column)].fillna(False).astype(bool).to_numpy() & (position > 0)
                if keep.any():
                    values = rows[column].astype(object).to_numpy()
                    values[keep] = last[column][running[keep]]
                    rows[column] = pd.Series(values, index=rows.index).astype(rows[column].dtype)
                last[column][running] = rows[column].astype(object).to_numpy()
            before[running] = encoder.transform(rows[sequence["events"]])
            parts.append(rows)
            owners.append(running)
            places.append(at)
        if not parts:
            return sampler.sample_given(np.zeros((0, sampler.model.config.context_dim), np.float32), seed=seed)
        owner, place = np.concatenate(owners), np.concatenate(places)
        order = np.lexsort((place, owner))
        frame = pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)
        frame[sequence["index"]] = rebuild_index(pd.to_numeric(frame[FIRST], errors="coerce").to_numpy(dtype=float),
                                                 pd.to_numeric(frame[GAP], errors="coerce").to_numpy(dtype=float),
                                                 place[order], sequence).to_numpy()
        return frame

    def _matched(self, rel: Relationship, frame: pd.DataFrame, frames: dict[str, pd.DataFrame],
                 lineages: dict[str, pd.DataFrame], keys: dict[str, pd.Series], rng: np.random.Generator
                 ) -> pd.Series:
        """The foreign key ``rel`` of each generated row: null where its null flag is set, else the generated
        parent nearest to the parent lineage the row was generated with, within the parents' counts."""
        prefix = shadow_prefix(rel)
        null = (frame[null_column(rel)].astype(bool).to_numpy() if null_column(rel) in frame.columns
                else np.zeros(len(frame), dtype=bool))
        wanted = frame[[c for c in frame.columns if str(c).startswith(prefix)]]
        wanted.columns = [str(c)[len(prefix):] for c in wanted.columns]
        parent = lineages[rel.parent]
        encoder = self.encoders[rel.parent]
        rows = encoder.transform(wanted.loc[~null].reset_index(drop=True)) if (~null).any() else \
            np.zeros((0, encoder.width), np.float32)
        room = capacities(frames[rel.parent][count_column(rel)].to_numpy(dtype=np.float64), len(rows), rng)
        picked = match(rows, encoder.transform(parent), room, rng)
        values = pd.Series([None] * len(frame), dtype=object)
        values[~null] = keys[rel.parent].to_numpy()[picked] if len(picked) else []
        return values


def _output(info: dict[str, Any], frame: pd.DataFrame, pk_values: pd.Series | None, pk: str | None,
            fk_values: dict[str, pd.Series], generated: dict[str, pd.Series], tables: dict[str, Any], meta: Metadata,
            table: str) -> pd.DataFrame:
    """The table as the user had it: its columns in order, keys in their dtypes, internal columns dropped."""
    columns: dict[str, Any] = {}
    parents = {r.foreign_key: r for r in meta.parents(table)}
    for name in info["columns"]:
        if name == pk and pk_values is not None:
            columns[name] = pk_values.to_numpy()
        elif name in fk_values:
            values = fk_values[name].reset_index(drop=True)
            parent_dtype = tables[parents[name].parent]["dtypes"][parents[name].parent_key]
            columns[name] = _keys_as(values, parent_dtype)
        elif name in generated:
            columns[name] = generated[name].to_numpy()
        else:
            columns[name] = frame[name].to_numpy() if name in frame.columns else None
    df = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    for name in info["columns"]:
        if name in frame.columns and name not in fk_values and name != pk:
            df[name] = frame[name].reset_index(drop=True)
    return df


def _keys_as(values: pd.Series, dtype: str) -> pd.Series:
    """Foreign key values in the parent key's dtype (nullable ``Int64`` for whole numbers with nulls)."""
    if dtype.startswith(("int", "Int", "uint")):
        return values.astype("Int64") if values.isna().any() else values.astype(dtype)
    return values
