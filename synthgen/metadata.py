"""Several tables and their keys: SDV's multi-table metadata JSON (``METADATA_SPEC_VERSION`` "V1"), read and
written as plain JSON, checked against the data, and detected from the data for a person to review.

The graph it describes: tables, each with an optional primary key, and relationships (a child's foreign
key referencing a parent's primary key). Cycles and self-references are refused, naming the tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from synthgen.errors import InvalidDataError, Problem
from synthgen.files import write_bytes
from synthgen.schema import broken_rule, detect_column, dtype_name, python_value

SPEC_VERSION = "V1"
#: how SDV names a schema kind (our ``ColumnSpec.kind``)
SDTYPES = {"continuous": "numerical", "integer": "numerical", "categorical": "categorical", "boolean": "boolean",
           "datetime": "datetime"}


@dataclasses.dataclass(frozen=True)
class Relationship:
    """``child.foreign_key`` references ``parent.parent_key`` (the parent's primary key)."""

    parent: str
    parent_key: str
    child: str
    foreign_key: str

    def __str__(self) -> str:
        return f"{self.child}.{self.foreign_key} -> {self.parent}.{self.parent_key}"

    def to_dict(self) -> dict[str, str]:
        return {"parent_table_name": self.parent, "parent_primary_key": self.parent_key,
                "child_table_name": self.child, "child_foreign_key": self.foreign_key}


@dataclasses.dataclass
class Metadata:
    """Tables (SDV table entries: ``primary_key`` and ``columns`` with an ``sdtype`` each) and relationships.

    Example:
        >>> meta = Metadata.load("berka.json")  # doctest: +SKIP
        >>> meta.order()  # parents before children  # doctest: +SKIP
    """

    tables: dict[str, dict[str, Any]]
    relationships: list[Relationship] = dataclasses.field(default_factory=list)

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metadata:
        """Metadata from SDV's multi-table JSON dict; every malformed part is listed at once."""
        problems: list[Problem] = []
        tables = data.get("tables") if isinstance(data, Mapping) else None
        if not isinstance(tables, dict) or not tables:
            raise InvalidDataError(Problem(None, "the metadata has no 'tables' mapping",
                                           "use SDV multi-table metadata JSON: {\"tables\": {...}, "
                                           "\"relationships\": [...]}"))
        for name, entry in tables.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("columns"), dict):
                problems.append(Problem(None, "has no 'columns' mapping", "give each table its columns", str(name)))
            elif entry.get("primary_key") is not None and entry["primary_key"] not in entry["columns"]:
                problems.append(Problem(str(entry["primary_key"]), "is the primary key but not a column",
                                        "add it to the table's columns", str(name)))
        relationships = []
        for i, rel in enumerate(data.get("relationships") or []):
            fields = ("parent_table_name", "parent_primary_key", "child_table_name", "child_foreign_key")
            if not isinstance(rel, dict) or not all(isinstance(rel.get(f), str) for f in fields):
                problems.append(Problem(None, f"relationship {i + 1} lacks one of {', '.join(fields)}",
                                        "give each relationship all four names"))
                continue
            relationships.append(Relationship(*(rel[f] for f in fields)))
        meta = cls({str(k): v for k, v in tables.items()}, relationships)
        if not problems:
            problems = meta.graph_problems()
        if problems:
            raise InvalidDataError(problems)
        return meta

    @classmethod
    def load(cls, path: str | os.PathLike, *, single: str | None = None) -> Metadata:
        """Read a metadata JSON file (SDV multi-table; with ``single``, a table's name, SDV single-table
        metadata too: ``{"columns": ...}`` becomes that table's entry)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidDataError(Problem(None, f"metadata file {path} not found", "check the path")) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidDataError(Problem(None, f"metadata {path} is not valid JSON ({exc})",
                                           "fix the JSON")) from None
        if single is not None and isinstance(data, dict) and "tables" not in data and "columns" in data:
            data = {"tables": {single: data}}
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {"METADATA_SPEC_VERSION": SPEC_VERSION, "tables": self.tables,
                "relationships": [r.to_dict() for r in self.relationships]}

    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the metadata JSON (atomically; refuses to overwrite unless ``force``)."""
        return write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode(), force=force)

    # ------------------------------------------------------------------ the graph
    def primary_key(self, table: str) -> str | None:
        return self.tables[table].get("primary_key")

    def parents(self, table: str) -> list[Relationship]:
        """Relationships in which ``table`` is the child, in metadata order."""
        return [r for r in self.relationships if r.child == table]

    def children(self, table: str) -> list[Relationship]:
        """Relationships in which ``table`` is the parent, in metadata order."""
        return [r for r in self.relationships if r.parent == table]

    def keys(self, table: str) -> list[str]:
        """The table's key columns: its primary key and its foreign keys."""
        pk = self.primary_key(table)
        return ([pk] if pk is not None else []) + [r.foreign_key for r in self.parents(table)
                                                   if r.foreign_key != pk]

    def graph_problems(self) -> list[Problem]:
        """Relationships naming unknown tables or columns, keys that are not primary keys, self-references
        and cycles."""
        problems = []
        for rel in self.relationships:
            for table, column, role in ((rel.parent, rel.parent_key, "parent"), (rel.child, rel.foreign_key, "child")):
                if table not in self.tables:
                    problems.append(Problem(None, f"relationship {rel} names {role} table {table!r}, which the "
                                            "metadata does not describe", "add the table or fix the name", table))
                elif column not in self.tables[table]["columns"]:
                    problems.append(Problem(column, f"relationship {rel} names it, but it is not a column",
                                            "fix the relationship", table))
            if rel.parent in self.tables and self.primary_key(rel.parent) != rel.parent_key:
                problems.append(Problem(rel.parent_key, f"relationship {rel} references it, but it is not the "
                                        "table's primary key", "set the table's primary_key or fix the relationship",
                                        rel.parent))
            if rel.parent == rel.child:
                problems.append(Problem(rel.foreign_key, f"references its own table ({rel}): self-references are "
                                        "not supported", "move the hierarchy into a separate table or drop the key",
                                        rel.child))
        if not problems:
            cycle = self._cycle()
            if cycle:
                problems.append(Problem(None, f"the relationships form a cycle: {' -> '.join(cycle)}: cycles are not "
                                        "supported", "drop one of these relationships", cycle[0]))
        return problems

    def _cycle(self) -> list[str] | None:
        """One cycle of parent -> child edges (its tables, the first repeated at the end), or None."""
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(table: str) -> list[str] | None:
            state[table] = 1
            path.append(table)
            for rel in self.children(table):
                if state.get(rel.child) == 1:
                    return path[path.index(rel.child):] + [rel.child]
                if rel.child not in state:
                    found = visit(rel.child)
                    if found:
                        return found
            state[table] = 2
            path.pop()
            return None

        for table in self.tables:
            if table not in state:
                found = visit(table)
                if found:
                    return found
        return None

    def order(self) -> list[str]:
        """Every table, each after all of its parents (metadata order among equals)."""
        done: list[str] = []
        pending = list(self.tables)
        while pending:
            ready = [t for t in pending if all(r.parent in done for r in self.parents(t))]
            if not ready:  # graph_problems refuses cycles before this can happen
                raise InvalidDataError(Problem(None, "the relationships form a cycle", "drop one of them"))
            done.extend(ready)
            pending = [t for t in pending if t not in ready]
        return done

    def roots(self) -> list[str]:
        """Tables with no parent."""
        return [t for t in self.tables if not self.parents(t)]

    def depth(self) -> int:
        """Levels of the deepest chain (1: tables without relationships)."""
        level: dict[str, int] = {}
        for table in self.order():
            level[table] = 1 + max((level[r.parent] for r in self.parents(table)), default=0)
        return max(level.values())

    # ------------------------------------------------------------------ checked against the data
    def problems(self, data: Mapping[str, pd.DataFrame]) -> list[Problem]:
        """Every way ``data`` breaks the metadata: missing or extra tables and columns, duplicate or null primary
        keys, key columns of mixed types, foreign keys pointing nowhere."""
        problems = []
        for table in self.tables:
            if table not in data:
                problems.append(Problem(None, "is named in the metadata but missing from the data",
                                        "add its file / database table, or remove it from the metadata", table))
        for table in data:
            if table not in self.tables:
                problems.append(Problem(None, "is in the data but not in the metadata",
                                        "add it to the metadata (synthgen metadata detect) or remove it", table))
        for table, entry in self.tables.items():
            df = data.get(table)
            if df is None:
                continue
            names = set(map(str, df.columns))
            for column in entry["columns"]:
                if column not in names:
                    problems.append(Problem(column, "is in the metadata but not in the data",
                                            "remove it from the metadata", table))
            for column in sorted(names - set(entry["columns"])):
                problems.append(Problem(column, "is in the data but not in the metadata",
                                        "add it to the metadata or drop the column", table))
            problems += self._key_problems(table, df)
        return problems + self._reference_problems(data)

    def _key_problems(self, table: str, df: pd.DataFrame) -> list[Problem]:
        problems = []
        for column in self.keys(table):
            if column in df.columns and _mixed(df[column]):
                problems.append(Problem(column, "is a key column holding both numbers and text",
                                        "give every key value one type (all whole numbers or all text)", table))
        pk = self.primary_key(table)
        if pk is not None and pk in df.columns:
            values = df[pk]
            if values.isna().any():
                problems.append(Problem(pk, f"is the primary key but {int(values.isna().sum()):,} rows have none",
                                        "give every row a key, or drop those rows", table))
            dup = values.dropna().duplicated()
            if dup.any():
                shown = ", ".join(map(repr, values.dropna()[dup].unique()[:3].tolist()))
                problems.append(Problem(pk, f"is the primary key but {int(dup.sum()):,} values repeat (e.g. {shown})",
                                        "make the key unique, or declare another primary key", table))
        return problems

    def _reference_problems(self, data: Mapping[str, pd.DataFrame]) -> list[Problem]:
        problems = []
        for rel in self.relationships:
            if rel.child not in data or rel.parent not in data or rel.foreign_key not in data[rel.child].columns \
                    or rel.parent_key not in data[rel.parent].columns:
                continue  # reported above
            child, parent = data[rel.child][rel.foreign_key], data[rel.parent][rel.parent_key]
            if _mixed(child) or _mixed(parent):
                continue
            values = child.dropna()
            if len(values) and dtype_name(values.dtype) != dtype_name(parent.dtype) and \
                    _is_text(values) != _is_text(parent):
                problems.append(Problem(rel.foreign_key, f"holds {dtype_name(values.dtype)} values but references "
                                        f"{rel.parent}.{rel.parent_key} of {dtype_name(parent.dtype)} ({rel})",
                                        "give both key columns one type", rel.child))
                continue
            orphan = ~values.isin(parent)
            if orphan.any():
                shown = ", ".join(map(repr, values[orphan].unique()[:3].tolist()))
                problems.append(Problem(rel.foreign_key, f"{int(orphan.sum()):,} rows point to no row of "
                                        f"{rel.parent} (e.g. {shown}; {rel})",
                                        f"drop those rows, set their key to null, or add the missing {rel.parent} "
                                        "rows", rel.child))
        return problems

    def check(self, data: Mapping[str, pd.DataFrame]) -> None:
        """Raise ``InvalidDataError`` listing every problem of :meth:`problems`."""
        problems = self.problems(data)
        if problems:
            raise InvalidDataError(problems)

    # ------------------------------------------------------------------ detection
    @classmethod
    def detect(cls, data: Mapping[str, pd.DataFrame],
               constraints: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[Metadata, list[str]]:
        """Metadata guessed from the tables, and a line per guess for a person to review.

        ``constraints``: per table, what a database declares (``primary_key``, and ``foreign_keys`` as
        ``[(column, parent_table, parent_column)]``): taken as given. Otherwise a primary key is a unique,
        complete column named ``id``, ``<table>_id`` or ``<table>id`` (or ending in ``_id``, the first such),
        and a foreign key is a column named like a parent's key (``<parent>_id``, ``<parent>_<key>``, or the
        key's own name) whose every value is one of that parent's keys.
        """
        constraints = constraints or {}
        notes: list[str] = []
        keys: dict[str, str | None] = {}
        for table, df in data.items():
            declared = constraints.get(table, {})
            if "primary_key" in declared:
                keys[table] = declared["primary_key"]
                if keys[table]:
                    notes.append(f"{table}: primary key {keys[table]} (declared by the database)")
                continue
            keys[table] = _guess_primary_key(table, df)
            notes.append(f"{table}: primary key {keys[table]} (guessed: unique, no nulls, named like a key)"
                         if keys[table] else f"{table}: no primary key found (none is needed for a leaf table)")
        relationships = []
        for table, df in data.items():
            declared = constraints.get(table, {})
            if "foreign_keys" in declared:
                for column, parent, parent_key in declared["foreign_keys"]:
                    relationships.append(Relationship(parent, parent_key, table, column))
                    notes.append(f"{table}.{column} -> {parent}.{parent_key} (declared by the database)")
                continue
            for column in map(str, df.columns):
                if column == keys[table]:
                    continue
                for parent, pk in keys.items():
                    if pk is None or parent == table or not _names_match(column, parent, pk):
                        continue
                    values = df[column].dropna()
                    if len(values) and not _mixed(values) and values.isin(data[parent][pk]).all():
                        relationships.append(Relationship(parent, pk, table, column))
                        notes.append(f"{table}.{column} -> {parent}.{pk} (guessed: named like {parent}'s key and "
                                     f"every value is one of its keys)")
                        break
        tables: dict[str, dict[str, Any]] = {}
        for table, df in data.items():
            fks = {r.foreign_key for r in relationships if r.child == table}
            key_columns = fks | ({keys[table]} if keys[table] else set())
            tables[table] = {"columns": {}, **({"primary_key": keys[table]} if keys[table] else {})}
            for column in map(str, df.columns):
                entry = {"sdtype": "id"} if column in key_columns else _column_entry(df[column], column, table, notes)
                tables[table]["columns"][column] = entry
        meta = cls(tables, relationships)
        problems = meta.graph_problems()
        if problems:
            raise InvalidDataError(problems)
        return meta, notes

    def describe(self) -> list[str]:
        """One line per table (rows unknown here) and per relationship, for ``inspect``."""
        lines = [f"table {t}: {len(e['columns'])} columns, primary key {e.get('primary_key') or '-'}"
                 for t, e in self.tables.items()]
        return lines + [f"relationship {r}" for r in self.relationships]


def _column_entry(series: pd.Series, column: str, table: str, notes: list[str]) -> dict[str, Any]:
    """The SDV entry of a non-key column: its detected kind; a column that looks like an identifier is
    ``id`` (generated anew, not learned); numbers with a few text values are numerical (the text is read
    as null). Both are noted for review."""
    spec = detect_column(series, column)
    rule = broken_rule(series, spec)
    if rule in ("id", "too_many"):
        why = "it looks like an identifier" if rule == "id" else "it has too many categories to learn"
        notes.append(f"{table}.{column}: sdtype id ({why}: new values of its format are generated, none "
                     "learned; to learn it, group its values and make it categorical)")
        return {"sdtype": "id"}
    if rule == "mixed":
        numbers = pd.to_numeric(series, errors="coerce")
        bad = series[numbers.isna() & series.notna()]
        notes.append(f"{table}.{column}: sdtype numerical ({len(bad):,} text values such as "
                     f"{python_value(bad.iloc[0])!r} will be read as nulls)")
        return {"sdtype": "numerical", "computer_representation": "Float"}
    entry: dict[str, Any] = {"sdtype": SDTYPES[spec.kind]}
    if spec.kind == "integer":
        entry["computer_representation"] = "Int64"
    if spec.kind == "continuous":
        entry["computer_representation"] = "Float"
    if spec.kind == "datetime" and spec.datetime_format:
        entry["datetime_format"] = spec.datetime_format
    return entry


def _mixed(values: pd.Series) -> bool:
    """Whether an object column holds both numbers and text."""
    if values.dtype != object:
        return False
    kinds = {isinstance(v, str) for v in values.dropna().head(100_000)}
    return len(kinds) > 1


def _is_text(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values.dtype)


def _guess_primary_key(table: str, df: pd.DataFrame) -> str | None:
    names = [str(c) for c in df.columns]
    lower = {n.lower(): n for n in names}
    candidates = [lower[n] for n in ("id", f"{table.lower()}_id", f"{table.lower()}id") if n in lower]
    candidates += [n for n in names if n.lower().endswith("_id") and n not in candidates]
    for name in candidates:
        values = df[name]
        if values.notna().all() and values.is_unique and not _mixed(values) and \
                (pd.api.types.is_integer_dtype(values.dtype) or values.dtype == object):
            return name
    return None


def _names_match(column: str, parent: str, key: str) -> bool:
    """Whether ``column`` is named like a reference to ``parent``'s key ``key``."""
    c, p, k = column.lower(), parent.lower(), key.lower()
    singular = p[:-1] if p.endswith("s") else p
    return c in {k, f"{p}_{k}", f"{singular}_{k}", f"{p}_id", f"{singular}_id", f"{p}id", f"{singular}id"} and \
        not (k == "id" and c == "id")
