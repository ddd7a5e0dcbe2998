"""The main job on the bundled data: train on Adult, sample, and compare with the real table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from synthgen.datasets import load_adult
from synthgen.errors import SynthgenError
from synthgen.io import check_writable
from synthgen.sampler import Sampler
from synthgen.synthesizer import Synthesizer

TARGET = "income"


def run_demo(out: Path, *, model: str = "ctgan", epochs: int | None = None, rows: int = 10_000,
             force: bool = False, progress: bool = True) -> str:
    """Train ``model`` on 80% of Adult, sample ``rows`` rows, and return a comparison report."""
    if out.exists() and not out.is_dir():
        raise SynthgenError(f"{out} is a file (fix: give a folder for --out)")
    out.mkdir(parents=True, exist_ok=True)
    model_path, table_path = out / f"adult-{model}.sgm", out / f"adult-{model}-synthetic.csv"
    for path in (model_path, table_path):
        check_writable(path, force=force)
    real = load_adult()
    train, holdout = train_test_split(real, test_size=0.2, stratify=real[TARGET], random_state=0)
    synth = Synthesizer(model=model, epochs=epochs, seed=0, progress=progress).fit(train)
    synth.save(model_path, force=force)
    Sampler.load(model_path).sample_to(table_path, rows, seed=0, force=force)
    fake = pd.read_csv(table_path)
    lines = [f"trained {model} on {len(train):,} Adult rows in {synth.summary['seconds']:.1f} s",
             f"model file:      {model_path}", f"synthetic rows:  {table_path} ({len(fake):,} rows)", ""]
    lines += compare_columns(train, fake)
    lines += ["", tstr_line(train, fake, holdout)]
    return "\n".join(lines)


def compare_columns(real: pd.DataFrame, fake: pd.DataFrame) -> list[str]:
    """One line per column: mean/std for numbers, top category share and TV distance for categories."""
    lines = [f"{'column':<16} {'real':>28} {'synthetic':>28}"]
    for col in real.columns:
        r, f = real[col], fake[col]
        if pd.api.types.is_numeric_dtype(r):
            lines.append(f"{col:<16} {_ms(r):>28} {_ms(f):>28}")
        else:
            top = r.value_counts(normalize=True).index[0]
            shares = r.value_counts(normalize=True).align(f.value_counts(normalize=True), fill_value=0)
            tv = 0.5 * float(np.abs(shares[0] - shares[1]).sum())
            lines.append(f"{col:<16} {f'{top} {r.eq(top).mean():.1%}':>28} "
                         f"{f'{top} {f.eq(top).mean():.1%}':>28}  TV={tv:.3f}")
    return lines


def _ms(series: pd.Series) -> str:
    return f"mean {series.mean():,.1f} sd {series.std():,.1f}"


def tstr_line(train: pd.DataFrame, fake: pd.DataFrame, holdout: pd.DataFrame) -> str:
    """Logistic regression trained on real vs synthetic rows, both scored on the real holdout."""
    real_acc = _fit_score(train, holdout)
    fake_acc = _fit_score(fake, holdout) if fake[TARGET].nunique() > 1 else float("nan")
    return (f"income classifier accuracy on the real holdout: trained on real {real_acc:.3f}, "
            f"trained on synthetic {fake_acc:.3f} (logistic regression; full evaluator: synthgen evaluate)")


def _fit_score(train: pd.DataFrame, test: pd.DataFrame) -> float:
    features = [c for c in train.columns if c != TARGET]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in features if c not in numeric]
    prep = ColumnTransformer([("num", StandardScaler(), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    clf = make_pipeline(prep, LogisticRegression(max_iter=1000))
    clf.fit(train[features], train[TARGET])
    return accuracy_score(test[TARGET], clf.predict(test[features]))
