"""A plain, one-rule-at-a-time implementation of ../shared/METHOD.md, for tests and benchmarks.

It follows the reference's algorithm: splits by brute force over the observed values (condition
x >= v), every candidate rule evaluated on every example. Only the arithmetic kernels that make
equal values tie exactly (the gain of a cut from its class counts, the exact log of M*C(N,M))
are written the same way as the library's.
"""

from __future__ import annotations

import math

import numpy as np

from mofn2logic.search.splits import GAIN_EPS, split_gain, xlogx_table


def plain_split(x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    x = np.asarray(x)
    vals = np.unique(x)
    table = xlogx_table(len(x))
    best_gain, best = GAIN_EPS, None
    for i in range(1, len(vals)):
        v = vals[i]
        left = np.bincount(y[x < v], minlength=n_classes)
        right = np.bincount(y[x >= v], minlength=n_classes)
        g = float(split_gain(left, right, table))
        if g > best_gain:  # strict: ties keep the lowest cut
            best_gain, best = g, i
    if best is None:
        return 0.0
    lo, hi = vals[best - 1], vals[best]
    mid = lo + (hi - lo) / 2
    mid = mid if mid > lo else hi
    return float(np.asarray(mid, dtype=x.dtype))


def plain_complexity(big_n: int, m: int, n: int) -> float:
    if m == 0 or m > big_n:
        return 0.0
    mmax = math.ceil((n + 1) / 2)
    return math.log(m * math.comb(big_n, m)) / math.log(mmax * math.comb(n, mmax))


def plain_order(w: np.ndarray) -> list[int]:
    return sorted((i for i in range(len(w)) if w[i] != 0), key=lambda i: (-abs(w[i]), i))


def plain_search(x: np.ndarray, thresholds: np.ndarray, w: np.ndarray, y: np.ndarray,
                 betas: tuple[float, ...], order: list[int] | None = None, max_n: int | None = None):
    """Best (n, m, error, complexity, literal indices) per beta, and the full candidate list."""
    n_inputs = len(w)
    order = plain_order(w) if order is None else order
    lits = [(x[:, i] >= thresholds[i]) if w[i] > 0 else (x[:, i] < thresholds[i]) for i in order]
    best = {b: (math.inf, None) for b in betas}
    allc = []
    top = len(order) if max_n is None else min(max_n, len(order))
    for big_n in range(top + 1):
        for m in range(big_n + 2):
            fires = np.sum(np.array(lits[:big_n], dtype=np.int64), axis=0) >= m if big_n else np.full(len(y), m == 0)
            err = float(np.mean(fires != y))
            cx = plain_complexity(big_n, m, n_inputs)
            allc.append((big_n, m, err, cx))
            for b in betas:
                loss = err + b * cx
                if loss < best[b][0]:
                    best[b] = (loss, (big_n, m, err, cx, tuple(order[:big_n])))
    return {b: v[1] for b, v in best.items()}, allc


def plain_front(allc):
    ranked = sorted(range(len(allc)), key=lambda i: (allc[i][3], allc[i][2], i))
    front, best_err = [], math.inf
    for i in ranked:
        if allc[i][2] < best_err:
            front.append(allc[i])
            best_err = allc[i][2]
    return front
