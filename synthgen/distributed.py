"""Training across processes with torchrun: the process group, who does what, and row partitions.

Run ``torchrun --nproc_per_node N -m synthgen train ...`` (add ``--nnodes``, ``--node_rank`` and
``--rdzv-endpoint`` across machines). Every process reads the table and fits the same transformer
(the DP domain is measured once, on rank 0, and sent to the others); each trains on its own
partition of the rows (row ``i`` lives on rank ``i % world``) with DistributedDataParallel (gloo on
CPU, NCCL on GPU; for ctgan, whose gradient penalty DDP cannot differentiate twice, the same
averaging by one all-reduce after each backward, :func:`average_gradients`) or, under DP, Opacus' distributed
optimizer (each rank Poisson-samples its rows at the global rate, noise is added once, on rank 0,
to the summed clipped gradients, and every rank divides by the same expected batch round(q n / W),
so the accounting is that of the global batch). Rank 0 writes the model file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


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


def stop(*, wait: bool = False) -> None:
    """Leave the process group; with ``wait``, only once every rank got here (a rank that leaves while another
    still reaches for it can abort that one, with gloo)."""
    import torch.distributed as dist

    if dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def share(value: Any, world: World) -> Any:
    """``value`` as computed on rank 0, on every rank (in-process messaging, never a file)."""
    if world.size == 1:
        return value
    import torch.distributed as dist

    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(params: Any, world: World) -> None:
    """Replace every parameter's gradient by its mean over the processes (one all-reduce).

    What DistributedDataParallel does during backward, done after it: ctgan's gradient penalty
    differentiates twice, which DistributedDataParallel does not support. A missing gradient
    counts as zeros, so every process sends the same layout.
    """
    if world.size == 1:
        return
    import torch.distributed as dist

    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    for p, part in zip(params, flat.split([g.numel() for g in grads]), strict=True):
        p.grad = part.view_as(p)  # views of the one reduced buffer: no copy per step


def sum_over(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """``tensor`` summed over the processes (a copy; the tensor itself when there is one process)."""
    if world.size == 1:
        return tensor
    import torch.distributed as dist

    total = tensor.clone()
    dist.all_reduce(total)
    return total


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Copy rank 0's parameters and buffers to every process (the same starting networks)."""
    if world.size == 1:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)
