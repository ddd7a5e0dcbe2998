"""Which parent each row references through a foreign key that is not its context: the nearest parent (in
encoded lineage) to the parent lineage the row was generated with, among parents with room left."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

#: parents considered per row, nearest first
NEIGHBOURS = 10


def capacities(counts: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Each parent's room: its generated child count, topped up (at random, in proportion to count + 1) when the
    counts add up to fewer than ``rows``."""
    room = np.clip(np.nan_to_num(counts, nan=0.0).round(), 0, None).astype(np.int64)
    short = rows - int(room.sum())
    if short > 0 and len(room):
        weights = (room + 1) / (room + 1).sum()
        room += rng.multinomial(short, weights)
    return room


def match(rows: np.ndarray, parents: np.ndarray, room: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each row of ``rows`` (encoded parent lineages), the index of a parent in ``parents`` (their encoded
    lineages): the nearest one with room left (visiting rows in random order), else a random one with room."""
    n, m = len(rows), len(parents)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    room = room.copy()
    k = min(NEIGHBOURS, m)
    near = NearestNeighbors(n_neighbors=k).fit(parents).kneighbors(rows, return_distance=False)
    for i in rng.permutation(n):
        for j in near[i]:
            if room[j] > 0:
                out[i] = j
                room[j] -= 1
                break
        else:
            left = np.flatnonzero(room > 0)
            j = int(rng.choice(left)) if len(left) else int(rng.integers(m))
            out[i] = j
            room[j] -= 1
    return out
