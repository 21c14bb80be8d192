"""The layer-at-once torch search (mofn2logic.search.batched) and the compiled prefix search
(unit.prefix_candidates) give the CPU reference's rules, bit for bit: every unit, every beta, every
front point, in chain and paper mode, on dense and convolutional layers. On CPU torch always; on
CUDA too where a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest

from mofn2logic import check_data, harvest, import_network
from mofn2logic.search.backends import NumbaBackend, NumpyBackend, TorchBackend
from mofn2logic.search.layer import LayerProblem, search_layer
from mofn2logic.search.network import extract
from mofn2logic.search.rules_file import dumps
from mofn2logic.search.splits import best_splits, binary_splits_per_target
from mofn2logic.search.unit import SparseRows, candidates_from_histogram, prefix_candidates, weight_order

torch = pytest.importorskip("torch")

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _problem(rng: np.random.Generator, kind: str, mode: str, units: int = 7) -> LayerProblem:
    e = int(rng.integers(30, 400))
    n = int(rng.integers(3, 60))
    if kind == "ties":  # few distinct values: equal counts, equal losses
        x = rng.integers(0, 3, size=(e, n)).astype(np.float32)
        w = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(units, n))
    elif kind == "dead":  # dead inputs and zero weights; one unit with a single literal, one with none
        x = np.maximum(rng.normal(size=(e, n)), 0).astype(np.float32)
        x[:, : n // 2] = 0
        w = rng.normal(size=(units, n))
        w[rng.random((units, n)) < 0.4] = 0
        w[0, 1:] = 0
        w[1] = 0
    else:
        x = rng.normal(size=(e, n)).astype(np.float32)
        w = rng.normal(size=(units, n))
    targets = rng.random((e, units)) < rng.random(units)
    targets[:, -1] = True  # one unit whose target is constant
    pred = rng.integers(0, 3, size=e)
    if mode == "chain":
        thr = best_splits(x, pred, 3)[0]
    else:
        thr = binary_splits_per_target(x, targets)
    offsets = None
    if kind == "conv":  # a convolution's literal indices: (channel, dy, dx) each
        offsets = np.stack([np.arange(n) % 3, np.arange(n) // 3 % 3 - 1, np.arange(n) % 2], 1)
    fan_in = n + int(rng.integers(0, 300))  # fan-ins above 256 take complexity's log-factorial branch
    return LayerProblem(x=x, weights=w, targets=targets, input_thresholds=thr, fan_in=fan_in,
                        head_thresholds=rng.normal(size=units).astype(np.float32), offsets=offsets)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["chain", "paper"])
@pytest.mark.parametrize("kind", ["random", "ties", "dead", "conv"])
@pytest.mark.parametrize("seed", range(3))
def test_batched_torch_equals_cpu(device, mode, kind, seed):
    rng = np.random.default_rng(1000 * seed + 7 * len(kind) + len(mode))
    p = _problem(rng, kind, mode)
    for order in ("weight", "std", "gain"):
        ref = search_layer(p, betas=BETAS, order=order, backend=NumpyBackend(), workers=1)
        assert search_layer(p, betas=BETAS, order=order, backend=TorchBackend(device)) == ref
        # a small budget: units in several batches, examples in several chunks
        small = TorchBackend(device, budget=p.x.shape[1] * 40 * 7)
        assert search_layer(p, betas=BETAS, order=order, backend=small) == ref
        assert search_layer(p, betas=BETAS, order=order, backend=NumbaBackend()) == ref  # threads, fused kernel
        assert search_layer(p, betas=BETAS, order=order, backend=NumbaBackend(), workers=1) == ref


@pytest.mark.parametrize("seed", range(40))
def test_fused_prefix_candidates_equal_the_histogram_pruning(seed):
    rng = np.random.default_rng(seed)
    n, e = int(rng.integers(1, 200)), int(rng.integers(1, 300))
    base = rng.random((n, e)) < rng.random(n)[:, None]
    if seed % 4 == 0:
        base[:, : e // 2] = base[:, :1]  # repeated columns: equal counts
    w = rng.normal(size=n)
    w[rng.random(n) < 0.2] = 0
    y = rng.random(e) < rng.random()
    if seed % 9 == 0:
        y[:] = seed % 2 == 0
    fan_in = max(2, n + int(rng.integers(0, 400)))
    order = weight_order(w)
    neg = w < 0
    h = NumpyBackend().prefix_histogram(base[order] ^ neg[order][:, None], y)
    ref = candidates_from_histogram(h, int(y.sum()), int((~y).sum()), fan_in)
    got = prefix_candidates(SparseRows.of(base), order, neg, y, fan_in)
    for a in ("n", "m", "errors", "error", "complexity"):
        np.testing.assert_array_equal(getattr(got, a), getattr(ref, a))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["chain", "paper"])
def test_extract_rules_file_identical_on_torch(default_model, digits, device, mode):
    """The demo CNN (two convolutions, two dense layers): rules.json byte for byte."""
    net = import_network(default_model)
    acts = harvest(net, default_model, check_data(digits["images"][:400], net.input_shape, net.dtype))
    ref = dumps(extract(net, acts, betas=BETAS, device="cpu", mode=mode))
    assert dumps(extract(net, acts, betas=BETAS, device="torch" if device == "cpu" else "cuda", mode=mode)) == ref
    assert dumps(extract(net, acts, betas=BETAS, device="numpy", mode=mode)) == ref
