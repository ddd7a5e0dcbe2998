"""Masking several tables: a masking policy per table, with the keys kept joinable.

A policy for several tables names each table's single-table policy (see :mod:`synthgen.masking.policy`)::

    {"version": 1,
     "tables": {"client":  {"columns": {"birth_number": {"op": "generalize", "truncate": "year"}}},
                "account": {"columns": {"account_id": {"op": "pseudonymize", "reversible": true}}}}}

Keys follow their relationships: a primary key and every foreign key that references it (and, through them,
keys that reference those) form one key group. Pseudonymizing any member pseudonymizes every member alike
(reversible ones with the group's one key domain, ``"domain": "account.account_id"`` unless the policy names
one), so the masked tables still join; members given different options are refused. Any other operation on
a key (drop, replace, mask, generalize, noise) would break the joins and is refused, naming the table and
column. Where k-anonymity suppresses rows of a parent table, the rows that descend from them go too, and the
report says how many.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthgen.errors import ConfigError, Problem
from synthgen.masking.policy import Masker, MaskPolicy, MaskReport
from synthgen.metadata import Metadata

#: the column that carries each input row's position through masking (k-anonymity may drop rows)
ROW = "\x00row"


def mask_tables(tables: Mapping[str, pd.DataFrame], policy: Mapping[str, Any] | str | os.PathLike,
                metadata: Metadata | Mapping[str, Any], *, key: bytes | None = None, seed: int | None = None
                ) -> tuple[dict[str, pd.DataFrame], dict[str, MaskReport]]:
    """Mask each table by its policy, keys pseudonymized per key group; (masked tables, report per table).

    Without ``key``, one random key serves every table of this call (the keys still join, within this run).

    Raises:
        ConfigError: every problem of the policy at once (unknown tables, keys given an operation that breaks
            joins, key groups given different options, and each table's own policy problems), or keys that no
            longer join after masking.
    """
    if not isinstance(metadata, Metadata):
        metadata = Metadata.from_dict(metadata)
    raw = _read(policy)
    policies = table_policies(raw, metadata)
    tables = _unified_keys(tables, metadata, policies)
    problems: list[str] = []
    for table, table_policy in policies.items():  # every table's policy checked before any is applied
        try:
            table_policy.check(tables[table])
        except ConfigError as exc:
            problems.append(f"table {table!r}: {exc}")
    if problems:
        raise ConfigError("; ".join(problems))
    run_key = secrets.token_bytes(32)  # one key for every table when the owner gives none
    masked: dict[str, pd.DataFrame] = {}
    kept: dict[str, np.ndarray] = {}  # per table: the positions of the input rows that survived
    reports: dict[str, MaskReport] = {}
    for table in metadata.order():
        df = tables[table].assign(**{ROW: np.arange(len(tables[table]))})
        if table in policies:
            masker = Masker(policies[table], key=key, seed=seed)
            masker.context.run_key = run_key
            df = masker.apply(df)
            assert masker.report is not None, "apply() leaves its report"
            reports[table] = masker.report
        kept[table] = df[ROW].to_numpy()
        masked[table] = df.drop(columns=[ROW]).reset_index(drop=True)
    _drop_orphans(tables, masked, kept, metadata, reports)
    return masked, reports


def table_policies(raw: Mapping[str, Any], metadata: Metadata) -> dict[str, MaskPolicy]:
    """Each table's policy, with every key group's pseudonym applied to all its members.

    Raises:
        ConfigError: every problem at once, each naming the table and column.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("tables"), Mapping):
        raise ConfigError('a masking policy for several tables is a JSON object with a "tables" object: '
                          '{"version": 1, "tables": {"TABLE": {"columns": {...}}}} (fix: see synthgen mask --suggest)')
    problems: list[Problem] = []
    unknown = [t for t in raw["tables"] if t not in metadata.tables]
    for table in unknown:
        problems.append(Problem(None, "the policy names a table the metadata does not have",
                                f"use one of: {', '.join(metadata.tables)}", table))
    entries: dict[str, dict[str, Any]] = {}
    for table, block in raw["tables"].items():
        if table in unknown:
            continue
        if not isinstance(block, Mapping) or not isinstance(block.get("columns", {}), Mapping):
            problems.append(Problem(None, 'its policy is not an object with a "columns" object',
                                    'write {"columns": {"COLUMN": {"op": ...}}}', table))
            continue
        entries[table] = {str(c): ({"op": e} if isinstance(e, str) else dict(e))
                          for c, e in block.get("columns", {}).items()}
    for group in key_groups(metadata):
        given = {(t, c): entries.get(t, {}).get(c) for t, c in group}
        for (t, c), entry in given.items():
            if entry is not None and entry.get("op") != "pseudonymize":
                problems.append(Problem(c, f"is a key and {entry.get('op')!r} would break its joins",
                                        "pseudonymize it (its key group follows), or leave it out", t))
        chosen = {json.dumps({k: v for k, v in e.items() if k not in ("reason", "note")}, sort_keys=True)
                  for e in given.values() if e is not None and e.get("op") == "pseudonymize"}
        if len(chosen) > 1:
            names = ", ".join(f"{t}.{c}" for (t, c), e in given.items() if e is not None)
            problems.append(Problem(None, f"the keys {names} reference each other but are given different "
                                    "pseudonym options", "give them one entry (or name only the primary key)"))
        elif chosen:
            entry = json.loads(chosen.pop())
            if entry.get("reversible"):  # one-way pseudonyms join across columns already
                entry.setdefault("domain", f"{group[0][0]}.{group[0][1]}")
            for t, c in group:
                entries.setdefault(t, {})[c] = {**entry, "reason": f"key group of {group[0][0]}.{group[0][1]}"}
    if problems:
        raise ConfigError(f"invalid masking policy ({len(problems)} problem{'s' if len(problems) > 1 else ''}): "
                          + "; ".join(str(p) for p in problems))
    out = {}
    for table, columns in entries.items():
        block = dict(raw["tables"].get(table, {}))
        block["columns"] = columns
        block.setdefault("version", raw.get("version", 1))
        if "locale" in raw and "locale" not in block:
            block["locale"] = raw["locale"]
        try:
            out[table] = MaskPolicy.from_dict(block)
        except ConfigError as exc:
            problems.append(Problem(None, str(exc), "correct the table's policy", table))
    if problems:
        raise ConfigError("; ".join(str(p) for p in problems))
    return out


def key_groups(metadata: Metadata) -> list[list[tuple[str, str]]]:
    """Key columns that must stay joinable, grouped: each primary key with the foreign keys that reference it,
    merged through keys that are both (a one-to-one table's primary key that references its parent's); each group
    starts with a primary key that references nothing."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    for rel in metadata.relationships:
        a, b = root((rel.parent, rel.parent_key)), root((rel.child, rel.foreign_key))
        if a != b:
            parent[b] = a
        parent.setdefault(a, a)
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for node in list(parent):
        groups.setdefault(root(node), []).append(node)
    return [[r, *[m for m in members if m != r]] for r, members in groups.items()]


def suggest_tables_policy(tables: Mapping[str, pd.DataFrame], metadata: Metadata, *, k: int = 5) -> dict[str, Any]:
    """A policy for several tables from the identifier scan of each: key columns are left to their key groups
    (pseudonymized one-way, as a group, where the scan flags any of them)."""
    from synthgen.masking.identifiers import suggest_policy

    out: dict[str, Any] = {"version": 1, "tables": {}}
    flagged_keys = set()
    for table in metadata.order():
        keys = set(metadata.keys(table))
        policy = suggest_policy(tables[table], k=k)
        flagged_keys |= {(table, c) for c in policy["columns"] if c in keys}
        policy["columns"] = {c: e for c, e in policy["columns"].items() if c not in keys}
        if "k_anonymity" in policy:
            policy["k_anonymity"]["columns"] = [c for c in policy["k_anonymity"]["columns"] if c not in keys]
            if not policy["k_anonymity"]["columns"]:
                del policy["k_anonymity"]
        if policy["columns"] or "k_anonymity" in policy:
            out["tables"][table] = {k2: v for k2, v in policy.items() if k2 != "version"}
    for group in key_groups(metadata):
        if flagged_keys & set(group):
            table, column = group[0]
            block = out["tables"].setdefault(table, {"columns": {}})
            block["columns"][column] = {"op": "pseudonymize", "reason": "a key that looks like an identifier; "
                                        "its foreign keys follow"}
    return out


def _unified_keys(tables: Mapping[str, pd.DataFrame], metadata: Metadata,
                  policies: Mapping[str, MaskPolicy]) -> dict[str, pd.DataFrame]:
    """The tables with each pseudonymized key group in one storage type, so that its members get tokens of one
    form: whole numbers (an integer key, and a foreign key read as float because of a null) as nullable
    integers."""
    out = dict(tables)
    for group in key_groups(metadata):
        if not any(c in policies.get(t, MaskPolicy({})).columns for t, c in group):
            continue
        columns = [tables[t][c] for t, c in group]
        numeric = all(pd.api.types.is_numeric_dtype(v.dtype) and not pd.api.types.is_bool_dtype(v.dtype)
                      for v in columns)
        if numeric and all(np.all(np.mod(v.dropna().to_numpy(dtype=float), 1) == 0) for v in columns) and any(
                pd.api.types.is_float_dtype(v.dtype) for v in columns):
            for t, c in group:
                out[t] = out[t].assign(**{c: tables[t][c].astype("Int64")})
    return out


def _drop_orphans(tables: Mapping[str, pd.DataFrame], masked: dict[str, pd.DataFrame], kept: Mapping[str, np.ndarray],
                  metadata: Metadata, reports: dict[str, MaskReport]) -> None:
    """Remove the rows whose parent row k-anonymity suppressed (and theirs, parents first), and say so; any other
    foreign key that no longer finds its parent is an error."""
    for table in metadata.order():
        drop = np.zeros(len(masked[table]), dtype=bool)
        for rel in metadata.parents(table):
            gone = set(tables[rel.parent][rel.parent_key].to_numpy()) - set(
                tables[rel.parent][rel.parent_key].to_numpy()[kept[rel.parent]])
            if gone:
                original = tables[table][rel.foreign_key].to_numpy()[kept[table]]
                drop |= pd.Series(original).isin(gone).to_numpy()
        if drop.any():
            masked[table] = masked[table][~drop].reset_index(drop=True)
            kept = {**kept, table: kept[table][~drop]}
            report = reports.get(table) or MaskReport(len(tables[table]), len(tables[table]))
            report.rows_out = len(masked[table])
            report.columns["(rows)"] = {"op": "removed with their suppressed parent rows", "changed": int(drop.sum()),
                                        "dtype_in": "", "dtype_out": ""}
            reports[table] = report
        for rel in metadata.parents(table):
            fk = masked[table][rel.foreign_key]
            lost = int((fk.notna() & ~fk.isin(masked[rel.parent][rel.parent_key])).sum())
            if lost:
                raise ConfigError(f"table {table!r}, column {rel.foreign_key!r}: {lost:,} keys no longer find their "
                                  f"row of {rel.parent} after masking (fix: pseudonymize the key group of "
                                  f"{rel.parent}.{rel.parent_key} with one entry, and give --key-file)")


def _read(policy: Mapping[str, Any] | str | os.PathLike) -> Mapping[str, Any]:
    if isinstance(policy, Mapping):
        return policy
    try:
        return json.loads(Path(policy).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"policy file {policy} not found (fix: check the path, or write one with synthgen mask "
                          "--suggest)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"policy file {policy} is not valid UTF-8 JSON ({exc}) (fix: correct it)") from None
