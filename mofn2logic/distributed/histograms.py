"""Prefix histograms of a unit (docs/method.md, section 3.6) summed over shards.

A shard's histogram counts, for each N, its examples by c_N (the true literals among the first
N) and target, over the range [lo_N, hi_N] it observed. The whole data's range is the union of
the shards' ranges (its least and greatest c_N are the least and greatest over shards), so the
sum laid out on that range is the histogram one machine computes from all the examples, array
for array -- and the candidates and choices made from it are the same.
"""

from __future__ import annotations

import numpy as np

from mofn2logic.search.backends import PrefixHistogram


def _spread(h: PrefixHistogram, lo: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h's counts laid out on the wider ranges starting at `lo` with `offsets`."""
    size = int(offsets[-1])
    width = h.hi - h.lo + 1
    at = np.repeat(offsets[:-1] + (h.lo - lo), width) + (np.arange(int(h.offsets[-1])) - np.repeat(h.offsets[:-1], width))
    pos = np.zeros(size, np.int64)
    neg = np.zeros(size, np.int64)
    pos[at] = h.pos
    neg[at] = h.neg
    return pos, neg


def merge_histograms(a: PrefixHistogram | None, b: PrefixHistogram | None) -> PrefixHistogram | None:
    """The histogram of the union of two disjoint example sets (None: no examples)."""
    if a is None:
        return b
    if b is None:
        return a
    lo = np.minimum(a.lo, b.lo)
    hi = np.maximum(a.hi, b.hi)
    offsets = np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)
    pa, na = _spread(a, lo, offsets)
    pb, nb = _spread(b, lo, offsets)
    return PrefixHistogram(lo.astype(np.int64), hi.astype(np.int64), offsets, pa + pb, na + nb)


def merge_lists(a: list, b: list) -> list:
    """Unit by unit."""
    return [merge_histograms(x, y) for x, y in zip(a, b)]
