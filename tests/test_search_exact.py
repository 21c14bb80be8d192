"""The threshold-aware exact search for small rules and the local improvement (docs/method.md,
section 3.10) against brute force and against a plain re-implementation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from plain_method import plain_complexity

from mofn2logic.errors import SearchError
from mofn2logic.search.backends import NumbaBackend, NumpyBackend, TorchBackend, search_threads, set_search_threads
from mofn2logic.search.exact import (
    ExactOptions,
    exact_small,
    improve,
    layer_cuts,
    pack_bits,
    quantile_cuts,
    top_literals,
    unit_literals,
    validation_mask,
)
from mofn2logic.search.kernels import local_search
from mofn2logic.search.layer import LayerProblem, search_layer
from mofn2logic.search.splits import best_splits

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)
BACKENDS = [NumpyBackend, NumbaBackend, lambda: TorchBackend("cpu")]


def _brute_topk(rows: np.ndarray, y: np.ndarray, big_n: int, keep: int) -> dict[int, list]:
    out = {}
    for m in range(1, big_n + 1):
        scored = sorted((int(np.sum((rows[list(c)].sum(0) >= m) != y)), c)
                        for c in itertools.combinations(range(len(rows)), big_n))
        out[m] = scored[:keep]
    return out


# --------------------------------------------------------------------------- cuts and literals

def test_quantile_cuts_definition():
    x = np.array([0, 0, 0, 0, 1, 2, 2, 3, 5, 8], np.float32)
    # k = 1..3, r = ceil(10 k / 4) = 3, 5, 8 -> the gaps above x[2] = 0, x[4] = 1, x[7] = 3
    np.testing.assert_array_equal(quantile_cuts(x, 3), np.array([0.5, 1.5, 4.0], np.float32))
    assert quantile_cuts(x, 3).dtype == np.float32
    assert quantile_cuts(x[::-1], 3).tolist() == quantile_cuts(x, 3).tolist()  # order-free
    assert len(quantile_cuts(np.zeros(20), 16)) == 0  # a constant input has no cut
    assert quantile_cuts(np.array([0.0, 1.0]), 16).tolist() == [0.5]  # repeats collapse
    rng = np.random.default_rng(0)
    v = rng.normal(size=500)
    c = quantile_cuts(v, 16)
    assert len(c) == 16 and np.all(np.diff(c) > 0)
    s = np.sort(v)
    for t in c:  # every cut lies strictly between two consecutive distinct values
        k = np.searchsorted(s, t)
        assert s[k - 1] < t <= s[k]


def test_layer_cuts_bins():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=(200, 3)).astype(np.float64)
    cuts, bins = layer_cuts(x, 4)
    for i in range(3):
        for k, t in enumerate(cuts[i]):
            np.testing.assert_array_equal(x[:, i] >= t, bins[i] > k)


def test_validation_mask():
    m = validation_mask(10, 0.2)
    assert m.tolist() == [False, False, False, False, True, False, False, False, False, True]
    assert validation_mask(1000, 0.2).sum() == 200
    assert not validation_mask(1000, 0.0).any() and not validation_mask(3, 0.5).any()


def test_unit_literals():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = x[:, 0] - x[:, 1] > 0.3
    w = np.array([1.0, 1.0, 0.0, -2.0, 0.5])
    t = best_splits(x, y.astype(np.int64), 2)[0]
    xt = np.ascontiguousarray(x.T)
    fit = np.ones(300, bool)
    cuts, bins = layer_cuts(x, 8)
    lits = unit_literals(xt, xt >= t[:, None], t, w, y, fit, cuts, bins)
    assert 2 not in lits.inputs  # zero weight: never a literal
    keys = list(zip(lits.inputs.tolist(), lits.thresholds.tolist(), (~lits.positive).tolist()))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # (input, threshold, polarity) order, no repeats
    for i in (0, 1, 3, 4):  # the paper's literal: own split, the weight's sign
        k = lits.paper[i]
        assert lits.inputs[k] == i and lits.thresholds[k] == t[i] and lits.positive[k] == (w[i] > 0)
    assert lits.paper[2] == -1
    # input 1 has w > 0 but x1 lowers the target: the negated literal is offered too, and cut literals
    # take the polarity whose true side has the larger share of positives
    assert any((lits.inputs == 1) & (lits.thresholds == t[1]) & ~lits.positive)
    truth = lits.truth(xt, np.arange(len(lits.inputs)))
    share_on = (truth & y).sum(1) / np.maximum(truth.sum(1), 1)
    share_off = (~truth & y).sum(1) / np.maximum((~truth).sum(1), 1)
    cut_lits = np.array([lits.paper[i] != k for k, i in enumerate(lits.inputs)])
    assert np.all(share_on[cut_lits] >= share_off[cut_lits])
    from mofn2logic.search.splits import literal_gain

    np.testing.assert_array_equal(lits.gains, literal_gain(truth, y))


def test_top_literals_ties_in_literal_order():
    from mofn2logic.search.exact import Literals

    lits = Literals(np.array([0, 0, 1, 2]), np.zeros(4), np.ones(4, bool), np.array([0.1, 0.3, 0.3, 0.2]),
                    np.zeros(3, np.int64))
    assert top_literals(lits, 3).tolist() == [1, 2, 3]
    assert top_literals(lits, 2, forced=[0, 2]).tolist() == [1, 2, 0]


# --------------------------------------------------------------------------- exact scoring

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_subset_topk_equals_brute_force(backend, seed):
    rng = np.random.default_rng(10 + seed)
    p, e = int(rng.integers(4, 12)), int(rng.integers(3, 200))
    rows = rng.random((p, e)) < rng.random()
    if seed == 3:
        rows[:] = rows[0]  # every subset ties: lexicographic order decides
    y = rng.random(e) < 0.3
    be = backend()
    for big_n in range(1, 5):
        got_e, got_i = be.subset_topk(pack_bits(rows), pack_bits(y)[0], int(y.sum()), big_n, 5)
        ref = _brute_topk(rows, y, big_n, 5)
        for m in range(1, big_n + 1):
            got = [(int(a), tuple(int(v) for v in b)) for a, b in zip(got_e[m - 1], got_i[m - 1]) if b[0] >= 0]
            assert got == ref[m]


def test_subset_topk_threads_and_chunks_agree():
    rng = np.random.default_rng(3)
    rows = rng.random((30, 700)) < 0.4
    y = rng.random(700) < 0.2
    bits, yb = pack_bits(rows), pack_bits(y)[0]
    ref = NumbaBackend().subset_topk(bits, yb, int(y.sum()), 3, 7)
    before = search_threads()
    try:
        for threads in (1, 3):
            set_search_threads(threads)
            got = NumbaBackend().subset_topk(bits, yb, int(y.sum()), 3, 7)
            assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    finally:
        set_search_threads(None)
    assert search_threads() == before
    for be in (NumpyBackend(budget=2048), TorchBackend("cpu", budget=2048)):
        got = be.subset_topk(bits, yb, int(y.sum()), 3, 7)
        assert all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_torch_backend_refuses_more_than_4():
    rows = np.ones((6, 10), bool)
    with pytest.raises(SearchError, match="at most 4 literals; got small-n 5"):
        TorchBackend("cpu").subset_topk(pack_bits(rows), pack_bits(rows[0])[0], 10, 5, 1)


def _unit(seed, e=160, n=6, cuts=4):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(e, n)), 1).astype(np.float32)
    w = rng.normal(size=n)
    w[rng.random(n) < 0.2] = 0
    y = (x @ rng.normal(size=n) + rng.normal(size=e) * 0.5) > 0.2
    t = best_splits(x, y.astype(np.int64), 2)[0]
    xt = np.ascontiguousarray(x.T)
    cv, bins = layer_cuts(x, cuts) if cuts else (None, None)
    return x, xt, w, y, t, cv, bins


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(3))
def test_exact_small_is_the_optimum_over_the_pool(backend, seed):
    """Without a validation share and with the whole literal set as pool, each (N, M) holds the least
    error over every subset, and on ties the first subset in pool order; all backends agree."""
    x, xt, w, y, t, cv, bins = _unit(seed)
    fit = np.ones(len(y), bool)
    lits = unit_literals(xt, xt >= t[:, None], t, w, y, fit, cv, bins)
    pool = top_literals(lits, len(lits.inputs))
    truth = lits.truth(xt, pool)
    sr = exact_small(lits, xt, y, pool, 3, fit, 4, backend())
    ref = {}
    for big_n in range(1, 4):
        for m, scored in _brute_topk(truth, y, big_n, 1).items():
            ref[(big_n, m)] = scored[0]
    assert [(int(a), int(b)) for a, b in zip(sr.n, sr.m)] == list(ref)
    for k, key in enumerate(ref):
        err, subset = ref[key]
        assert sr.errors[k] == err and sr.subsets[k].tolist() == pool[list(subset)].tolist()


def test_exact_small_validation_picks_on_held_out():
    x, xt, w, y, t, cv, bins = _unit(7, e=400)
    fit = ~validation_mask(len(y), 0.25)
    lits = unit_literals(xt, xt >= t[:, None], t, w, y, fit, cv, bins)
    pool = top_literals(lits, 12)
    truth = lits.truth(xt, pool)
    sr = exact_small(lits, xt, y, pool, 2, fit, 3, NumbaBackend())
    for k, (big_n, m) in enumerate(zip(sr.n, sr.m)):
        short = _brute_topk(truth[:, fit], y[fit], int(big_n), 3)[int(m)]
        held = [int(np.sum((truth[list(c)][:, ~fit].sum(0) >= m) != y[~fit])) for _, c in short]
        pick = min(range(len(short)), key=lambda i: (held[i], short[i][0], i))
        assert sr.subsets[k].tolist() == pool[list(short[pick][1])].tolist()
        assert sr.errors[k] == np.sum((truth[list(short[pick][1])].sum(0) >= m) != y)  # counted on all


# --------------------------------------------------------------------------- local improvement

def _plain_local(rows, y, rule, m, beta, fan_in, steps):
    """The local search of kernels.local_search, one move at a time in the same scan order."""
    e = len(y)
    n_max = min(len(rows), len(rule) + steps, fan_in)

    def loss(r, mm):
        err = int(np.sum((rows[list(r)].sum(0) >= mm) != y))
        return err / e + beta * plain_complexity(len(r), mm, fan_in), err

    rule = list(rule)
    cur, err = loss(rule, m)
    made = 0
    for _ in range(steps):
        best = (cur, None)
        n = len(rule)
        moves = [(rule, mm) for mm in range(1, n + 1) if mm != m]
        if n >= 2:
            moves += [(rule[:a] + rule[a + 1:], mm) for a in range(n) for mm in range(max(1, m - 1), min(m, n - 1) + 1)]
        outside = [b for b in range(len(rows)) if b not in rule]
        if n < n_max:
            moves += [(rule + [b], mm) for b in outside for mm in range(max(1, m), m + 2) if mm <= n + 1]
        moves += [(rule[:a] + [b] + rule[a + 1:], mm) for a in range(n) for b in outside
                  for mm in range(max(1, m - 1), min(m + 1, n) + 1)]
        for r, mm in moves:
            lo, er = loss(r, mm)
            if lo < best[0]:
                best = (lo, (r, mm, er))
        if best[1] is None or not best[0] < cur - 1e-12:
            break
        rule, m, err = best[1]
        cur = best[0]
        made += 1
    return rule, m, err, made


@pytest.mark.parametrize("seed", range(8))
def test_local_search_equals_plain(seed):
    from mofn2logic.search.exact import valid_bits

    rng = np.random.default_rng(50 + seed)
    q, e, fan_in = int(rng.integers(3, 9)), int(rng.integers(20, 150)), 12
    rows = rng.random((q, e)) < rng.random()
    y = rng.random(e) < 0.4
    n0 = int(rng.integers(1, q))
    m0 = int(rng.integers(1, n0 + 1))
    beta = float(rng.choice([0.0, 0.05, 0.3]))
    steps = int(rng.integers(1, 6))
    ref = _plain_local(rows, y, list(range(n0)), m0, beta, fan_in, steps)
    n_max = min(q, n0 + steps, fan_in)
    cx = np.full((n_max + 2, n_max + 3), np.inf)
    for big_n in range(n_max + 2):
        for m in range(min(big_n + 2, n_max + 3)):
            cx[big_n, m] = plain_complexity(big_n, m, fan_in)
    rule, n, m, err, made = local_search(pack_bits(rows), pack_bits(y)[0], valid_bits(e), int(y.sum()), e,
                                         np.arange(n0, dtype=np.int64), m0, beta, cx, steps)
    assert (rule[:n].tolist(), m, err, made) == (ref[0], ref[1], ref[2], ref[3])


@pytest.mark.parametrize("seed", range(4))
def test_improve_never_worse(seed):
    x, xt, w, y, t, cv, bins = _unit(60 + seed, e=250, n=8)
    lits = unit_literals(xt, xt >= t[:, None], t, w, y, np.ones(len(y), bool), cv, bins)
    start = np.array([lits.paper[i] for i in np.flatnonzero(w != 0)[:4]])
    for beta in (0.0, 0.1, 1.0):
        for m in range(1, len(start) + 1):
            imp = improve(lits, xt, y, start, m, beta, 8, ExactOptions(improve_steps=5))
            before = np.mean((lits.truth(xt, start).sum(0) >= m) != y) + beta * plain_complexity(len(start), m, 8)
            fires = lits.truth(xt, imp.literals).sum(0) >= imp.m
            after = np.mean(fires != y) + beta * plain_complexity(len(imp.literals), imp.m, 8)
            assert imp.errors == np.sum(fires != y)
            assert after <= before + 1e-15 and (imp.moves == 0) == (after == before)


# --------------------------------------------------------------------------- through the layer search

def _layer(seed, e=240, n=9, u=4, paper=False):
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(size=(e, n)), 0).astype(np.float32)
    x[:, 0] = 0  # a dead input
    w = rng.normal(size=(u, n))
    w[rng.random((u, n)) < 0.15] = 0
    targets = (x @ rng.normal(size=(n, u)) + rng.normal(size=(e, u)) * 0.3) > 0.5
    if paper:
        thr = np.stack([best_splits(x, targets[:, j].astype(np.int64), 2)[0] for j in range(u)])
    else:
        thr = best_splits(x, targets[:, 0].astype(np.int64), 2)[0]
    return LayerProblem(x=x, weights=w, targets=targets, input_thresholds=thr, fan_in=n, free_thresholds=paper)


def _loss(r, beta):
    return r.error + beta * r.complexity


@pytest.mark.parametrize("paper", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_exact_never_worse_than_the_papers_rule(paper, seed):
    """On every unit and beta the exact order's rule has a training loss at most the paper's; restricted
    to rules of at most small_n literals, so has its best rule of each size."""
    p = _layer(100 + seed, paper=paper)
    weight = search_layer(p, betas=BETAS, order="weight", backend=NumbaBackend())
    for validation in (0.0, 0.2):
        exact = search_layer(p, betas=BETAS, order="exact", backend=NumbaBackend(),
                             exact=ExactOptions(validation=validation, cuts=6))
        best = search_layer(p, betas=BETAS, order="best", backend=NumbaBackend(),
                            exact=ExactOptions(validation=validation, cuts=6))
        for uw, ue, ub in zip(weight, exact, best):
            for rw, re, rb in zip(uw.rules, ue.rules, ub.rules):
                assert _loss(re, rw.beta) <= _loss(rw, rw.beta) + 1e-15
                assert _loss(rb, rw.beta) <= _loss(re, rw.beta) + 1e-15
    # per size: the exact search's (N, M) candidate is never worse than the paper's "M of the first N"
    # (the paper's first small_n literals are always in the pool); with a validation share it may be,
    # and then the union above still is not
    xt = np.ascontiguousarray(p.x.T)
    from mofn2logic.search.unit import weight_order

    for j in range(p.weights.shape[0]):
        t = p.input_thresholds if p.input_thresholds.ndim == 1 else p.input_thresholds[j]
        cv, bins = layer_cuts(p.x, 6) if paper else (None, None)
        y = p.targets[:, j]
        fit = np.ones(len(y), bool)
        lits = unit_literals(xt, xt >= t[:, None], t, p.weights[j], y, fit, cv, bins)
        order = weight_order(p.weights[j])
        pool = top_literals(lits, 5, lits.paper[order[:3]])
        sr = exact_small(lits, xt, y, pool, 3, fit, 1, NumbaBackend())
        for big_n, m, err in zip(sr.n, sr.m, sr.errors):
            prefix = lits.truth(xt, lits.paper[order[:big_n]]).sum(0) >= m
            assert err <= np.sum(prefix != y)


@pytest.mark.parametrize("paper", [False, True])
def test_exact_rules_identical_on_every_backend(paper):
    p = _layer(7, e=300, paper=paper)
    ref = search_layer(p, betas=BETAS, order="exact", backend=NumbaBackend())
    for backend in (NumpyBackend(), TorchBackend("cpu"), NumpyBackend(budget=4096), TorchBackend("cpu", budget=4096)):
        assert search_layer(p, betas=BETAS, order="exact", backend=backend) == ref
    try:
        import torch

        if torch.cuda.is_available():
            assert search_layer(p, betas=BETAS, order="exact", backend=TorchBackend("cuda")) == ref
    except ImportError:
        pass


def test_exact_rules_are_what_they_say():
    """Recorded (N, M, error) match the literals; chain mode keeps one threshold per input, paper mode
    uses the inputs' own splits or quantile cuts."""
    for paper in (False, True):
        p = _layer(11, paper=paper)
        units = search_layer(p, betas=BETAS, order="exact", backend=NumbaBackend(), exact=ExactOptions(cuts=5))
        cuts, _ = layer_cuts(p.x, 5)
        for j, u in enumerate(units):
            own = p.input_thresholds if p.input_thresholds.ndim == 1 else p.input_thresholds[j]
            for r in u.rules:
                assert r.n == len(r.literals) and r.method in ("weight", "exact", "local")
                count = sum(((p.x[:, li.input] >= np.float32(li.threshold)) == li.positive).astype(int)
                            for li in r.literals) if r.literals else np.zeros(len(p.x), int)
                assert r.error == pytest.approx(np.mean((count >= r.m) != p.targets[:, j]), abs=1e-15)
                for li in r.literals:
                    assert p.weights[j, li.input] != 0
                    if paper:
                        assert np.float32(li.threshold) in set(cuts[li.input].tolist()) | {own[li.input]}
                    else:
                        assert np.float32(li.threshold) == own[li.input]


@pytest.mark.parametrize("order", ["exact", "best"])
def test_a_betas_rule_does_not_depend_on_the_other_betas(order):
    for paper in (False, True):
        p = _layer(17, paper=paper)
        every = search_layer(p, betas=BETAS, order=order, backend=NumbaBackend())
        for k, beta in enumerate(BETAS):
            alone = search_layer(p, betas=(beta,), order=order, backend=NumbaBackend())
            assert [u.rules[0] for u in alone] == [u.rules[k] for u in every]


def test_exact_in_a_worker_pool_equals_serial():
    p = _layer(13, e=200, u=6)
    a = search_layer(p, betas=BETAS, order="best", backend=NumbaBackend(), workers=1)
    b = search_layer(p, betas=BETAS, order="best", backend=NumbaBackend(), workers=2)
    assert a == b
