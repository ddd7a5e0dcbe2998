"""Jobs killed mid-run: training resumes to the same model, sampling leaves nothing under the final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from synthgen.datasets import load_adult

pytestmark = pytest.mark.slow  # training and sampling subprocesses

ROOT = Path(__file__).resolve().parents[2]


def synthgen(*args: object, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "synthgen", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "adult.csv"
    load_adult().sample(1500, random_state=0).to_csv(path, index=False)
    return path


TRAIN = ("--model", "tvae", "--epochs", "40", "--batch-size", "500", "--seed", "3", "-q")


def test_sigkill_during_training_then_resume_gives_the_same_model(data: Path) -> None:
    folder = data.parent
    whole = synthgen("train", data, "--out", "whole.sgm", *TRAIN, cwd=folder)
    assert whole.wait(300) == 0, whole.stdout.read()
    job = synthgen("train", data, "--out", "m.sgm", *TRAIN, "--checkpoint-every", "2", cwd=folder)
    wait_for(lambda: (folder / "m.sgm.ckpt").exists() or job.poll() is not None)
    time.sleep(0.3)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    assert not (folder / "m.sgm").exists() and (folder / "m.sgm.ckpt").exists()
    done = synthgen("train", data, "--out", "m.sgm", "--resume", "m.sgm.ckpt", "-q", cwd=folder)
    assert done.wait(300) == 0, done.stdout.read()
    assert not (folder / "m.sgm.ckpt").exists()  # removed once the model is saved
    for name in ("whole", "m"):
        assert synthgen("sample", f"{name}.sgm", "--rows", "300", "--seed", "1", "--out", f"{name}.csv",
                        cwd=folder).wait(120) == 0
    assert pd.read_csv(folder / "m.csv").equals(pd.read_csv(folder / "whole.csv"))


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(data: Path) -> None:
    folder = data.parent
    job = synthgen("train", data, "--out", "c.sgm", "--model", "tvae", "--epochs", "2000", "-q", cwd=folder)
    time.sleep(8)  # past start-up, into training
    job.send_signal(signal.SIGINT)
    output = job.communicate(timeout=60)[0]
    assert job.returncode == 130, output
    assert "checkpoint written to c.sgm.ckpt" in output and "--resume c.sgm.ckpt" in output
    assert "Traceback" not in output and (folder / "c.sgm.ckpt").exists() and not (folder / "c.sgm").exists()
    again = synthgen("train", data, "--out", "c.sgm", "--model", "tvae", "-q", cwd=folder)
    assert again.wait(60) == 1 and "exists from an interrupted run" in again.stdout.read()


def test_sigkill_during_sampling_leaves_no_output(data: Path) -> None:
    folder = data.parent
    assert synthgen("train", data, "--out", "s.sgm", "--model", "marginals", "-q", cwd=folder).wait(120) == 0
    job = synthgen("sample", "s.sgm", "--rows", "20000000", "--out", "big.parquet", "-q", cwd=folder)
    wait_for(lambda: any(p.name.startswith(".big.parquet.") for p in folder.iterdir()) or job.poll() is not None)
    time.sleep(0.5)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    assert not (folder / "big.parquet").exists()
    for part in folder.glob(".big.parquet.*"):
        part.unlink()
