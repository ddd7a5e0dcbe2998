"""The trained models shipped in ``trained_models/``: where they are, what their cards say, and the
figure a test re-checks so a card cannot drift from its model.

Each model file carries its card's figures in the manifest (``card``); ``NAME.md`` beside it is
the readable card. ``benchmarks/train_shipped.py`` builds both, seeded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthgen.errors import SynthgenError

if TYPE_CHECKING:  # listing the models reads manifests only: no pandas, no torch
    import pandas as pd

#: environment variable naming another folder of shipped models
MODELS_ENV = "SYNTHGEN_MODELS"
#: the held-out share of each dataset's split (stratified, seed 0) every shipped model was built and carded on
SPLITS = {"adult": 0.2, "digits": 0.25}


def models_dir() -> Path:
    """``$SYNTHGEN_MODELS``, else ``trained_models/`` of the source tree synthgen runs from."""
    return Path(os.environ.get(MODELS_ENV) or Path(__file__).resolve().parents[1] / "trained_models")


def list_models(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One entry per shipped model file: name, path, model family, epsilon, training rows, card (each file is
    verified, its weights not decoded: no torch)."""
    from synthgen.artifact import read_manifest

    folder = Path(directory) if directory is not None else models_dir()
    if not folder.is_dir():
        raise SynthgenError(f"no shipped models at {folder} (fix: run from a synthgen checkout, or set "
                            f"{MODELS_ENV} to the folder holding them)")
    entries = []
    for path in sorted(folder.glob("*.sgm")):
        manifest = read_manifest(path)
        entries.append({"name": path.stem, "path": path, "model": manifest["model"]["name"],
                        "epsilon": manifest["privacy"].get("epsilon"), "rows": manifest["training"].get("rows"),
                        "card": manifest.get("card") or {}})
    return entries


def real_split(dataset: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (train, test) split of ``dataset`` ("adult" or "digits") the shipped models were built on
    (seed 0; another ``seed`` gives another split of the same sizes), stratified on the target."""
    from sklearn.model_selection import train_test_split

    from synthgen.datasets import load_adult, load_digits

    if dataset not in SPLITS:
        raise SynthgenError(f"unknown dataset {dataset!r} (fix: use adult or digits)")
    df, target = (load_adult(), "income") if dataset == "adult" else (load_digits(), "label")
    train, test = train_test_split(df, test_size=SPLITS[dataset], stratify=df[target], random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def column_shapes_score(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean column-shape score (sdmetrics' KSComplement / TVComplement) of ``synthetic`` against ``real``."""
    import numpy as np

    from synthgen.evaluation.fidelity import column_shapes
    from synthgen.evaluation.prep import check_tables

    columns = [c for c in synthetic.columns if c in real.columns]
    target = columns[-1]
    tables = check_tables(real[columns], synthetic[columns], real[columns], target=target)
    return float(np.mean(list(column_shapes(real[columns], synthetic[columns], tables).values())))


def card_check(sampler: Any, dataset: str, rows: int, seed: int) -> float:
    """The card's re-checkable figure: column shapes of ``rows`` sampled rows (``seed``) vs the train split."""
    train, _ = real_split(dataset)
    return column_shapes_score(train, sampler.sample(rows, seed=seed))
