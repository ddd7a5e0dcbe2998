"""``synthgen train --epsilon``, ``inspect`` of a DP model, ``audit``, and the DP option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.datasets import adult_metadata_path, load_adult


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "adult.csv"
    load_adult().sample(1500, random_state=0).to_csv(path, index=False)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.slow
def test_train_dp_with_public_metadata_then_inspect(tmp_path: Path, adult_csv: Path) -> None:
    model = tmp_path / "dp.sgm"
    code, output = run("train", str(adult_csv), "--model", "pairwise", "--epochs", "2", "--epsilon", "2",
                       "--delta", "1e-5", "--metadata", str(adult_metadata_path()), "--stats-share", "0.1",
                       "--out", str(model), "-q")
    assert code == 0, output
    assert "differential privacy: epsilon" in output
    code, output = run("inspect", str(model))
    assert code == 0 and "differentially private: epsilon=" in output and "rdp accountant" in output
    assert "workclass" in output and "categories: public" in output
    ledger = json.loads(run("inspect", str(model), "--json")[1])["privacy"]
    assert ledger["epsilon"] <= 2.0 and ledger["delta"] == 1e-5 and ledger["secure_noise"] is True


@pytest.mark.slow
def test_train_dp_sgd_model(tmp_path: Path, adult_csv: Path) -> None:
    code, output = run("train", str(adult_csv), "--model", "tvae", "--epochs", "1", "--batch-size", "300",
                       "--epsilon", "4", "--metadata", str(adult_metadata_path()), "--deterministic", "--out",
                       str(tmp_path / "m.sgm"), "-q")
    assert code == 0, output
    assert "NOT FOR RELEASE" in output


@pytest.mark.parametrize("args,match", [
    (["--epsilon", "0"], "epsilon must be a positive number"),
    (["--epsilon", "1", "--delta", "0.5", "--stats-share", "0.1"], "delta 0.5 must be in"),
    (["--epsilon", "1"], "--stats-share 0.1"),
    (["--stats-share", "0.1"], "only apply with --epsilon"),
    (["--model", "marginals", "--epsilon", "1"], "cannot train with differential privacy (fix: use one of: ctgan"),
    (["--epsilon", "0.00001", "--stats-share", "0.1", "--epochs", "300"], "too small"),
])
def test_dp_option_errors_are_one_line(tmp_path: Path, adult_csv: Path, args: list[str], match: str) -> None:
    code, output = run("train", str(adult_csv), "--out", str(tmp_path / "m.sgm"), "-q", *args)
    assert code != 0
    assert match in output, output
    assert "Traceback" not in output


@pytest.mark.slow
def test_audit_command(tmp_path: Path, adult_csv: Path) -> None:
    out = tmp_path / "audit.json"
    code, output = run("audit", str(adult_csv), "--model", "pairwise", "--epochs", "1", "--epsilon", "1",
                       "--metadata", str(adult_metadata_path()), "--canaries", "100", "--json", str(out), "-q")
    assert code == 0, output
    figures = json.loads(out.read_text())
    assert figures["claimed_epsilon"] == 1.0 and figures["empirical_epsilon"] <= 1.0
    assert figures["claimed_delta"] == 5e-5  # the default for 1,500 rows and at most 100 canaries: the bound uses it
    assert "empirical lower bound" in output and "claimed 1 (delta 5e-05)" in output
