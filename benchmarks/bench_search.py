"""Single-layer search: mofn2logic's one-pass search against the plain one-rule-at-a-time
implementation of METHOD.md (tests/plain_method.py), side by side in one run.

    .venv/bin/python benchmarks/bench_search.py [--full] [--device cuda]

Layers: (E=2000, n=128, U=10) and (E=2000, n=1024, U=16), random ReLU-like activations, weights
and targets (seeded). The plain search is run in full on the n=128 layer (all units); at n=1024
its O(n^3 E) cost is hours, so it is timed on sampled N values of one unit and extrapolated
(stated as such), unless --full.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from plain_method import plain_order, plain_search

from mofn2logic.search.backends import NumbaBackend, NumpyBackend, TorchBackend, make_backend
from mofn2logic.search.layer import LayerProblem, search_layer
from mofn2logic.search.splits import best_splits

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)


def layer(e: int, n: int, u: int, seed: int = 0) -> LayerProblem:
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(size=(e, n)), 0).astype(np.float32)
    w = rng.normal(size=(u, n))
    pre = x @ w.T + rng.normal(scale=2.0, size=(e, u))
    targets = pre >= np.median(pre, axis=0)
    thr = best_splits(x, targets[:, 0].astype(np.int64), 2)[0]
    return LayerProblem(x=x, weights=w, targets=targets, input_thresholds=thr, fan_in=n)


def time_it(fn, repeat: int = 1):
    """Best of `repeat` runs (the machine is shared: the minimum is the least disturbed)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def plain_time(p: LayerProblem, units: int, sample: int | None) -> tuple[float, str]:
    """Seconds of the plain search over `units` units: in full, or extrapolated from sampled N."""
    if sample is None:
        t, _ = time_it(lambda: [plain_search(p.x, p.input_thresholds, p.weights[j], p.targets[:, j], BETAS)
                                for j in range(units)])
        return t, "measured"
    n = p.x.shape[1]
    order = plain_order(p.weights[0])
    ns = np.unique(np.linspace(1, n, sample).astype(int))
    per_candidate_cost = []
    lits = [(p.x[:, i] >= p.input_thresholds[i]) if p.weights[0, i] > 0 else (p.x[:, i] < p.input_thresholds[i])
            for i in order]
    y = p.targets[:, 0]
    for big_n in ns:
        t0 = time.perf_counter()
        for m in (1, big_n // 2 + 1, big_n):  # three rules of this N, evaluated as the plain search does
            fires = np.sum(np.array(lits[:big_n], dtype=np.int64), axis=0) >= m
            float(np.mean(fires != y))
        per_candidate_cost.append((time.perf_counter() - t0) / 3)
    # every N has N + 2 candidates; the cost of one grows with N: interpolate between samples
    cost = np.interp(np.arange(n + 1), ns, per_candidate_cost)
    total = float(np.sum(cost * (np.arange(n + 1) + 2))) * units
    return total, f"extrapolated from {len(ns)} sampled N x 3 rules"


def bench_paper_layer(e: int, n: int, u: int) -> None:
    """The reference's whole job on one layer: per-(input, target) splits, then the search."""
    from plain_method import plain_split

    from mofn2logic.search.splits import binary_splits_per_target

    p0 = layer(e, n, u)

    def ours():
        thr = binary_splits_per_target(p0.x, p0.targets)
        p = LayerProblem(x=p0.x, weights=p0.weights, targets=p0.targets, input_thresholds=thr, fan_in=n)
        return search_layer(p, betas=BETAS, order="weight", backend=NumbaBackend(), workers=1)

    t_ours, _ = time_it(ours, 3)
    rng = np.random.default_rng(1)
    pairs = [(int(rng.integers(n)), int(rng.integers(u))) for _ in range(16)]
    t_split, _ = time_it(lambda: [plain_split(p0.x[:, i], p0.targets[:, j].astype(np.int64), 2) for i, j in pairs])
    t_splits = t_split / len(pairs) * n * u
    thr = binary_splits_per_target(p0.x, p0.targets)
    t_search, _ = time_it(lambda: [plain_search(p0.x, thr[j], p0.weights[j], p0.targets[:, j], BETAS) for j in range(u)])
    total = t_splits + t_search
    print(f"\n== paper-mode layer E={e}, n={n}, U={u}: splits per (input, target) + search")
    print(f"  plain: splits {t_splits:8.1f} s (brute force, extrapolated from {len(pairs)} sampled pairs)"
          f" + search {t_search:.1f} s (measured) = {total:.1f} s")
    print(f"  mofn2logic numba (cpu), 1 process {t_ours:10.4f} s   speed-up x{total / t_ours:,.0f}")


def bench(e: int, n: int, u: int, full: bool, devices: tuple[str, ...] = ()) -> None:
    p = layer(e, n, u)
    print(f"\n== layer E={e}, n={n}, U={u} (betas {BETAS})")
    runs = {}
    backends = [("numba (cpu), 1 process", NumbaBackend, 1), ("numba (cpu), 2 processes", NumbaBackend, 2),
                ("numpy, 1 process", NumpyBackend, 1), ("torch CPU", lambda: TorchBackend("cpu"), 1)]
    backends += [(f"--device {d}", lambda d=d: make_backend(d), 1) for d in devices]
    for name, make, workers in backends:
        runs[name] = time_it(lambda make=make, workers=workers: search_layer(p, betas=BETAS, order="weight", backend=make(),
                                                                            workers=workers), 5)
    a = runs["numba (cpu), 1 process"][1]
    assert all(r[1] == a for r in runs.values()), "backends disagree"
    sample = None if (full or n <= 128) else 12
    t_plain, how = plain_time(p, u, sample)
    print(f"  plain one-rule-at-a-time   {t_plain:10.2f} s   ({how})")
    for name, (t, _) in runs.items():
        print(f"  mofn2logic {name:<24} {t:10.4f} s   speed-up x{t_plain / t:,.0f}")
    if n <= 128:  # check the fast result equals the plain one on every unit
        for j, unit in enumerate(a):
            ref, _ = plain_search(p.x, p.input_thresholds, p.weights[j], p.targets[:, j], BETAS)
            assert [(r.n, r.m, r.error) for r in unit.rules] == [ref[b][:3] for b in BETAS]
        print("  rules identical to the plain implementation on every unit and beta")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="run the plain search in full at n=1024 too (hours)")
    ap.add_argument("--device", action="append", default=[], help="another column: the search with --device DEVICE "
                    "(e.g. cuda; may be given more than once)")
    args = ap.parse_args()
    devices = tuple(args.device)
    for d in devices:
        make_backend(d).prefix_histogram(np.zeros((1, 8), bool), np.zeros(8, bool))  # compile / start CUDA first
    bench(2000, 128, 10, args.full, devices)
    bench(2000, 1024, 16, args.full, devices)
    bench_paper_layer(2000, 128, 10)


if __name__ == "__main__":
    main()
