"""``marginals``: every column sampled independently from its own distribution (the baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthgen.models.base import FitOptions, Model
from synthgen.models.registry import register_model


@dataclass
class MarginalsConfig:
    """``quantiles``: points kept per mode to resample a normalized value (an aggregate, no rows)."""

    quantiles: int = 65


class MarginalsModel(Model):
    """Independent per-column sampling: category shares, mode shares, per-mode value quantiles."""

    name = "marginals"
    Config = MarginalsConfig

    def _fit(self, data: np.ndarray, options: FitOptions) -> None:
        layout, q = self.layout, np.linspace(0, 1, self.config.quantiles)
        self.tables: dict[str, torch.Tensor] = {}
        for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
            block = data[:, start:start + span.width]
            if span.activation == "softmax":
                self.tables[f"freq.{i}"] = torch.as_tensor(block.mean(axis=0), dtype=torch.float64)
            else:  # value span: the next span holds its modes
                nxt = layout.spans[i + 1]
                modes = data[:, layout.starts[i + 1]:layout.starts[i + 1] + nxt.width].argmax(axis=1)
                table = np.zeros((nxt.width, len(q)))
                for m in range(nxt.width):
                    values = block[modes == m, 0]
                    table[m] = np.quantile(values, q) if len(values) else 0.0
                self.tables[f"quant.{i}"] = torch.as_tensor(table)
        self.history = [{"epoch": 1}]

    def _sample(self, n: int, rng: np.random.Generator, cond_index: int | None) -> np.ndarray:
        layout = self.layout
        out = np.zeros((n, layout.dim), dtype=np.float32)
        rows = np.arange(n)
        picks: dict[int, np.ndarray] = {}
        for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
            if span.activation == "softmax":
                if i not in picks:
                    picks[i] = _choice(rng, self.tables[f"freq.{i}"], n)
                out[rows, start + picks[i]] = 1.0
            else:
                picks[i + 1] = mode = _choice(rng, self.tables[f"freq.{i + 1}"], n)
                table = self.tables[f"quant.{i}"].numpy()
                pos = rng.random(n) * (table.shape[1] - 1)
                lo = np.floor(pos).astype(int)
                hi = np.minimum(lo + 1, table.shape[1] - 1)
                frac = pos - lo
                out[:, start] = table[mode, lo] * (1 - frac) + table[mode, hi] * frac
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.tables)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tables = dict(tensors)


def _choice(rng: np.random.Generator, freq: torch.Tensor, n: int) -> np.ndarray:
    p = freq.double().numpy()
    return rng.choice(len(p), size=n, p=p / p.sum())


register_model("marginals", MarginalsModel)
