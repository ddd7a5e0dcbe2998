"""Training on a Parquet table larger than memory: a one-pass reservoir sample, batches streamed from disk.

``Synthesizer(model="tvae").fit("big.parquet", stream=True)`` (``synthgen train big.parquet --stream``)
never holds the table: one pass over the file in record batches draws a uniform sample of
``sample_rows`` rows (seeded), on which the schema is detected, the table validated and the
transformer fitted; then every epoch :class:`ParquetBatches` walks the row groups in a seeded
shuffled order, a window of them at a time, reads them in chunks, encodes each chunk with the
fitted transformer and yields shuffled float32 minibatches. Memory is bounded by the sample, the
chunk size and the window, not by the number of rows.

Values the sample never showed (a rare category, a number beyond the sample's range, a null in a
column the sample has none in) do not stop training: :class:`DomainGuard` maps them to what the
transformer knows and counts them, and the training summary reports the counts.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.errors import ConfigError, DataWarning, InvalidDataError, Problem, SynthgenError
from synthgen.io import CSV_SUFFIXES, ENCRYPTED_SUFFIX, PARQUET_SUFFIXES
from synthgen.models.base import BatchSource
from synthgen.schema import duplicate_name_problems
from synthgen.transform import TabularTransformer
from synthgen.transform.encoders import OneHot
from synthgen.transform.transformer import to_numbers

#: rows of the reservoir sample the schema, the validation and the transformer see
DEFAULT_SAMPLE_ROWS = 200_000
#: rows per record batch of the sampling pass
SCAN_ROWS = 65_536
#: rows read and encoded at a time from one row group
DEFAULT_CHUNK_ROWS = 4_096
#: row groups read side by side: a shuffle buffer holds one chunk of each
DEFAULT_WINDOW = 16
#: read buffer per column chunk (pages are streamed, a row group is never loaded whole)
READ_BUFFER = 1 << 20
#: ``synthgen train`` streams on its own when a fit in memory would take more than this share of free memory
AUTO_SHARE = 0.5
#: rough pandas overhead per text value (object pointer + Python str header), for the memory estimate
TEXT_OVERHEAD = 64
#: a fit in memory holds the table, its encoded matrix and transient copies: measured about 2.4x the
#: table's pandas size on Adult (benchmarks/large_table.py: 1,000,000 rows, 1.4 GB over the start-up)
FIT_FACTOR = 2.5

CSV_FIX = ("convert it to Parquet in batches first, with pyarrow.csv.open_csv and pyarrow.parquet.ParquetWriter: "
           "see README, Tables larger than memory")


def open_parquet(path: str | os.PathLike) -> pq.ParquetFile:
    """Open a plain Parquet file for streaming, refusing what cannot be streamed with the fix.

    Raises:
        ConfigError: a CSV, an encrypted file or another format (streaming reads Parquet row groups).
        SynthgenError: the file is missing or is not Parquet.
        InvalidDataError: a column name repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise SynthgenError(f"{path}: no such file (fix: check the path)")
    from synthgen.crypto.streams import is_encrypted

    name = path.name.lower()
    if name.endswith(ENCRYPTED_SUFFIX) or is_encrypted(path):
        raise ConfigError(f"{path}: --stream reads a plain Parquet file, not an encrypted one (its row groups are "
                          "read out of order) (fix: train without --stream, or decrypt it onto an encrypted disk)")
    if name.endswith(CSV_SUFFIXES):
        raise ConfigError(f"{path}: --stream reads Parquet, not CSV (fix: {CSV_FIX})")
    with open(path, "rb") as fh:
        parquet = fh.read(4) == b"PAR1"
    if not parquet or not name.endswith(PARQUET_SUFFIXES):
        raise ConfigError(f"{path}: --stream reads a Parquet file named .parquet, and this is "
                          f"{'one named otherwise' if parquet else 'no Parquet file'} (fix: give a .parquet file)")
    try:
        pf = pq.ParquetFile(path, buffer_size=READ_BUFFER, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SynthgenError(f"{path}: cannot read it as Parquet ({exc}) (fix: check the file)") from None
    names = data_columns(pf)
    dupes = duplicate_name_problems(names, " in the Parquet file")
    if dupes:
        raise InvalidDataError(dupes)
    if pf.metadata.num_rows == 0 or not names:
        raise InvalidDataError(Problem(None, f"{path} is empty", "give a table with rows and columns"))
    return pf


def data_columns(pf: pq.ParquetFile) -> list[str]:
    """The table's columns: the file's, less the index pandas stored beside them (as ``read_table`` drops it)."""
    index = (pf.schema_arrow.pandas_metadata or {}).get("index_columns", [])
    stored = {c for c in index if isinstance(c, str)}
    return [n for n in pf.schema_arrow.names if n not in stored]


def to_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """A record batch as pandas, with the dtypes ``read_table`` gives the whole file (pandas metadata kept)."""
    return pa.Table.from_batches([batch]).to_pandas().reset_index(drop=True)


# ----------------------------------------------------------------------------- reservoir sample
@dataclass
class ReservoirSample:
    """A uniform sample of a file's rows, in file order.

    Attributes:
        frame: the sampled rows.
        rows: rows in the whole file.
        positions: each sampled row's position in the file.
        nulls: nulls per column in the whole file (counted on the way).
    """

    frame: pd.DataFrame
    rows: int
    positions: np.ndarray
    nulls: dict[str, int] = field(default_factory=dict)


def reservoir_sample(pf: pq.ParquetFile, k: int, *, seed: int, columns: list[str] | None = None,
                     batch_rows: int | None = None) -> ReservoirSample:
    """Draw ``k`` rows uniformly without replacement in one pass over ``pf`` (all rows if it has fewer).

    Reservoir sampling by random keys: every row gets a seeded uniform key and the ``k`` smallest
    keys win, which makes every ``k``-subset equally likely (as Algorithm R does). Vectorized per
    batch: once the reservoir is full only rows whose key beats the current k-th smallest are kept,
    about ``k * batch / i`` of the batch at row ``i``, so the pass costs one key per row. The keys
    come from one stream in row order, so the sample does not depend on ``batch_rows`` (default
    ``SCAN_ROWS``), which bounds the memory of the pass with ``k``.
    """
    if k < 1:
        raise ConfigError(f"sample_rows must be at least 1, got {k} (fix: e.g. {DEFAULT_SAMPLE_ROWS})")
    columns = data_columns(pf) if columns is None else columns
    rng = np.random.default_rng(seed)
    parts: list[pa.Table] = []
    keys, where = np.zeros(0), np.zeros(0, dtype=np.int64)
    threshold, n, nulls = np.inf, 0, dict.fromkeys(columns, 0)
    for batch in pf.iter_batches(batch_size=batch_rows or SCAN_ROWS, columns=columns):
        u = rng.random(batch.num_rows)
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            nulls[name] += col.null_count
        pick = np.flatnonzero(u < threshold)
        if len(pick):
            parts.append(pa.Table.from_batches([batch]).take(pa.array(pick)))
            keys, where = np.concatenate([keys, u[pick]]), np.concatenate([where, n + pick])
        if len(keys) >= 2 * k or (len(keys) >= k and np.isinf(threshold)):
            parts, keys, where = _smallest(parts, keys, where, k)
            threshold = keys.max()
        n += batch.num_rows
    parts, keys, where = _smallest(parts, keys, where, k)
    if not parts:
        raise InvalidDataError(Problem(None, "the table is empty", "give a table with rows and columns"))
    order = np.argsort(where, kind="stable")
    frame = pa.concat_tables(parts).take(pa.array(order)).to_pandas().reset_index(drop=True)
    return ReservoirSample(frame, n, where[order], nulls)


def _smallest(parts: list[pa.Table], keys: np.ndarray, where: np.ndarray, k: int
              ) -> tuple[list[pa.Table], np.ndarray, np.ndarray]:
    """Keep the rows of the ``k`` smallest keys."""
    if len(keys) <= k:
        return parts, keys, where
    keep = np.sort(np.argpartition(keys, k - 1)[:k])
    table = pa.concat_tables(parts).take(pa.array(keep)).combine_chunks()
    return [table], keys[keep], where[keep]


def missing_nulls_warning(sample: ReservoirSample, path: str | os.PathLike) -> None:
    """Warn about columns with nulls in the file but none in the sample (they train imputed)."""
    for name, count in sample.nulls.items():
        if count and not sample.frame[name].isna().any():
            warnings.warn(DataWarning(
                f"column {name!r}: {count:,} nulls in {Path(path).name} but none in the {len(sample.frame):,}-row "
                "sample: the model will sample no nulls there and training maps them to a known value "
                "(fix: a larger --sample-rows)"), stacklevel=4)


# ----------------------------------------------------------------------------- unseen values
class DomainGuard:
    """Map values outside what the transformer learned from the sample to values it knows, counting them.

    Unseen categories (and nulls in a categorical column whose sample had none) become the column's
    most frequent category; numbers outside the sample's range are counted (the transformer clips
    them to it); nulls in a numeric column the sample had none in are counted (the transformer
    fills them with the column's main mode).
    """

    def __init__(self, transformer: TabularTransformer):
        self.schema = transformer.fitted_schema
        self._onehot = {name: OneHot(cats) for name in self.schema.names
                        if (cats := transformer.categories(name)) is not None}
        self._ranges = {name: bounds for name in self.schema.names  # every column not one-hot has a range
                        if name not in self._onehot and (bounds := transformer.numeric_range(name)) is not None}
        #: per column, per kind (``unseen_category``, ``unseen_null``, ``clipped``, ``unreadable``): values seen
        self.counts: dict[str, dict[str, int]] = {}

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with unseen categories replaced (a copy when any are); counts what it finds."""
        out = df
        for spec in self.schema.columns:
            series = df[spec.name]
            if spec.name in self._onehot:
                fixed = self._categories(spec.name, series)
                if fixed is not None:
                    out = out.copy() if out is df else out
                    out[spec.name] = fixed
            else:
                self._numbers(spec, *self._ranges[spec.name], series)
        return out

    def _categories(self, name: str, series: pd.Series) -> np.ndarray | None:
        enc = self._onehot[name]
        values = series.to_numpy(dtype=object)
        unseen = enc.codes(values) < 0
        if not unseen.any():
            return None
        null = pd.isna(values) & unseen
        self._count(name, "unseen_null", int(null.sum()))
        self._count(name, "unseen_category", int(unseen.sum() - null.sum()))
        values = values.copy()
        values[unseen] = enc.categories[0]  # the most frequent (OneHot orders them so; null comes last)
        return values

    def _numbers(self, spec: Any, low: float, high: float, nullable: bool, series: pd.Series) -> None:
        numbers = to_numbers(series, spec)
        missing = np.isnan(numbers)
        with np.errstate(invalid="ignore"):
            self._count(spec.name, "clipped", int(((numbers < low) | (numbers > high)).sum()))
        if not nullable and missing.any():
            unreadable = int((missing & series.notna().to_numpy()).sum())
            self._count(spec.name, "unseen_null", int(missing.sum()) - unreadable)
            self._count(spec.name, "unreadable", unreadable)

    def _count(self, column: str, kind: str, count: int) -> None:
        if count:
            per = self.counts.setdefault(column, {})
            per[kind] = per.get(kind, 0) + count


# ----------------------------------------------------------------------------- training batches
class ParquetBatches(BatchSource):
    """Encoded, shuffled minibatches of a Parquet file, streamed from disk epoch after epoch.

    Each epoch takes the row groups in a seeded random order, ``window`` at a time, and reads them
    side by side in chunks of ``chunk_rows``: a shuffle buffer holds one chunk of each (rows of
    ``window`` random row groups), is encoded by the fitted transformer and shuffled, and yields
    minibatches; rows left over carry into the next buffer, so every minibatch but an epoch's last
    is full and every row comes exactly once per epoch. The same seed and epoch give the same batches.

    Args:
        pf: the open file (``open_parquet``).
        transformer: fitted on a sample of the file.
        seed: seed of the row-group order, the shuffles and the encoding's mode draws.
        chunk_rows: rows read and encoded at a time from one row group.
        window: row groups read side by side (the buffer is about ``window * chunk_rows`` rows).
    """

    def __init__(self, pf: pq.ParquetFile, transformer: TabularTransformer, *, seed: int,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, window: int = DEFAULT_WINDOW):
        if chunk_rows < 1 or window < 1:
            raise ConfigError(f"chunk_rows and window must be at least 1, got {chunk_rows} and {window}")
        self.pf, self.transformer, self.seed = pf, transformer, seed
        self.chunk_rows, self.window = chunk_rows, window
        self.columns = transformer.fitted_schema.names
        self.rows = pf.metadata.num_rows
        self.width = transformer.layout.dim
        self.guard = DomainGuard(transformer)
        #: what ``guard`` counted over the first epoch that ran to its end (None before)
        self.outside: dict[str, dict[str, int]] | None = None

    def batches(self, epoch: int, batch_size: int) -> Iterator[np.ndarray]:
        """This epoch's rows, each once, shuffled, in float32 minibatches of ``batch_size`` (the last may be
        smaller)."""
        rng = np.random.default_rng([self.seed, epoch])
        self.guard.counts = {}
        order = rng.permutation(self.pf.metadata.num_row_groups)
        carry = np.zeros((0, self.width), dtype=np.float32)
        encoded_rows = 0
        for start in range(0, len(order), self.window):
            for chunks in self._side_by_side([int(g) for g in order[start:start + self.window]]):
                buffer = self._fill(carry, chunks, rng)
                encoded_rows += len(buffer) - len(carry)
                if encoded_rows == self.rows and self.outside is None:  # every row seen: the counts are complete
                    self.outside = self.guard.counts
                perm = rng.permutation(len(buffer))
                full = len(buffer) - len(buffer) % batch_size
                for i in range(0, full, batch_size):
                    yield buffer[perm[i:i + batch_size]]
                carry = buffer[perm[full:]]
                del buffer  # before the next one is allocated
        if len(carry):
            yield carry

    def _fill(self, carry: np.ndarray, chunks: list[pa.RecordBatch], rng: np.random.Generator) -> np.ndarray:
        """One shuffle buffer: the rows carried over, then each chunk encoded in place (no second copy)."""
        buffer = np.empty((len(carry) + sum(c.num_rows for c in chunks), self.width), dtype=np.float32)
        buffer[:len(carry)] = carry
        at = len(carry)
        for chunk in chunks:
            buffer[at:at + chunk.num_rows] = self._encode(chunk, int(rng.integers(2**63)))
            at += chunk.num_rows
        return buffer

    def _side_by_side(self, groups: list[int]) -> Iterator[list[pa.RecordBatch]]:
        """Chunks of ``groups`` read in turn: one from each group still open, until all are read."""
        readers = [self.pf.iter_batches(batch_size=self.chunk_rows, row_groups=[g], columns=self.columns,
                                        use_threads=False) for g in groups]
        while readers:
            chunks, open_ = [], []
            for reader in readers:
                chunk = next(reader, None)
                if chunk is not None and chunk.num_rows:
                    chunks.append(chunk)
                    open_.append(reader)
            readers = open_
            if chunks:
                yield chunks

    def _encode(self, chunk: pa.RecordBatch, seed: int) -> np.ndarray:
        return self.transformer.transform(self.guard.apply(to_frame(chunk)), seed=seed)


# ----------------------------------------------------------------------------- helpers
def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time (resuming a streamed fit must see the same file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable; None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def in_memory_estimate(path: str | os.PathLike) -> int | None:
    """Rough bytes a fit in memory needs for a Parquet file: ``FIT_FACTOR`` times its size in pandas (its
    uncompressed size plus a per-value overhead for text). None for what is not a plain Parquet file.
    """
    name = Path(path).name.lower()
    if not name.endswith(PARQUET_SUFFIXES) or not Path(path).is_file():
        return None
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError):
        return None
    raw = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    schema = meta.schema.to_arrow_schema()
    text = sum(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type)
               for f in schema)
    return int(FIT_FACTOR * (raw + meta.num_rows * text * TEXT_OVERHEAD))


def too_big_for_memory(path: str | os.PathLike) -> str | None:
    """Why ``path`` should be streamed (its estimated in-memory size against free memory), or None."""
    need, free = in_memory_estimate(path), available_memory()
    if need is None or free is None or need <= AUTO_SHARE * free:
        return None
    return (f"training on {Path(path).name} in memory would take about {need / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB are free")
