"""Sampler: load a model file and generate tables, in memory or streamed to CSV / Parquet."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from synthgen.artifact import Manifest, build_model, read_file_bytes, read_model_file
from synthgen.errors import ConfigError, IntegrityError, SynthgenError
from synthgen.io import SealLike, TableWriter
from synthgen.models import Model
from synthgen.transform import TabularTransformer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from synthgen.dp.ledger import Ledger

#: rows generated per random block; block b of seed s always holds the same rows
BLOCK_ROWS = 10_000
#: give up on conditions that accept nothing in this many blocks
MAX_EMPTY_BLOCKS = 50
#: blocks decoded together into one frame (per-frame pandas costs: decoding 5 at once is about 1.4x faster),
#: as long as their model output stays under GROUP_BYTES
GROUP_BLOCKS = 5
GROUP_BYTES = 256 * 2**20


class Sampler:
    """Generate synthetic rows from a fitted model.

    Example:
        >>> Sampler.load("m.sgm").sample(1000, seed=0, conditions={"income": ">50K"})  # doctest: +SKIP
    """

    def __init__(self, model: Model, transformer: TabularTransformer, manifest: Manifest):
        self.model, self.transformer, self.manifest = model, transformer, manifest

    @classmethod
    def load(cls, path: str | os.PathLike, key: bytes | None = None, *, private_key: X25519PrivateKey | None = None,
             verify_key: Ed25519PublicKey | None = None, signature: str | os.PathLike | None = None,
             allow_rename: bool = False) -> Sampler:
        """Open and verify a model file.

        Args:
            path: the ``.sgm`` file.
            key: the key of a file saved encrypted with ``Synthesizer.save(..., key=)``.
            private_key: the X25519 private key of a file saved with ``recipient=``.
            verify_key: an Ed25519 public key: the file must carry a valid signature by it
                (``synthgen sign``; ``<path>.sig`` unless ``signature`` names the file) under the name
                it was signed as.
            allow_rename: with ``verify_key``, also accept a file signed under another name, or a
                version 1 signature (see ``synthgen.crypto.signing``).

        A relational model file (several tables) gives a ``synthgen.relational.RelationalSampler``, whose
        ``sample(scale=..., seed=...)`` returns a dict of tables.
        """
        data = None
        if verify_key is not None:  # read once: the bytes verified are the bytes loaded
            from synthgen.crypto.signing import verify_data

            data = read_file_bytes(Path(path), "model file")
            verify_data(path, data, verify_key, signature=signature, allow_rename=allow_rename)
        from synthgen.crypto.sealing import Secret

        secret = (Secret(private_key=private_key) if private_key is not None  # as ever: the private key wins
                  else Secret(key=key) if key is not None else None)
        manifest, tensors = read_model_file(path, secret, data=data)
        if manifest.get("kind") == "relational":  # several tables: the relational layer's sampler (same calls,
            # sample(scale=, seed=) gives a dict of tables); imported by name, as the registry imports models
            relational = importlib.import_module("synthgen.relational.sampler")
            return cast(Sampler, relational.RelationalSampler.assemble(path, manifest, tensors))
        return cls.assemble(path, manifest, build_model(path, manifest, tensors))

    @classmethod
    def assemble(cls, path: str | os.PathLike, manifest: Manifest, model: Model) -> Sampler:
        """A Sampler over a model read by ``artifact.open_model``: its transformer, checked against the layout
        the model was built from."""
        try:
            transformer = TabularTransformer.from_dict(manifest["transformer"])
            if transformer.layout != model.layout:  # sized by the manifest's own category lists and modes
                raise ValueError("its layout is not the one its transformer makes")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, ConfigError) as exc:
            raise IntegrityError(f"{path}: the model file is malformed ({type(exc).__name__}: {exc})") from None
        return cls(model, transformer, manifest)

    @property
    def columns(self) -> list[str]:
        return self.transformer.fitted_schema.names

    @property
    def privacy(self) -> Ledger:
        """The privacy ledger stored in the model file."""
        return self.manifest["privacy"]

    def sample(self, n: int, *, seed: int | None = None, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """Return ``n`` synthetic rows with the training columns and dtypes.

        Args:
            n: number of rows.
            seed: the same seed gives the same rows (None: fresh randomness).
            conditions: ``{column: value}``; only rows meeting all of them are returned. A
                categorical condition steers a conditional model (ctgan; tvae fitted with that column as
                its target) directly.
        """
        parts = list(self.iter_chunks(n, seed=seed, conditions=conditions))
        if not parts:
            return self.transformer.inverse_transform(np.zeros((0, self.model.fitted_layout.dim), np.float32))
        return pd.concat(parts, ignore_index=True)

    def sample_given(self, context: np.ndarray, *, seed: int) -> pd.DataFrame:
        """One row per row of ``context`` (float32, the width the model was fitted with), generated given it.

        For a model fitted with a context (a child table of a relational model); rows come in blocks of
        ``BLOCK_ROWS``, block *b* seeded from (seed, b) alone.
        """
        width = self.model.context_dim
        if not width or context.ndim != 2 or context.shape[1] != width:
            raise ConfigError(f"this model takes context rows of width {width}, got shape {context.shape}")
        n = len(context)
        parts = []
        for block, first in enumerate(range(0, n, BLOCK_ROWS)):
            rows = context[first:first + BLOCK_ROWS]
            block_seed = _block_seed(int(seed), block)
            columns = self.model.sample(len(rows), seed=block_seed, context=np.ascontiguousarray(rows, np.float32))
            uniforms = None
            if self.model.capabilities.draws_categories:
                draw_rng = np.random.default_rng([block_seed, 1])
                uniforms = draw_rng.random((self.model.fitted_layout.n_softmax, len(rows)), np.float32)
            parts.append(self.transformer.inverse_transform(columns, uniforms=uniforms))
        if not parts:
            return self.transformer.inverse_transform(np.zeros((0, self.model.fitted_layout.dim), np.float32))
        return pd.concat(parts, ignore_index=True)

    def sample_to(self, path: str | os.PathLike, n: int, *, seed: int | None = None,
                  conditions: dict[str, Any] | None = None, force: bool = False,
                  chunk_rows: int = 100_000, progress: bool = False, seal: SealLike | None = None,
                  shard: tuple[int, int] | None = None) -> Path:
        """Stream ``n`` rows (or shard ``(i, k)`` of them, see ``iter_chunks``) to a CSV or Parquet
        file in chunks (constant memory, atomic publish).

        ``seal`` (a ``Seal``, or ``{"key": ...}`` or ``{"recipient": public_key}``) encrypts the file as it is
        written.
        """
        self._parse_conditions(conditions or {})  # fail before any output appears
        first, stop = _shard_rows(int(n), shard, seed, bool(conditions))
        bar = tqdm(total=stop - first, unit="row", desc="sample", disable=not progress, dynamic_ncols=True)
        pending: list[pd.DataFrame] = []
        pending_rows = 0
        with TableWriter(path, force=force, seal=seal) as writer:
            for part in self.iter_chunks(n, seed=seed, conditions=conditions, shard=shard):
                pending.append(part)
                pending_rows += len(part)
                if pending_rows >= chunk_rows:
                    writer.write(pd.concat(pending, ignore_index=True))
                    pending, pending_rows = [], 0
                bar.update(len(part))
            if pending or writer.rows == 0:
                writer.write(pd.concat(pending, ignore_index=True) if pending else self.sample(0))
        bar.close()
        return Path(path)

    def iter_chunks(self, n: int, *, seed: int | None = None, conditions: dict[str, Any] | None = None,
                    shard: tuple[int, int] | None = None) -> Iterator[pd.DataFrame]:
        """Yield decoded frames of rows adding up to ``n``; deterministic given ``seed``.

        Rows come in blocks of ``BLOCK_ROWS``, block *b* seeded from (seed, b) alone, decoded up to
        ``GROUP_BLOCKS`` blocks to a frame. ``shard=(i, k)`` yields only the i-th of k contiguous,
        disjoint ranges of blocks (0 <= i < k): each shard draws from its own blocks' random streams,
        and the shards in order are exactly the unsharded sample.
        """
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"rows must be a whole number >= 0, got {n!r}")
        wanted = self._parse_conditions(conditions or {})
        first, stop = _shard_rows(int(n), shard, seed, bool(wanted))
        if seed is None:  # a fresh SeedSequence's entropy is an int from the OS
            seed = int(cast(int, np.random.SeedSequence().entropy) % (2**63))
        seed = int(seed)
        cond_index = self._cond_index(wanted)
        remaining, block, empty = stop - first, first // BLOCK_ROWS, 0
        most = max(1, min(GROUP_BLOCKS, GROUP_BYTES // (self.model.fitted_layout.dim * BLOCK_ROWS * 4)))
        count = 0
        while remaining > 0:
            # filtered rows: 1 block first, then twice as many each time (a common value needs few)
            count = min(most, 2 * count or 1) if wanted else min(most, -(-remaining // BLOCK_ROWS))
            df = self._decode_blocks(seed, block, count, cond_index)
            block += count
            if wanted:
                keep = _matches(df, wanted)
                for hit in cast(np.ndarray, keep.reshape(count, BLOCK_ROWS).any(axis=1)):  # one per block
                    empty = 0 if hit else empty + 1
                    if empty >= MAX_EMPTY_BLOCKS:
                        raise SynthgenError(f"no generated row met the conditions {wanted} in "
                                            f"{MAX_EMPTY_BLOCKS * BLOCK_ROWS:,} tries (fix: relax the conditions)")
                df = df[keep].reset_index(drop=True)
            df = df.iloc[:remaining]
            remaining -= len(df)
            if len(df):
                yield df

    def _decode_blocks(self, seed: int, first: int, count: int, cond_index: int | None) -> pd.DataFrame:
        """Blocks ``first`` .. ``first + count - 1`` of ``seed``'s rows, generated one by one, decoded as one frame.

        For a model that leaves its one-hot blocks as logits, each block's categories are drawn with
        uniforms from the block's own seed too (one per one-hot block and row).
        """
        layout = self.model.fitted_layout
        columns = np.empty((layout.dim, count * BLOCK_ROWS), dtype=np.float32)
        uniforms = (np.empty((layout.n_softmax, count * BLOCK_ROWS), dtype=np.float32)
                    if self.model.capabilities.draws_categories else None)
        for i in range(count):
            rows = slice(i * BLOCK_ROWS, (i + 1) * BLOCK_ROWS)
            block_seed = _block_seed(seed, first + i)
            self.model.sample(BLOCK_ROWS, seed=block_seed, cond_index=cond_index, out=columns[:, rows])
            if uniforms is not None:
                draw_rng = np.random.default_rng([block_seed, 1])  # a stream apart from the model's
                uniforms[:, rows] = draw_rng.random(uniforms[:, rows].shape, np.float32)
        return self.transformer.inverse_transform(columns.T, uniforms=uniforms)

    def _parse_conditions(self, conditions: dict[str, Any]) -> dict[str, Any]:
        """Check each condition and convert its value to the column's type (CLI gives strings)."""
        schema, out = self.transformer.fitted_schema, {}
        for column, value in conditions.items():
            if column not in schema.names:
                raise ConfigError(f"condition on unknown column {column!r} (fix: use one of: "
                                  f"{', '.join(map(str, schema.names))})")
            spec = schema[column]
            cats = self.transformer.categories(column)
            if cats is not None:
                match = [c for c in cats if c is not None and (c == value or str(c) == str(value))]
                if not match:
                    shown = ", ".join(repr(c) for c in cats[:20] if c is not None)
                    raise ConfigError(f"column {column!r} has no category {value!r} (fix: use one of: {shown})")
                out[column] = match[0]
            elif spec.kind == "integer":
                try:
                    out[column] = int(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"column {column!r} is integer; {value!r} is not a whole number") from None
            else:
                raise ConfigError(f"conditions on {spec.kind} column {column!r} are not supported "
                                  f"(fix: condition on a categorical, boolean or integer column)")
        return out

    def _cond_index(self, wanted: dict[str, Any]) -> int | None:
        """Cond-vector position for the first categorical condition the model steers by (a conditional model's
        any category; a target-conditioned tvae's target), if any."""
        for column, value in wanted.items():
            found = self.transformer.category_index(column, value)
            if found is not None and self.model.steers(found[0]):
                span_no, offset = found
                return sum(w for _, w in self.model.fitted_layout.cond_spans[:span_no]) + offset
        return None


def _block_seed(seed: int, block: int) -> int:
    return int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0] >> 1)


def _matches(df: pd.DataFrame, wanted: dict[str, Any]) -> np.ndarray:
    keep = np.ones(len(df), dtype=bool)
    for column, value in wanted.items():
        keep &= (df[column] == value).to_numpy(dtype=bool, na_value=False)
    return keep


def _shard_rows(n: int, shard: tuple[int, int] | None, seed: int | None, conditional: bool) -> tuple[int, int]:
    """The [first, stop) rows of the unsharded sample that shard (i, k) holds: whole blocks, split evenly."""
    if shard is None:
        return 0, n
    index, count = shard
    if not (isinstance(index, int | np.integer) and isinstance(count, int | np.integer) and 0 <= index < count):
        raise ConfigError(f"shard {index}/{count} is not i/K with 0 <= i < K (fix: e.g. --shard 0/4 ... 3/4)")
    if seed is None:
        raise ConfigError("sharded sampling needs a seed shared by all shards (fix: add --seed S to every shard)")
    if conditional:
        raise ConfigError("conditions filter rows, so shards could not add up to the unsharded sample (fix: "
                          "sample the shards without --where and filter them)")
    blocks = -(-n // BLOCK_ROWS)
    first, stop = index * blocks // count * BLOCK_ROWS, (index + 1) * blocks // count * BLOCK_ROWS
    return min(first, n), min(stop, n)
