"""Training across processes: torchrun with 2 CPU processes (gloo), with and without DP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


@pytest.mark.slow
def test_two_processes_train_one_model(data: Path) -> None:
    run = torchrun(data, "--model", "tvae", "--epochs", "3", "--out", "m.sgm", "-q", cwd=data.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("model written to m.sgm") == 1  # rank 0 writes and reports
    sampler = Sampler.load(data.parent / "m.sgm")
    assert sampler.manifest["training"]["rows"] == 2000 and len(sampler.sample(100, seed=0)) == 100


@pytest.mark.slow
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
    with pytest.raises(ConfigError, match=r"pairwise model cannot train across processes \(fix: use one of: ctgan, "
                                          r"tvae"):
        Synthesizer(model="pairwise", epochs=1).fit(load_adult().head(600))
    with pytest.raises(ConfigError, match=r"ctgan model cannot train across processes with differential privacy \(fix: "
                                          r"use one of: tvae"):
        Synthesizer(model="ctgan", epochs=1, epsilon=1, metadata=adult_metadata_path()).fit(load_adult().head(2000))


@pytest.mark.slow
def test_ctgan_trains_across_two_processes(data: Path) -> None:
    run = torchrun(data, "--model", "ctgan", "--epochs", "2", "--out", "gan.sgm", "-q", cwd=data.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("model written to gan.sgm") == 1
    sampler = Sampler.load(data.parent / "gan.sgm")
    history = sampler.manifest["training"]["history"]
    assert len(history) == 2 and all(math.isfinite(h["loss_d"]) for h in history)
    rich = sampler.sample(200, seed=0, conditions={"income": ">50K"})
    assert len(rich) == 200 and set(rich["income"]) == {">50K"}


def _average_in(rank: int, path: str, out: dict) -> None:
    import torch.distributed as dist

    from synthgen.distributed import average_gradients, broadcast_module

    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    world = World(rank, 2)
    torch.manual_seed(rank)  # different starting weights and gradients on each rank
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    broadcast_module(net, world)
    net(torch.randn(8, 3) * (rank + 1)).sum().backward()
    net[2].bias.grad = None  # a missing gradient counts as zeros
    own = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]
    average_gradients(net.parameters(), world)
    out[rank] = ([p.detach().clone() for p in net.parameters()], own, [p.grad.clone() for p in net.parameters()])
    dist.destroy_process_group()


@pytest.mark.slow
def test_average_gradients_is_the_mean_over_processes(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_average_in, args=(str(tmp_path / "rendezvous"), out), nprocs=2)
        (w0, own0, avg0), (w1, own1, avg1) = out[0], out[1]
    for a, b in zip(w0, w1, strict=True):
        torch.testing.assert_close(a, b)  # one starting network
    for g0, g1, m0, m1 in zip(own0, own1, avg0, avg1, strict=True):
        torch.testing.assert_close(m0, (g0 + g1) / 2)
        torch.testing.assert_close(m1, m0)
