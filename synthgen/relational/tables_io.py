"""Several tables in and out: a folder of files (one per table) or a SQL database through a SQLAlchemy URL.

Reading a database reflects its tables, primary keys and foreign keys (``Metadata.detect`` takes them as
given). Writing a database creates the tables with their primary and foreign key constraints and inserts
them parents first, in chunks, in one transaction: on any failure nothing is left written. Existing
tables (or a non-empty folder) are refused unless ``force``. A folder is written beside its final name and
renamed into place when every table is written.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from synthgen.errors import InvalidDataError, OutputExistsError, Problem, SynthgenError
from synthgen.io import SealLike, SecretLike, read_table, write_table
from synthgen.metadata import Metadata

#: file endings read as tables (``.enc`` after any of them: encrypted)
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: rows per INSERT batch and per read chunk
CHUNK_ROWS = 50_000


def is_database(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://user@host/db``)."""
    return "://" in str(source)


def table_name(path: Path) -> str | None:
    """The table a file in a folder holds (its name without the table suffix), or None for other files."""
    name = path.name.removesuffix(".enc")
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def read_tables(source: str | os.PathLike, *, secret: SecretLike | Callable[[Path], SecretLike | None] | None = None
                ) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]] | None]:
    """The tables of a folder or a database, and the keys a database declares (None for a folder); a single table
    file gives one table, named after the file.

    ``secret`` opens a folder's encrypted files (``.enc``): one secret for all, or a function giving each file's."""
    if is_database(source):
        return _read_database(str(source))
    folder = Path(source)
    single = table_name(folder)
    if folder.is_file() and single is not None:
        return {single: read_table(folder, secret=secret(folder) if callable(secret) else secret)}, None
    if not folder.is_dir():
        raise SynthgenError(f"{folder}: no such folder (fix: give a folder with one file per table, or a database "
                            "URL such as sqlite:///data.db)")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        name = table_name(path)
        if name is None:
            continue
        if name in files:
            raise InvalidDataError(Problem(None, f"two files hold it ({files[name].name}, {path.name})",
                                           "keep one file per table", name))
        files[name] = path
    if not files:
        raise SynthgenError(f"{folder} holds no table files (fix: one .csv, .csv.gz or .parquet file per table)")
    def opener(path: Path) -> SecretLike | None:
        if not path.name.endswith(".enc"):
            return None
        return secret(path) if callable(secret) else secret

    return {name: read_table(path, secret=opener(path)) for name, path in files.items()}, None


def engine_for(url: str) -> Any:
    """A SQLAlchemy engine; ``postgresql://`` uses psycopg 3 where psycopg2 is absent."""
    import sqlalchemy as sa

    if url.startswith(("postgresql://", "postgres://")) and importlib.util.find_spec("psycopg2") is None:
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise SynthgenError(f"cannot open database {_safe(url)} ({exc}) (fix: a SQLAlchemy URL such as "
                            "sqlite:///data.db or postgresql://user@host/db, with its driver installed: "
                            "pip install 'synthgen[postgres]')") from None


def _safe(url: str) -> str:
    """The URL without its password."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(malformed URL)"


def _read_database(url: str) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]]]:
    import sqlalchemy as sa

    engine = engine_for(url)
    try:
        inspector = sa.inspect(engine)
        names = inspector.get_table_names()
        if not names:
            raise SynthgenError(f"{_safe(url)} holds no tables (fix: check the database and schema)")
        constraints: dict[str, dict[str, Any]] = {}
        tables = {}
        with engine.connect() as conn:
            for name in names:
                pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
                fks = [(fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
                       for fk in inspector.get_foreign_keys(name) if len(fk["constrained_columns"]) == 1]
                constraints[name] = {"primary_key": pk[0] if len(pk) == 1 else None, "foreign_keys": fks}
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                tables[name] = pd.read_sql_query(sa.select(table), conn)
        return tables, constraints
    except sa.exc.SQLAlchemyError as exc:
        raise SynthgenError(f"cannot read {_safe(url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def write_tables(tables: Mapping[str, pd.DataFrame], dest: str | os.PathLike, metadata: Metadata, *,
                 force: bool = False, file_format: str = "csv", seal: SealLike | None = None) -> str:
    """Write every table to a folder (one ``<table>.<format>`` file each) or a database; returns where."""
    if is_database(dest):
        if seal is not None:
            raise SynthgenError("a database is not written encrypted (fix: drop --encrypt / --recipient, or write "
                                "to a folder)")
        write_database(tables, str(dest), metadata, force=force)
        return _safe(str(dest))
    return str(_write_folder(tables, Path(dest), force=force, file_format=file_format, seal=seal))


def _write_folder(tables: Mapping[str, pd.DataFrame], folder: Path, *, force: bool, file_format: str,
                  seal: SealLike | None) -> Path:
    if file_format not in ("csv", "csv.gz", "parquet"):
        raise SynthgenError(f"unknown table format {file_format!r} (fix: csv, csv.gz or parquet)")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not force:
        raise OutputExistsError(f"{folder} already exists (fix: choose another folder or pass --force)")
    parent = folder.resolve().parent
    if not parent.exists():
        raise SynthgenError(f"{parent}: no such folder (fix: create it first)")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=parent))
    try:
        for name, df in tables.items():
            suffix = f".{file_format}" + (".enc" if seal is not None else "")
            write_table(df, staging / f"{name}{suffix}", seal=seal)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def write_database(tables: Mapping[str, pd.DataFrame], url: str, metadata: Metadata, *, force: bool = False) -> None:
    """Create the tables with their keys and insert the rows, parents first, in one transaction."""
    import sqlalchemy as sa

    engine = engine_for(url)
    try:
        existing = set(sa.inspect(engine).get_table_names())
        clash = [t for t in tables if t in existing]
        if clash and not force:
            raise OutputExistsError(f"{_safe(url)} already has table(s) {', '.join(clash)} (fix: write to another "
                                    "database, or pass --force to replace them)")
        schema = sa.MetaData()
        order = [t for t in metadata.order() if t in tables]
        for name in order:
            _sql_table(schema, name, tables[name], metadata)
        with engine.begin() as conn:  # one transaction: all tables or none
            if clash:
                old = sa.MetaData()
                old.reflect(conn, only=clash)
                old.drop_all(conn)
            schema.create_all(conn)
            for name in order:
                df = tables[name]
                table = schema.tables[name]
                for start in range(0, len(df), CHUNK_ROWS):
                    rows = _records(df.iloc[start:start + CHUNK_ROWS])
                    if rows:
                        conn.execute(table.insert(), rows)
    except sa.exc.SQLAlchemyError as exc:
        raise SynthgenError(f"cannot write to {_safe(url)} (nothing was written): {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _sql_table(schema: Any, name: str, df: pd.DataFrame, metadata: Metadata) -> Any:
    import sqlalchemy as sa

    pk = metadata.primary_key(name)
    columns = [sa.Column(str(c), _sql_type(df[c]), primary_key=(c == pk), nullable=(c != pk)) for c in df.columns]
    fks = [sa.ForeignKeyConstraint([r.foreign_key], [f"{r.parent}.{r.parent_key}"]) for r in metadata.parents(name)]
    return sa.Table(name, schema, *columns, *fks)


def _sql_type(values: pd.Series) -> Any:
    import sqlalchemy as sa

    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(dtype):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(dtype):
        return sa.Float()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return sa.DateTime()
    return sa.Text()


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (None for nulls)."""
    plain = df.astype(object).where(df.notna(), None)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in plain.to_dict(orient="records")
    ]
