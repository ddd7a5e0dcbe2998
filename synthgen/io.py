"""Reading and writing tables and files: CSV, Parquet, atomic replace, chunked writers."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.errors import InvalidDataError, OutputExistsError, Problem, SynthgenError

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")

TableLike = pd.DataFrame | str | os.PathLike


ENCRYPTED_SUFFIX = ".enc"


def _format_of(path: Path) -> str:
    name = path.name.lower().removesuffix(ENCRYPTED_SUFFIX)
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise SynthgenError(
        f"{path}: unknown table format (fix: use a file ending in .csv, .csv.gz or .parquet, plus .enc if encrypted)"
    )


def read_table(source: TableLike, *, secret: dict[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, plain or encrypted (or pass a DataFrame through untouched).

    Args:
        source: a path or a DataFrame.
        secret: for an encrypted file, one of ``key=``, ``passphrase=`` or ``private_key=`` (see
            ``synthgen.privacy.crypto``); it is decrypted in memory, never to a temporary file.

    Raises:
        SynthgenError: the file is missing, has an unknown suffix, is encrypted and no secret was
            given, or cannot be parsed. ``IntegrityError``: an encrypted file fails authentication.
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise SynthgenError(f"{path}: no such file (fix: check the path)")
    fmt = _format_of(path)
    try:
        with _open_plain(path, secret) as fh:
            if fmt == "parquet":
                return pq.read_table(fh if fh.seekable() else io.BytesIO(fh.read())).to_pandas()
            sep = "\t" if path.name.lower().removesuffix(ENCRYPTED_SUFFIX).endswith(".tsv") else ","
            return pd.read_csv(fh, sep=sep, compression=_compression(path))
    except pd.errors.EmptyDataError:
        raise InvalidDataError(Problem(None, f"{path} is empty", "give a file with a header row and data")) from None
    except (pd.errors.ParserError, pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as exc:
        raise SynthgenError(f"{path}: cannot read it as {fmt} ({exc}) (fix: check the file)") from None


@contextlib.contextmanager
def _open_plain(path: Path, secret: dict[str, Any] | None) -> Iterator[IO[bytes]]:
    """The file's bytes: as they are, or decrypted on the fly when it is encrypted."""
    from synthgen.privacy.crypto import DecryptingReader, is_encrypted

    encrypted = is_encrypted(path)
    if encrypted and not secret:
        raise SynthgenError(f"{path} is encrypted (fix: give its key: --key-file, --identity or --passphrase; "
                            "in Python read_table(path, secret={'key': ...}))")
    with open(path, "rb") as fh:
        yield io.BufferedReader(DecryptingReader(fh, **secret)) if encrypted else fh


def _compression(path: Path) -> str | None:
    name = path.name.lower().removesuffix(ENCRYPTED_SUFFIX)
    return {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}.get(Path(name).suffix)


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


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False,
                       seal: dict[str, Any] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (encrypted with ``seal``: ``key=`` or ``recipient=``)."""
    if seal:
        from synthgen.privacy.crypto import encrypt_bytes

        data = encrypt_bytes(data, **seal)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


class TableWriter:
    """Append DataFrame chunks to a CSV or Parquet file, atomically published on ``close``.

    Use as a context manager; if the block raises, nothing is left under the final name. With
    ``seal`` (``key=`` or ``recipient=``, see ``synthgen.privacy.crypto``) the file is encrypted as
    it is written: no plaintext ever reaches the disk.
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False, seal: dict[str, Any] | None = None):
        self.path = Path(path)
        self.format = _format_of(self.path)
        self.seal = seal
        self._ctx = atomic_path(self.path, force=force)
        self._stack = contextlib.ExitStack()
        self._sink: IO[bytes] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[str] | None = None
        self.rows = 0

    def __enter__(self) -> TableWriter:
        tmp = self._ctx.__enter__()
        try:
            self._sink = self._stack.enter_context(open(tmp, "wb"))
            if self.seal:
                from synthgen.privacy.crypto import EncryptingWriter

                self._sink = self._stack.enter_context(EncryptingWriter(self._sink, **self.seal))
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, chunk: pd.DataFrame) -> None:
        """Append one chunk (same columns and dtypes every time)."""
        assert self._sink is not None, "use TableWriter as a context manager"
        if self.format == "parquet":
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._sink, _typed_schema(table.schema))
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            if self._csv is None:
                self._csv = self._stack.enter_context(_open_text(self._sink, _compression(self.path)))
                chunk.to_csv(self._csv, index=False)
            else:
                chunk.to_csv(self._csv, index=False, header=False)
        self.rows += len(chunk)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            # text wrapper, then the encrypting writer (last chunk, or none after an error), then the file
            self._stack.__exit__(exc_type, exc, tb)
        except BaseException as err:  # a failed close: the file is incomplete, so it is not published
            self._ctx.__exit__(type(err), err, err.__traceback__)
            if isinstance(err, OSError):
                raise SynthgenError(f"{self.path}: cannot write ({err.strerror or err}) (fix: check free space "
                                    "and permissions)") from None
            raise
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


def _open_text(sink: IO[bytes], compression: str | None) -> IO[str]:
    if compression == "gzip":
        import gzip

        sink = gzip.GzipFile(fileobj=sink, mode="wb")
    elif compression is not None:
        raise SynthgenError(f"cannot write {compression}-compressed CSV (fix: use .csv, .csv.gz or .parquet)")
    return _TextOut(sink)


class _TextOut(io.TextIOWrapper):
    """UTF-8 text over a binary sink; closing it closes a gzip layer it owns, never the file below."""

    def __init__(self, sink: IO[bytes]):
        super().__init__(sink, encoding="utf-8", newline="")
        self._owned = sink if not isinstance(sink, io.BufferedWriter | io.RawIOBase) else None

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.detach()
        if self._owned is not None:
            self._owned.close()


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, force: bool = False,
                seal: dict[str, Any] | None = None) -> Path:
    """Write a whole DataFrame to CSV or Parquet, atomically (encrypted as it is written with ``seal``)."""
    with TableWriter(path, force=force, seal=seal) as writer:
        writer.write(df)
    return Path(path)
