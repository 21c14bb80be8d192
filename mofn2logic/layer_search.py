"""Rules for every unit of one layer, given its examples (METHOD.md section 2, plus our options).

Orderings of the literals: ``weight`` (|w|, the paper's), ``std`` (|w| * std of the input over
the examples: dead units sink), ``gain`` (the literal's own information gain). ``small`` is an
exact search over all subsets of at most K literals drawn from a pool of the best single
literals. ``best`` takes, per unit and beta, the lowest loss found by any of them (ties: the
first of weight, std, gain, small; then (N, M) order).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mofn2logic.backends import Backend
from mofn2logic.complexity import complexity
from mofn2logic.rules import FrontPoint, Literal, Rule, UnitRules
from mofn2logic.search import Candidates, candidates_from_histogram, choose, literal_matrix, pareto_front, weight_order
from mofn2logic.splits import literal_gain

ORDERS = ("weight", "std", "gain", "best")
BEST_METHODS = ("weight", "std", "gain", "small")


@dataclass(frozen=True, slots=True)
class LayerProblem:
    x: np.ndarray  # (S, n) input values of the examples
    weights: np.ndarray  # (U, n); zero weights are never literals
    targets: np.ndarray  # (S, U) bool: the binarised targets
    input_thresholds: np.ndarray  # (n,) shared (chain mode) or (U, n) per target (paper mode)
    fan_in: int
    head_thresholds: np.ndarray | None = None  # (U,), None for the output layer
    offsets: np.ndarray | None = None  # conv: (n, 3) of (channel, dy, dx) per literal index


@dataclass(frozen=True, slots=True)
class _Found:
    method: str
    cands: Candidates
    literals: Callable[[int], np.ndarray]  # candidate index -> literal indices


def small_candidates(lits: np.ndarray, y: np.ndarray, pool: np.ndarray, k: int, fan_in: int,
                     where: str = "") -> tuple[Candidates, list[np.ndarray]]:
    """Every "M of S" for subsets S of `pool` with |S| <= k, in (|S|, subset, M) order."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    ns, ms, errs, subsets = [0, 0], [0, 1], [n_neg, n_pos], [np.zeros(0, np.int64)] * 2
    sub = lits[:, pool].astype(np.int8)
    for big_n in range(1, min(k, len(pool)) + 1):
        combos = np.array(list(itertools.combinations(range(len(pool)), big_n)), dtype=np.int64)
        counts = sub[:, combos].sum(-1, dtype=np.int64)  # (S, C)
        idx = np.arange(len(combos))[None, :] * (big_n + 1) + counts
        hp = np.bincount(idx[y].ravel(), minlength=len(combos) * (big_n + 1)).reshape(-1, big_n + 1)
        hn = np.bincount(idx[~y].ravel(), minlength=len(combos) * (big_n + 1)).reshape(-1, big_n + 1)
        below_p = np.concatenate([np.zeros((len(combos), 1), np.int64), np.cumsum(hp, 1)], 1)  # c < M
        below_n = np.concatenate([np.zeros((len(combos), 1), np.int64), np.cumsum(hn, 1)], 1)
        err = below_p + (n_neg - below_n)  # (C, N + 2) for M = 0..N+1
        for ci in range(len(combos)):
            ns.extend([big_n] * (big_n + 2))
            ms.extend(range(big_n + 2))
            errs.extend(err[ci].tolist())
            subsets.extend([pool[combos[ci]]] * (big_n + 2))
    n_arr, m_arr = np.array(ns), np.array(ms)
    errors = np.array(errs, np.int64)
    e = n_pos + n_neg
    return Candidates(n_arr, m_arr, errors, errors / e, complexity(n_arr, m_arr, fan_in, where)), subsets


def search_unit(problem: LayerProblem, j: int, base: np.ndarray | None, *, betas: Sequence[float], order: str,
                backend: Backend, small_n: int, pool_size: int, where: str = "") -> UnitRules:
    w = problem.weights[j]
    t = problem.input_thresholds if problem.input_thresholds.ndim == 1 else problem.input_thresholds[j]
    neg = w < 0
    lits = (base ^ neg) if base is not None else literal_matrix(problem.x, t, neg)
    y = np.ascontiguousarray(problem.targets[:, j])
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    methods = BEST_METHODS if order == "best" else (order,)
    gains = literal_gain(lits, y) if any(m in ("gain", "small") for m in methods) else None
    found: list[_Found] = []
    for method in methods:
        if method == "small":
            nz = np.flatnonzero(w != 0)
            pool = nz[np.argsort(-gains[nz], kind="stable")][:pool_size]
            cands, subsets = small_candidates(lits, y, pool, small_n, problem.fan_in, where)
            found.append(_Found(method, cands, subsets.__getitem__))
            continue
        key = {"weight": None, "std": np.abs(w) * problem.x.std(0), "gain": gains}[method]
        ordered = weight_order(w, key)
        h = backend.prefix_histogram(np.ascontiguousarray(lits[:, ordered]), y)
        cands = candidates_from_histogram(h, n_pos, n_neg, problem.fan_in, where)
        found.append(_Found(method, cands, lambda i, o=ordered, c=cands: o[: c.n[i]]))
    allc = found[0].cands if len(found) == 1 else Candidates(*(np.concatenate([getattr(f.cands, a) for f in found])
                                                                for a in ("n", "m", "errors", "error", "complexity")))
    starts = np.cumsum([0] + [len(f.cands.n) for f in found])

    def locate(i: int) -> tuple[_Found, int]:
        k = int(np.searchsorted(starts, i, side="right") - 1)
        return found[k], i - int(starts[k])

    rules = []
    for beta, i in zip(betas, choose(allc, tuple(betas))):
        f, li = locate(i)
        idx = f.literals(li)
        rules.append(Rule(beta=float(beta), n=int(allc.n[i]), m=int(allc.m[i]), error=float(allc.error[i]),
                          complexity=float(allc.complexity[i]), method=f.method,
                          literals=tuple(_literal(problem, t, int(k), bool(w[k] > 0)) for k in idx)))
    front = tuple(FrontPoint(int(allc.n[i]), int(allc.m[i]), float(allc.error[i]), float(allc.complexity[i]))
                  for i in pareto_front(allc))
    head = None if problem.head_thresholds is None else float(problem.head_thresholds[j])
    return UnitRules(unit=j, threshold=head, rules=tuple(rules), front=front)


def _literal(problem: LayerProblem, t: np.ndarray, k: int, positive: bool) -> Literal:
    if problem.offsets is None:
        return Literal(input=k, threshold=float(t[k]), positive=positive)
    ch, dy, dx = problem.offsets[k]
    return Literal(input=int(ch), threshold=float(t[k]), positive=positive, offset=(int(dy), int(dx)))


def search_layer(problem: LayerProblem, *, betas: Sequence[float], order: str, backend: Backend,
                 small_n: int = 3, pool_size: int = 16, where: str = "", progress: bool | None = None) -> tuple[UnitRules, ...]:
    from tqdm.auto import tqdm
    import sys

    base = problem.x >= problem.input_thresholds if problem.input_thresholds.ndim == 1 else None
    units = problem.weights.shape[0]
    out = []
    for j in tqdm(range(units), desc=f"search {where}".strip(), unit="unit", leave=False, file=sys.stderr,
                  disable=(not progress) if progress is not None else (units < 8 or None)):
        out.append(search_unit(problem, j, base, betas=betas, order=order, backend=backend, small_n=small_n,
                               pool_size=pool_size, where=where))
    return tuple(out)
