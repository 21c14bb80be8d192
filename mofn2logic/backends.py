"""Backends for the one heavy pass of the search: prefix counts of ordered literals and their
per-N histograms split by target. Everything they return is integer counts, so numpy and torch
(CPU or CUDA) give identical rules; the rest of the search is shared numpy code."""

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

    def prefix_histogram(self, lits: np.ndarray, y: np.ndarray) -> PrefixHistogram: ...


def _layout(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)


class NumpyBackend:
    name = "numpy"

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget

    def _chunks(self, e: int, n: int) -> list[slice]:
        rows = max(1, self.budget // max(1, 16 * (n + 1)))
        return [slice(s, min(e, s + rows)) for s in range(0, e, rows)]

    @staticmethod
    def _counts(lits: np.ndarray) -> np.ndarray:
        c = np.zeros((lits.shape[0], lits.shape[1] + 1), np.int32)
        np.cumsum(lits, axis=1, dtype=np.int32, out=c[:, 1:])
        return c

    def prefix_histogram(self, lits: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        e, n = lits.shape
        chunks = self._chunks(e, n)
        if len(chunks) == 1:
            counts = [self._counts(lits)]
            lo, hi = counts[0].min(0), counts[0].max(0)
        else:  # two passes: the layout needs the global range of every N first
            counts = None
            lo = np.full(n + 1, np.iinfo(np.int32).max, np.int32)
            hi = np.zeros(n + 1, np.int32)
            for sl in chunks:
                c = self._counts(lits[sl])
                np.minimum(lo, c.min(0), out=lo)
                np.maximum(hi, c.max(0), out=hi)
        offsets = _layout(lo, hi)
        size = int(offsets[-1])
        pos = np.zeros(size, np.int64)
        neg = np.zeros(size, np.int64)
        for i, sl in enumerate(chunks):
            c = counts[i] if counts is not None else self._counts(lits[sl])
            idx = (c - lo).astype(np.int64) + offsets[:-1]
            yy = y[sl]
            pos += np.bincount(idx[yy].ravel(), minlength=size)
            neg += np.bincount(idx[~yy].ravel(), minlength=size)
        return PrefixHistogram(lo.astype(np.int64), hi.astype(np.int64), offsets, pos, neg)


class TorchBackend:
    """The same pass with torch (CPU or CUDA): a cumsum and a scatter-add, chunked over examples."""

    def __init__(self, device: str = "cpu", budget: int = DEFAULT_BUDGET) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device.type}"
        self.budget = budget

    def prefix_histogram(self, lits: np.ndarray, y: np.ndarray) -> PrefixHistogram:
        torch = self.torch
        e, n = lits.shape
        rows = max(1, self.budget // max(1, 24 * (n + 1)))
        chunks = [slice(s, min(e, s + rows)) for s in range(0, e, rows)]

        def counts(sl: slice):
            t = torch.from_numpy(np.ascontiguousarray(lits[sl])).to(self.device)
            c = torch.zeros((t.shape[0], n + 1), dtype=torch.int32, device=self.device)
            c[:, 1:] = torch.cumsum(t, dim=1, dtype=torch.int32)
            return c

        cached = [counts(chunks[0])] if len(chunks) == 1 else None
        if cached is not None:
            lo_t, hi_t = cached[0].amin(0), cached[0].amax(0)
        else:
            lo_t = torch.full((n + 1,), np.iinfo(np.int32).max, dtype=torch.int32, device=self.device)
            hi_t = torch.zeros(n + 1, dtype=torch.int32, device=self.device)
            for sl in chunks:
                c = counts(sl)
                lo_t = torch.minimum(lo_t, c.amin(0))
                hi_t = torch.maximum(hi_t, c.amax(0))
        lo, hi = lo_t.cpu().numpy().astype(np.int64), hi_t.cpu().numpy().astype(np.int64)
        offsets = _layout(lo, hi)
        size = int(offsets[-1])
        off_t = torch.from_numpy(offsets[:-1]).to(self.device)
        hist = torch.zeros(2 * size, dtype=torch.int64, device=self.device)
        for i, sl in enumerate(chunks):
            c = cached[0] if cached is not None else counts(sl)
            yy = torch.from_numpy(np.ascontiguousarray(y[sl])).to(self.device).to(torch.int64)
            idx = (c - lo_t).to(torch.int64) + off_t + (yy * size)[:, None]
            hist += torch.bincount(idx.reshape(-1), minlength=2 * size)
        h = hist.cpu().numpy()
        return PrefixHistogram(lo, hi, offsets, h[size:], h[:size])


def make_backend(device: str = "auto", budget: int = DEFAULT_BUDGET) -> NumpyBackend | TorchBackend:
    """'cpu' -> numpy; 'cuda' -> torch on the GPU; 'torch' -> torch on CPU; 'auto' -> cuda if torch has it."""
    if device == "cpu":
        return NumpyBackend(budget)
    if device in ("cuda", "auto", "torch"):
        try:
            import torch
        except ImportError as e:
            if device == "auto":
                return NumpyBackend(budget)
            raise SearchError("--device cuda needs torch, which is not installed") from e
        if device == "torch":
            return TorchBackend("cpu", budget)
        if torch.cuda.is_available():
            return TorchBackend("cuda", budget)
        if device == "cuda":
            raise SearchError("--device cuda was requested but torch sees no CUDA device "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        return NumpyBackend(budget)
    raise SearchError(f"unknown device {device!r}; expected cpu, cuda, torch or auto")
