"""Conditional vectors and training-by-sampling (Xu et al. 2019), vectorized in torch."""

from __future__ import annotations

import torch

from synthgen.transform.layout import OutputLayout


class ConditionalSampler:
    """Draws conditional vectors and real rows that match them, with no per-row Python.

    For training, a category block is picked uniformly and a category within it by log-frequency
    (so rare categories are seen); real rows are then drawn among those having that category.
    ``frequencies`` (the plain category shares) is what unconditioned sampling uses later.
    """

    def __init__(self, data: torch.Tensor, layout: OutputLayout):
        device = data.device
        self.n_rows = data.shape[0]
        self.n_spans = len(layout.cond_spans)
        self.cond_dim = layout.cond_dim
        widths = torch.tensor([w for _, w in layout.cond_spans], device=device)
        self.offsets = torch.cumsum(widths, 0) - widths  # first cond position of each span
        max_w = int(widths.max()) if self.n_spans else 1
        self.widths, self.max_w = widths, max_w
        order, starts, counts, codes = [], [], [], []
        for j, (start, width) in enumerate(layout.cond_spans):
            code = data[:, start:start + width].argmax(dim=1)
            count = torch.bincount(code, minlength=width).float()
            order.append(torch.argsort(code, stable=True))
            starts.append(torch.cumsum(count, 0) - count + j * self.n_rows)
            counts.append(count)
            codes.append(code)
        if self.n_spans:
            self.order = torch.cat(order)
            self.starts = torch.cat(starts).long()
            self.counts = torch.cat(counts)
            self.codes = torch.stack(codes, dim=1)  # (rows, spans): each row's slot in each span
            self.count_over(self.counts, self.n_rows)
        self.log_cum = self._log_cumulative(counts)

    def _log_cumulative(self, counts: list[torch.Tensor]) -> torch.Tensor:
        """Per span, the cumulative log-frequency distribution over its slots (padded with ones)."""
        log_cum = torch.ones(self.n_spans, self.max_w, device=self.offsets.device)
        for j, count in enumerate(counts):
            logf = torch.log1p(count)
            log_cum[j, :len(count)] = torch.cumsum(logf / logf.sum(), 0)
        return log_cum

    def count_over(self, counts: torch.Tensor, n_rows: int) -> None:
        """Set ``frequencies`` from category ``counts`` over ``n_rows`` rows (e.g. summed over all training
        processes); training-by-sampling keeps this sampler's own rows."""
        self.frequencies = counts / n_rows / self.n_spans

    def private(self, frequencies: object) -> ConditionalSampler:
        """This sampler under DP: training conditions from noisy ``frequencies`` (cond-slot shares).

        Drops what training-by-sampling read off the rows (per-category row lists and counts);
        only ``positions_of`` still reads a row's own categories, inside its per-sample gradient.
        """
        freq = torch.as_tensor(frequencies, dtype=torch.float32, device=self.offsets.device)
        if freq.shape != (self.cond_dim,):
            raise ValueError(f"expected {self.cond_dim} noisy frequencies, got {tuple(freq.shape)}")
        self.frequencies = freq
        noisy = freq * self.n_rows * self.n_spans
        self.log_cum = self._log_cumulative(list(noisy.split(self.widths.tolist())))
        del self.order, self.starts, self.counts
        return self

    def positions_of(self, rows: torch.Tensor) -> torch.Tensor:
        """Cond position of each given row for one of its spans picked at random."""
        span = torch.randint(self.n_spans, (rows.shape[0],), device=rows.device)
        return self.offsets[span] + self.codes[rows, span]

    def sample_train(self, batch: int, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot cond vectors, cond positions) for a training batch."""
        dev = self.log_cum.device
        span = torch.randint(self.n_spans, (batch,), device=dev, generator=gen)
        u = torch.rand(batch, 1, device=dev, generator=gen)
        within = (self.log_cum[span] < u).sum(dim=1).clamp_max(self.log_cum.shape[1] - 1)
        pos = self.offsets[span] + within
        return self.one_hot(pos), pos

    def rows_for(self, pos: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Indices of real rows having the category at each cond position (uniform among them)."""
        u = torch.rand(pos.shape[0], device=pos.device, generator=gen)
        pick = (u * self.counts[pos]).long().clamp_max(self.counts[pos].long() - 1)
        return self.order[self.starts[pos] + pick]

    def one_hot(self, pos: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(pos, self.cond_dim).float()
