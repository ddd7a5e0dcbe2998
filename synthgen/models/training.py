"""What GAN and VAE share: device handling, scoped seeding, and the one training loop."""

from __future__ import annotations

import contextlib
import math
import time
from abc import abstractmethod
from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from synthgen.errors import ConfigError
from synthgen.models.base import FitOptions, Model
from synthgen.privacy.dp import PrivateTraining, Schedule


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda`` (``cuda:N``), with a clear error when no GPU is there."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA GPU is available (fix: use --device cpu)")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r} (fix: use cpu or cuda)")


@contextlib.contextmanager
def scoped_seed(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNGs (weight init, dropout) inside the block, restoring them after."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


def adam(params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)):
    """Adam with the fused kernel (several times faster than the per-tensor loop on CPU)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


class TorchModel(Model):
    """A model trained by gradient steps: subclasses build networks and define one step."""

    #: DP-SGD state of the last fit (None without DP): its accountant counted every noisy step
    private: PrivateTraining | None = None
    #: losses kept in the history under DP: only those computed from DP outputs (a loss over real
    #: rows is an unnoised statistic of them and must not reach the model file)
    dp_loggable: tuple[str, ...] = ()

    def _fit(self, data: np.ndarray, options: FitOptions) -> None:
        device = resolve_device(options.device)
        self.device = device
        self.private = PrivateTraining(options.dp, len(data), device) if options.dp else None
        with scoped_seed(options.seed, device):
            self._setup(torch.as_tensor(data, device=device), options.seed)
            try:
                self.history = self._loop(options.progress)
            finally:
                self._teardown()

    def dp_schedule(self, n_rows: int, n_columns: int) -> Schedule:
        """DP-SGD: epochs of ceil(n / batch) Poisson-sampled steps at rate batch / n."""
        batch = min(self.config.batch_size, n_rows)
        return Schedule("DP-SGD", batch / n_rows, math.ceil(n_rows / batch), self.config.epochs)

    def _loop(self, progress: bool) -> list[dict[str, float]]:
        epochs, steps = self.config.epochs, self._steps_per_epoch()
        if self.private is not None:  # the plan's schedule: the accountant was calibrated for it
            epochs, steps = self.private.spec.epochs, self.private.spec.steps_per_epoch
        history: list[dict[str, float]] = []
        bar = tqdm(range(epochs), desc=f"train {self.name}", unit="epoch", disable=not progress,
                   dynamic_ncols=True)
        for epoch in bar:
            start = time.perf_counter()
            totals: dict[str, torch.Tensor] = {}
            for _ in range(steps):
                for key, value in self._train_step().items():
                    totals[key] = totals.get(key, 0) + value.detach()
            means = {k: _finite(float(v) / steps) for k, v in totals.items()
                     if self.private is None or k in self.dp_loggable}
            history.append({"epoch": epoch + 1, **means, "seconds": round(time.perf_counter() - start, 4)})
            bar.set_postfix({k: f"{v:.3f}" if v is not None else "nan" for k, v in means.items()})
        return history

    @abstractmethod
    def _setup(self, data: torch.Tensor, seed: int) -> None:
        """Build networks, optimizers and batch sampling for ``data`` (kept only during fit)."""

    @abstractmethod
    def _steps_per_epoch(self) -> int: ...

    @abstractmethod
    def _train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the losses to log."""

    def _teardown(self) -> None:
        """Drop training-only state (data, optimizers) so nothing private outlives fit."""
        for attr in ("_data", "_batches", "_cond_sampler"):
            if hasattr(self, attr):
                delattr(self, attr)


def _finite(value: float) -> float | None:
    """A loss for the JSON history: rounded, or None if training diverged (NaN / inf)."""
    return round(value, 6) if np.isfinite(value) else None
