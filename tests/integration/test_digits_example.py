"""The handwritten-digits walkthrough (examples/digits/run.py) end to end in its --quick mode."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "digits" / "run.py"

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow  # the walkthrough trains three models in a subprocess


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_outputs_and_figures(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["quick"] is True
    assert 0.9 <= results["trtr"]["accuracy"] <= 1.0
    assert {run["epsilon"] for run in results["runs"]} == {None, 1.0, 8.0}
    for run in results["runs"]:
        assert 0.0 <= run["tstr"]["accuracy"] <= 1.0 and run["trtr"]["accuracy"] == results["trtr"]["accuracy"]
        assert run["rows"] == results["rows"]["synthetic"] == results["factor"] * results["rows"]["train"]
        assert 0.0 <= run["tstr_same_size"]["accuracy"] <= 1.0
        if run["epsilon"] is not None:
            assert run["ledger_epsilon"] <= run["epsilon"] + 1e-6
    table = (quick_run / "results.md").read_text()
    assert "| model | epsilon | fit s | TSTR acc | TSTR 1x acc | TRTR acc |" in table


def test_png_grid(quick_run: Path) -> None:
    data = (quick_run / "digits.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 300 <= width <= 4000 and 600 <= height <= 10000


def test_refuses_to_overwrite(quick_run: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(quick_run)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "--force" in done.stderr
