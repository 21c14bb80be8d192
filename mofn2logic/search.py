"""The M-of-N search for one unit (METHOD.md section 2), exact and in one pass.

Literals are taken in a fixed order; c_N(e) counts the true literals among the first N on
example e. "M of the first N" fires iff c_N(e) >= M, so the histograms of c_N split by target
give the error of every (N, M) by cumulative sums. Within a run of M values with the same
error only the first (for beta = 0 ties) and the cheapest (M = 0 and M = N + 1 have complexity
0) can win, so the candidate table keeps, for each N: M = 0, every M in (lo_N, hi_N + 1], and
M = N + 1 -- exactly the reference's optimum for every beta, with its tie-break (first in
(N ascending, M ascending) order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mofn2logic.backends import PrefixHistogram
from mofn2logic.complexity import complexity


@dataclass(frozen=True, slots=True)
class Candidates:
    """Every candidate rule worth scoring, in (N, M) order: N literals of `order`, threshold M."""

    n: np.ndarray
    m: np.ndarray
    errors: np.ndarray  # misclassified examples (integers)
    error: np.ndarray  # errors / E
    complexity: np.ndarray


def candidates_from_histogram(h: PrefixHistogram, n_pos: int, n_neg: int, fan_in: int, where: str = "") -> Candidates:
    width = h.hi - h.lo + 1
    n_max = len(width) - 1
    big_ns = np.arange(n_max + 1)
    extra = (h.hi + 1 < big_ns + 1).astype(np.int64)  # M = N + 1 not already the segment's last
    sizes = 1 + width + extra
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    total = int(sizes.sum())
    n_arr = np.repeat(big_ns, sizes)
    m_arr = np.zeros(total, np.int64)
    fp = np.zeros(total, np.int64)
    fn = np.zeros(total, np.int64)
    fp[base] = n_neg  # M = 0: always fires
    # Segment: M = lo + 1 + k for k = 0..width-1; FN = positives with c < M, FP = negatives with c >= M.
    seg = int(h.offsets[-1])
    k = np.arange(seg) - np.repeat(h.offsets[:-1], width)
    pos_at = np.repeat(base + 1, width) + k
    cum_p = np.cumsum(h.pos)
    cum_n = np.cumsum(h.neg)
    start_p = np.repeat(np.concatenate([[0], cum_p])[h.offsets[:-1]], width)
    start_n = np.repeat(np.concatenate([[0], cum_n])[h.offsets[:-1]], width)
    m_arr[pos_at] = np.repeat(h.lo, width) + 1 + k
    fn[pos_at] = cum_p - start_p
    fp[pos_at] = n_neg - (cum_n - start_n)
    ex = base[extra == 1] + sizes[extra == 1] - 1
    m_arr[ex] = big_ns[extra == 1] + 1
    fn[ex] = n_pos
    errors = fp + fn
    e = n_pos + n_neg
    return Candidates(n_arr, m_arr, errors, errors / e, complexity(n_arr, m_arr, fan_in, where))


def choose(c: Candidates, betas: tuple[float, ...]) -> list[int]:
    """Index of the best candidate for each beta; equal losses go to the first in (N, M) order."""
    return [int(np.argmin(c.error + beta * c.complexity)) for beta in betas]


def pareto_front(c: Candidates) -> np.ndarray:
    """Indices of the non-dominated (complexity, error) candidates, by increasing complexity.
    Equal points keep the first in (N, M) order."""
    idx = np.lexsort((np.arange(len(c.n)), c.error, c.complexity))
    err = c.error[idx]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], err[:-1]]))
    return idx[err < best_before]


def literal_matrix(x: np.ndarray, thresholds: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Truth values (E, n) of the literals: x >= t, or x < t for negative ones."""
    return (x >= thresholds) ^ negative


def weight_order(w: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
    """Inputs with w != 0 by `key` (default |w|) descending; ties by input index."""
    key = np.abs(w) if key is None else key
    nz = np.flatnonzero(w != 0)
    return nz[np.argsort(-key[nz], kind="stable")]
