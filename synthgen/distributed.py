"""Training across processes with torchrun: the process group, who does what, and row partitions.

Run ``torchrun --nproc_per_node N -m synthgen train ...`` (add ``--nnodes``, ``--node_rank`` and
``--rdzv-endpoint`` across machines). Every process reads the table and fits the same transformer
(the DP domain is measured once, on rank 0, and sent to the others); each trains on its own
partition of the rows (row ``i`` lives on rank ``i % world``) with DistributedDataParallel (gloo on
CPU, NCCL on GPU) or, under DP, Opacus' distributed optimizer (each rank Poisson-samples its rows at
the global rate, noise is added once, on rank 0, to the summed clipped gradients, so the accounting
is that of the global batch). Rank 0 writes the model file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthgen.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes outputs (rank 0)."""
        return self.rank == 0

    def rows(self, n: int) -> np.ndarray:
        """Indices of the rows this process trains on: every ``size``-th row from ``rank``."""
        return np.arange(self.rank, n, self.size)


def current() -> World:
    """The torchrun world from the environment (one process when not launched by torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def start(world: World, device: str) -> str:
    """Join the process group (gloo on CPU, NCCL on GPU); returns this process's device name."""
    import torch.distributed as dist

    if world.size == 1 or dist.is_initialized():
        return device
    if device.startswith("cuda"):
        device = f"cuda:{world.local_rank}"
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def stop() -> None:
    """Leave the process group."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def share(value: Any, world: World) -> Any:
    """``value`` as computed on rank 0, on every rank (in-process messaging, never a file)."""
    if world.size == 1:
        return value
    import torch.distributed as dist

    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_supported(model: str, world: World) -> None:
    """Distributed training is implemented for the VAE; say so for the others."""
    if world.size > 1 and model != "tvae":
        raise ConfigError(f"training across processes supports the tvae model, not {model} (fix: --model tvae, or "
                          "run one process)")
