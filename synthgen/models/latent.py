"""What a VAE learns after its last step: where the codes of real rows lie, and the logit shifts
that give each one-hot block its training share.

A VAE is trained to decode codes drawn from each row's posterior, but sampled from the standard
normal prior, whose mass lies partly where no row's code is (the "prior hole"). Fitting a small
Gaussian mixture to the training rows' codes and sampling from it instead (Ghosh et al. 2020,
ex-post density estimation) decodes from where the decoder was trained. Both steps read the
training rows without noise, so they are skipped under DP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthgen.models.base import check_shapes
from synthgen.models.layers import Segments, sample_normal

#: each mixture component summarizes at least this many training rows (fewer rows: fewer components)
ROWS_PER_COMPONENT = 500
#: at most this many codes go into the mixture's fit (a seeded subsample beyond)
FIT_ROWS = 50_000
MAX_COMPONENTS = 64


@dataclass
class LatentMixture:
    """A Gaussian mixture over latent codes.

    Attributes:
        weights: ``(k,)`` component shares, summing to 1.
        means: ``(k, d)`` component means.
        scale_tril: ``(k, d, d)`` lower Cholesky factors of the component covariances.
    """

    weights: torch.Tensor
    means: torch.Tensor
    scale_tril: torch.Tensor

    @classmethod
    def fit(cls, mu: np.ndarray, var: np.ndarray, components: int, seed: int) -> LatentMixture | None:
        """Fit to the codes' posterior means ``mu`` and variances ``var`` (rows x d); None when the
        table is too small for even one component of :data:`ROWS_PER_COMPONENT` rows."""
        from sklearn.mixture import GaussianMixture

        k = min(components, len(mu) // ROWS_PER_COMPONENT)
        if k < 1:
            return None
        rng = np.random.default_rng(seed)
        if len(mu) > FIT_ROWS:
            keep = rng.choice(len(mu), FIT_ROWS, replace=False)
            mu, var = mu[keep], var[keep]
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, max_iter=100,
                              random_state=int(rng.integers(2**31))).fit(mu)
        # each component's spread: that of its codes' means plus their mean posterior variance
        resp = gmm.predict_proba(mu)
        posterior = resp.T @ var / np.maximum(resp.sum(0), 1e-12)[:, None]
        cov = gmm.covariances_ + posterior[:, :, None] * np.eye(mu.shape[1])[None]
        return cls(torch.as_tensor(gmm.weights_, dtype=torch.float32), torch.as_tensor(gmm.means_, dtype=torch.float32),
                   torch.as_tensor(np.linalg.cholesky(cov), dtype=torch.float32))

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` codes: a component per row drawn by weight, then its Gaussian."""
        return self.sample_components(n, rng)[0]

    def sample_components(self, n: int, rng: np.random.Generator, weights: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` codes and the component each came from, drawn by ``weights`` (default: the mixture's own;
        zero for components to leave out)."""
        chosen = (self.weights if weights is None else weights).double().numpy()
        comp = rng.choice(len(chosen), size=n, p=chosen / chosen.sum())
        eps = sample_normal(rng, (n, self.means.shape[1]))
        z = torch.empty_like(eps)
        for c in np.unique(comp):
            rows = torch.as_tensor(np.flatnonzero(comp == c))
            z[rows] = eps[rows] @ self.scale_tril[c].T + self.means[c]
        return z, torch.from_numpy(comp)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}weights": self.weights, f"{prefix}means": self.means, f"{prefix}scale_tril": self.scale_tril}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str, dim: int) -> LatentMixture | None:
        """The mixture stored under ``prefix`` (None in files written before it existed).

        Raises:
            ValueError: shapes that disagree with each other or with the latent size ``dim``, more
                than :data:`MAX_COMPONENTS` components, or weights that are not a distribution.
        """
        mine = {k: v for k, v in tensors.items() if k.startswith(prefix)}
        if not mine:
            return None
        k = int(mine[f"{prefix}weights"].shape[0]) if f"{prefix}weights" in mine else 0
        if not 1 <= k <= MAX_COMPONENTS:
            raise ValueError(f"the latent mixture has {k} components; 1 to {MAX_COMPONENTS} are allowed")
        check_shapes(mine, {f"{prefix}weights": (k,), f"{prefix}means": (k, dim), f"{prefix}scale_tril": (k, dim, dim)})
        weights = mine[f"{prefix}weights"].float()
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError("the latent mixture's weights are not a distribution")
        return cls(weights, mine[f"{prefix}means"].float(), mine[f"{prefix}scale_tril"].float())


def marginal_bias(logits: torch.Tensor, segments: Segments, target: torch.Tensor, *, iterations: int = 6
                  ) -> torch.Tensor:
    """Per-entry shifts of one-hot blocks' logits that make their mean softmax match ``target``.

    Args:
        logits: ``(rows, entries)`` logits of the blocks' entries, decoded from sampled codes.
        segments: which block each entry belongs to.
        target: ``(entries,)`` each entry's share of the training rows.

    Returns:
        ``(entries,)`` shifts, in [-10, 10]: an entry no training row has is all but never drawn.
    """
    bias = torch.zeros(logits.shape[1], dtype=logits.dtype)
    want = target.to(logits.dtype).clamp_min(1e-9)
    for _ in range(iterations):
        have = segments.softmax(logits + bias).mean(0).clamp_min(1e-9)
        bias = (bias + torch.log(want / have)).clamp(-10, 10)
    return bias
