"""``synthgen evaluate`` end to end: Adult through train -> sample -> evaluate, digits, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.datasets import load_adult
from synthgen.evaluation.prep import split_holdout


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def adult_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train.csv / holdout.csv from a 1,500-row Adult sample, and synthetic rows of a marginals model."""
    folder = tmp_path_factory.mktemp("eval")
    train, test = split_holdout(load_adult().sample(1500, random_state=0), "income")
    paths = {"train": folder / "train.csv", "test": folder / "holdout.csv", "synth": folder / "synth.csv"}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    code, out = run("train", paths["train"], "--model", "marginals", "--out", folder / "m.sgm", "-q")
    assert code == 0, out
    code, out = run("sample", folder / "m.sgm", "--rows", len(train), "--out", paths["synth"], "--seed", 0, "-q")
    assert code == 0, out
    return paths


@pytest.mark.slow
def test_evaluate_adult_json_and_report(tmp_path: Path, adult_files) -> None:
    figures, report = tmp_path / "figures.json", tmp_path / "report.html"
    code, out = run("evaluate", "--real", adult_files["train"], "--synthetic", adult_files["synth"],
                    "--test", adult_files["test"], "--target", "income", "--seeds", 2,
                    "--json", figures, "--report", report)
    assert code == 0, out
    assert "utility.tstr.accuracy" in out and "report written to" in out
    data = json.loads(figures.read_text())
    u = data["utility"]
    assert len(u["tstr"]["per_seed"]) == 2
    # independent columns keep the marginals but lose what predicts income: TSTR falls well short
    assert u["trtr"]["auc"] - u["tstr"]["auc"] > 0.1
    assert data["fidelity"]["column_shapes"] > 0.9
    assert 0 <= data["privacy"]["dcr_train_share"] <= 1 and 0 <= data["privacy"]["mia_auc"] <= 1
    assert report.read_text().startswith("<!doctype html>")


@pytest.mark.slow
def test_evaluate_splits_one_real_file_and_says_so(adult_files) -> None:
    code, out = run("evaluate", "--real", adult_files["train"], "--synthetic", adult_files["synth"],
                    "--target", "income", "--seeds", 1, "--json", "-")
    assert code == 0, out
    assert "no --test given" in out and "holding out 20%" in out
    start = out.index("{\n")
    assert json.loads(out[start:])["holdout"].startswith("split")


@pytest.mark.slow
def test_evaluate_digits_reports_trtr_and_tstr(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    train, test = split_holdout(digits, "label", seed=0)
    rng = np.random.default_rng(0)
    pixels = [c for c in train.columns if c != "label"]
    synth = train.copy()
    synth[pixels] = np.clip(synth[pixels] + rng.integers(-2, 3, synth[pixels].shape), 0, 16)
    for name, df in (("train", train), ("test", test), ("synth", synth)):
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    figures = tmp_path / "digits.json"
    code, out = run("evaluate", "--real", tmp_path / "train.csv", "--synthetic", tmp_path / "synth.csv",
                    "--test", tmp_path / "test.csv", "--target", "label", "--seeds", 1, "--json", figures)
    assert code == 0, out
    u = json.loads(figures.read_text())["utility"]
    assert u["task"] == "classification"
    assert u["trtr"]["accuracy"] > 0.9 and u["tstr"]["accuracy"] > 0.85


@pytest.mark.parametrize("case,expected", [
    ("target missing from the synthetic file", "not a column of the synthetic table"),
    ("mismatched columns", "columns differ from the real table"),
    ("one class", "one class"),
    ("empty synthetic file", "empty"),
    ("unknown target", "not a column of the real table"),
])
def test_evaluate_bad_inputs(tmp_path: Path, adult_files, case: str, expected: str) -> None:
    real, synth, target = pd.read_csv(adult_files["train"]), pd.read_csv(adult_files["synth"]), "income"
    if case == "target missing from the synthetic file":
        synth = synth.drop(columns=["income"])
    elif case == "mismatched columns":
        synth = synth.rename(columns={"age": "years"})
    elif case == "one class":
        real = real.assign(income="<=50K")
    elif case == "unknown target":
        target = "salary"
    real.to_csv(tmp_path / "real.csv", index=False)
    if case == "empty synthetic file":
        (tmp_path / "synth.csv").write_text("")
    else:
        synth.to_csv(tmp_path / "synth.csv", index=False)
    code, out = run("evaluate", "--real", tmp_path / "real.csv", "--synthetic", tmp_path / "synth.csv",
                    "--test", adult_files["test"], "--target", target, "--seeds", 1)
    assert code == 1, out
    assert out.startswith("error:") and expected in out and "Traceback" not in out


def test_evaluate_refuses_to_overwrite(tmp_path: Path, adult_files) -> None:
    existing = tmp_path / "figures.json"
    existing.write_text("{}")
    code, out = run("evaluate", "--real", adult_files["train"], "--synthetic", adult_files["synth"],
                    "--test", adult_files["test"], "--target", "income", "--json", existing)
    assert code == 1 and "already exists" in out and existing.read_text() == "{}"


@pytest.mark.slow
def test_demo_trains_samples_and_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    code, text = run("demo", "--out", out, "--epochs", 1, "--rows", 2000, "-q")
    assert code == 0, text
    assert "utility.tstr.accuracy" in text and "evaluation.html" in text
    assert {p.name for p in out.iterdir()} == {"adult-tvae.sgm", "adult-tvae-synthetic.csv", "evaluation.json",
                                               "evaluation.html"}
    code, text = run("demo", "--out", out, "--epochs", 1, "--rows", 2000, "-q")
    assert code == 1 and "already exists" in text
