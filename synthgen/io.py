"""Reading and writing tables and files: CSV, Parquet, atomic replace, chunked writers."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.errors import InvalidDataError, Problem, SynthgenError
from synthgen.files import atomic_path, check_writable, write_bytes  # noqa: F401  (check_writable: re-exported)
from synthgen.schema import duplicate_name_problems

if TYPE_CHECKING:
    import gzip

    from synthgen.crypto.sealing import Seal, Secret

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")

TableLike: TypeAlias = pd.DataFrame | str | os.PathLike
#: what the API takes to open or seal a file: the typed value, or the dict it always took (``{"key": ...}``)
SecretLike: TypeAlias = "Secret | Mapping[str, Any]"
SealLike: TypeAlias = "Seal | Mapping[str, Any]"


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


def read_table(source: TableLike, *, secret: SecretLike | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, plain or encrypted (or pass a DataFrame through untouched).

    Args:
        source: a path or a DataFrame.
        secret: for an encrypted file, a ``Secret`` or one of ``{"key": ...}``, ``{"passphrase": ...}`` or
            ``{"private_key": ...}`` (see ``synthgen.crypto.sealing``); it is decrypted in memory, never to a
            temporary file.

    Raises:
        SynthgenError: the file is missing, has an unknown suffix, is encrypted and no secret was
            given, is not a table of its format (an image, an archive, text that is not UTF-8, a
            CSV with another delimiter), or cannot be parsed. ``InvalidDataError``: the file is
            empty or repeats a column name. ``IntegrityError``: an encrypted file fails authentication.
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise SynthgenError(f"{path}: no such file (fix: check the path)")
    fmt = _format_of(path)
    opener = as_secret(secret)
    try:
        return _read_parquet(path, opener) if fmt == "parquet" else _read_csv(path, opener)
    except pd.errors.EmptyDataError:
        raise InvalidDataError(Problem(None, f"{path} is empty", "give a file with a header row and data")) from None
    except UnicodeDecodeError:
        raise _not_utf8(path, _head(path, opener, _compression(path))) from None
    except (pd.errors.ParserError, pa.ArrowInvalid, OSError, EOFError) as exc:
        raise SynthgenError(f"{path}: cannot read it as {fmt} ({exc}) (fix: check the file)") from None


#: bytes of (decompressed) text looked at before parsing: binary signatures, encoding, header, delimiter
HEAD_BYTES = 1 << 16


def _read_csv(path: Path, secret: Secret | None) -> pd.DataFrame:
    sep = "\t" if path.name.lower().removesuffix(ENCRYPTED_SUFFIX).endswith(".tsv") else ","
    compression = _compression(path)
    head = _head(path, secret, compression)
    _check_text(path, head)
    text, truncated = head.decode("utf-8-sig", errors="replace"), len(head) >= HEAD_BYTES
    try:
        with _open_plain(path, secret) as fh:
            df = pd.read_csv(fh, sep=sep, compression=compression)
    except pd.errors.ParserError:
        _check_delimiter(path, text, sep, truncated=truncated, parse_failed=True)
        raise
    if df.shape[1] == 1:
        _check_delimiter(path, text, sep, truncated=truncated)
    header = _header_if_mangled(text, sep, list(df.columns), truncated=truncated)
    dupes = duplicate_name_problems(header, " in the file's header")
    if dupes:
        raise InvalidDataError(dupes)
    return df


def _read_parquet(path: Path, secret: Secret | None) -> pd.DataFrame:
    with _open_plain(path, secret) as fh:
        source = fh if fh.seekable() else io.BytesIO(fh.read())
        head = source.read(HEAD_BYTES)
        source.seek(0)
        if not head.startswith(b"PAR1"):
            kind = _binary_kind(head)
            what = kind[0] if kind else "empty" if not head else "text" if _is_text(head) else "binary data"
            raise SynthgenError(f"{path}: is not a Parquet file (it looks like {what}) (fix: give a Parquet "
                                "file, or name a CSV table .csv)")
        dupes = duplicate_name_problems(pq.ParquetFile(source).schema_arrow.names, " in the Parquet file")
        if dupes:
            raise InvalidDataError(dupes)
        source.seek(0)
        return pq.read_table(source).to_pandas()


def _head(path: Path, secret: Secret | None, compression: str | None) -> bytes:
    """The first ``HEAD_BYTES`` of the file's (decompressed) content; b"" where they cannot be had."""
    import bz2
    import gzip
    import lzma
    import zipfile

    with _open_plain(path, secret) as fh:
        try:
            if compression is None:
                return fh.read(HEAD_BYTES)
            if compression == "gzip":
                return gzip.GzipFile(fileobj=fh).read(HEAD_BYTES)
            if compression == "bz2":
                return bz2.BZ2File(fh).read(HEAD_BYTES)
            if compression == "xz":
                return lzma.LZMAFile(fh).read(HEAD_BYTES)
            if compression == "zip" and fh.seekable():
                with zipfile.ZipFile(fh) as archive:
                    names = archive.namelist()
                    return archive.open(names[0]).read(HEAD_BYTES) if len(names) == 1 else b""
        except (OSError, EOFError, ValueError, lzma.LZMAError, zipfile.BadZipFile):
            return b""  # pandas names the problem when it reads the file
    return b""


#: leading bytes of files that are not text tables, what they are, and what to do instead
_SIGNATURES: list[tuple[bytes, str, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image", ""),
    (b"\xff\xd8\xff", "a JPEG image", ""),
    (b"GIF87a", "a GIF image", ""),
    (b"GIF89a", "a GIF image", ""),
    (b"%PDF-", "a PDF document", ""),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx file is one)", "export the sheet as CSV UTF-8, or "),
    (b"PK\x05\x06", "an empty zip archive", ""),
    (b"\x1f\x8b", "gzip-compressed data", "name it .csv.gz, or "),
    (b"\xfd7zXZ\x00", "xz-compressed data", "name it .csv.xz, or "),
    (b"PAR1", "a Parquet file", "name it .parquet, or "),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.xls)", "export the sheet as CSV UTF-8, or "),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV, or "),
]


def _binary_kind(head: bytes) -> tuple[str, str] | None:
    """(what the bytes look like, the start of a fix) for a known non-text signature, else None."""
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            return what, fix
    if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return "bzip2-compressed data", "name it .csv.bz2, or "
    return None


def _utf8_error(head: bytes, *, final: bool) -> UnicodeDecodeError | None:
    """Where ``head`` stops being UTF-8, or None (a character cut at its end counts only when ``final``)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=final)
    except UnicodeDecodeError as exc:
        return exc
    return None


def _is_text(head: bytes) -> bool:
    return _utf8_error(head, final=False) is None and b"\x00" not in head


def _check_text(path: Path, head: bytes) -> None:
    """Refuse a CSV whose content is not UTF-8 text, naming what it looks like instead.

    Signatures count only in content that is not text, so a header such as ``PAR1_score`` is no Parquet file.
    """
    kind = None if _is_text(head) else _binary_kind(head)
    if kind is not None:
        what, fix = kind
        raise SynthgenError(f"{path}: is not a CSV table: it looks like {what} (fix: {fix}give a CSV or "
                            "Parquet table)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SynthgenError(f"{path}: is UTF-16 text, synthgen reads UTF-8 (fix: re-save it as UTF-8, e.g. "
                            "\"CSV UTF-8\" in Excel, or iconv -f utf-16 -t utf-8 IN > OUT)")
    if b"\x00" in head:
        raise SynthgenError(f"{path}: is not a CSV table: it holds NUL bytes (binary data) (fix: give a CSV or "
                            "Parquet table)")
    if _utf8_error(head, final=len(head) < HEAD_BYTES):
        raise _not_utf8(path, head)


def _not_utf8(path: Path, head: bytes) -> SynthgenError:
    """The error for text in another encoding: where, and the likely encoding to convert from."""
    exc = _utf8_error(head, final=len(head) < HEAD_BYTES)
    where = f" (byte 0x{head[exc.start]:02x} at offset {exc.start})" if exc else ""
    try:
        head.decode("cp1252")
        encoding = "cp1252"
    except UnicodeDecodeError:
        encoding = "latin-1"
    return SynthgenError(
        f"{path}: is not UTF-8 text{where}; it may be {encoding} (Windows / Latin-1) (fix: re-save it as UTF-8, "
        f"e.g. iconv -f {encoding} -t utf-8 IN > OUT, or pd.read_csv(IN, encoding='{encoding}').to_csv(OUT, "
        "index=False))")


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _check_delimiter(path: Path, text: str, sep: str, *, truncated: bool, parse_failed: bool = False) -> None:
    """Refuse a file that is clearly separated by another delimiter than its name says.

    A candidate counts when the header holds it and most full lines hold it as often as the header
    (any line, when parsing with the expected delimiter failed).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if truncated:
        lines = lines[:-1]  # the last line may be cut
    lines = lines[:50]
    if not lines:
        return
    for cand, name in _DELIMITERS.items():
        count = lines[0].count(cand)
        if cand == sep or count == 0:
            continue
        agree = sum(line.count(cand) == count for line in lines[1:])
        if agree >= 0.8 * (len(lines) - 1) or (parse_failed and agree > 0):
            if cand == "\t":
                fix = "name it .tsv"
            elif sep == "\t" and cand == ",":
                fix = "name it .csv"
            else:
                fix = (f"save it comma-separated, e.g. pd.read_csv(IN, sep={cand!r}).to_csv(OUT, index=False)")
            raise SynthgenError(f"{path}: looks {name}-separated, not {_DELIMITERS[sep]}-separated (header: "
                                f"{lines[0][:60]!r}) (fix: {fix})")


def _header_if_mangled(text: str, sep: str, columns: list[Any], *, truncated: bool) -> list[str]:
    """The file's header names when pandas renamed a repeated one (``a`` -> ``a.1``), else []."""
    try:
        raw = next(csv.reader(io.StringIO(text), delimiter=sep))
    except (StopIteration, csv.Error):
        return []
    if truncated:
        raw = raw[:-1]
    mangled = any(name and str(col) != name and re.fullmatch(re.escape(name) + r"\.\d+", str(col))
                  for name, col in zip(raw, columns, strict=False))
    return raw if mangled else []


@contextlib.contextmanager
def _open_plain(path: Path, secret: Secret | None) -> Iterator[IO[bytes]]:
    """The file's bytes: as they are, or decrypted on the fly when it is encrypted."""
    from synthgen.crypto.streams import DecryptingReader, is_encrypted

    encrypted = is_encrypted(path)
    if encrypted and secret is None:
        raise SynthgenError(f"{path} is encrypted (fix: give its key: --key-file, --identity or --passphrase; "
                            "in Python read_table(path, secret={'key': ...}))")
    with open(path, "rb") as fh:
        yield io.BufferedReader(DecryptingReader(fh, secret)) if encrypted else fh


def _compression(path: Path) -> str | None:
    name = path.name.lower().removesuffix(ENCRYPTED_SUFFIX)
    return {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}.get(Path(name).suffix)


def as_secret(secret: SecretLike | None) -> Secret | None:
    """The ``Secret`` an API argument stands for (a ``Secret``, a dict such as ``{"key": ...}``, or None)."""
    if secret is None:
        return None
    from synthgen.crypto.sealing import Secret

    return Secret.of(secret)


def as_seal(seal: SealLike | None) -> Seal | None:
    """The ``Seal`` an API argument stands for (a ``Seal``, a dict such as ``{"key": ...}``; None or ``{}``: none)."""
    if seal is None:
        return None
    from synthgen.crypto.sealing import Seal

    return Seal.of(seal)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False,
                       seal: SealLike | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (encrypted with ``seal``: a ``Seal``, ``{"key": ...}``, ...)."""
    sealed = as_seal(seal)
    if sealed is not None:
        from synthgen.crypto.streams import encrypt_bytes

        data = encrypt_bytes(data, sealed)
    return write_bytes(path, data, force=force)


class TableWriter:
    """Append DataFrame chunks to a CSV or Parquet file, atomically published on ``close``.

    Use as a context manager; if the block raises, nothing is left under the final name. With
    ``seal`` (a ``Seal``, or ``{"key": ...}`` / ``{"recipient": ...}``, see ``synthgen.crypto.sealing``) the
    file is encrypted as it is written: no plaintext ever reaches the disk.
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False, seal: SealLike | None = None):
        self.path = Path(path)
        self.format = _format_of(self.path)
        self.seal = as_seal(seal)
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
            if self.seal is not None:
                from synthgen.crypto.streams import EncryptingWriter

                writer = cast("IO[bytes]", EncryptingWriter(self._sink, self.seal))  # a writable binary file
                self._sink = self._stack.enter_context(writer)
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
    layer: IO[bytes] | gzip.GzipFile = sink
    if compression == "gzip":
        import gzip

        layer = gzip.GzipFile(fileobj=sink, mode="wb")
    elif compression is not None:
        raise SynthgenError(f"cannot write {compression}-compressed CSV (fix: use .csv, .csv.gz or .parquet)")
    return _TextOut(layer)


class _TextOut(io.TextIOWrapper):
    """UTF-8 text over a binary sink; closing it closes a gzip layer it owns, never the file below."""

    def __init__(self, sink: IO[bytes] | gzip.GzipFile):
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
                seal: SealLike | None = None) -> Path:
    """Write a whole DataFrame to CSV or Parquet, atomically (encrypted as it is written with ``seal``)."""
    with TableWriter(path, force=force, seal=seal) as writer:
        writer.write(df)
    return Path(path)
