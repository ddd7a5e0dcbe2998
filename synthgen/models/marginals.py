"""``marginals``: every column sampled independently from its own distribution (the baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from synthgen.models.base import FitOptions, Model, check_shapes, check_sizes
from synthgen.models.registry import Capabilities, register_model
from synthgen.transform.layout import OutputLayout


@dataclass
class MarginalsConfig:
    """``quantiles``: points kept per mode to resample a normalized value (an aggregate, no rows)."""

    quantiles: int = 65

    def check(self) -> None:
        check_sizes(quantiles=self.quantiles)


class MarginalsModel(Model):
    """Independent per-column sampling: category shares, mode shares, per-mode value quantiles."""

    name = "marginals"
    Config = MarginalsConfig
    capabilities = Capabilities(why_not={"streaming": "it counts every column over all rows at once"})

    def _fit(self, data: np.ndarray, options: FitOptions) -> None:  # type: ignore[override]  # no BatchSource:
        # its capabilities refuse a streamed fit before _fit
        layout = self.fitted_layout
        self.tables: dict[str, torch.Tensor] = value_quantiles(data, layout, self.config.quantiles)
        for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
            if span.activation == "softmax":
                block = data[:, start:start + span.width]
                self.tables[f"freq.{i}"] = torch.as_tensor(block.mean(axis=0), dtype=torch.float64)
        self.history = [{"epoch": 1}]

    def _sample(self, n: int, rng: np.random.Generator, cond_index: int | None,
                context: np.ndarray | None = None) -> np.ndarray:
        layout = self.fitted_layout
        out = np.zeros((n, layout.dim), dtype=np.float32)
        rows = np.arange(n)
        for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
            if span.activation == "softmax":
                out[rows, start + _choice(rng, self.tables[f"freq.{i}"], n)] = 1.0
        fill_values(out, layout, self.tables, rng)
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.tables)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        layout = self.fitted_layout
        frequencies = {f"freq.{i}": (s.width,) for i, s in enumerate(layout.spans) if s.activation == "softmax"}
        check_value_tables(tensors, layout, frequencies)
        self.tables = dict(tensors)


def value_quantiles(data: np.ndarray, layout: OutputLayout, quantiles: int) -> dict[str, torch.Tensor]:
    """For each value span, quantiles of the normalized value within each mode (``quant.<span>``).

    Aggregates of the private table: only for models trained without DP.
    """
    q = np.linspace(0, 1, quantiles)
    tables = {}
    for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
        if span.activation != "tanh":
            continue
        nxt = layout.spans[i + 1]  # a value span is followed by its mode span
        modes = data[:, layout.starts[i + 1]:layout.starts[i + 1] + nxt.width].argmax(axis=1)
        table = np.zeros((nxt.width, len(q)))
        for m in range(nxt.width):
            values = data[modes == m, start]
            table[m] = np.quantile(values, q) if len(values) else 0.0
        tables[f"quant.{i}"] = torch.as_tensor(table)
    return tables


def check_value_tables(tables: dict[str, torch.Tensor], layout: OutputLayout,
                       others: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Refuse ``tables`` unless they are :func:`value_quantiles`' tables for ``layout`` (plus ``others``)."""
    expected = {f"quant.{i}": (layout.spans[i + 1].width, None) for i, span in enumerate(layout.spans)
                if span.activation == "tanh"}
    check_shapes(tables, {**expected, **(others or {})})
    if any(tables[key].shape[1] < 1 for key in expected):
        raise ValueError("the weights do not fit the model the manifest describes: a quantile table is empty")


def fill_values(out: np.ndarray, layout: OutputLayout, tables: dict[str, torch.Tensor] | None,
                rng: np.random.Generator) -> None:
    """Write each value span of ``out`` given its (already filled) mode span.

    With ``tables`` (from :func:`value_quantiles`) a value is drawn from its mode's quantiles;
    without, uniformly over the mode's range (the DP case: intervals from public or noisy bins).
    """
    n = out.shape[0]
    for i, (span, start) in enumerate(zip(layout.spans, layout.starts, strict=True)):
        if span.activation != "tanh":
            continue
        if tables is None:
            out[:, start] = rng.uniform(-1, 1, n)
            continue
        mode_start = layout.starts[i + 1]
        mode = out[:, mode_start:mode_start + layout.spans[i + 1].width].argmax(axis=1)
        table = tables[f"quant.{i}"].numpy()
        pos = rng.random(n) * (table.shape[1] - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, table.shape[1] - 1)
        frac = pos - lo
        out[:, start] = table[mode, lo] * (1 - frac) + table[mode, hi] * frac


def _choice(rng: np.random.Generator, freq: torch.Tensor, n: int) -> np.ndarray:
    p = freq.double().numpy()
    return rng.choice(len(p), size=n, p=p / p.sum())


register_model("marginals", MarginalsModel)
