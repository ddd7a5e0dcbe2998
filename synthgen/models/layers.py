"""Building blocks shared by the GAN and the VAE: MLPs and layout-aware activations and losses."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from synthgen.transform.layout import OutputLayout


class Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, concatenated with its input (CTGAN's generator block)."""

    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


def residual_net(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Residual blocks of the given widths followed by a linear output layer."""
    layers: list[nn.Module] = []
    dim = in_dim
    for width in hidden:
        layers.append(Residual(dim, width))
        dim += width
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def fast_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype for matmuls in sampling and (autocast) non-DP training: bfloat16 on CPUs with native
    bf16 support (oneDNN), else float32.

    On such CPUs a bf16 matmul runs about 4x faster than a float32 one. ``SYNTHGEN_PRECISION=fp32``
    in the environment forces float32 (for bit-comparisons across machines).
    """
    if (torch.device(device).type != "cpu" or os.environ.get("SYNTHGEN_PRECISION", "").lower() == "fp32"
            or not torch.backends.mkldnn.is_available()):
        return torch.float32
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


class FoldedResidualNet:
    """Inference form of a trained :func:`residual_net` whose input is ``[dense, one_hot(pos)]``.

    Same function, less work: BatchNorm (eval mode) is folded into the linear layers, and each
    layer's input ``[h_k, ..., h_1, dense, one_hot]`` is split into one weight per part, so no
    concatenation is built. Every layer starts from its one-hot part as a row lookup (the bias
    folded in) and adds the other parts' products in place.

    With ``dtype=torch.bfloat16`` the products run in bf16 (see :func:`fast_dtype`) and the output
    columns in ``precise`` (the continuous values, whose 3 significant bf16 digits would put them
    on a visible grid) are recomputed in float32 from the same hidden activations: a small matmul.
    Everything else (category logits, from whose softmax the decoder draws) keeps bf16 precision.
    """

    def __init__(self, net: nn.Sequential, dense_dim: int, *, dtype: torch.dtype = torch.float32,
                 precise: np.ndarray | None = None):
        modules = list(net)  # a residual_net: Residual blocks, then a Linear
        blocks, final = cast("list[Residual]", modules[:-1]), cast(nn.Linear, modules[-1])
        layers = [_fold_bn(b.fc, b.bn) for b in blocks] + [(final.weight.detach(), final.bias.detach())]
        hidden = [w.shape[0] for w, _ in layers[:-1]]
        split = [_SplitLinear.of(w, b, hidden[:k], dense_dim) for k, (w, b) in enumerate(layers)]
        self.dtype = dtype
        self.layers = [layer.to(dtype) for layer in split]
        self.precise = None
        if dtype != torch.float32 and precise is not None and len(precise):
            cols = torch.as_tensor(precise, dtype=torch.long)
            self.precise = (cols, split[-1].columns(cols))

    @torch.no_grad()
    def __call__(self, dense: torch.Tensor, pos: torch.Tensor | int | None) -> torch.Tensor:
        """Output (float32) for rows ``[dense, one_hot(pos)]``; ``pos``: one position per row, or one for all."""
        x = dense.to(self.dtype)
        hidden: list[torch.Tensor] = []
        for layer in self.layers[:-1]:
            hidden.append(torch.relu_(layer(x, hidden, pos)))
        out = self.layers[-1](x, hidden, pos).float()
        if self.precise is not None:
            cols, layer = self.precise
            with exact_fp32_matmuls():
                out[:, cols] = layer(dense.float(), [h.float() for h in hidden], pos)
        return out


@dataclass(eq=False)
class _SplitLinear:
    """A linear layer whose input ``[h_k, ..., h_1, dense, one_hot]`` is kept as one weight per part
    (each ``(part width, out)``); the bias is folded into every row of the one-hot table."""

    hidden: list[torch.Tensor]  # for h_1, ..., h_k
    dense: torch.Tensor
    table: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor, hidden: list[int], dense_dim: int) -> _SplitLinear:
        parts, start = [], 0
        for width in reversed(hidden):  # h_k first in the input, h_1 last
            parts.append(weight[:, start:start + width].t())
            start += width
        dense = weight[:, start:start + dense_dim].t()
        table = weight[:, start + dense_dim:].t() + bias
        return cls(parts[::-1], dense, table, bias)

    def to(self, dtype: torch.dtype) -> _SplitLinear:
        def conv(w: torch.Tensor) -> torch.Tensor:
            return w.to(dtype).contiguous()
        return _SplitLinear([conv(w) for w in self.hidden], conv(self.dense), conv(self.table), conv(self.bias))

    def columns(self, cols: torch.Tensor) -> _SplitLinear:
        """The same layer restricted to output columns ``cols``, in float32."""
        def pick(w: torch.Tensor) -> torch.Tensor:
            return w[..., cols].float().contiguous()
        return _SplitLinear([pick(w) for w in self.hidden], pick(self.dense), pick(self.table), pick(self.bias))

    def __call__(self, dense: torch.Tensor, hidden: list[torch.Tensor], pos: torch.Tensor | int | None) -> torch.Tensor:
        n = dense.shape[0]
        if isinstance(pos, int):
            out = self.table[pos].expand(n, -1).clone()
        elif pos is not None:
            out = nn.functional.embedding(pos, self.table)
        else:  # no one-hot input: the bias alone
            out = self.bias.expand(n, -1).clone()
        out.addmm_(dense, self.dense)  # accumulated in place: one pass over the output per part
        for h, w in zip(hidden, self.hidden, strict=True):
            out.addmm_(h, w)
        return out


class FastMLP:
    """Inference form of a trained :func:`mlp` (Linear and ReLU layers) with matmuls in ``dtype``.

    As in :class:`FoldedResidualNet`, the output columns in ``precise`` (continuous values) are
    recomputed in float32 from the last hidden layer, so bf16 does not put them on a visible grid.
    """

    def __init__(self, net: nn.Sequential, *, dtype: torch.dtype = torch.float32, precise: np.ndarray | None = None):
        pattern = [type(m) for m in net if not isinstance(m, nn.Dropout)]  # dropout: identity in eval mode
        linears = [m for m in net if isinstance(m, nn.Linear)]
        if pattern != [nn.Linear, nn.ReLU] * (len(linears) - 1) + [nn.Linear]:
            raise TypeError(f"FastMLP takes Linear, ReLU, ..., Linear (as mlp builds), got "
                            f"{', '.join(t.__name__ for t in pattern)}")
        self.dtype = dtype
        self.layers = [(fc.weight.detach().t().contiguous().to(dtype), fc.bias.detach().to(dtype)) for fc in linears]
        self.precise = None
        if dtype != torch.float32 and precise is not None and len(precise):
            cols = torch.as_tensor(precise, dtype=torch.long)
            last = linears[-1]
            self.precise = (cols, last.weight.detach()[cols].t().contiguous(), last.bias.detach()[cols])

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.dtype)
        for weight, bias in self.layers[:-1]:
            h = torch.relu_(torch.addmm(bias, h, weight))
        out = torch.addmm(self.layers[-1][1], h, self.layers[-1][0]).float()
        if self.precise is not None:
            cols, weight, bias = self.precise
            with exact_fp32_matmuls():
                out[:, cols] = torch.addmm(bias, h.float(), weight)
        return out


@contextlib.contextmanager
def exact_fp32_matmuls() -> Iterator[None]:
    """Let oneDNN run float32 matmuls its faster way where, on this CPU, that keeps float32 accuracy.

    ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` (torch >= 2.9) *allows* bf16
    internally. On the AVX-512 CPUs we measured, oneDNN keeps float32 results under it and runs
    the skinny matmuls of the precise columns about 4x faster. Where it would lose accuracy
    (checked once per process with the precise columns' operations on values bf16 cannot hold),
    float32 matmuls stay as they are. The setting is process-wide: a lock keeps threads sampling
    at once from restoring it out of order, and other threads see "bf16" while it is held.
    """
    if not _fast_fp32_is_exact():
        yield
        return
    flags = torch.backends.mkldnn.matmul  # type: ignore[attr-defined]  # torch >= 2.9; not in its stubs
    with _FP32_FLAG_LOCK:
        old, flags.fp32_precision = flags.fp32_precision, "bf16"
        try:
            yield
        finally:
            flags.fp32_precision = old


_FP32_FLAG_LOCK = threading.RLock()


@functools.cache
def _fast_fp32_is_exact() -> bool:
    """Whether float32 ``addmm`` / ``addmm_`` keep float32 accuracy under ``fp32_precision = "bf16"`` here."""
    flags = getattr(torch.backends.mkldnn, "matmul", None)
    if flags is None or not hasattr(flags, "fp32_precision") or not torch.backends.mkldnn.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    # entries 1 + k 2^-10 (k = 1..7): bf16 (8 significant bits) rounds every one of them to 1
    a = 1 + torch.randint(1, 8, (2048, 384), generator=gen).float() * 2.0**-10
    w = 1 + torch.randint(1, 8, (384, 8), generator=gen).float() * 2.0**-10
    bias = torch.randn(8, generator=gen)
    exact = (a.double() @ w.double() + bias.double()).float()
    old = flags.fp32_precision
    try:
        flags.fp32_precision = "bf16"
        accumulated = bias.expand(2048, -1).clone()
        accumulated.addmm_(a, w)
        results = (torch.addmm(bias, a, w), accumulated)
    except (RuntimeError, ValueError, TypeError):
        return False
    finally:
        flags.fp32_precision = old
    # float32 summation leaves about 2e-6 relative error here; bf16-rounded inputs leave about 2e-3
    return all(bool(torch.allclose(r, exact, rtol=1e-4, atol=0)) for r in results)


def _fold_bn(fc: nn.Linear, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(fc(x))`` in eval mode as one affine map."""
    assert bn.running_var is not None and bn.running_mean is not None, "Residual's BatchNorm keeps running stats"
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (fc.weight * scale[:, None]).detach(), ((fc.bias - bn.running_mean) * scale + bn.bias).detach()


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, *, act: nn.Module | None = None,
        dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with an activation (ReLU by default) and optional dropout between them."""
    layers: list[nn.Module] = []
    dim = in_dim
    for width in hidden:
        layers += [nn.Linear(dim, width), act if act is not None else nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        dim = width
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class Segments:
    """Softmax over many variable-width column blocks at once (no Python loop over spans).

    Args:
        index: matrix columns that belong to some block.
        segment: for each of those columns, the number of its block.
    """

    def __init__(self, index: np.ndarray, segment: np.ndarray, device: torch.device):
        self.index = torch.as_tensor(index, dtype=torch.long, device=device)
        self.segment = torch.as_tensor(segment, dtype=torch.long, device=device)
        self.n = int(segment.max()) + 1 if len(segment) else 0

    def _shifted(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x minus its block-wise max, and the block-wise sum of exp of that."""
        seg = self.segment.expand(x.shape[0], -1)
        top = torch.full((x.shape[0], self.n), -torch.inf, device=x.device, dtype=x.dtype)
        top = top.scatter_reduce(1, seg, x.detach(), "amax", include_self=True)
        shifted = x - top.gather(1, seg)
        total = torch.zeros_like(top).scatter_add(1, seg, shifted.exp())
        return shifted, total.gather(1, seg)

    def softmax(self, x: torch.Tensor) -> torch.Tensor:
        shifted, total = self._shifted(x)
        return shifted.exp() / total

    def log_softmax(self, x: torch.Tensor) -> torch.Tensor:
        shifted, total = self._shifted(x)
        return shifted - total.log()


class LayoutOps:
    """Layout-driven operations on a model's raw output, vectorized over spans.

    Built once per model from the OutputLayout; models never see column names.
    """

    def __init__(self, layout: OutputLayout, device: torch.device):
        self.layout = layout
        self.tanh_idx = torch.as_tensor(layout.tanh_idx, dtype=torch.long, device=device)
        self.softmax = Segments(layout.softmax_idx, layout.softmax_segment, device)
        cat_idx = np.concatenate([np.arange(s, s + w) for s, w in layout.cond_spans] or [np.zeros(0, int)])
        cat_seg = np.concatenate([np.full(w, i) for i, (_, w) in enumerate(layout.cond_spans)]
                                 or [np.zeros(0, int)])
        self.category = Segments(cat_idx, cat_seg, device)
        order = np.concatenate([layout.tanh_idx, layout.softmax_idx])
        self.unpermute = torch.as_tensor(np.argsort(order), dtype=torch.long, device=device)

    def _assemble(self, tanh_part: torch.Tensor, soft_part: torch.Tensor) -> torch.Tensor:
        return torch.cat([tanh_part, soft_part], dim=1)[:, self.unpermute]

    def activate(self, raw: torch.Tensor, *, tau: float = 0.2) -> torch.Tensor:
        """tanh on value spans, Gumbel-softmax (temperature ``tau``) on one-hot spans."""
        logits = raw[:, self.softmax.index]
        gumbel = gumbel_noise(logits.shape, device=logits.device)
        return self._assemble(torch.tanh(raw[:, self.tanh_idx]), self.softmax.softmax((logits + gumbel) / tau))

    def conditional_loss(self, raw: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the generated category block that ``cond`` (one-hot) asked for."""
        logp = self.category.log_softmax(raw[:, self.category.index])
        return -(cond * logp).sum() / raw.shape[0]

    def reconstruction_loss(self, raw: torch.Tensor, target: torch.Tensor,
                            sigma: torch.Tensor) -> torch.Tensor:
        """TVAE's loss summed over the batch: Gaussian NLL on values, cross-entropy on one-hots."""
        diff = target[:, self.tanh_idx] - torch.tanh(raw[:, self.tanh_idx])
        s = sigma[self.tanh_idx]
        gauss = (diff**2 / (2 * s**2)).sum() + torch.log(s).sum() * raw.shape[0]
        logp = self.softmax.log_softmax(raw[:, self.softmax.index])
        return gauss - (target[:, self.softmax.index] * logp).sum()

    def reconstruction_rows(self, raw: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """:meth:`reconstruction_loss` of each row (for per-sample gradients)."""
        diff = target[:, self.tanh_idx] - torch.tanh(raw[:, self.tanh_idx])
        s = sigma[self.tanh_idx]
        gauss = (diff**2 / (2 * s**2)).sum(dim=1) + torch.log(s).sum()
        logp = self.softmax.log_softmax(raw[:, self.softmax.index])
        return gauss - (target[:, self.softmax.index] * logp).sum(dim=1)


def add_gumbel_(rng: np.random.Generator, x: torch.Tensor) -> torch.Tensor:
    """Add standard Gumbel noise, -log(-log U) drawn from a numpy generator, to a CPU float32 tensor
    in place (Gumbel-max sampling). U = 0 (2^-24 odds per entry) gives -inf: that entry loses the argmax."""
    u = rng.random(tuple(x.shape), dtype=np.float32)
    with np.errstate(divide="ignore"):
        np.log(u, out=u)
    np.negative(u, out=u)
    np.log(u, out=u)  # now -G
    values = x.numpy()
    np.subtract(values, u, out=values)
    return x


def sample_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise seeded from a numpy generator (for sampling).

    Drawn by torch's CPU generator, which is about twice as fast as numpy's ziggurat here.
    """
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    return torch.randn(shape, generator=gen)


def gumbel_noise(shape: torch.Size | tuple[int, ...], *, device: torch.device | None = None) -> torch.Tensor:
    """Standard Gumbel noise from torch's global RNG, -log(-log(U)) (faster than exponential_ on CPU)."""
    u = torch.rand(shape, device=device)
    return -torch.log(-torch.log(u.clamp_(1e-10, 1 - 1e-7)))
