"""What GAN and VAE share: device handling, scoped seeding, and the one training loop."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from synthgen.distributed import World
from synthgen.dp.training import PrivateTraining, Schedule
from synthgen.errors import ConfigError, TrainingInterrupted
from synthgen.models import training_state
from synthgen.models.base import BatchSource, FitOptions, Model
from synthgen.models.layers import fast_dtype


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


@contextlib.contextmanager
def interrupt_requests(*, enabled: bool) -> Iterator[threading.Event]:
    """While training with checkpoints: the first Ctrl-C asks the loop to save and stop after the
    current step (the event is set); a second one stops at once."""
    stop = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def adam(params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)):
    """Adam with the fused kernel (several times faster than the per-tensor loop on CPU)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


class TorchModel(Model):
    """A model trained by gradient steps: subclasses build networks and define one step."""

    world: World = World()
    total_rows: int = 0
    #: losses kept in the history under DP: only those computed from DP outputs (a loss over real
    #: rows is an unnoised statistic of them and must not reach the model file)
    dp_loggable: tuple[str, ...] = ()
    #: whether the training step can run its forward pass under bfloat16 autocast (see ``_autocast``)
    autocast_capable: bool = False
    #: precision of the last fit's forward passes: "bfloat16" (autocast) or "float32"
    precision: str = "float32"

    def _fit(self, data: np.ndarray | BatchSource, options: FitOptions) -> None:
        device = resolve_device(options.device)
        self.device = device
        self.world = options.world or World()
        rows = data.rows if isinstance(data, BatchSource) else len(data)
        self.total_rows = options.total_rows or rows
        if self.world.size > 1 and (options.checkpoint_every or options.resume):
            raise ConfigError("checkpoints are not supported when training across processes (fix: drop "
                              "--checkpoint-every / --resume, or train in one process)")
        self.private = (PrivateTraining(options.dp, rows, device, self.world, total_rows=self.total_rows)
                        if options.dp else None)
        # bf16 matmuls (about 4x float32's speed on CPUs with native bf16) with float32 weights,
        # gradients and optimizer; not under DP, whose per-sample clipping we keep in float32
        fast = self.autocast_capable and self.private is None and fast_dtype(device) == torch.bfloat16
        self.precision = "bfloat16" if fast else "float32"
        with scoped_seed(options.seed, device):
            if isinstance(data, BatchSource):
                self._setup_stream(data, options.seed)
            else:
                self._setup(torch.as_tensor(data, device=device), options.seed)
            try:
                self.history = self._loop(options)
                self._finish(options.seed)
            finally:
                self._teardown()

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast for a forward pass when this fit runs in bfloat16, else nothing."""
        if self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def dp_schedule(self, n_rows: int, n_columns: int) -> Schedule:
        """DP-SGD: epochs of ceil(n / batch) Poisson-sampled steps at rate batch / n."""
        batch = min(self.config.batch_size, n_rows)
        return Schedule("DP-SGD", batch / n_rows, math.ceil(n_rows / batch), self.config.epochs)

    def _loop(self, options: FitOptions) -> list[dict[str, float]]:
        epochs, steps = self.config.epochs, self._steps_per_epoch()
        if self.private is not None:  # the plan's schedule: the accountant was calibrated for it
            epochs, steps = self.private.spec.epochs, self.private.spec.steps_per_epoch
        first, first_step = 0, 0
        history: list[dict[str, Any]] = []
        totals: dict[str, torch.Tensor] = {}
        if options.resume is not None:
            first, first_step, history, totals = self._restore(*options.resume)
        bar = tqdm(range(first, epochs), desc=f"train {self.name}", unit="epoch", disable=not options.progress,
                   dynamic_ncols=True, initial=first, total=epochs)
        with interrupt_requests(enabled=options.checkpoint is not None and self.world.size == 1) as stop:
            for epoch in bar:
                start = time.perf_counter()
                self._start_epoch(epoch, first_step if epoch == first else 0)
                for step in range(first_step if epoch == first else 0, steps):
                    for key, value in self._train_step().items():
                        totals[key] = totals.get(key, 0) + value.detach()
                    if stop.is_set():  # Ctrl-C: save where we are, then stop cleanly (only asked with a checkpoint)
                        assert options.checkpoint is not None
                        options.checkpoint(*self._capture(epoch, step + 1, history, totals))
                        raise TrainingInterrupted(f"interrupted at epoch {epoch + 1}, step {step + 1}")
                means = {k: _finite(float(v) / steps) for k, v in totals.items()
                         if self.private is None or k in self.dp_loggable}
                history.append({"epoch": epoch + 1, **means, "seconds": round(time.perf_counter() - start, 4)})
                bar.set_postfix({k: f"{v:.3f}" if v is not None else "nan" for k, v in means.items()})
                totals = {}
                if (options.checkpoint is not None and options.checkpoint_every
                        and (epoch + 1) % options.checkpoint_every == 0 and epoch + 1 < epochs):
                    options.checkpoint(*self._capture(epoch + 1, 0, history, totals))
        return history

    # ------------------------------------------------------------------ checkpoints
    def _state_modules(self) -> dict[str, nn.Module]:
        """The networks whose weights training changes (subclasses list theirs)."""
        return {}

    def _state_optimizers(self) -> dict[str, Any]:
        return {}

    def _state_extra(self) -> dict[str, torch.Tensor]:
        """Other training state as tensors (e.g. the rest of an epoch's batch order)."""
        return {}

    def _load_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of ``_state_extra``."""

    def _generators(self) -> dict[str, torch.Generator]:
        gens = {}
        if self.private is not None:
            gens = {"dp_sample": self.private._sample_gen, "dp_noise": self.private._noise_gen}
            for name, opt in self._state_optimizers().items():
                if getattr(opt, "generator", None) is not None:
                    gens[f"dp_{name}"] = opt.generator
        return gens

    def _capture(self, epoch: int, step: int, history: list[dict], totals: dict[str, torch.Tensor]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, meta = training_state.capture(self._state_modules(), self._state_optimizers(), self._generators(),
                                               self.device)
        tensors.update({f"extra.{k}": v for k, v in self._state_extra().items()})
        tensors.update({f"totals.{k}": torch.as_tensor(v).detach().cpu().clone() for k, v in totals.items()})
        meta.update({"epoch": epoch, "step": step, "history": [dict(h) for h in history]})
        if self.private is not None:
            meta["dp"] = {"accountant_history": [list(h) for h in self.private.accountant.history],
                          "steps_taken": self.private.steps_taken}
        return tensors, meta

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
                 ) -> tuple[int, int, list[dict], dict[str, torch.Tensor]]:
        training_state.restore(tensors, meta, self._state_modules(), self._state_optimizers(), self._generators(),
                               self.device)
        self._load_extra({k[6:]: v for k, v in tensors.items() if k.startswith("extra.")})
        if self.private is not None:  # every step taken before the interruption stays counted, once
            self.private.accountant.history = [tuple(h) for h in meta["dp"]["accountant_history"]]
            self.private.steps_taken = int(meta["dp"]["steps_taken"])
        totals = {k[7:]: v.to(self.device) for k, v in tensors.items() if k.startswith("totals.")}
        return int(meta["epoch"]), int(meta["step"]), list(meta["history"]), totals

    @abstractmethod
    def _setup(self, data: torch.Tensor, seed: int) -> None:
        """Build networks, optimizers and batch sampling for ``data`` (kept only during fit)."""

    def _setup_stream(self, source: BatchSource, seed: int) -> None:
        """As ``_setup``, for minibatches pulled from ``source`` (models with ``streamable``)."""
        raise NotImplementedError(f"{self.name} declares no streaming: Model.fit refuses a stream before this")

    def _start_epoch(self, epoch: int, skip: int) -> None:
        """Called before each epoch's first step; ``skip`` steps of it were taken before a resume."""

    @abstractmethod
    def _steps_per_epoch(self) -> int: ...

    @abstractmethod
    def _train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the losses to log."""

    def _finish(self, seed: int) -> None:
        """After the last step, with the training rows still at hand (e.g. fit what sampling draws from)."""

    def _teardown(self) -> None:
        """Drop training-only state (data, optimizers) so nothing private outlives fit."""
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.close()
        for attr in ("_data", "_batches", "_cond_sampler", "_feed"):
            if hasattr(self, attr):
                delattr(self, attr)


class StreamFeed:
    """Minibatches of a ``BatchSource`` as tensors on the training device, one epoch at a time.

    Args:
        source: where the encoded rows come from.
        batch_size: rows per minibatch.
        device: where the tensors go.
    """

    def __init__(self, source: BatchSource, batch_size: int, device: torch.device):
        self.source, self.batch_size, self.device = source, batch_size, device
        self._batches: Iterator[np.ndarray] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.source.rows // self.batch_size)

    def start(self, epoch: int, skip: int = 0) -> None:
        """Begin ``epoch``, passing over its first ``skip`` batches (taken before a resume)."""
        self.close()
        self._batches = self.source.batches(epoch, self.batch_size)
        for _ in range(skip):
            self.next()

    def next(self) -> torch.Tensor:
        """The epoch's next minibatch."""
        batch = next(self._batches, None) if self._batches is not None else None
        if batch is None:
            raise RuntimeError("the stream ran out of batches within an epoch (start() it for each epoch)")
        return torch.from_numpy(batch).to(self.device)

    def close(self) -> None:
        """Stop reading (the current epoch's files are released)."""
        if self._batches is not None and hasattr(self._batches, "close"):
            self._batches.close()
        self._batches = None


def _finite(value: float) -> float | None:
    """A loss for the JSON history: rounded, or None if training diverged (NaN / inf)."""
    return round(value, 6) if np.isfinite(value) else None
