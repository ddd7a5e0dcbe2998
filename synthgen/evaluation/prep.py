"""Input checks and feature encodings shared by the evaluator's metrics (numpy / pandas only).

Every encoder here is fitted on one side (the training side of a run, or the real table) and
only applied to the other, so nothing from a test set leaks into preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from synthgen.errors import InvalidDataError, Problem
from synthgen.schema import ColumnSpec, TableSchema
from synthgen.transform.transformer import NUMERIC_KINDS

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Tables:
    """The three tables of an evaluation, checked and aligned to the real training columns."""

    train: pd.DataFrame
    synthetic: pd.DataFrame
    test: pd.DataFrame
    schema: TableSchema
    target: str
    task: Task


def check_tables(train: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame, *, target: str,
                 task: str | None = None) -> Tables:
    """Check the tables against each other and the target; collect every problem at once.

    Raises:
        InvalidDataError: a table is empty, columns differ, the target is missing or has one class.
    """
    problems: list[Problem] = []
    names = {"real": train, "synthetic": synthetic, "test": test}
    for label, df in names.items():
        if len(df) == 0:
            problems.append(Problem(None, f"the {label} table has no rows", f"pass a non-empty {label} table"))
        if target not in df.columns:
            problems.append(Problem(target, f"the target is not a column of the {label} table",
                                    f"use one of: {', '.join(map(str, df.columns[:20]))}"))
    for label in ("synthetic", "test"):
        missing = [c for c in train.columns if c not in names[label].columns]
        extra = [c for c in names[label].columns if c not in train.columns]
        if missing or extra:
            problems.append(Problem(None, f"the {label} table's columns differ from the real table's "
                                    f"(missing: {missing[:10]}, extra: {extra[:10]})",
                                    "give tables with the same columns"))
    if problems:
        raise InvalidDataError(problems)
    schema = TableSchema.detect(train)
    spec = schema[target]
    resolved = _task(spec, train[target], task)
    if resolved == "classification" and train[target].nunique(dropna=True) < 2:
        raise InvalidDataError(Problem(target, "the target has one class in the real table",
                                       "choose a target with at least two classes"))
    cols = list(train.columns)
    return Tables(train.reset_index(drop=True), synthetic[cols].reset_index(drop=True),
                  test[cols].reset_index(drop=True), schema, target, resolved)


def _task(spec: ColumnSpec, values: pd.Series, task: str | None) -> Task:
    if task in ("classification", "regression"):
        return task  # type: ignore[return-value]
    if task not in (None, "auto"):
        raise InvalidDataError(Problem(spec.name, f"unknown task {task!r}", "use classification or regression"))
    if spec.kind in ("continuous", "datetime") or (spec.kind == "integer" and values.nunique() > 20):
        return "regression"
    return "classification"


def split_holdout(df: pd.DataFrame, target: str, *, test_size: float = 0.2,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a seeded split, stratified on the target (nulls as a class) when both
    sides can hold every class; otherwise a plain seeded split."""
    import math

    from sklearn.model_selection import train_test_split

    keys = category_keys(df[target])
    counts = pd.Series(keys).value_counts()
    n_test = math.ceil(test_size * len(df))
    fits = len(counts) > 1 and counts.min() >= 2 and min(n_test, len(df) - n_test) >= len(counts)
    train, test = train_test_split(df, test_size=test_size, stratify=keys if fits else None, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def numbers(series: pd.Series, kind: str) -> np.ndarray:
    """A numeric or datetime column as float64 (datetimes as seconds), NaN for nulls or junk."""
    if kind == "datetime":
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        out = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def category_keys(series: pd.Series) -> np.ndarray:
    """A categorical column as strings (null as its own key), so mixed types compare safely.

    Whole numbers print without a decimal point, so 13 and 13.0 (an int column that another
    tool wrote as float) are the same category.
    """
    null = series.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(values) & (np.mod(values, 1) == 0)
        text = np.where(whole, np.where(whole, values, 0).astype(np.int64).astype(str), values.astype(str))
    else:
        text = series.astype(str).to_numpy()
    return np.where(null, "\x00null", text)


class Featurizer:
    """One-hot for categories, scaled numbers, a missing flag where the fitting side had nulls.

    Args:
        scaling: "standard" (mean 0, std 1; for models) or "range" (0..1 by the fitted range;
            for distances, so that every column weighs at most 1).
    """

    def __init__(self, schema: TableSchema, columns: list[str], *, scaling: str = "standard"):
        self.schema, self.columns, self.scaling = schema, list(columns), scaling
        self._numeric: dict[str, tuple[float, float, float, bool]] = {}
        self._categories: dict[str, np.ndarray] = {}

    def fit(self, df: pd.DataFrame) -> Featurizer:
        for name in self.columns:
            kind = self.schema[name].kind
            if kind in NUMERIC_KINDS:
                x = numbers(df[name], kind)
                present = x[~np.isnan(x)]
                fill = float(np.median(present)) if len(present) else 0.0
                if self.scaling == "range":
                    lo, hi = (float(present.min()), float(present.max())) if len(present) else (0.0, 1.0)
                    center, scale = lo, (hi - lo) or 1.0
                else:
                    center = float(present.mean()) if len(present) else 0.0
                    scale = float(present.std()) if len(present) > 1 else 1.0
                self._numeric[name] = (fill, center, scale or 1.0, bool(np.isnan(x).any()))
            else:
                self._categories[name] = np.unique(category_keys(df[name]))
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts: list[np.ndarray] = []
        for name in self.columns:
            if name in self._numeric:
                fill, center, scale, flag = self._numeric[name]
                x = numbers(df[name], self.schema[name].kind)
                missing = np.isnan(x)
                parts.append(((np.where(missing, fill, x) - center) / scale)[:, None])
                if flag:
                    parts.append(missing[:, None].astype(float))
            else:
                cats = self._categories[name]
                keys = category_keys(df[name])
                pos = np.searchsorted(cats, keys)
                found = (pos < len(cats)) & (cats[np.minimum(pos, len(cats) - 1)] == keys)
                onehot = np.zeros((len(df), len(cats)))
                onehot[np.flatnonzero(found), pos[found]] = 1.0
                parts.append(onehot)
        out = np.hstack(parts) if parts else np.zeros((len(df), 0))
        if self.scaling == "range":
            out = np.clip(out, -1.0, 2.0)  # values far outside the real range count as far, not as infinitely far
        return out.astype(np.float32)

    def feature_kinds(self) -> list[str]:
        """What each output column is: "number", "missing" (a null flag) or "onehot"."""
        kinds: list[str] = []
        for name in self.columns:
            if name in self._numeric:
                kinds += ["number", "missing"] if self._numeric[name][3] else ["number"]
            else:
                kinds += ["onehot"] * len(self._categories[name])
        return kinds

    def blocks(self) -> dict[str, slice]:
        """Which output columns encode each input column (its value, null flag or one-hot block)."""
        out, start = {}, 0
        for name in self.columns:
            width = (2 if self._numeric[name][3] else 1) if name in self._numeric else len(self._categories[name])
            out[name], start = slice(start, start + width), start + width
        return out

    def fit_transform(self, df: pd.DataFrame) -> np.ndarray:
        return self.fit(df).transform(df)


class LabelCoder:
    """Class labels <-> 0..k-1 over the classes seen in the real tables."""

    def __init__(self, *sides: pd.Series):
        self.classes = np.unique(np.concatenate([category_keys(s) for s in sides]))

    def encode(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(codes, mask of rows whose class is known); unknown classes are masked out."""
        keys = category_keys(series)
        pos = np.searchsorted(self.classes, keys)
        known = (pos < len(self.classes)) & (self.classes[np.minimum(pos, len(self.classes) - 1)] == keys)
        return np.where(known, pos, 0), known
