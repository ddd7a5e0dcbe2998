"""``tvae``: a variational autoencoder over the same encoded matrix (Xu et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from synthgen.errors import ConfigError
from synthgen.models.layers import LayoutOps, mlp, sample_gumbel, sample_normal
from synthgen.models.registry import register_model
from synthgen.models.training import TorchModel, adam


@dataclass
class TVAEConfig:
    """Hyperparameters of the tabular VAE (defaults follow Xu et al. 2019)."""

    epochs: int = 300
    batch_size: int = 500
    embedding_dim: int = 128
    compress_dims: tuple[int, ...] = (128, 128)
    decompress_dims: tuple[int, ...] = (128, 128)
    lr: float = 1e-3
    weight_decay: float = 1e-5
    loss_factor: float = 2.0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")


class Decoder(nn.Module):
    """Latent -> raw output, plus a learned noise scale per output column."""

    def __init__(self, latent: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        self.net = mlp(latent, hidden, out_dim)
        self.sigma = nn.Parameter(torch.full((out_dim,), 0.1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class TVAEModel(TorchModel):
    """Tabular VAE: Gaussian loss on normalized values, cross-entropy on one-hot blocks."""

    name = "tvae"
    Config = TVAEConfig

    def _setup(self, data: torch.Tensor, seed: int) -> None:
        cfg, layout = self.config, self.layout
        self._data = data
        self._ops = LayoutOps(layout, data.device)
        self.encoder = mlp(layout.dim, cfg.compress_dims, 2 * cfg.embedding_dim).to(data.device)
        self.decoder = Decoder(cfg.embedding_dim, cfg.decompress_dims, layout.dim).to(data.device)
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self._opt = adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._batch = min(cfg.batch_size, data.shape[0])
        self._batches: list[torch.Tensor] = []

    def _steps_per_epoch(self) -> int:
        return -(-self._data.shape[0] // self._batch)

    def _next_batch(self) -> torch.Tensor:
        if not self._batches:  # a new epoch: reshuffle
            perm = torch.randperm(self._data.shape[0], device=self._data.device)
            self._batches = list(perm.split(self._batch))[::-1]
        return self._data[self._batches.pop()]

    def _train_step(self) -> dict[str, torch.Tensor]:
        x = self._next_batch()
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = self.decoder(z)
        rec = self._ops.reconstruction_loss(recon, x, self.decoder.sigma) * self.config.loss_factor / x.shape[0]
        kld = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / x.shape[0]
        loss = rec + kld
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        self.decoder.sigma.data.clamp_(0.01, 1.0)
        return {"loss": loss, "reconstruction": rec, "kld": kld}

    def _teardown(self) -> None:
        super()._teardown()
        del self.encoder, self._opt
        self.decoder.eval()

    def _sample(self, n: int, rng: np.random.Generator, cond_index: int | None) -> np.ndarray:
        device = self.decoder.sigma.device
        raw = self.decoder(sample_normal(rng, (n, self.config.embedding_dim)).to(device)).cpu()
        idx = torch.as_tensor(self.layout.tanh_idx)
        noise = sample_normal(rng, (n, len(idx))) * self.decoder.sigma.detach().cpu()[idx]
        raw[:, idx] = (torch.tanh(raw[:, idx]) + noise).clamp(-1, 1)
        # draw each one-hot block from the decoder's categorical distribution (Gumbel-max) rather
        # than taking its argmax, which would all but erase rare categories and null indicators
        soft = torch.as_tensor(self.layout.softmax_idx)
        raw[:, soft] += sample_gumbel(rng, (n, len(soft)))
        return raw.numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"decoder.{k}": v.detach().cpu() for k, v in self.decoder.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        cfg = self.config
        self.decoder = Decoder(cfg.embedding_dim, cfg.decompress_dims, self.layout.dim)
        self.decoder.load_state_dict({k.removeprefix("decoder."): v for k, v in tensors.items()})
        self.decoder.eval()


register_model("tvae", TVAEModel)
