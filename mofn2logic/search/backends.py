"""Backends for the one heavy pass of the search: prefix counts of ordered literals and their
per-N histograms split by target (docs/method.md, section 3). Everything they return is integer
counts, so numpy and torch (CPU or CUDA) give identical rules; the rest of the search is shared
numpy code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mofn2logic.errors import SearchError

DEFAULT_BUDGET = 512 * 1024**2  # bytes of working memory per chunk


@dataclass(frozen=True, slots=True)
class PrefixHistogram:
    """For N = 0..n: counts c_N(e) = literals 0..N-1 true on example e lie in [lo[N], hi[N]];
    pos/neg[offsets[N] + c - lo[N]] = examples with that count and target 1/0."""

    lo: np.ndarray
    hi: np.ndarray
    offsets: np.ndarray
    pos: np.ndarray
    neg: np.ndarray


class Backend(Protocol):
    name: str

    def prefix_histogram(self, lits_t: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        """`lits_t` (n, E) bool: literal k's truth on every example, literals in search order."""
        ...


def _layout(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)


def _with_n0(lo, hi):
    """Prepend N = 0 (no literal: every count is 0)."""
    return np.concatenate([[0], lo]).astype(np.int64), np.concatenate([[0], hi]).astype(np.int64)


class NumpyBackend:
    """Literal-major layout: counts (N, E), so the histogram of each N lands in one small,
    cache-resident range of bins; the target is interleaved into the bin index."""

    name = "numpy"

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget

    def prefix_histogram(self, lits_t: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        n, e = lits_t.shape
        y = np.asarray(y, dtype=bool)
        ctype = np.int16 if n < np.iinfo(np.int16).max else np.int32
        # Positive and negative examples apart: each gets its own contiguous bincount.
        parts = [np.ascontiguousarray(lits_t[:, y]), np.ascontiguousarray(lits_t[:, ~y])]
        cols = max(1, self.budget // max(1, 10 * (n + 1)))
        lo = np.full(n, np.iinfo(ctype).max, np.int64)
        hi = np.zeros(n, np.int64)
        cached: list[list[np.ndarray | None]] = []
        for part in parts:
            chunks: list[np.ndarray | None] = []
            for s0 in range(0, part.shape[1], cols):
                c = np.cumsum(part[:, s0:s0 + cols], axis=0, dtype=ctype)
                if c.shape[1]:
                    np.minimum(lo, c.min(1), out=lo)
                    np.maximum(hi, c.max(1), out=hi)
                chunks.append(c if part.shape[1] <= cols else None)  # recomputed when chunked
            cached.append(chunks)
        lo, hi = _with_n0(np.minimum(lo, hi), hi)
        offsets = _layout(lo, hi)
        size = int(offsets[-1])
        shift = (offsets[1:-1] - lo[1:])[:, None]
        hists = []
        for part, chunks in zip(parts, cached):
            hist = np.zeros(size, np.int64)
            hist[0] = part.shape[1]  # N = 0: every count is 0
            for k, s0 in enumerate(range(0, part.shape[1], cols)):
                ck = chunks[k]
                c = ck if ck is not None else np.cumsum(part[:, s0:s0 + cols], axis=0, dtype=ctype)
                idx = c.astype(np.intp)
                idx += shift
                hist += np.bincount(idx.ravel(), minlength=size)
            hists.append(hist)
        return PrefixHistogram(lo, hi, offsets, hists[0], hists[1])


class NumbaBackend:
    """The same histogram from a compiled single pass (mofn2logic.search.kernels); numpy's result, faster."""

    name = "numba"

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        from mofn2logic.search import kernels

        self._kernel = kernels.prefix_histogram
        self.budget = budget

    def prefix_histogram(self, lits_t: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        lo, hi, offsets, pos, neg = self._kernel(np.ascontiguousarray(lits_t), y)
        return PrefixHistogram(lo, hi, offsets, pos, neg)


def cpu_backend(budget: int = DEFAULT_BUDGET) -> NumbaBackend:
    """The fastest CPU backend: compiled kernels (numba is a dependency)."""
    return NumbaBackend(budget)


def nvidia_gpu_possible() -> bool:
    """Whether an NVIDIA GPU can be present, decided without importing torch (which costs seconds):
    the driver leaves /proc/driver/nvidia or /dev/nvidia* behind."""
    import glob
    import os

    return os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))


class TorchBackend:
    """The same pass with torch (CPU or CUDA): a cumsum and a bincount, chunked over examples."""

    def __init__(self, device: str = "cpu", budget: int = DEFAULT_BUDGET) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device.type}"
        self.budget = budget

    def prefix_histogram(self, lits_t: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        torch = self.torch
        n, e = lits_t.shape
        cols = max(1, self.budget // max(1, 24 * (n + 1)))
        chunks = [slice(s, min(e, s + cols)) for s in range(0, e, cols)]

        def counts(sl: slice):
            t = torch.from_numpy(np.ascontiguousarray(lits_t[:, sl])).to(self.device)
            return torch.cumsum(t, dim=0, dtype=torch.int32)

        cached = counts(chunks[0]) if len(chunks) == 1 else None
        if cached is not None:
            lo_t, hi_t = cached.amin(1), cached.amax(1)
        else:
            lo_t = torch.full((n,), np.iinfo(np.int32).max, dtype=torch.int32, device=self.device)
            hi_t = torch.zeros(n, dtype=torch.int32, device=self.device)
            for sl in chunks:
                c = counts(sl)
                lo_t = torch.minimum(lo_t, c.amin(1))
                hi_t = torch.maximum(hi_t, c.amax(1))
        lo, hi = _with_n0(lo_t.cpu().numpy(), hi_t.cpu().numpy())
        offsets = _layout(lo, hi)
        size = int(offsets[-1])
        base = torch.from_numpy(2 * (offsets[1:-1] - lo[1:])).to(self.device)
        hist = torch.zeros(2 * size, dtype=torch.int64, device=self.device)
        for sl in chunks:
            c = cached if cached is not None else counts(sl)
            yy = torch.from_numpy(np.asarray(y[sl], dtype=np.int64)).to(self.device)
            idx = 2 * c.to(torch.int64) + base[:, None] + yy[None, :]
            hist += torch.bincount(idx.reshape(-1), minlength=2 * size)
        h = hist.cpu().numpy()
        n_pos = int(np.asarray(y).sum())
        h[1], h[0] = n_pos, e - n_pos
        return PrefixHistogram(lo, hi, offsets, h[1::2].copy(), h[0::2].copy())


DEVICES = ("auto", "cpu", "cuda", "torch", "numpy")


def make_backend(device: str = "auto", budget: int = DEFAULT_BUDGET) -> NumbaBackend | NumpyBackend | TorchBackend:
    """'cpu' -> compiled kernels (numba); 'numpy' -> numpy; 'cuda' -> torch on the GPU;
    'torch' -> torch on CPU; 'auto' -> cuda if an NVIDIA GPU and torch are there, else 'cpu'."""
    if device == "cpu" or (device == "auto" and not nvidia_gpu_possible()):
        return cpu_backend(budget)
    if device == "numpy":
        return NumpyBackend(budget)
    if device in ("cuda", "auto", "torch"):
        try:
            import torch
        except ImportError as e:
            if device == "auto":
                return cpu_backend(budget)
            raise SearchError(f"device {device!r} needs torch, which is not installed "
                              "(pip install 'mofn2logic[torch]')") from e
        if device == "torch":
            return TorchBackend("cpu", budget)
        if torch.cuda.is_available():
            return TorchBackend("cuda", budget)
        if device == "cuda":
            raise SearchError("device 'cuda' was requested but torch sees no CUDA device "
                              f"(torch {torch.__version__}); expected a machine with a CUDA GPU, or device cpu")
        return cpu_backend(budget)
    raise SearchError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
