"""Sequential tables: a child table whose rows are each parent's events in order (SDV's ``sequence_index``).

A table entry of the metadata with a ``sequence_index`` column (a date or a number; its ``sequence_key`` is
the foreign key of its context parent, the entity) is generated as whole ordered histories: each event given
its entity's lineage, its position in the history, and the event before it (an autoregressive model over
events, built on the same conditional tvae as any child table). The index itself is learned as two columns,
``#first`` (its value at an entity's first event) and ``#gap`` (its step from the event before), so that
histories keep their spacing; sampling adds the gaps up. Each categorical column also gets ``#same <column>``,
whether the event keeps the category of the event before it (a customer's channel, a player's team): sampling
copies the category where it is set, so histories change category as often as the real ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthgen.errors import InvalidDataError, Problem
from synthgen.metadata import Metadata, Relationship
from synthgen.schema import parse_datetimes

FIRST, GAP = "#first", "#gap"
#: position features of an event: is it the first, log(1 + position), events left after it (log)
POSITION_WIDTH = 3
DAY = 86400.0


def events_encoder(table: str) -> str:
    """The name under which a sequential table's encoder of the event before is stored."""
    return f"{table}#events"


def sequence_index(meta: Metadata, table: str) -> str | None:
    """The table's sequence index column (None: not a sequential table)."""
    index = meta.tables[table].get("sequence_index")
    return str(index) if index is not None else None


def check_sequence(meta: Metadata, table: str, df: pd.DataFrame, context: Relationship | None) -> list[Problem]:
    """Problems of a sequential table: its index must be a numerical or datetime column, its sequence key the
    foreign key of a parent (the entity), never null."""
    index = sequence_index(meta, table)
    if index is None:
        return []
    entry = meta.tables[table]
    problems = []
    if index not in entry["columns"] or entry["columns"][index].get("sdtype") not in ("numerical", "datetime"):
        problems.append(Problem(index, "is the sequence index but not a numerical or datetime column",
                                "declare it sdtype numerical or datetime, or drop sequence_index", table))
    key = entry.get("sequence_key")
    if context is None:
        problems.append(Problem(key, "is a sequential table without a parent: its sequence key must be the foreign "
                                "key of the entity table", "add the entity table and its relationship", table))
    elif key is not None and key != context.foreign_key:
        problems.append(Problem(key, f"is the sequence key but the entity's foreign key is {context.foreign_key!r}",
                                "make sequence_key the foreign key of the entity table", table))
    elif df[context.foreign_key].isna().any():
        problems.append(Problem(context.foreign_key, "is a sequence key with nulls: every event needs its entity",
                                "drop the events without an entity, or fill their key", table))
    return problems


def index_numbers(values: pd.Series, entry: dict[str, Any]) -> np.ndarray:
    """A numerical or datetime column (the sequence index, a summarized child column) as float64, dates as days
    since 1970; NaN where missing."""
    if entry.get("sdtype") == "datetime":
        stamps = parse_datetimes(values, entry.get("datetime_format"))
        return ((stamps - pd.Timestamp("1970-01-01")).dt.total_seconds() / DAY).to_numpy(dtype=np.float64,
                                                                                          na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def ordered(df: pd.DataFrame, key: str, index: str, entry: dict[str, Any]) -> pd.DataFrame:
    """Events grouped by entity, in index order (ties and missing indexes keep their row order)."""
    order = pd.DataFrame({"k": df[key].astype(str).to_numpy(), "i": index_numbers(df[index], entry)})
    return df.iloc[order.sort_values(["k", "i"], kind="stable", na_position="last").index].reset_index(drop=True)


def positions(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each event's position in its history and its history's length (events grouped by entity)."""
    codes = pd.factorize(keys.astype(str))[0]
    pos = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    length = pd.Series(codes).map(pd.Series(codes).value_counts()).to_numpy()
    return pos, length


def steps(values: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(#first, #gap): the index at first events (NaN elsewhere), and its step from the event before (NaN at
    first events)."""
    first = np.where(pos == 0, values, np.nan)
    gap = np.r_[np.nan, np.diff(values)]
    gap[pos == 0] = np.nan
    return first, gap


def same_column(column: str) -> str:
    """The internal column saying that an event keeps ``column``'s category from the event before it."""
    return f"#same {column}"


def repeats(values: pd.Series, pos: np.ndarray) -> np.ndarray:
    """Whether each event's value equals the one of the event before it in its history (False at first events;
    two nulls count as equal)."""
    before = values.shift(1)
    same = ((values == before) | (values.isna() & before.isna())).to_numpy(dtype=bool)
    same[pos == 0] = False
    return same


def position_features(pos: np.ndarray, length: np.ndarray) -> np.ndarray:
    """``POSITION_WIDTH`` context columns: first-event flag, log(1 + position), log(events left)."""
    return np.stack([(pos == 0).astype(np.float32), np.log1p(pos).astype(np.float32),
                     np.log1p(np.maximum(length - pos - 1, 0)).astype(np.float32)], axis=1)


def rebuild_index(first: np.ndarray, gap: np.ndarray, pos: np.ndarray, info: dict[str, Any]) -> pd.Series:
    """The index column from generated #first and #gap (gaps added up per history, never below the smallest real
    gap; a missing gap counts as that smallest one, a missing start as the median start), in the real column's
    type: dates in its format, whole numbers as integers."""
    gap = np.where(np.isnan(gap), info["min_gap"], np.maximum(gap, info["min_gap"]))
    starts = first[(pos == 0) & np.isfinite(first)]
    fill = float(np.median(starts)) if len(starts) else 0.0  # a first event generated without its index
    start = np.where(pos == 0, np.where(np.isfinite(first), first, fill), 0.0)
    history = np.cumsum(pos == 0) - 1
    values = np.zeros(len(pos))
    if len(pos):
        base = pd.Series(start).groupby(history).transform("first").to_numpy()
        values = base + pd.Series(np.where(pos == 0, 0.0, gap)).groupby(history).cumsum().to_numpy()
    if info["sdtype"] == "datetime":
        stamps = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.round(values * DAY), unit="s")
        fmt = info.get("datetime_format")
        return pd.Series(stamps.strftime(fmt) if fmt else stamps)
    if info["whole"]:
        return pd.Series(np.round(values).astype(np.int64))
    return pd.Series(values)


def index_info(df: pd.DataFrame, index: str, entry: dict[str, Any], gap: np.ndarray) -> dict[str, Any]:
    """What sampling needs to rebuild the index (JSON): its kind, format, whether whole, and the smallest gap."""
    values = index_numbers(df[index], entry)
    finite = values[np.isfinite(values)]
    gaps = gap[np.isfinite(gap)]
    if len(finite) != len(values):
        raise InvalidDataError(Problem(index, "is the sequence index but has missing or unreadable values",
                                       "fill or drop those events"))
    return {"index": index, "sdtype": entry.get("sdtype"), "datetime_format": entry.get("datetime_format"),
            "whole": bool(len(finite) and np.all(np.mod(finite, 1) == 0)),
            "min_gap": float(gaps.min()) if len(gaps) else 0.0}


def split_standalone(meta: Metadata, data: dict[str, pd.DataFrame], context_columns: dict[str, list[str]] | None = None,
                     *, detect: bool = True) -> tuple[Metadata, dict[str, pd.DataFrame], dict[str, dict[str, Any]]]:
    """A sequential table without an entity table (its ``sequence_key`` references no parent) as two tables: its
    entities (one row per sequence key, with the context columns) and its events, a child of the entities.
    Returns the metadata and tables to train on, and per such table what ``join_standalone`` needs to put the two
    back together.

    The context columns are ``context_columns[table]`` if given, else (with ``detect``) those constant within
    every history, when some history has two events or more; an entity takes its first event's values."""
    tables, relationships, data = dict(meta.tables), list(meta.relationships), dict(data)
    standalone: dict[str, dict[str, Any]] = {}
    problems = []
    for table, entry in meta.tables.items():
        key, index = entry.get("sequence_key"), entry.get("sequence_index")
        if key is None or any(r.child == table and r.foreign_key == key for r in relationships):
            continue
        df = data[table]
        if key not in df.columns or key not in entry["columns"]:
            problems.append(Problem(key, "is the sequence key but not a column", "name a column as sequence_key",
                                    table))
            continue
        if df[key].isna().any():
            problems.append(Problem(key, "is a sequence key with nulls: every event needs its entity",
                                    "drop the events without an entity, or fill their key", table))
            continue
        if index is None:
            problems.append(Problem(key, "is a sequence key without a sequence index",
                                    "declare sequence_index (a date or number column giving the events' order)",
                                    table))
            continue
        skip = {key, index, entry.get("primary_key")}
        candidates = [c for c in df.columns if c not in skip and entry["columns"].get(c, {}).get("sdtype") != "id"]
        grouped = df.groupby(key, sort=False)
        context: list[str] = []
        given = (context_columns or {}).get(table)
        if given is not None:
            unknown = [c for c in given if c not in candidates]
            if unknown:
                problems.append(Problem(unknown[0], "is named a context column but is not a column of the table "
                                        "(keys and the sequence index are not context)",
                                        f"use some of: {', '.join(map(str, candidates))}", table))
                continue
            context = list(given)
        elif detect and candidates and (grouped.size() > 1).any():
            spread = grouped[candidates].nunique(dropna=False).max()
            context = [str(c) for c in candidates if spread[c] <= 1]
        name = f"{table}_entities"
        while name in tables:
            name += "_"
        entities = (grouped[context].first().reset_index() if context
                    else pd.DataFrame({key: df[key].drop_duplicates().to_numpy()}))
        tables[name] = {"primary_key": key, "columns": {key: entry["columns"][key],
                                                        **{c: entry["columns"][c] for c in context}}}
        tables[table] = {**entry, "columns": {c: e for c, e in entry["columns"].items() if c not in context}}
        relationships.append(Relationship(name, key, table, key))
        data[name], data[table] = entities, df.drop(columns=context)
        standalone[table] = {"entities": name, "key": key, "context": context, "columns": [str(c) for c in df.columns]}
    if problems:
        raise InvalidDataError(problems)
    if not standalone:
        return meta, data, {}
    return Metadata(tables, relationships), data, standalone


def join_standalone(tables: dict[str, pd.DataFrame], standalone: dict[str, dict[str, Any]]
                    ) -> dict[str, pd.DataFrame]:
    """The generated tables with each standalone sequential table's entities joined back onto its events (the
    context columns on every event of the entity, in the real table's column order)."""
    out = dict(tables)
    for table, info in standalone.items():
        entities = out.pop(info["entities"])
        events = out[table].merge(entities, on=info["key"], how="left", sort=False)
        out[table] = events[[c for c in info["columns"] if c in events.columns]]
    return out
