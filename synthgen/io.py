"""Reading and writing tables and files: CSV, Parquet, atomic replace, chunked writers."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.errors import InvalidDataError, OutputExistsError, Problem, SynthgenError

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")

TableLike = pd.DataFrame | str | os.PathLike


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise SynthgenError(
        f"{path}: unknown table format (fix: use a file ending in .csv, .csv.gz or .parquet)"
    )


def read_table(source: TableLike) -> pd.DataFrame:
    """Read a CSV or Parquet file (or pass a DataFrame through untouched).

    Raises:
        SynthgenError: the file is missing, has an unknown suffix, or cannot be parsed.
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise SynthgenError(f"{path}: no such file (fix: check the path)")
    fmt = _format_of(path)
    try:
        if fmt == "parquet":
            return pq.read_table(path).to_pandas()
        sep = "\t" if path.name.lower().endswith(".tsv") else ","
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise InvalidDataError(Problem(None, f"{path} is empty", "give a file with a header row and data")) from None
    except (pd.errors.ParserError, pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise SynthgenError(f"{path}: cannot read it as {fmt} ({exc}) (fix: check the file)") from None


def check_writable(path: str | os.PathLike, *, force: bool) -> Path:
    """Refuse to overwrite an existing file unless ``force``; make sure the folder exists."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists (fix: choose another path or pass --force)")
    if not path.parent.exists():
        raise SynthgenError(f"{path.parent}: no such folder (fix: create it first)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    On any failure the temporary file is removed, so no partial file ever stands under ``path``.
    """
    final = check_writable(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if final.exists() and not force:  # appeared meanwhile
            raise OutputExistsError(f"{final} already exists (fix: choose another path or pass --force)")
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


class TableWriter:
    """Append DataFrame chunks to a CSV or Parquet file, atomically published on ``close``.

    Use as a context manager; if the block raises, nothing is left under the final name.
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False):
        self.path = Path(path)
        self.format = _format_of(self.path)
        self._ctx = atomic_path(self.path, force=force)
        self._tmp: Path | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[str] | None = None
        self.rows = 0

    def __enter__(self) -> TableWriter:
        self._tmp = self._ctx.__enter__()
        return self

    def write(self, chunk: pd.DataFrame) -> None:
        """Append one chunk (same columns and dtypes every time)."""
        assert self._tmp is not None, "use TableWriter as a context manager"
        if self.format == "parquet":
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, _typed_schema(table.schema))
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            if self._csv is None:
                compression = "gzip" if self.path.name.lower().endswith(".gz") else None
                self._csv = _open_text(self._tmp, compression)
                chunk.to_csv(self._csv, index=False)
            else:
                chunk.to_csv(self._csv, index=False, header=False)
        self.rows += len(chunk)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._csv is not None:
                self._csv.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)


def _typed_schema(schema: pa.Schema) -> pa.Schema:
    """A first chunk's schema with all-null text columns typed as strings.

    pandas gives an object column that holds only nulls no type, and a Parquet file keeps the
    first chunk's schema; later chunks with text in that column would then fail to append.
    """
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(i, field.with_type(pa.string()))
    return schema


def _open_text(path: Path, compression: str | None) -> IO[str]:
    if compression == "gzip":
        import gzip

        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a whole DataFrame to CSV or Parquet, atomically."""
    with TableWriter(path, force=force) as writer:
        writer.write(df)
    return Path(path)
