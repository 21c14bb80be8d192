"""How close is each ordering to the true optimum? (the paper's claim 1, measured; docs/method.md,
sections 3 and 7)

On a small layer (at most `max_inputs` non-zero weights per unit) every subset of a unit's
literals and every M is scored, which gives the optimal loss for each beta; each ordering's
chosen rule is compared with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mofn2logic.errors import SearchError
from mofn2logic.search.backends import NumpyBackend
from mofn2logic.search.complexity import complexity
from mofn2logic.search.layer import LayerProblem, search_unit

MAX_INPUTS = 12


def optimal_losses(lits: np.ndarray, y: np.ndarray, fan_in: int, betas: Sequence[float]) -> np.ndarray:
    """Minimal error + beta * complexity over all subsets of the columns of `lits` and all M."""
    s, n = lits.shape
    if n > MAX_INPUTS:
        raise SearchError(f"exhaustive search over {n} literals (2^{n} subsets) is too large; at most {MAX_INPUTS}")
    masks = ((np.arange(1 << n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.int32)  # (2^n, n)
    sizes = masks.sum(1)
    counts = lits.astype(np.int32) @ masks.T  # (S, 2^n)
    k = masks.shape[0]
    idx = np.arange(k)[None, :] * (n + 2) + counts
    hp = np.bincount(idx[y].ravel(), minlength=k * (n + 2)).reshape(k, n + 2)
    hn = np.bincount(idx[~y].ravel(), minlength=k * (n + 2)).reshape(k, n + 2)
    below_p = np.concatenate([np.zeros((k, 1), np.int64), np.cumsum(hp, 1)[:, :-1]], 1)  # c < M, M = 0..n+1
    below_n = np.concatenate([np.zeros((k, 1), np.int64), np.cumsum(hn, 1)[:, :-1]], 1)
    err = (below_p + (int((~y).sum()) - below_n)) / s
    m = np.broadcast_to(np.arange(n + 2)[None, :], err.shape)
    big_n = np.broadcast_to(sizes[:, None], err.shape)
    valid = m <= big_n + 1
    cx = complexity(big_n, m, fan_in)
    return np.array([np.min(np.where(valid, err + b * cx, np.inf)) for b in betas])


def optimality(problem: LayerProblem, betas: Sequence[float], orders: Sequence[str] = ("weight", "std", "gain", "best"),
               small_n: int = 3, pool_size: int = 16) -> dict[str, dict[str, float]]:
    """Per ordering: share of (unit, beta) pairs at the optimum, mean and max loss gap."""
    backend = NumpyBackend()
    gaps: dict[str, list[float]] = {o: [] for o in orders}
    for j in range(problem.weights.shape[0]):
        w = problem.weights[j]
        nz = np.flatnonzero(w != 0)
        t = problem.input_thresholds if problem.input_thresholds.ndim == 1 else problem.input_thresholds[j]
        lits = (problem.x[:, nz] >= t[nz]) ^ (w[nz] < 0)
        y = problem.targets[:, j]
        best = optimal_losses(lits, y, problem.fan_in, betas)
        for o in orders:
            u = search_unit(problem, j, betas=betas, order=o, backend=backend, small_n=small_n,
                            pool_size=pool_size)
            for r, opt in zip(u.rules, best):
                gaps[o].append(max(0.0, r.error + r.beta * r.complexity - opt))
    return {o: {"at_optimum": float(np.mean(np.array(g) <= 1e-12)), "mean_gap": float(np.mean(g)),
                "max_gap": float(np.max(g))} for o, g in gaps.items()}
