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

    def subset_topk(self, bits: np.ndarray, ybits: np.ndarray, n_pos: int, big_n: int,
                    keep: int) -> tuple[np.ndarray, np.ndarray]:
        """For M = 1..big_n, the `keep` least errors of "at least M of S" over every big_n-subset S of the
        rows of `bits` (P, W) uint64 against target words `ybits` (W,), ties to the first S in lexicographic
        order: errors (big_n, keep) and subsets (big_n, keep, big_n); empty slots hold int64 max and -1."""
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

    def subset_topk(self, bits, ybits, n_pos, big_n, keep):
        return _numpy_subset_topk(bits, ybits, n_pos, big_n, keep, self.budget)


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

    def subset_topk(self, bits, ybits, n_pos, big_n, keep):
        """Compiled (`kernels.subset_topk`), on `search_threads()` threads sharing the first rows, then merged."""
        from mofn2logic.search.kernels import subset_topk

        bits, ybits = np.ascontiguousarray(bits), np.ascontiguousarray(ybits)
        threads = search_threads()
        tasks = 1 if threads == 1 else max(1, min(bits.shape[0] - big_n + 1, 4 * threads))
        parts = thread_map(lambda t: subset_topk(bits, ybits, int(n_pos), int(big_n), int(keep), t, tasks),
                           range(tasks), threads)
        if tasks == 1:
            return parts[0]
        return merge_topk(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), keep)


_THREADS: list[int] = []  # set to [1] inside the search's forked worker processes


def search_threads() -> int:
    """Threads for the compiled exact search: the CPUs this process may use, or 1 inside a worker process.
    Threads, not numba's parallel loops: an OpenMP runtime in the parent makes later forks unsafe."""
    import os

    if _THREADS:
        return _THREADS[0]
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def set_search_threads(n: int | None) -> None:
    """Fix the threads of `search_threads` (None: back to the CPU count)."""
    _THREADS.clear()
    if n is not None:
        _THREADS.append(max(1, int(n)))


def thread_map(fn, items, threads: int) -> list:
    """fn over items, in order, on up to `threads` threads (the GIL-free kernels run in parallel); the pool
    ends with the call, so a later fork finds no threads."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(items))) as ex:
        return list(ex.map(fn, items))


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

    def subset_topk(self, bits, ybits, n_pos, big_n, keep):
        """Intersection counts by matrix products, then inclusion-exclusion: for a subset S,
        #(at least M of S) = sum over k >= M of (-1)^(k-M) C(k-1, M-1) sum over |T| = k, T in S of |and T|.
        Every count is an integer below 2^24 summed in float32 (or float64 above): exact, so the
        rules equal the other backends'. Subsets are scored in lexicographic chunks."""
        import itertools
        import math

        torch = self.torch
        p, w = bits.shape
        if big_n > p:
            return np.full((big_n, keep), INT64_MAX, np.int64), np.full((big_n, keep, big_n), -1, np.int64)
        rows = np.unpackbits(np.ascontiguousarray(bits).view(np.uint8), axis=1, bitorder="little")  # (P, 64 W)
        yrow = np.unpackbits(np.ascontiguousarray(ybits).view(np.uint8), bitorder="little")
        dtype = torch.float32 if rows.shape[1] < (1 << 24) else torch.float64
        lt = torch.from_numpy(rows).to(self.device, dtype)
        yt = torch.from_numpy(yrow).to(self.device, dtype)
        inter = self._intersections(lt, yt, big_n)  # k -> (all, with target) tensors of shape (P,) * k
        best_e = np.full((big_n, keep), INT64_MAX, np.int64)
        best_i = np.full((big_n, keep, big_n), -1, np.int64)
        sub_sets = {k: list(itertools.combinations(range(big_n), k)) for k in range(1, big_n + 1)}
        total = math.comb(p, big_n)
        step = max(4096, self.budget // max(1, 16 * (2 ** big_n)))
        combos_all = torch.combinations(torch.arange(p, device=self.device), r=big_n) if big_n > 1 else \
            torch.arange(p, device=self.device)[:, None]
        for s0 in range(0, total, step):
            c = combos_all[s0:s0 + step]
            sums = {}
            for k in range(1, big_n + 1):
                a_all, a_y = inter[k]
                tot = torch.zeros(len(c), dtype=dtype, device=self.device)
                toty = torch.zeros_like(tot)
                for t in sub_sets[k]:
                    idx = tuple(c[:, q] for q in t)
                    tot = tot + a_all[idx]
                    toty = toty + a_y[idx]
                sums[k] = (tot.to(torch.int64), toty.to(torch.int64))
            errs = []
            for m in range(1, big_n + 1):
                f = torch.zeros(len(c), dtype=torch.int64, device=self.device)
                fy = torch.zeros_like(f)
                for k in range(m, big_n + 1):
                    coef = (-1) ** (k - m) * math.comb(k - 1, m - 1)
                    f = f + coef * sums[k][0]
                    fy = fy + coef * sums[k][1]
                errs.append(n_pos + f - 2 * fy)
            best_e, best_i = _top_of_chunk(best_e, best_i, torch.stack(errs, 1).cpu().numpy(), c.cpu().numpy(), keep)
        return best_e, best_i

    def _intersections(self, lt, yt, big_n):
        """k -> (|L_a1 and ... and L_ak|, the same with the target) for every k-tuple of rows, k = 1..big_n;
        products of row pairs are formed a block of rows at a time, within the memory budget."""
        torch = self.torch
        p, e = lt.shape
        if big_n > 4:
            raise SearchError(f"the torch backend scores subsets of at most 4 literals; got small-n {big_n}")
        ly = lt * yt
        out = {1: (lt.sum(1), ly.sum(1))}
        if big_n >= 2:
            out[2] = (lt @ lt.T, ly @ lt.T)
        if big_n < 3:
            return out
        block = max(1, self.budget // max(1, 3 * p * e * lt.element_size()))
        blocks = [slice(a, min(p, a + block)) for a in range(0, p, block)]

        def pairs(sl: slice, right):
            return (lt[sl, None, :] * right[None, :, :]).reshape(-1, e)

        i3 = torch.cat([pairs(sl, lt) @ lt.T for sl in blocks]).reshape(p, p, p)
        i3y = torch.cat([pairs(sl, lt) @ ly.T for sl in blocks]).reshape(p, p, p)
        out[3] = (i3, i3y)
        if big_n >= 4:
            i4 = torch.empty((p, p, p, p), dtype=lt.dtype, device=lt.device)
            i4y = torch.empty_like(i4)
            for sa in blocks:
                left, left_y = pairs(sa, lt), pairs(sa, ly)
                for sb in blocks:
                    right = pairs(sb, lt)
                    shape = (sa.stop - sa.start, p, sb.stop - sb.start, p)
                    i4[sa, :, sb, :] = (left @ right.T).reshape(shape)
                    i4y[sa, :, sb, :] = (left_y @ right.T).reshape(shape)
            out[4] = (i4, i4y)
        return out


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


# --------------------------------------------------------------------------- exact small-N scoring

INT64_MAX = np.iinfo(np.int64).max


def merge_topk(errs: np.ndarray, idxs: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-part top lists (parts, N, keep) / (parts, N, keep, N) into one (N, keep) list per M, by
    (errors, subset in lexicographic order)."""
    parts, big_n, k, _ = idxs.shape
    out_e = np.full((big_n, keep), INT64_MAX, np.int64)
    out_i = np.full((big_n, keep, big_n), -1, np.int64)
    for m in range(big_n):
        e = errs[:, m].reshape(-1)
        i = idxs[:, m].reshape(-1, big_n)
        ok = e < INT64_MAX
        e, i = e[ok], i[ok]
        order = np.lexsort(tuple(i[:, c] for c in range(big_n - 1, -1, -1)) + (e,))[:keep]
        out_e[m, : len(order)] = e[order]
        out_i[m, : len(order)] = i[order]
    return out_e, out_i


def combination_chunks(p: int, big_n: int, size: int):
    """The big_n-subsets of range(p) in lexicographic order, as arrays of at most `size` rows."""
    import itertools

    it = itertools.combinations(range(p), big_n)
    while True:
        chunk = np.array(list(itertools.islice(it, size)), dtype=np.int64).reshape(-1, big_n)
        if not len(chunk):
            return
        yield chunk


def _top_of_chunk(best_e, best_i, errors, combos, keep):
    """Merge a chunk's errors (C, N) for subsets `combos` (C, N) into the running top lists."""
    big_n = combos.shape[1]
    ce = errors.T[None]  # (1, N, C)
    ci = np.broadcast_to(combos[None, None], (1, big_n, len(combos), big_n))
    e, i = merge_topk(np.concatenate([best_e[None], ce], 2), np.concatenate([best_i[None], ci], 2), keep)
    return e, i


def _numpy_subset_topk(bits: np.ndarray, ybits: np.ndarray, n_pos: int, big_n: int, keep: int,
                       budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every subset, in lexicographic chunks; levels "at least m" built literal by literal."""
    p, w = bits.shape
    best_e = np.full((big_n, keep), INT64_MAX, np.int64)
    best_i = np.full((big_n, keep, big_n), -1, np.int64)
    for combos in combination_chunks(p, big_n, max(1, budget // max(1, 8 * w * (big_n + 3)))):
        levels = [np.full((len(combos), w), np.uint64(0xFFFFFFFFFFFFFFFF))]
        levels += [np.zeros((len(combos), w), np.uint64) for _ in range(big_n)]
        for q in range(big_n):
            x = bits[combos[:, q]]
            for m in range(q + 1, 0, -1):
                levels[m] = levels[m] | (levels[m - 1] & x)
        errors = np.stack([n_pos + np.bitwise_count(levels[m]).sum(1, dtype=np.int64)
                           - 2 * np.bitwise_count(levels[m] & ybits).sum(1, dtype=np.int64)
                           for m in range(1, big_n + 1)], 1)
        best_e, best_i = _top_of_chunk(best_e, best_i, errors, combos, keep)
    return best_e, best_i
