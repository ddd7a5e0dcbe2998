"""A torch model's training state as flat tensors + JSON (no pickle): networks, optimizers, RNGs, DP.

What a checkpoint holds of the model; ``synthgen.checkpoint_file`` writes it to disk with the rest.

``capture`` and ``restore`` are inverses: restoring into freshly set-up networks and optimizers
and continuing gives exactly the run that was not interrupted (same seed, same device).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from synthgen.errors import IntegrityError


def capture(modules: dict[str, nn.Module], optimizers: dict[str, Any],
            generators: dict[str, torch.Generator], device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """Flat tensors and JSON metadata for networks, optimizers and random generators."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": {}, "optimizer_scalars": {}}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().clone()
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        meta["param_groups"][name] = state["param_groups"]
        for pid, slots in state["state"].items():
            for key, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().clone()
                else:
                    meta["optimizer_scalars"][f"{name}.{pid}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    for name, gen in generators.items():
        tensors[f"rng.gen.{name}"] = gen.get_state()
    return tensors, meta


def restore(tensors: dict[str, torch.Tensor], meta: dict, modules: dict[str, nn.Module], optimizers: dict[str, Any],
            generators: dict[str, torch.Generator], device: torch.device) -> None:
    """Load what ``capture`` saved into freshly built networks, optimizers and generators."""
    try:
        for name, module in modules.items():
            prefix = f"module.{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict({"state": _optimizer_slots(name, tensors, meta, device),
                                       "param_groups": meta["param_groups"][name]})
        torch.set_rng_state(tensors["rng.torch"])
        if device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        for name, gen in generators.items():
            gen.set_state(tensors[f"rng.gen.{name}"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise IntegrityError(f"the checkpoint does not fit this model ({type(exc).__name__}: {exc}) (fix: resume "
                             "with the synthgen version and options that wrote it)") from None


def _optimizer_slots(name: str, tensors: dict[str, torch.Tensor], meta: dict,
                     device: torch.device) -> dict[int, dict[str, Any]]:
    slots: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, slot = key[len(prefix):].split(".", 1)
            slots.setdefault(int(pid), {})[slot] = value.to(device)
    for key, value in meta["optimizer_scalars"].items():
        owner, pid, slot = key.split(".", 2)
        if owner == name:
            slots.setdefault(int(pid), {})[slot] = value
    return slots
