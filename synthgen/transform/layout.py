"""The contract between the transformer and the models: a list of output spans."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: span kinds: a normalized value (tanh), a mode indicator, a category one-hot, a null indicator
SPAN_KINDS = ("value", "mode", "category", "null")
#: span kinds a conditional model conditions on (and training-by-sampling balances)
COND_KINDS = ("category", "null")


@dataclass(frozen=True)
class Span:
    """A contiguous block of the encoded matrix.

    Attributes:
        width: number of matrix columns in the block.
        activation: ``"tanh"`` (a normalized value) or ``"softmax"`` (a one-hot block).
        kind: one of ``SPAN_KINDS``; ``COND_KINDS`` spans are the ones a GAN conditions on.
        column: index of the source column (models may group spans by it, never name it).
    """

    width: int
    activation: str
    kind: str
    column: int


class OutputLayout:
    """Ordered spans with precomputed index arrays that models use for vectorized activations."""

    def __init__(self, spans: list[Span]):
        self.spans = list(spans)
        starts = np.cumsum([0] + [s.width for s in self.spans])
        self.starts = starts[:-1]
        self.dim = int(starts[-1])
        self.tanh_idx = np.concatenate(
            [np.arange(st, st + s.width) for s, st in zip(self.spans, self.starts, strict=True)
             if s.activation == "tanh"] or [np.zeros(0, dtype=int)]).astype(np.int64)
        softmax = [(s, st) for s, st in zip(self.spans, self.starts, strict=True) if s.activation == "softmax"]
        self.softmax_idx = np.concatenate(
            [np.arange(st, st + s.width) for s, st in softmax] or [np.zeros(0, dtype=int)]).astype(np.int64)
        #: for each softmax column (in softmax_idx order), which softmax segment it belongs to
        self.softmax_segment = np.concatenate(
            [np.full(s.width, i) for i, (s, _) in enumerate(softmax)] or [np.zeros(0, dtype=int)]
        ).astype(np.int64)
        self.n_softmax = len(softmax)
        conds = [(s, st) for s, st in softmax if s.kind in COND_KINDS]
        #: (start, width) of each category or null span: the conditional vector is their concatenation
        self.cond_spans = [(int(st), s.width) for s, st in conds]
        #: (column, kind) of each cond span, to find the span a condition refers to
        self.cond_keys = [(s.column, s.kind) for s, _ in conds]
        self.cond_dim = sum(w for _, w in self.cond_spans)

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [asdict(s) for s in self.spans]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputLayout:
        return cls([Span(**s) for s in data["spans"]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputLayout) and self.spans == other.spans

    def __repr__(self) -> str:
        return f"OutputLayout(dim={self.dim}, spans={len(self.spans)}, cond_dim={self.cond_dim})"
