"""The fast search against the plain one-rule-at-a-time implementation of METHOD.md."""

from __future__ import annotations

import numpy as np
import pytest
from plain_method import plain_complexity, plain_front, plain_search, plain_split

from mofn2logic.errors import SearchError
from mofn2logic.search.backends import NumbaBackend, NumpyBackend, TorchBackend, make_backend
from mofn2logic.search.complexity import complexity, denominator
from mofn2logic.search.layer import LayerProblem, search_layer
from mofn2logic.search.splits import best_splits
from mofn2logic.search.unit import candidates_from_histogram, choose, literal_matrix, pareto_front, weight_order

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)


def _fast(x, t, w, y, backend=None):
    backend = backend or NumpyBackend()
    o = weight_order(w)
    lits = literal_matrix(x[:, o], t[o], w[o] < 0)
    c = candidates_from_histogram(backend.prefix_histogram(np.ascontiguousarray(lits.T), y), int(y.sum()),
                                  int((~y).sum()), len(w))
    chosen = [(int(c.n[i]), int(c.m[i]), float(c.error[i]), float(c.complexity[i]), tuple(int(k) for k in o[: c.n[i]]))
              for i in choose(c, BETAS)]
    front = [(int(c.n[i]), int(c.m[i]), float(c.error[i]), float(c.complexity[i])) for i in pareto_front(c)]
    return chosen, front


def _case(rng, kind):
    e = int(rng.integers(20, 160))
    n = int(rng.integers(2, 14))
    if kind == "ties":  # few distinct values: many equal gains and equal losses
        x = rng.integers(0, 3, size=(e, n)).astype(np.float32)
        w = rng.choice([-1.0, 1.0, 2.0], size=n)
    elif kind == "dead":  # dead inputs (constant 0) and zero weights
        x = np.maximum(rng.normal(size=(e, n)), 0).astype(np.float32)
        x[:, : n // 2] = 0
        w = rng.normal(size=n)
        w[rng.random(n) < 0.3] = 0
    else:
        x = rng.normal(size=(e, n)).astype(np.float64)
        w = rng.normal(size=n)
    return x, w


@pytest.mark.parametrize("backend", [NumpyBackend, NumbaBackend])
@pytest.mark.parametrize("kind", ["random", "ties", "dead"])
@pytest.mark.parametrize("seed", range(6))
def test_search_equals_plain_method(kind, seed, backend):
    rng = np.random.default_rng(100 * seed + hash(kind) % 97)
    x, w = _case(rng, kind)
    pred = rng.integers(0, 3, size=len(x))
    y = pred == 0
    t = best_splits(x, y.astype(np.int64), 2)[0]
    tp = np.array([plain_split(x[:, i], y.astype(np.int64), 2) for i in range(x.shape[1])], dtype=x.dtype)
    np.testing.assert_array_equal(t, tp)
    chosen, front = _fast(x, t, w, y, backend())
    ref, allc = plain_search(x, t, w, y, BETAS)
    assert chosen == [ref[b][:4] + (ref[b][4],) for b in BETAS]
    assert front == plain_front(allc)


@pytest.mark.parametrize("y_value", [True, False])
def test_constant_target(y_value):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 5))
    w = rng.normal(size=5)
    y = np.full(50, y_value)
    t = best_splits(x, y.astype(np.int64), 2)[0]
    assert np.all(t == 0.0)  # no cut has positive gain
    chosen, _ = _fast(x, t, w, y)
    ref, _ = plain_search(x, t, w, y, BETAS)
    assert chosen == [ref[b][:4] + (ref[b][4],) for b in BETAS]
    assert all(c[2] == 0.0 for c in chosen)
    assert chosen[0][:2] == ((0, 0) if y_value else (0, 1))


def test_multiclass_splits_equal_plain():
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=(120, 7)), 1).astype(np.float32)
    pred = rng.integers(0, 4, 120)
    t = best_splits(x, pred, 4)[0]
    assert [float(v) for v in t] == [plain_split(x[:, i], pred, 4) for i in range(7)]


def test_midpoint_threshold_keeps_partition():
    x = np.array([[1.0], [np.nextafter(np.float32(1.0), np.float32(2))]], np.float32)
    t = best_splits(x, np.array([0, 1]), 2)[0][0]
    assert x[0, 0] < t <= x[1, 0]


def test_complexity_matches_definition():
    for n in (2, 5, 17, 300):
        for big_n, m in [(0, 0), (1, 1), (min(n, 3), 2), (n, n), (n, 1), (min(n, 4), 5)]:
            got = float(complexity(np.array([big_n]), np.array([m]), n)[0])
            assert got == pytest.approx(plain_complexity(big_n, m, n), rel=1e-12, abs=1e-15)
    with pytest.raises(SearchError, match=r"layer 'fc' has 1 input: the complexity measure .* undefined"):
        denominator(1, "layer 'fc'")


def test_backends_identical():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 40)).astype(np.float32)
    w = rng.normal(size=40)
    y = rng.random(400) < 0.3
    t = best_splits(x, y.astype(np.int64), 2)[0]
    ref = _fast(x, t, w, y, NumpyBackend())
    assert _fast(x, t, w, y, TorchBackend("cpu")) == ref
    assert _fast(x, t, w, y, NumbaBackend()) == ref
    assert _fast(x, t, w, y, NumpyBackend(budget=4096)) == ref  # chunked over examples, two passes
    assert _fast(x, t, w, y, TorchBackend("cpu", budget=4096)) == ref
    try:
        import torch

        if torch.cuda.is_available():
            assert _fast(x, t, w, y, TorchBackend("cuda")) == ref
    except ImportError:
        pass
    assert make_backend("cpu").name == "numba" and make_backend("numpy").name == "numpy"
    with pytest.raises(SearchError, match="unknown device 'tpu'"):
        make_backend("tpu")


def test_float64_kept():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4))  # float64
    t = best_splits(x, (x[:, 0] > 0).astype(np.int64), 2)[0]
    assert t.dtype == np.float64


def _problem(rng, e=300, n=10, u=4, paper=False):
    x = rng.normal(size=(e, n)).astype(np.float32)
    w = rng.normal(size=(u, n))
    targets = rng.random((e, u)) < 0.4
    if paper:
        thr = np.stack([best_splits(x, targets[:, j].astype(np.int64), 2)[0] for j in range(u)])
    else:
        thr = best_splits(x, targets[:, 0].astype(np.int64), 2)[0]
    return LayerProblem(x=x, weights=w, targets=targets, input_thresholds=thr, fan_in=n)


@pytest.mark.parametrize("paper", [False, True])
def test_search_layer_equals_plain(paper):
    rng = np.random.default_rng(21)
    p = _problem(rng, paper=paper)
    units = search_layer(p, betas=BETAS, order="weight", backend=NumpyBackend())
    for j, u in enumerate(units):
        t = p.input_thresholds if p.input_thresholds.ndim == 1 else p.input_thresholds[j]
        ref, _ = plain_search(p.x, t, p.weights[j], p.targets[:, j], BETAS)
        for r, b in zip(u.rules, BETAS):
            assert (r.n, r.m, r.error, r.complexity) == ref[b][:4]
            assert [li.input for li in r.literals] == list(ref[b][4])
            assert all(li.threshold == float(t[li.input]) and li.positive == (p.weights[j, li.input] > 0)
                       for li in r.literals)


def test_best_order_never_worse_and_small_search_is_exact():
    rng = np.random.default_rng(31)
    p = _problem(rng, e=250, n=9, u=3)
    per_order = {o: search_layer(p, betas=BETAS, order=o, backend=NumpyBackend()) for o in ("weight", "std", "gain", "best")}
    for j in range(3):
        for k, b in enumerate(BETAS):
            loss = {o: per_order[o][j].rules[k].error + b * per_order[o][j].rules[k].complexity for o in per_order}
            assert loss["best"] <= min(loss["weight"], loss["std"], loss["gain"]) + 1e-15
    # pool = all 9 literals: the small search is the true optimum among rules of <= 3 literals.
    best = search_layer(p, betas=(0.0,), order="best", backend=NumpyBackend(), small_n=3, pool_size=9)
    from itertools import combinations

    for j in range(3):
        t = p.input_thresholds
        lits = literal_matrix(p.x, t, p.weights[j] < 0)
        y = p.targets[:, j]
        exhaustive = min(np.mean((lits[:, list(s)].sum(1) >= m) != y)
                         for k in range(0, 4) for s in combinations(range(9), k) for m in range(k + 2))
        assert best[j].rules[0].error <= exhaustive


def test_optimality_report_against_brute_force():
    from itertools import combinations

    from plain_method import plain_complexity

    from mofn2logic.search.optimality import optimal_losses, optimality

    rng = np.random.default_rng(41)
    p = _problem(rng, e=120, n=6, u=2)
    for j in range(2):
        lits = literal_matrix(p.x, p.input_thresholds, p.weights[j] < 0)
        y = p.targets[:, j]
        brute = [min(float(np.mean((lits[:, list(s)].sum(1) >= m) != y)) + b * plain_complexity(k, m, 6)
                     for k in range(7) for s in combinations(range(6), k) for m in range(k + 2)) for b in BETAS]
        np.testing.assert_allclose(optimal_losses(lits, y, 6, BETAS), brute, rtol=0, atol=1e-12)
    report = optimality(p, BETAS)
    assert set(report) == {"weight", "std", "gain", "best"}
    assert report["best"]["mean_gap"] <= report["weight"]["mean_gap"]
    assert all(0 <= r["at_optimum"] <= 1 and r["max_gap"] >= 0 for r in report.values())


def test_paper_splits_kernel_equals_numpy_sweep():
    from mofn2logic.search.splits import binary_splits_per_target

    rng = np.random.default_rng(51)
    for dtype in (np.float32, np.float64):
        for trial in range(8):
            e, n, u = int(rng.integers(2, 200)), int(rng.integers(1, 12)), int(rng.integers(1, 5))
            x = (rng.integers(0, 4, size=(e, n)) if trial % 2 else rng.normal(size=(e, n))).astype(dtype)
            targets = rng.random((e, u)) < rng.random()
            got = binary_splits_per_target(x, targets)
            for j in range(u):
                ref = np.array([plain_split(x[:, i], targets[:, j].astype(np.int64), 2) for i in range(n)], dtype=dtype)
                np.testing.assert_array_equal(got[j], ref)
