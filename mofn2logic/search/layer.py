"""Rules for every unit of one layer, given its examples (docs/method.md, section 3, plus our options).

Orderings of the literals: ``weight`` (|w|, the paper's), ``std`` (|w| * std of the input over
the examples: dead units sink), ``gain`` (the literal's own information gain). ``small`` is an
exact search over all subsets of at most K literals drawn from a pool of the best single
literals. ``exact`` adds the threshold-aware exact search for rules of at most K literals and the
local improvement of the best rule per beta (`mofn2logic.search.exact`) to the paper's weight
prefixes. ``best`` takes, per unit and beta, the lowest loss found by any of them (ties: the
first of weight, std, gain, small, exact, local; then (N, M) order). These options are ours, not
the paper's: docs/method.md, sections 3.8 and 3.10.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mofn2logic.ir.rules import FrontPoint, ScoredRule, ThresholdLiteral, UnitRules
from mofn2logic.search.backends import Backend, search_threads, set_search_threads, thread_map
from mofn2logic.search.complexity import complexity
from mofn2logic.search.exact import (
    ExactOptions,
    Literals,
    exact_small,
    improve,
    layer_cuts,
    top_literals,
    unit_literals,
    validation_mask,
)
from mofn2logic.search.splits import literal_gain
from mofn2logic.search.unit import (
    Candidates,
    SparseRows,
    candidates_from_histogram,
    choose,
    pareto_front,
    prefix_candidates,
    weight_order,
)

ORDERS = ("weight", "std", "gain", "best", "exact")
PREFIX_METHODS = ("weight", "std", "gain")  # searches of the prefixes of one literal order
# The small-N exact search scores every subset of the pool: bounded up front (time) and in chunks (memory).
MAX_SMALL_SUBSETS = 250_000
MAX_EXACT_SUBSETS = 2_000_000  # the bit-packed search is about 20 times faster per subset
SMALL_CHUNK_BYTES = 256 * 1024**2


def small_subsets(pool_size: int, small_n: int) -> int:
    """How many literal subsets the small-N search scores per unit."""
    return sum(math.comb(pool_size, k) for k in range(1, min(small_n, pool_size) + 1))


BEST_METHODS = ("weight", "std", "gain", "small", "exact", "local")
EXACT_METHODS = ("weight", "exact", "local")


def order_methods(order: str) -> tuple[str, ...]:
    """The searches an ordering runs, in tie-break order."""
    return {"best": BEST_METHODS, "exact": EXACT_METHODS}.get(order, (order,))


@dataclass(frozen=True, slots=True)
class LayerProblem:
    x: np.ndarray  # (S, n) input values of the examples
    weights: np.ndarray  # (U, n); zero weights are never literals
    targets: np.ndarray  # (S, U) bool: the binarised targets
    input_thresholds: np.ndarray  # (n,) shared (chain mode) or (U, n) per target (paper mode)
    fan_in: int
    head_thresholds: np.ndarray | None = None  # (U,), None for the output layer
    offsets: np.ndarray | None = None  # conv: (n, 3) of (channel, dy, dx) per literal index
    # the exact search may test each input at its quantile cuts (paper mode), not only at input_thresholds
    free_thresholds: bool = False
    # thresholds written into the rules instead of input_thresholds: a layer fitted on the program's atoms
    # (x holds coded atoms and input_thresholds the codes' cut) records the chain's thresholds
    recorded_thresholds: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    method: str
    cands: Candidates
    literals: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]  # candidate -> (inputs, thresholds, positive)


def small_candidates(lits: np.ndarray, y: np.ndarray, pool: np.ndarray, k: int, fan_in: int,
                     where: str = "") -> tuple[Candidates, list[np.ndarray]]:
    """Every "M of S" for subsets S of `pool` with |S| <= k, in (|S|, subset, M) order; complexity with the
    unit's fan-in (the small-N exact search, docs/method.md, section 3)."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    ns, ms, errs, subsets = [0, 0], [0, 1], [n_neg, n_pos], [np.zeros(0, np.int64)] * 2
    sub = lits[:, pool].astype(np.int8)  # lits: (S, n) example-major
    for big_n in range(1, min(k, len(pool)) + 1):
        combos = np.array(list(itertools.combinations(range(len(pool)), big_n)), dtype=np.int64)
        hp = np.zeros((len(combos), big_n + 1), np.int64)
        hn = np.zeros_like(hp)
        step = max(1, SMALL_CHUNK_BYTES // max(1, len(sub) * big_n * 8))  # bound the (S, C, N) gather
        for c0 in range(0, len(combos), step):
            part = combos[c0:c0 + step]
            counts = sub[:, part].sum(-1, dtype=np.int64)  # (S, C)
            idx = np.arange(len(part))[None, :] * (big_n + 1) + counts
            hp[c0:c0 + len(part)] = np.bincount(idx[y].ravel(), minlength=len(part) * (big_n + 1)).reshape(-1, big_n + 1)
            hn[c0:c0 + len(part)] = np.bincount(idx[~y].ravel(), minlength=len(part) * (big_n + 1)).reshape(-1, big_n + 1)
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


@dataclass(frozen=True, slots=True)
class _LayerData:
    """Per-layer arrays shared by every unit, literal-major (n, S) for cache-friendly passes."""

    xt: np.ndarray | None  # None where no search reads it (prefix orders, compiled or on torch)
    base_t: np.ndarray | None  # chain mode: x >= t for the shared thresholds
    std: np.ndarray | None
    fit: np.ndarray | None = None  # exact search: the examples it scores on (the rest choose among near-equals)
    cut_values: list[np.ndarray] | None = None  # free thresholds: each input's quantile cuts
    bins: np.ndarray | None = None  # and each example's bin among them (n, S) uint8
    exact: ExactOptions = field(default_factory=ExactOptions)
    rows: SparseRows | None = None  # chain mode, compiled prefix search: base_t as sparse rows


def fused(backend: Backend) -> bool:
    """Whether the backend runs the prefix searches as one compiled pass (`unit.prefix_candidates`)."""
    return getattr(backend, "name", "") == "numba"


def _layer_data(problem: LayerProblem, order: str, exact: ExactOptions | None = None,
                backend: Backend | None = None, batched: bool = False) -> _LayerData:
    exact = exact or ExactOptions()
    methods = order_methods(order)
    shared = problem.input_thresholds.ndim == 1
    compiled = backend is not None and fused(backend)
    # the prefix orders need neither the transposed examples nor the dense literal matrix: the compiled
    # search reads sparse rows made straight from x, the torch one moves x to its device
    direct = compiled and shared and all(m in ("weight", "std") for m in methods)
    xt = None if direct or batched else np.ascontiguousarray(problem.x.T)
    base_t = (xt >= problem.input_thresholds[:, None]) if shared and xt is not None else None
    rows = None
    if direct:
        rows = SparseRows.at_least(problem.x, problem.input_thresholds)
    elif compiled and base_t is not None and any(m in PREFIX_METHODS for m in methods):
        rows = SparseRows.of(base_t)
    std = problem.x.std(0) if order in ("std", "best") else None
    fit = cut_values = bins = None
    if "exact" in order_methods(order):
        fit = ~validation_mask(problem.x.shape[0], exact.validation)
        if problem.free_thresholds and exact.cuts > 0:
            cut_values, bins = layer_cuts(problem.x, exact.cuts)
    return _LayerData(xt, base_t, std, fit, cut_values, bins, exact, rows)


def _empty_candidates() -> Candidates:
    z = np.zeros(0, np.int64)
    return Candidates(z, z, z, np.zeros(0), np.zeros(0))


class UnitExamples:
    """What a unit's searches read of its examples, here from the examples themselves (`ShardedUnit` in
    `mofn2logic.distributed.best` reads the same from a cluster's shards): the targets, each literal's
    information gain, the exact search's candidate literals, the prefix searches' candidates, the paper
    literals' rows for the small-N search, and `xt` for `Literals.truth`."""

    def __init__(self, problem: LayerProblem, j: int, data: _LayerData, backend: Backend) -> None:
        self.problem, self.data, self.backend = problem, data, backend
        self.w = problem.weights[j]
        self.t = problem.input_thresholds if problem.input_thresholds.ndim == 1 else problem.input_thresholds[j]
        self.neg = self.w < 0
        self.base_t = data.base_t if data.base_t is not None or data.xt is None else data.xt >= self.t[:, None]
        self.y = np.ascontiguousarray(problem.targets[:, j])
        self.xt = data.xt
        self.fit = data.fit
        self.rows = data.rows

    def gains(self) -> np.ndarray:
        return literal_gain(self.base_t ^ self.neg[:, None], self.y)

    def literals(self) -> Literals:
        assert self.fit is not None and self.xt is not None and self.base_t is not None
        return unit_literals(self.xt, self.base_t, self.t, self.w, self.y, self.fit, self.data.cut_values,
                             self.data.bins)

    def paper_rows(self, pool: np.ndarray) -> np.ndarray:
        """(S, P) truth of the paper literals of the inputs `pool`, example-major."""
        assert self.base_t is not None
        return (self.base_t[pool] ^ self.neg[pool][:, None]).T

    def prefix(self, ordered: np.ndarray, fan_in: int, where: str) -> Candidates:
        n_pos, n_neg = int(self.y.sum()), int((~self.y).sum())
        if fused(self.backend):
            self.rows = self.rows or SparseRows.of(self.base_t)  # type: ignore[arg-type]
            return prefix_candidates(self.rows, ordered, self.neg, self.y, fan_in, where)
        assert self.base_t is not None
        h = self.backend.prefix_histogram(self.base_t[ordered] ^ self.neg[ordered][:, None], self.y)
        return candidates_from_histogram(h, n_pos, n_neg, fan_in, where)


def search_unit(problem: LayerProblem, j: int, data: _LayerData | None = None, *, betas: Sequence[float],
                order: str, backend: Backend, small_n: int = 3, pool_size: int = 16, where: str = "",
                exact: ExactOptions | None = None) -> UnitRules:
    data = data or _layer_data(problem, order, exact, backend)
    return unit_rules(problem, j, UnitExamples(problem, j, data, backend), std=data.std, opts=data.exact, betas=betas,
                      order=order, backend=backend, small_n=small_n, pool_size=pool_size, where=where)


def unit_rules(problem: LayerProblem, j: int, ex, *, std: np.ndarray | None, opts: ExactOptions,
               betas: Sequence[float], order: str, backend: Backend, small_n: int = 3, pool_size: int = 16,
               where: str = "") -> UnitRules:
    """Unit j's rules from what its searches read of the examples (`ex`: a `UnitExamples`, or the same read
    from a cluster's shards); `problem` gives the weights, thresholds and the layer's geometry."""
    w, t, y = ex.w, ex.t, ex.y
    e = len(y)
    methods = order_methods(order)
    gains = ex.gains() if any(m in ("gain", "small") for m in methods) else None
    lits: Literals | None = ex.literals() if any(m in ("exact", "local") for m in methods) else None

    def paper_literals(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return idx, t[idx], w[idx] > 0

    def pool_literals(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert lits is not None
        return lits.inputs[idx], lits.thresholds[idx], lits.positive[idx]

    found: list[_Found] = []
    for method in methods:
        if method == "small":
            assert gains is not None
            nz = np.flatnonzero(w != 0)
            pool = nz[np.argsort(-gains[nz], kind="stable")][:pool_size]
            cands, subsets = small_candidates(ex.paper_rows(pool), y, np.arange(len(pool)), small_n, problem.fan_in,
                                              where)
            found.append(_Found(method, cands, lambda i, s=subsets, p=pool: paper_literals(p[s[i]])))  # type: ignore[misc]
            continue
        if method == "exact":
            assert lits is not None and ex.fit is not None
            forced = lits.paper[weight_order(w)[: opts.small_n]]
            pool = top_literals(lits, opts.pool, forced)
            # with free thresholds one input can give several literals: N stays within the fan-in all the same
            sr = exact_small(lits, ex.xt, y, pool, min(opts.small_n, problem.fan_in), ex.fit, opts.shortlist, backend)
            cands = Candidates(sr.n, sr.m, sr.errors, sr.errors / e, complexity(sr.n, sr.m, problem.fan_in, where))
            found.append(_Found(method, cands, lambda i, s=sr.subsets: pool_literals(s[i])))  # type: ignore[misc]
            continue
        if method == "local":
            local, local_of = _local(found, lits, ex.xt, y, betas, problem.fan_in, opts, where, pool_literals)
            found.append(local)
            continue
        key = {"weight": None, "std": None if std is None else np.abs(w) * std, "gain": gains}[method]
        ordered = weight_order(w, key)
        cands = ex.prefix(ordered, problem.fan_in, where)
        found.append(_Found(method, cands, lambda i, o=ordered, c=cands: paper_literals(o[: c.n[i]])))  # type: ignore[misc]
    allc, locate = _union(found)
    chosen = choose(allc, tuple(betas))
    if "local" in methods:
        # each beta's rule is its own improvement (when a move was made), never another beta's: the rules of
        # a beta do not depend on which other betas were asked for
        base, _ = _union(found[:-1])
        offset = len(base.n)
        chosen = [offset + local_of[k] if k in local_of else i
                  for k, i in enumerate(choose(base, tuple(betas)))]
    rules = []
    made: dict[tuple[int, float, bool], ThresholdLiteral] = {}  # betas share literals: each is made once

    def literal(k: int, th: float, p: bool) -> ThresholdLiteral:
        key = (k, th, p)
        got = made.get(key)
        if got is None:
            got = made[key] = _literal(problem, k, th, p)
        return got

    for beta, i in zip(betas, chosen):
        f, li = locate(i)
        ins, ths, pos = f.literals(li)
        rules.append(ScoredRule(beta=float(beta), n=int(allc.n[i]), m=int(allc.m[i]), error=float(allc.error[i]),
                                complexity=float(allc.complexity[i]), method=f.method,
                                literals=tuple(literal(k, th, p) for k, th, p in zip(ins.tolist(), ths.tolist(),
                                                                                    pos.tolist()))))
    front = tuple(FrontPoint(int(allc.n[i]), int(allc.m[i]), float(allc.error[i]), float(allc.complexity[i]))
                  for i in pareto_front(allc))
    head = None if problem.head_thresholds is None else float(problem.head_thresholds[j])
    return UnitRules(unit=j, threshold=head, rules=tuple(rules), front=front)


def _union(found: list[_Found]) -> tuple[Candidates, Callable[[int], tuple[_Found, int]]]:
    """Every method's candidates in one list (methods in tie-break order), and candidate -> (method, index)."""
    allc = found[0].cands if len(found) == 1 else Candidates(*(np.concatenate([getattr(f.cands, a) for f in found])
                                                                for a in ("n", "m", "errors", "error", "complexity")))
    starts = np.cumsum([0] + [len(f.cands.n) for f in found])

    def locate(i: int) -> tuple[_Found, int]:
        k = int(np.searchsorted(starts, i, side="right") - 1)
        return found[k], i - int(starts[k])

    return allc, locate


def _local(found: list[_Found], lits: Literals | None, xt: np.ndarray | None, y: np.ndarray, betas: Sequence[float],
           fan_in: int, opts: ExactOptions, where: str, pool_literals) -> tuple[_Found, dict[int, int]]:
    """Local improvement (docs/method.md, section 3.10) of each beta's best rule among the other methods'
    candidates: one candidate per beta whose rule it improved, and beta index -> that candidate. `xt`: the
    examples `lits.truth` reads (None where the literals carry their own rows)."""
    assert lits is not None
    if opts.improve_steps <= 0 or not found:
        return _Found("local", _empty_candidates(), pool_literals), {}
    allc, locate = _union(found)
    index = {(int(k), float(th), bool(p)): i
             for i, (k, th, p) in enumerate(zip(lits.inputs, lits.thresholds, lits.positive))}
    todo: list[tuple[int, np.ndarray, int, float]] = []
    for k, (beta, i) in enumerate(zip(betas, choose(allc, tuple(betas)))):
        n, m = int(allc.n[i]), int(allc.m[i])
        if n == 0 or m == 0 or m > n or n > opts.improve_max_n:
            continue  # constants, and rules too long for the move scan
        f, li = locate(i)
        ins, ths, pos = f.literals(li)
        start = np.array([index[(int(a), float(th), bool(p))] for a, th, p in zip(ins, ths, pos)], np.int64)
        todo.append((k, start, m, float(beta)))
    done = thread_map(lambda a: improve(lits, xt, y, a[1], a[2], a[3], fan_in, opts, where), todo,
                      search_threads())
    ns: list[int] = []
    ms: list[int] = []
    errs: list[int] = []
    subs: list[np.ndarray] = []
    of: dict[int, int] = {}
    for (k, *_), imp in zip(todo, done):
        if imp.moves:
            of[k] = len(ns)
            ns.append(len(imp.literals))
            ms.append(imp.m)
            errs.append(imp.errors)
            subs.append(imp.literals)
    if not ns:
        return _Found("local", _empty_candidates(), pool_literals), {}
    n_arr, m_arr, err_arr = np.array(ns, np.int64), np.array(ms, np.int64), np.array(errs, np.int64)
    cands = Candidates(n_arr, m_arr, err_arr, err_arr / len(y), complexity(n_arr, m_arr, fan_in, where))
    return _Found("local", cands, lambda j, s=subs: pool_literals(s[j])), of  # type: ignore[misc]


def _literal(problem: LayerProblem, k: int, threshold: float, positive: bool) -> ThresholdLiteral:
    if problem.recorded_thresholds is not None:
        threshold = problem.recorded_thresholds[k]
    if problem.offsets is None:
        return ThresholdLiteral(input=k, threshold=float(threshold), positive=positive)
    ch, dy, dx = problem.offsets[k]
    return ThresholdLiteral(input=int(ch), threshold=float(threshold), positive=positive, offset=(int(dy), int(dx)))


_SHARED: dict = {}  # the layer's problem, inherited by forked workers instead of pickled


def _work(j: int) -> UnitRules:
    sh = _SHARED
    return search_unit(sh["problem"], j, sh["data"], betas=sh["betas"], order=sh["order"], backend=sh["backend"],
                       small_n=sh["small_n"], pool_size=sh["pool_size"], where=sh["where"])


POOL_CELLS = 2 * 10**8  # below this many literal-example cells per layer, forking costs more than it saves


def _batched(problem: LayerProblem, data: _LayerData, betas: Sequence[float], order: str, backend: Backend,
             where: str) -> tuple[UnitRules, ...]:
    """All units at once on the torch device (`mofn2logic.search.batched`); literals made once per layer."""
    from mofn2logic.search.batched import search_layer_batched

    made: dict[tuple[int, float, bool], ThresholdLiteral] = {}

    def literal(j: int, k: int, th: float, p: bool) -> ThresholdLiteral:
        key = (k, th, p)
        got = made.get(key)
        if got is None:
            got = made[key] = _literal(problem, k, th, p)
        return got

    return search_layer_batched(problem, data, betas=betas, order=order, backend=backend, where=where, literal=literal)


def default_workers(backend: Backend, cells: int = POOL_CELLS) -> int:
    """Processes for the per-unit search: the CPU cores for the numpy and numba backends on a
    large layer (units are independent); 1 for torch, which threads (and owns a GPU) itself."""
    import os

    if getattr(backend, "name", "") not in ("numpy", "numba") or cells < POOL_CELLS:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _pool_worker() -> None:
    """A forked search worker: one thread; SIGTERM (the pool's end) kills it at once, whatever it waits on
    (a Python-level handler inherited from the CLI runs only between bytecodes, and a worker blocked on
    the pool's queue lock was once seen never to run it: the pool's exit then waited forever); Ctrl-C
    is the parent's to handle."""
    import signal

    set_search_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def search_layer(problem: LayerProblem, *, betas: Sequence[float], order: str, backend: Backend,
                 small_n: int = 3, pool_size: int = 16, where: str = "", progress: bool | None = None,
                 workers: int | None = None, exact: ExactOptions | None = None) -> tuple[UnitRules, ...]:
    import multiprocessing
    import sys

    from tqdm.auto import tqdm

    units = problem.weights.shape[0]
    if getattr(backend, "name", "").startswith("torch") and order in PREFIX_METHODS:
        return _batched(problem, _layer_data(problem, order, exact, backend, batched=True), betas, order, backend, where)
    data = _layer_data(problem, order, exact, backend)
    units_cells = problem.x.shape[0] * problem.x.shape[1] * problem.weights.shape[0]
    # the compiled prefix search releases the GIL: its units share the process on threads (no fork, no copies)
    threaded = fused(backend) and all(m in PREFIX_METHODS for m in order_methods(order))
    if threaded:
        workers = search_threads() if workers is None else workers
    else:
        workers = default_workers(backend, units_cells) if workers is None else workers
    bar = tqdm(total=units, desc=f"search {where}".strip(), unit="unit", leave=False, file=sys.stderr,
               disable=(not progress) if progress is not None else (units < 8 or None))
    _SHARED.update(problem=problem, data=data, betas=tuple(betas), order=order, backend=backend, small_n=small_n,
                   pool_size=pool_size, where=where)
    try:
        if threaded and workers > 1 and units > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, units)) as ex:
                out = []
                for u in ex.map(_work, range(units)):
                    out.append(u)
                    bar.update(1)
        elif workers > 1 and units >= 4 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(min(workers, units), initializer=_pool_worker) as pool:
                out = []
                for u in pool.imap(_work, range(units)):
                    out.append(u)
                    bar.update(1)
        else:
            out = []
            for j in range(units):
                out.append(_work(j))
                bar.update(1)
    finally:
        _SHARED.clear()
        bar.close()
    return tuple(out)
