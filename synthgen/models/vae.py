"""``tvae``: a variational autoencoder over the same encoded matrix (Xu et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from synthgen.errors import ConfigError
from synthgen.models.base import BatchSource, check_shapes, check_sizes, load_network
from synthgen.models.latent import MAX_COMPONENTS, LatentMixture, marginal_bias
from synthgen.models.layers import FastMLP, LayoutOps, Segments, fast_dtype, mlp, sample_normal
from synthgen.models.registry import Capabilities, register_model
from synthgen.models.training import StreamFeed, TorchModel, adam

if TYPE_CHECKING:
    from synthgen.dp.training import PrivateTraining

#: codes decoded to calibrate the one-hot blocks' shares (their sampling error is about 0.3% at 20,000); a
#: table of fewer rows decodes 4 times its rows (at least 5,000): its shares are known no better than that
CALIBRATION_ROWS = 20_000
#: ... but at most this many logits in all (a table of 2,000 columns has about 15,000 one-hot entries)
CALIBRATION_VALUES = 20_000_000
#: a streamed fit's latent mixture and shares come from at most this many rows of its first epoch
STREAM_ROWS = 200_000


@dataclass
class TVAEConfig:
    """Hyperparameters of the tabular VAE.

    Xu et al. (2019) and SDV use 128-wide layers; 384 is our default because on Adult (seed 0
    split, TSTR MLP) it lifted AUC from 0.888 to 0.895 and accuracy from 0.834 to 0.839 (means of
    two seeds) at about 2.5x the training time, still well under SDV CTGAN's. A higher
    ``loss_factor`` (4) and weight averaging (``ema_decay`` 0.999) both scored worse there.
    """

    epochs: int = 300
    batch_size: int = 500
    embedding_dim: int = 128
    compress_dims: tuple[int, ...] = (384, 384)
    decompress_dims: tuple[int, ...] = (384, 384)
    lr: float = 1e-3
    weight_decay: float = 1e-5
    loss_factor: float = 2.0
    ema_decay: float = 0.0  # > 0: sample from an exponential moving average of the decoder's weights
    #: codes are sampled from a Gaussian mixture of this many components fitted to the training rows'
    #: codes (0: from N(0, I)); on Adult (3 seeds) it lifted TSTR and quality (see ``models/latent.py``)
    latent_components: int = 10
    #: shift the one-hot blocks' logits after training so that each block's sampled shares match the
    #: training rows' (categories, null shares, modes and point masses of numeric columns)
    calibrate: bool = True
    #: width of the context each row is generated given (set by ``fit(context=...)``; 0: none): the
    #: encoder and the decoder both read it, a conditional VAE (Sohn et al. 2015)
    context_dim: int = 0
    #: the cond span (``layout.cond_spans`` number) of a categorical target column, or -1 for none (set by
    #: ``Synthesizer(target=...)``): every row is generated given its target class, drawn at the training
    #: rows' class shares, so the class is exact and the rest of the row is learned given it (on Adult, 3
    #: seeds, benchmarks/suite.py: TSTR AUC 0.895 -> 0.901 and accuracy 0.839 -> 0.849)
    target_span: int = -1
    #: with a target: the latent mixture has components per class, fitted to that class's codes, and a row
    #: of a class decodes a code from them (else every class shares one mixture)
    class_latents: bool = True

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        check_sizes(embedding_dim=self.embedding_dim, compress_dims=self.compress_dims,
                    decompress_dims=self.decompress_dims)
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay} (fix: 0.999, or 0 for none)")
        if not 0 <= self.latent_components <= MAX_COMPONENTS:
            raise ConfigError(f"latent_components must be in [0, {MAX_COMPONENTS}], got {self.latent_components} "
                              "(fix: 10, or 0 for the standard normal prior)")
        if self.context_dim:
            check_sizes(context_dim=self.context_dim)
        if self.target_span < -1:
            raise ConfigError(f"target_span must be a cond span number or -1 (none), got {self.target_span} (fix: "
                              "set it with Synthesizer(target=COLUMN))")


class Decoder(nn.Module):
    """Latent (and context) -> raw output, plus a learned noise scale per output column."""

    def __init__(self, latent: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        self.net = mlp(latent, hidden, out_dim)
        self.sigma = nn.Parameter(torch.full((out_dim,), 0.1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VAENet(nn.Module):
    """Encoder and decoder as one module, so one forward pass can go through DistributedDataParallel.

    A batch is the data columns followed by ``context`` context columns: the encoder reads both, the
    decoder the code, the target's one-hot block (``target``: its start and width among the data columns,
    if the rows are generated given their class) and the context.
    """

    def __init__(self, encoder: nn.Module, decoder: Decoder, context: int = 0, target: tuple[int, int] | None = None):
        super().__init__()
        self.encoder, self.decoder, self.context, self.target = encoder, decoder, context, target

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        given = []
        if self.target is not None:
            given.append(x[:, self.target[0]:self.target[0] + self.target[1]])
        if self.context:
            given.append(x[:, x.shape[1] - self.context:])
        if given:
            z = torch.cat([z, *given], dim=1)
        return mu, logvar, self.decoder(z)


class TVAEModel(TorchModel):
    """Tabular VAE: Gaussian loss on normalized values, cross-entropy on one-hot blocks."""

    name = "tvae"
    Config = TVAEConfig
    capabilities = Capabilities(
        dp=True, streaming=True, processes=True, dp_processes=True, draws_categories=True, context=True,
        why_not={"dp_streaming": "DP-SGD's Poisson sampling draws every batch from all rows at random, which "
                                 "needs them in memory"})
    autocast_capable = True
    # DP-SGD's noise grows with the parameter count: one 128-wide layer each way, big batches
    dp_defaults = {"epochs": 30, "batch_size": 1000, "compress_dims": (128,), "decompress_dims": (128,)}
    _fast: FastMLP | None = None  # inference form of the decoder, built on first sample
    latent: LatentMixture | None = None  # where codes are sampled from (None: N(0, I))
    #: the training rows in memory (None in a streamed fit, whose batches come from ``_feed``)
    _data: torch.Tensor | None = None
    _feed: StreamFeed | None = None
    #: the target's class shares in the training rows (set when ``config.target_span`` is)
    target_shares: torch.Tensor | None = None
    #: each latent component's class, when the mixture has components per class (``class_latents``)
    component_class: torch.Tensor | None = None

    def _setup(self, data: torch.Tensor, seed: int) -> None:
        self._data, self._feed = data, None
        self._build(data.device, data.shape[0])

    def _setup_stream(self, source: BatchSource, seed: int) -> None:
        """Train on minibatches pulled from ``source`` (read from disk) instead of a matrix in memory."""
        self._data = None
        self._feed = StreamFeed(source, min(self.config.batch_size, source.rows), self.device)
        self._build(self.device, source.rows)

    @property
    def _rows(self) -> torch.Tensor:
        """The training rows of a fit in memory."""
        assert self._data is not None, "a streamed fit has no rows in memory"
        return self._data

    def _build(self, device: torch.device, rows: int) -> None:
        """Networks, optimizer, DP / DDP wrapping and batch state for ``rows`` training rows."""
        cfg, layout = self.config, self.fitted_layout
        if self.private is not None and cfg.target_span >= 0:
            raise ConfigError("a target-conditioned tvae draws classes at the training rows' class shares, read "
                              "without noise (fix: drop target for a differentially private fit)")
        self._ops = LayoutOps(layout, device)
        self.encoder = mlp(layout.dim + cfg.context_dim, cfg.compress_dims, 2 * cfg.embedding_dim).to(device)
        self.decoder = Decoder(self._decoder_input(), cfg.decompress_dims, layout.dim).to(device)
        if self.private is not None:
            # DP-SGD: Opacus computes per-sample gradients layer by layer, and sigma is no layer's
            # parameter (it enters only the loss), so it stays at its initial value under DP
            self.decoder.sigma.requires_grad_(False)
        params = [p for p in list(self.encoder.parameters()) + list(self.decoder.parameters()) if p.requires_grad]
        self._opt = adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._net: nn.Module = VAENet(self.encoder, self.decoder, cfg.context_dim, self._target())
        if self.private is not None:
            self._dp_net, self._opt = self.private.wrap(self._net, self._opt)
        elif self.world.size > 1:  # gradients averaged across processes during backward
            self._net = nn.parallel.DistributedDataParallel(self._net)
        self._batch = min(cfg.batch_size, rows)
        self._batches: list[torch.Tensor] = []
        self._ema = (AveragedModel(self.decoder, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
                     if cfg.ema_decay > 0 else None)

    def _target(self) -> tuple[int, int] | None:
        """(start, width) of the target's one-hot block among the data columns, or None."""
        span = self.config.target_span
        if span < 0:
            return None
        layout = self.fitted_layout
        if span >= len(layout.cond_spans) or layout.cond_keys[span][1] != "category":
            raise ConfigError(f"target_span {span} is not a categorical column's block of this layout (fix: set it "
                              "with Synthesizer(target=COLUMN))")
        return layout.cond_spans[span]

    def _decoder_input(self) -> int:
        """The decoder's input width: code, target one-hot and context."""
        target = self._target()
        return self.config.embedding_dim + (target[1] if target else 0) + self.config.context_dim

    def steers(self, span: int) -> bool:
        """A condition on the target's block is met by generating the rows given that class."""
        return span == self.config.target_span >= 0

    def _steps_per_epoch(self) -> int:
        if self._feed is not None:
            return self._feed.steps_per_epoch
        if self.world.size > 1:  # every process takes the same number of steps (the global batch count)
            return -(-self.total_rows // self.config.batch_size)
        return -(-self._rows.shape[0] // self._batch)

    def _start_epoch(self, epoch: int, skip: int) -> None:
        if self._feed is not None:  # the epoch's batches are a function of (seed, epoch): replay to a resume point
            self._feed.start(epoch, skip)

    def _state_modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder, **({"ema": self._ema} if self._ema else {})}

    def _state_optimizers(self) -> dict[str, Any]:
        return {"opt": self._opt}

    def _state_extra(self) -> dict[str, torch.Tensor]:
        """The batches left in this epoch's shuffled order (stored as a stack: the next one is last)."""
        if not self._batches:
            return {}
        return {"batches": torch.cat(self._batches).cpu(),
                "batch_sizes": torch.tensor([len(b) for b in self._batches])}

    def _load_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        if "batches" in tensors:
            sizes = tensors["batch_sizes"].tolist()
            self._batches = list(tensors["batches"].to(self._rows.device).split(sizes))

    def _next_batch(self) -> torch.Tensor:
        if self._feed is not None:
            return self._feed.next()
        if self.private is not None:  # Poisson sampling: the sampling scheme the accountant assumes
            return self._rows[self.private.batch()]
        if not self._batches:  # a new epoch: reshuffle
            perm = torch.randperm(self._rows.shape[0], device=self._rows.device)
            parts = (perm.tensor_split(self._steps_per_epoch()) if self.world.size > 1  # local share of each batch
                     else perm.split(self._batch))
            self._batches = list(parts)[::-1]
        return self._rows[self._batches.pop()]

    def _train_step(self) -> dict[str, torch.Tensor]:
        x = self._next_batch()
        if self.private is not None:
            return self._private_step(x, self.private)
        with self._autocast():  # matmuls in bf16 where the CPU is fast at it; the losses in float32
            mu, logvar, recon = self._net(x)
        mu, logvar, recon = mu.float(), logvar.float(), recon.float()
        x = x[:, :self.fitted_layout.dim]  # the data columns (a context follows them)
        rec = self._ops.reconstruction_loss(recon, x, self.decoder.sigma) * self.config.loss_factor / x.shape[0]
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / x.shape[0]
        loss = rec + kld
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        self.decoder.sigma.data.clamp_(0.01, 1.0)
        if self._ema is not None:
            self._ema.update_parameters(self.decoder)
        return {"loss": loss, "reconstruction": rec, "kld": kld}

    def _private_step(self, x: torch.Tensor, private: PrivateTraining) -> dict[str, torch.Tensor]:
        """The same loss per row, for DP-SGD's per-sample clipping (an empty batch is a noise-only step)."""
        mu, logvar, recon = self._net(x)
        x = x[:, :self.fitted_layout.dim]
        rec = self._ops.reconstruction_rows(recon, x, self.decoder.sigma) * self.config.loss_factor
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1)
        private.step(self._dp_net, self._opt, rec + kld)
        if self._ema is not None:
            self._ema.update_parameters(self.decoder)
        rec, kld = rec.detach().mean(), kld.detach().mean()
        return {"loss": rec + kld, "reconstruction": rec, "kld": kld}

    def _finish(self, seed: int) -> None:
        """After the last step, with the training rows at hand: fit the latent mixture and calibrate
        the one-hot blocks (both read the rows without noise, so neither runs under DP)."""
        if self.private is not None:
            return
        cfg, target = self.config, self._target()
        if not cfg.latent_components and not cfg.calibrate and target is None:
            return
        mu, var, shares, contexts, labels = self._encode_training_rows(codes=cfg.latent_components > 0)
        if target is not None:
            start, width = target
            where = {int(c): i for i, c in enumerate(self._ops.softmax.index.tolist())}
            self.target_shares = shares[[where[c] for c in range(start, start + width)]].clone()
        self.component_class = None
        if cfg.latent_components and target is not None and cfg.class_latents:
            self.latent, self.component_class = _class_mixtures(mu, var, labels, target[1], cfg.latent_components,
                                                                seed)
        if cfg.latent_components and self.component_class is None:
            self.latent = LatentMixture.fit(mu, var, cfg.latent_components, seed)
        if cfg.calibrate and self.fitted_layout.n_softmax:
            rng = np.random.default_rng(seed)
            blocks = Segments(self.fitted_layout.softmax_idx, self.fitted_layout.softmax_segment, torch.device("cpu"))
            last = self.decoder.net[-1]
            assert isinstance(last, nn.Linear), "the decoder ends with its output layer"
            seen = self._rows.shape[0] if self._feed is None else CALIBRATION_ROWS  # streamed: many rows
            rows = min(CALIBRATION_ROWS, max(5000, 4 * seen))
            rows = max(1000, min(rows, CALIBRATION_VALUES // max(len(blocks.index), 1)))
            codes, onehot = self._codes_given(rows, rng, None)
            if onehot is not None:  # decoded given classes drawn at their shares
                codes = torch.cat([codes, onehot], dim=1)
            if cfg.context_dim:  # decoded given the contexts of training rows drawn at random
                picked = torch.as_tensor(rng.integers(0, len(contexts), rows))
                codes = torch.cat([codes, contexts[picked]], dim=1)
            with torch.no_grad():  # decoded in chunks, keeping the one-hot blocks' logits only
                logits = torch.cat([self.decoder.net(chunk.to(last.bias.device)).float().cpu()[:, blocks.index]
                                    for chunk in codes.split(4096)])
                bias = marginal_bias(logits, blocks, shares)
                last.bias[blocks.index.to(last.bias.device)] += bias.to(last.bias.device, last.bias.dtype)

    def _encode_training_rows(self, *, codes: bool
                              ) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor, np.ndarray]:
        """The training rows' code means and variances (empty unless ``codes``), each one-hot entry's
        share of the rows, their contexts (up to :data:`CALIBRATION_ROWS`; empty without a context) and
        their target classes (empty unless ``codes`` and a target).

        Streamed fits read the first epoch's batches, up to :data:`STREAM_ROWS` rows."""
        batches = (self._rows.split(8192) if self._feed is None
                   else _capped(self._feed.source.batches(0, 8192), STREAM_ROWS))
        mus, variances, total, rows = [], [], torch.zeros(len(self._ops.softmax.index)), 0
        dim, contexts, kept, labels, target = self.fitted_layout.dim, [], 0, [], self._target()
        self.encoder.eval()
        with torch.no_grad():
            for batch in batches:
                x = torch.as_tensor(batch, device=self.decoder.sigma.device).float()
                if self.config.context_dim and kept < CALIBRATION_ROWS:
                    contexts.append(x[:CALIBRATION_ROWS - kept, dim:].cpu())
                    kept += len(contexts[-1])
                if codes:
                    mu, logvar = self.encoder(x).float().chunk(2, dim=1)
                    mus.append(mu.cpu().numpy())
                    variances.append(logvar.exp().cpu().numpy())
                    if target is not None:
                        labels.append(x[:, target[0]:target[0] + target[1]].argmax(1).cpu().numpy())
                total += x[:, self._ops.softmax.index].sum(0).cpu()
                rows += len(x)
        context = torch.cat(contexts) if contexts else torch.zeros((0, 0))
        label = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        if not codes:
            return np.zeros((0, 0)), np.zeros((0, 0)), total / max(rows, 1), context, label
        return (np.concatenate(mus).astype(np.float64), np.concatenate(variances).astype(np.float64),
                total / max(rows, 1), context, label)

    def _classes(self, n: int, rng: np.random.Generator, cond_index: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Target classes of ``n`` rows and their one-hot rows: the class ``cond_index`` asks for (a cond-vector
        position in the target's block), else drawn at the training rows' class shares."""
        assert self.target_shares is not None, "a target-conditioned model keeps its class shares"
        width = len(self.target_shares)
        asked = self._asked_class(cond_index)
        if asked is not None:
            classes = torch.full((n,), asked, dtype=torch.long)
        else:
            cum = torch.cumsum(self.target_shares.double(), 0)
            u = torch.from_numpy(rng.random(n)) * cum[-1]
            classes = torch.searchsorted(cum, u, right=True).clamp_max(width - 1)
        return classes, torch.nn.functional.one_hot(classes, width).float()

    def _asked_class(self, cond_index: int | None) -> int | None:
        """The target class a cond-vector position asks for (None: a position outside the target's block)."""
        if cond_index is None:
            return None
        first = sum(w for _, w in self.fitted_layout.cond_spans[:self.config.target_span])
        width = self.fitted_layout.cond_spans[self.config.target_span][1]
        return cond_index - first if first <= cond_index < first + width else None

    def _codes_given(self, n: int, rng: np.random.Generator, cond_index: int | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` codes and, with a target, the one-hot classes they decode given (``_classes``). With a
        mixture per class, a component is drawn by its joint share, and its class comes with it."""
        if self.component_class is None or self.latent is None:
            codes = self._codes(n, rng)
            return codes, (self._classes(n, rng, cond_index)[1] if self._target() is not None else None)
        width = len(cast(torch.Tensor, self.target_shares))
        weights, asked = self.latent.weights, self._asked_class(cond_index)
        if asked is not None:
            weights = weights * (self.component_class == asked)
        codes, components = self.latent.sample_components(n, rng, weights)
        return codes, torch.nn.functional.one_hot(self.component_class[components], width).float()

    def _codes(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` latent codes to decode: from the fitted mixture, else the standard normal."""
        if self.latent is not None:
            return self.latent.sample(n, rng)
        return sample_normal(rng, (n, self.config.embedding_dim))

    def _teardown(self) -> None:
        super()._teardown()
        if self._ema is not None:
            self.decoder = cast(Decoder, self._ema.module)  # AveragedModel holds a copy of the decoder
        del self.encoder, self._opt, self._ema, self._net
        if self.private is not None:
            self._dp_net.cleanup()  # remove Opacus' hooks and per-sample state from the layers
            del self._dp_net
            self.decoder.sigma.requires_grad_(True)
        self.decoder.eval()
        self._fast = None

    def _sample(self, n: int, rng: np.random.Generator, cond_index: int | None,
                context: np.ndarray | None = None) -> np.ndarray:
        device = self.decoder.sigma.device
        if self._fast is None:  # bf16 matmuls where the CPU has them, continuous outputs in float32
            self._fast = FastMLP(self.decoder.net, dtype=fast_dtype(device), precise=self.fitted_layout.tanh_idx)
        codes, onehot = self._codes_given(n, rng, cond_index)
        if onehot is not None:
            codes = torch.cat([codes, onehot], dim=1)
        if context is not None:
            codes = torch.cat([codes, torch.from_numpy(context)], dim=1)
        raw = self._fast(codes.to(device)).cpu()
        if onehot is not None:  # the class generated for: its logit alone is finite
            start = self.fitted_layout.cond_spans[self.config.target_span][0]
            raw[:, start:start + onehot.shape[1]] = torch.log(onehot)
        idx = torch.as_tensor(self.fitted_layout.tanh_idx)
        noise = sample_normal(rng, (n, len(idx))) * self.decoder.sigma.detach().cpu()[idx]
        # the one-hot blocks stay logits: the decoder draws each from their softmax (draws_categories)
        # rather than taking the argmax, which would all but erase rare categories and null indicators
        raw[:, idx] = (torch.tanh(raw[:, idx]) + noise).clamp(-1, 1)
        return raw.numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"decoder.{k}": v.detach().cpu() for k, v in self.decoder.state_dict().items()}
        if self.target_shares is not None:
            tensors["target.shares"] = self.target_shares.detach().cpu().float()
        if self.component_class is not None:
            tensors["target.component_class"] = self.component_class.cpu()
        return {**tensors, **(self.latent.tensors("latent.") if self.latent is not None else {})}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        cfg = self.config
        target = self._target()
        self.latent = LatentMixture.from_tensors(tensors, "latent.", cfg.embedding_dim)
        expected: dict[str, tuple[int | None, ...]] = {"target.shares": (target[1],)} if target else {}
        if target and "target.component_class" in tensors:
            expected["target.component_class"] = (len(self.latent.weights) if self.latent is not None else 0,)
        check_shapes({k: v for k, v in tensors.items() if not k.startswith(("decoder.", "latent."))}, expected)
        self.target_shares, self.component_class = None, None
        if target is not None:
            shares = tensors["target.shares"].float()
            if not (torch.isfinite(shares).all() and (shares >= 0).all() and shares.sum() > 0):
                raise ValueError("the weights do not fit the model the manifest describes: target.shares are not "
                                 "class shares")
            self.target_shares = shares
            if "target.component_class" in tensors:
                owner = tensors["target.component_class"].long()
                if self.latent is None or bool(((owner < 0) | (owner >= target[1])).any()) or any(
                        float(self.latent.weights[owner == c].sum()) <= 0 for c in range(target[1])):
                    raise ValueError("the weights do not fit the model the manifest describes: "
                                     "target.component_class must give every class of the target latent "
                                     "components of positive weight, and name no other")
                self.component_class = owner
        self.decoder = load_network(
            lambda: Decoder(self._decoder_input(), cfg.decompress_dims, self.fitted_layout.dim), tensors, "decoder.")
        self._fast = None


def _class_mixtures(mu: np.ndarray, var: np.ndarray, labels: np.ndarray, classes: int, components: int,
                    seed: int) -> tuple[LatentMixture | None, torch.Tensor | None]:
    """One mixture whose components are fitted per target class, each weighted by its class's share, and the
    class of each component; (None, None) when a class has too few rows for a component of its own, or the
    classes would need more than :data:`MAX_COMPONENTS` components (one mixture for all is then fitted)."""
    per_class = min(components, MAX_COMPONENTS // classes)
    parts = []
    for c in range(classes):
        rows = labels == c
        mixture = LatentMixture.fit(mu[rows], var[rows], per_class, seed + c) if per_class and rows.any() else None
        if mixture is None:
            return None, None
        parts.append((float(rows.mean()), mixture))
    weights = torch.cat([share * m.weights for share, m in parts])
    owner = torch.cat([torch.full((len(m.weights),), c, dtype=torch.long) for c, (_, m) in enumerate(parts)])
    return LatentMixture(weights, torch.cat([m.means for _, m in parts]),
                         torch.cat([m.scale_tril for _, m in parts])), owner


def _capped(batches, rows: int):
    """``batches`` until ``rows`` rows have passed."""
    seen = 0
    for batch in batches:
        if seen >= rows:
            return
        seen += len(batch)
        yield batch


register_model("tvae", TVAEModel)
