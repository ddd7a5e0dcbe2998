"""Training across processes: torchrun with 2 CPU processes (gloo), with and without DP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen import Sampler, Synthesizer
from synthgen.datasets import adult_metadata_path, load_adult
from synthgen.distributed import World
from synthgen.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthgen", "train", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "adult.csv"
    load_adult().sample(2000, random_state=0).to_csv(path, index=False)
    return path


def test_two_processes_train_one_model(data: Path) -> None:
    run = torchrun(data, "--model", "tvae", "--epochs", "3", "--out", "m.sgm", "-q", cwd=data.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("model written to m.sgm") == 1  # rank 0 writes and reports
    sampler = Sampler.load(data.parent / "m.sgm")
    assert sampler.manifest["training"]["rows"] == 2000 and len(sampler.sample(100, seed=0)) == 100


def test_two_processes_with_dp_keep_the_single_process_ledger(data: Path) -> None:
    options = ("--model", "tvae", "--epochs", "3", "--epsilon", "3", "--metadata", adult_metadata_path(), "-q")
    run = torchrun(data, *options, "--out", "dp.sgm", cwd=data.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    ledger = Sampler.load(data.parent / "dp.sgm").privacy
    single = Synthesizer(model="tvae", epochs=3, epsilon=3, metadata=adult_metadata_path()).fit(data).ledger
    for key in ("epsilon", "delta", "sample_rate", "noise_multiplier", "steps", "steps_planned", "expected_batch_size"):
        assert ledger[key] == single[key], (key, ledger[key], single[key])
    assert ledger["steps"] == ledger["steps_planned"] and ledger["epsilon"] <= 3
    assert json.dumps(ledger)  # plain JSON


def test_rows_are_partitioned_and_other_models_refused(monkeypatch) -> None:
    world = [World(rank, 3) for rank in range(3)]
    parts = [set(w.rows(10)) for w in world]
    assert set().union(*parts) == set(range(10)) and sum(len(p) for p in parts) == 10
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="supports the tvae model, not ctgan"):
        Synthesizer(model="ctgan", epochs=1).fit(load_adult().head(600))
