"""Shared fixtures: a small Adult sample, a fitted transformer, tiny models and a saved model file.

Everything expensive is built once per session; fixtures that hand out data return copies so a
test cannot leak changes into the next one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen import Synthesizer
from synthgen.datasets import load_adult
from synthgen.models import get_model, latent
from synthgen.schema import TableSchema
from synthgen.transform import TabularTransformer

# helper modules shared by tests in several folders (shop_data, pg_server) import by name
sys.path.insert(0, str(Path(__file__).parent))

# The test models are tiny: one thread is as fast as several, and it does not collapse (spinning
# OpenMP workers) when other processes share the cores (pytest-xdist runs one worker per core, and
# the command-line tests start synthgen in subprocesses, which inherit the variable). Tests compare
# results only within one run.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# tvae's latent mixture is fitted on at most this many codes in the tests (50,000 in use): the tests
# train for an epoch or two, and EM on such unconverged codes takes about 20 s per Adult-sized fit.
# Only in-process fits see it. Both paths still run: smaller tables fit all their codes, larger ones
# a seeded subsample.
latent.FIT_ROWS = 5_000

#: small sizes for every model: each key is used only where the model's Config has it
TINY: dict[str, Any] = {
    "epochs": 1,
    "batch_size": 100,
    "embedding_dim": 16,
    "generator_dim": (32,),
    "discriminator_dim": (32,),
    "compress_dims": (32,),
    "decompress_dims": (32,),
    "steps_per_epoch": 20,
    "latent_batch": 128,
    "hidden": (32,),
}
ADULT_ROWS = 600


def tiny_hyperparameters(model: str, **overrides: Any) -> dict[str, Any]:
    """TINY (plus ``overrides``) restricted to the hyperparameters ``model`` has."""
    fields = {f.name for f in dataclasses.fields(get_model(model).Config)}
    return {k: v for k, v in {**TINY, **overrides}.items() if k in fields}


@pytest.fixture(scope="session")
def tiny():
    """``tiny(model, **overrides)``: hyperparameters for a fast fit of any registered model."""
    return tiny_hyperparameters


@pytest.fixture(scope="session")
def _adult() -> pd.DataFrame:
    return load_adult().sample(ADULT_ROWS, random_state=0).reset_index(drop=True)


@pytest.fixture
def adult(_adult) -> pd.DataFrame:
    """600 Adult rows (a fresh copy per test)."""
    return _adult.copy()


def _with_nulls(df: pd.DataFrame) -> pd.DataFrame:
    """Adult with 20% nulls in ``age`` (numeric) and 15% in ``workclass`` (categorical)."""
    rng = np.random.default_rng(1)
    out = df.copy()
    out["age"] = out["age"].astype(float)
    out.loc[rng.choice(len(out), len(out) // 5, replace=False), "age"] = np.nan
    out.loc[rng.choice(len(out), len(out) * 15 // 100, replace=False), "workclass"] = np.nan
    return out


@pytest.fixture(scope="session")
def _adult_nulls(_adult) -> pd.DataFrame:
    return _with_nulls(_adult)


@pytest.fixture
def adult_nulls(_adult_nulls) -> pd.DataFrame:
    """Adult with nulls injected in a numeric and a categorical column (a fresh copy)."""
    return _adult_nulls.copy()


@pytest.fixture(scope="session")
def adult_transformer(_adult) -> TabularTransformer:
    """A transformer fitted on the Adult sample (shared: do not refit it)."""
    return TabularTransformer(seed=0).fit(_adult, TableSchema.detect(_adult))


@pytest.fixture(scope="session")
def adult_matrix(_adult, adult_transformer) -> np.ndarray:
    """The encoded Adult sample (read-only)."""
    matrix = adult_transformer.transform(_adult, seed=0)
    matrix.flags.writeable = False
    return matrix


@pytest.fixture(scope="session")
def ctgan_synth(_adult) -> Synthesizer:
    """A ctgan trained 3 epochs on the Adult sample (shared: do not refit it).

    The high generator learning rate lets the conditional vector take hold in so few steps.
    """
    params = tiny_hyperparameters("ctgan", epochs=3, generator_lr=1e-2)
    return Synthesizer(model="ctgan", seed=0, **params).fit(_adult)


@pytest.fixture(scope="session")
def _ctgan_file(ctgan_synth, tmp_path_factory) -> Path:
    return ctgan_synth.save(tmp_path_factory.mktemp("models") / "ctgan.sgm")


@pytest.fixture
def model_file(_ctgan_file, tmp_path) -> Path:
    """A private copy of the saved ctgan model file (safe to tamper with)."""
    return Path(shutil.copy(_ctgan_file, tmp_path / "model.sgm"))
