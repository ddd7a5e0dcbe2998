"""--device cuda: trains and samples on a GPU, and the model file then samples on a CPU-only machine.

Runs where a CUDA GPU is present (the project's GPU check); elsewhere it is skipped, and the CPU
half (a model file never holds device tensors) is covered by test_model_files_hold_cpu_tensors.
"""

from __future__ import annotations

import pytest
import torch

from synthgen import Sampler, Synthesizer
from synthgen.datasets import load_adult

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@cuda
@pytest.mark.slow
@pytest.mark.parametrize("model", ["tvae", "ctgan", "pairwise"])
def test_gpu_trained_model_samples_on_cpu(tmp_path, model):
    table = load_adult().sample(3000, random_state=0)
    synth = Synthesizer(model=model, epochs=2, device="cuda", seed=0).fit(table)
    on_gpu = synth.sample(200, seed=1)
    path = synth.save(tmp_path / "m.sgm")
    sampler = Sampler.load(path)
    assert next(iter(sampler.model.state_tensors().values())).device.type == "cpu"
    on_cpu = sampler.sample(200, seed=1)
    assert list(on_cpu.columns) == list(on_gpu.columns) and (on_cpu.dtypes == on_gpu.dtypes).all()


def test_model_files_hold_cpu_tensors(tmp_path):
    from synthgen.artifact import read_model_file

    table = load_adult().sample(1000, random_state=0)
    path = Synthesizer(model="tvae", epochs=1, seed=0).fit(table).save(tmp_path / "m.sgm")
    _, tensors = read_model_file(path)
    assert tensors and all(t.device.type == "cpu" for t in tensors.values())
