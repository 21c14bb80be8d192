"""Compiled (numba) single-pass kernels for the search's heavy pass, on the CPU (docs/method.md,
sections 2 and 3).

One walk over the literal-major matrix keeps every example's running count c_N(e) and adds
one to the histogram bin of (N, c_N(e), target) -- no intermediate arrays. For small fan-in the
histogram uses a triangular layout (bins c = 0..N for every N) and is compacted afterwards; for
large fan-in a first pass finds each N's count range so the layout stays O(E * n) in size.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@njit(cache=True, nogil=True)
def _histogram(lits_t, y, base, size):  # pragma: no cover - compiled
    """Bin 0 holds N = 0; the count c of N = k + 1 goes to bin base[k] + c, split by target."""
    n, e = lits_t.shape
    pos = np.zeros(size, np.int64)
    neg = np.zeros(size, np.int64)
    count = np.zeros(e, np.int64)
    for j in range(e):
        if y[j]:
            pos[0] += 1
        else:
            neg[0] += 1
    for k in range(n):
        row = lits_t[k]
        b = base[k]
        for j in range(e):
            count[j] += row[j]
            if y[j]:
                pos[b + count[j]] += 1
            else:
                neg[b + count[j]] += 1
    return pos, neg


@njit(cache=True, nogil=True)
def _ranges(lits_t):  # pragma: no cover - compiled
    n, e = lits_t.shape
    lo = np.zeros(n + 1, np.int64)
    hi = np.zeros(n + 1, np.int64)
    count = np.zeros(e, np.int64)
    for k in range(n):
        row = lits_t[k]
        mn = n + 1
        mx = 0
        for j in range(e):
            count[j] += row[j]
            c = count[j]
            if c < mn:
                mn = c
            if c > mx:
                mx = c
        lo[k + 1] = mn if e > 0 else 0
        hi[k + 1] = mx
    return lo, hi


def prefix_histogram(lits_t: np.ndarray, y: np.ndarray):
    """(lo, hi, offsets, pos, neg) in the compact layout of `backends.PrefixHistogram`."""
    n, e = lits_t.shape
    lits = lits_t.view(np.uint8) if lits_t.dtype == np.bool_ else lits_t.astype(np.uint8)
    yy = np.asarray(y, dtype=np.bool_)
    if (n + 1) * (n + 2) // 2 <= e * (n + 1) // 2:  # triangular bins stay small: one pass, then compact
        starts = np.arange(n + 1) * (np.arange(n + 1) + 1) // 2  # triangular: bins c = 0..N for every N
        pos_t, neg_t = _histogram(lits, yy, starts[1:], (n + 1) * (n + 2) // 2)
        filled = (pos_t + neg_t) > 0
        nz = np.flatnonzero(filled)
        row = np.searchsorted(starts, nz, side="right") - 1
        lo = np.full(n + 1, -1, np.int64)
        hi = np.zeros(n + 1, np.int64)
        first = np.ones(len(nz), bool)
        first[1:] = row[1:] != row[:-1]
        lo[row[first]] = nz[first] - starts[row[first]]
        last = np.ones(len(nz), bool)
        last[:-1] = row[1:] != row[:-1]
        hi[row[last]] = nz[last] - starts[row[last]]
        if e == 0:
            lo[:] = 0
        width = hi - lo + 1
        offsets = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
        take = np.repeat(starts + lo, width) + (np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], width))
        return lo, hi, offsets, pos_t[take], neg_t[take]
    lo, hi = _ranges(lits)
    offsets = np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)
    pos, neg = _histogram(lits, yy, offsets[1:-1] - lo[1:], int(offsets[-1]))
    return lo, hi, offsets, pos, neg


@njit(cache=True, nogil=True)
def binary_split_sweep(xt, ordt, ys, table, eps):  # pragma: no cover - compiled
    """Best cut of every input (rows of `xt`, (k, E), sorted by `ordt`) against every binary
    target (rows of `ys`, (U, E)). The gain is splits.split_gain's expression, term for term and
    in the same order, so equal gains tie exactly as in the numpy sweep; the lowest cut wins ties
    (docs/method.md, section 2).
    Returns the cut position p per (target, input) -- left part = the first p + 1 sorted rows,
    -1 for no positive gain -- and its gain."""
    k, e = xt.shape
    u = ys.shape[0]
    best_pos = np.full((u, k), -1, np.int64)
    best_gain = np.zeros((u, k), np.float64)
    tot1 = np.zeros(u, np.int64)
    s_all = np.zeros(u, np.float64)
    for t in range(u):
        for j in range(e):
            tot1[t] += ys[t, j]
        s_all[t] += table[e - tot1[t]]
        s_all[t] += table[tot1[t]]
    for col in range(k):
        xs = xt[col]
        order = ordt[col]
        for t in range(u):
            y = ys[t]
            l1 = 0
            g_best = -np.inf
            p_best = -1
            tot0_t = e - tot1[t]
            for p in range(e - 1):
                r = order[p]
                l1 += y[r]
                if xs[r] < xs[order[p + 1]]:
                    n_l = p + 1
                    l0 = n_l - l1
                    s_l = 0.0
                    s_l += table[l0]
                    s_l += table[l1]
                    s_r = 0.0
                    s_r += table[tot0_t - l0]
                    s_r += table[tot1[t] - l1]
                    g = (table[e] - s_all[t] - (table[e - n_l] - s_r) - (table[n_l] - s_l)) / e
                    if g > g_best:
                        g_best = g
                        p_best = p
            if p_best >= 0 and g_best > eps:
                best_pos[t, col] = p_best
                best_gain[t, col] = g_best
    return best_pos, best_gain


# --------------------------------------------------------------------------- exact small-N search

@intrinsic
def popcount64(typingctx, x):  # pragma: no cover - compiled
    """The CPU's population count of a uint64 word (llvm.ctpop)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, nogil=True)
def _insert(errs, idxs, m, err, comb):  # pragma: no cover - compiled
    """Insert (err, comb) into the ascending list errs[m, :] (kept after equal errors: combinations arrive in
    lexicographic order, so the earlier of two equal ones stays first)."""
    keep = errs.shape[1]
    if err >= errs[m, keep - 1]:
        return
    p = keep - 1
    while p > 0 and errs[m, p - 1] > err:
        errs[m, p] = errs[m, p - 1]
        idxs[m, p, :] = idxs[m, p - 1, :]
        p -= 1
    errs[m, p] = err
    idxs[m, p, :] = comb


@njit(cache=True, nogil=True)
def _extend(state, lvl, x_row, w_count):  # pragma: no cover - compiled
    """state[lvl + 1][m] = at least m of the first lvl + 1 literals, from state[lvl] and literal x."""
    for w in range(w_count):
        x = x_row[w]
        state[lvl + 1, 0, w] = state[lvl, 0, w]
        for m in range(lvl + 1, 0, -1):
            state[lvl + 1, m, w] = state[lvl, m, w] | (state[lvl, m - 1, w] & x)


@njit(cache=True, nogil=True)
def _subset_task(bits, ybits, n_pos, big_n, first, step, errs, idxs):  # pragma: no cover - compiled
    """Every subset of `big_n` rows of `bits` whose first row is first, first + step, ... (lexicographic
    within each first row): the `keep` least errors of "at least M of the subset", M = 1..big_n."""
    p_count, w_count = bits.shape
    state = np.zeros((big_n + 1, big_n + 2, w_count), np.uint64)
    for w in range(w_count):
        state[0, 0, w] = ~np.uint64(0)
    comb = np.zeros(big_n, np.int64)
    pc = np.zeros(big_n + 1, np.int64)
    pcy = np.zeros(big_n + 1, np.int64)
    for i0 in range(first, p_count - big_n + 1, step):
        comb[0] = i0
        for q in range(1, big_n):
            comb[q] = i0 + q
        for q in range(big_n - 1):
            _extend(state, q, bits[comb[q]], w_count)
        while True:
            # the last literal is folded in on the fly: state[big_n - 1] plus row comb[big_n - 1]
            for m in range(big_n + 1):
                pc[m] = 0
                pcy[m] = 0
            last = bits[comb[big_n - 1]]
            s = big_n - 1
            for w in range(w_count):
                x = last[w]
                yw = ybits[w]
                for m in range(1, big_n + 1):
                    v = state[s, m, w] | (state[s, m - 1, w] & x)
                    pc[m] += popcount64(v)
                    pcy[m] += popcount64(v & yw)
            for m in range(1, big_n + 1):
                _insert(errs, idxs, m - 1, n_pos + pc[m] - 2 * pcy[m], comb)
            # next combination with the same first row
            p = big_n - 1
            while p >= 1 and comb[p] == p_count - big_n + p:
                p -= 1
            if p == 0:
                break
            comb[p] += 1
            for q in range(p + 1, big_n):
                comb[q] = comb[q - 1] + 1
            for q in range(p, big_n - 1):
                _extend(state, q, bits[comb[q]], w_count)


@njit(cache=True, nogil=True)
def subset_topk(bits, ybits, n_pos, big_n, keep, first, step):  # pragma: no cover - compiled
    """The `keep` least errors of every M (1..big_n) over the `big_n`-subsets of the rows of `bits` (P, W)
    uint64 whose first row is first, first + step, ...; target words `ybits` (W,). Releases the GIL, so
    that threads share the first rows (interleaved: equal work). Returns errs (big_n, keep) and idxs
    (big_n, keep, big_n); unused slots hold the largest int64 and -1."""
    errs = np.full((big_n, keep), np.iinfo(np.int64).max, np.int64)
    idxs = np.full((big_n, keep, big_n), -1, np.int64)
    _subset_task(bits, ybits, n_pos, big_n, first, step, errs, idxs)
    return errs, idxs


@njit(cache=True, nogil=True)
def _row_counts(rows, which, yes, no):  # pragma: no cover - compiled
    out = np.zeros((len(which), 2), np.int64)
    e = rows.shape[1]
    for k in range(len(which)):
        row = rows[which[k]]
        s0 = 0
        s1 = 0
        for j in range(e):  # branch-free: vectorised
            s0 += row[j] & no[j]
            s1 += row[j] & yes[j]
        out[k, 0] = s0
        out[k, 1] = s1
    return out


def row_counts(rows: np.ndarray, which: np.ndarray, y: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """For rows `which` of the boolean matrix `rows` (n, E): fit examples where the row is true, split by
    target ((k, 2): [target false, target true])."""
    yes = (fit & y).astype(np.uint8)
    no = (fit & ~y).astype(np.uint8)
    return _row_counts(np.ascontiguousarray(rows).view(np.uint8), np.asarray(which, np.int64), yes, no)


@njit(cache=True, nogil=True)
def bin_counts(bins, y, fit, n_bins):  # pragma: no cover - compiled
    """Per input row of `bins` (n, E): how many fit examples fall in each bin, split by target
    ((n, n_bins, 2): [..., 0] target false, [..., 1] target true)."""
    n, e = bins.shape
    out = np.zeros((n, n_bins, 2), np.int64)
    for i in range(n):
        row = bins[i]
        for j in range(e):
            if fit[j]:
                out[i, row[j], 1 if y[j] else 0] += 1
    return out


@njit(cache=True, nogil=True)
def _levels(bits, rule, n_lits, valid, levels):  # pragma: no cover - compiled
    """levels[m] = examples where at least m of the rule's literals hold (m = 0..n_lits; above: empty)."""
    w_count = bits.shape[1]
    levels[:] = 0
    for w in range(w_count):
        levels[0, w] = valid[w]
    for k in range(n_lits):
        x_row = bits[rule[k]]
        for w in range(w_count):
            x = x_row[w]
            for m in range(k + 1, 0, -1):
                levels[m, w] = levels[m, w] | (levels[m - 1, w] & x)


@njit(cache=True, nogil=True)
def _errors_of(f, ybits, n_pos):  # pragma: no cover - compiled
    pc = 0
    pcy = 0
    for w in range(f.shape[0]):
        pc += popcount64(f[w])
        pcy += popcount64(f[w] & ybits[w])
    return n_pos + pc - 2 * pcy


@njit(cache=True, nogil=True)
def local_search(bits, ybits, valid, n_pos, n_examples, rule0, m0, beta, cx, steps):  # pragma: no cover - compiled
    """Best-improvement local search from "m0 of rule0" (indices into the rows of `bits`, (Q, W) uint64).
    Moves, scanned in this order (the first of equal losses wins): another M; drop a literal (M or M - 1);
    add a literal (M or M + 1); swap a literal for one outside the rule (M - 1, M or M + 1). Loss =
    errors / n_examples + beta * cx[N, M]; constant rules (M = 0 or M > N) are not visited. Stops when no
    move lowers the loss, or after `steps` moves. Returns (rule, n, m, errors, moves made)."""
    q_count, w_count = bits.shape
    n_max = cx.shape[0] - 2
    rule = np.full(n_max + 1, -1, np.int64)
    n = len(rule0)
    for k in range(n):
        rule[k] = rule0[k]
    m = m0
    inside = np.zeros(q_count, np.bool_)
    for k in range(n):
        inside[rule[k]] = True
    levels = np.zeros((n_max + 3, w_count), np.uint64)
    _levels(bits, rule, n, valid, levels)
    err = _errors_of(levels[m], ybits, n_pos)
    loss = err / n_examples + beta * cx[n, m]
    tmp = np.zeros(w_count, np.uint64)
    made = 0
    for _ in range(steps):
        best_loss = loss
        best_kind = -1
        best_a = -1
        best_b = -1
        best_m = -1
        best_err = -1
        # 1. another M
        for mm in range(1, n + 1):
            if mm == m:
                continue
            er = _errors_of(levels[mm], ybits, n_pos)
            lo = er / n_examples + beta * cx[n, mm]
            if lo < best_loss:
                best_loss, best_kind, best_m, best_err = lo, 0, mm, er
        # 2. drop literal a: at least mm of the rest = levels[mm + 1] | (levels[mm] & ~a)
        if n >= 2:
            for a in range(n):
                xa = bits[rule[a]]
                for mm in range(max(1, m - 1), min(m, n - 1) + 1):
                    for w in range(w_count):
                        tmp[w] = levels[mm + 1, w] | (levels[mm, w] & ~xa[w])
                    er = _errors_of(tmp, ybits, n_pos)
                    lo = er / n_examples + beta * cx[n - 1, mm]
                    if lo < best_loss:
                        best_loss, best_kind, best_a, best_m, best_err = lo, 1, a, mm, er
        # 3. add literal b, 4. swap a for b
        if n < n_max:
            add_loss = np.full(q_count, np.inf)
            add_m = np.zeros(q_count, np.int64)
            add_err = np.zeros(q_count, np.int64)
            for b in range(q_count):
                if inside[b]:
                    continue
                xb = bits[b]
                f = np.empty(w_count, np.uint64)
                for mm in range(max(1, m), m + 2):
                    if mm > n + 1:
                        continue
                    for w in range(w_count):
                        f[w] = levels[mm, w] | (levels[mm - 1, w] & xb[w])
                    er = _errors_of(f, ybits, n_pos)
                    lo = er / n_examples + beta * cx[n + 1, mm]
                    if lo < add_loss[b]:
                        add_loss[b], add_m[b], add_err[b] = lo, mm, er
            for b in range(q_count):
                if add_loss[b] < best_loss:
                    best_loss, best_kind, best_b, best_m, best_err = add_loss[b], 2, b, add_m[b], add_err[b]
        sw_loss = np.full((n, q_count), np.inf)
        sw_m = np.zeros((n, q_count), np.int64)
        sw_err = np.zeros((n, q_count), np.int64)
        for a in range(n):
            xa = bits[rule[a]]
            lo_m = max(1, m - 1)
            hi_m = min(m + 1, n)
            # at least mm of the rule without a, for mm = lo_m - 1 .. hi_m
            rest = np.empty((hi_m - lo_m + 2, w_count), np.uint64)
            for r in range(hi_m - lo_m + 2):
                mm = lo_m - 1 + r
                for w in range(w_count):
                    rest[r, w] = levels[mm + 1, w] | (levels[mm, w] & ~xa[w])
            f = np.empty(w_count, np.uint64)
            for b in range(q_count):
                if inside[b]:
                    continue
                xb = bits[b]
                for mm in range(lo_m, hi_m + 1):
                    r = mm - lo_m + 1
                    for w in range(w_count):
                        f[w] = rest[r, w] | (rest[r - 1, w] & xb[w])
                    er = _errors_of(f, ybits, n_pos)
                    lo = er / n_examples + beta * cx[n, mm]
                    if lo < sw_loss[a, b]:
                        sw_loss[a, b], sw_m[a, b], sw_err[a, b] = lo, mm, er
        for a in range(n):
            for b in range(q_count):
                if sw_loss[a, b] < best_loss:
                    best_loss, best_kind, best_a, best_b, best_m, best_err = sw_loss[a, b], 3, a, b, sw_m[a, b], sw_err[a, b]
        if best_kind < 0 or not best_loss < loss - 1e-12:
            break
        if best_kind == 1:
            inside[rule[best_a]] = False
            for k in range(best_a, n - 1):
                rule[k] = rule[k + 1]
            rule[n - 1] = -1
            n -= 1
        elif best_kind == 2:
            rule[n] = best_b
            inside[best_b] = True
            n += 1
        elif best_kind == 3:
            inside[rule[best_a]] = False
            rule[best_a] = best_b
            inside[best_b] = True
        m = best_m
        err = best_err
        loss = best_loss
        made += 1
        _levels(bits, rule, n, valid, levels)
    return rule[:n].copy(), n, m, err, made


# --------------------------------------------------------------------------- prefix search, fused

@njit(cache=True, nogil=True)
def _sparse_layout(ones, e):  # pragma: no cover - compiled
    """Which rows are stored complemented (more ones than zeros), and the row pointers of the stored side."""
    n = len(ones)
    complemented = np.zeros(n, np.uint8)
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        if 2 * ones[i] > e:
            complemented[i] = 1
            indptr[i + 1] = indptr[i] + e - ones[i]
        else:
            indptr[i + 1] = indptr[i] + ones[i]
    return complemented, indptr


@njit(cache=True, nogil=True)
def sparse_rows(rows):  # pragma: no cover - compiled
    """The literal-major boolean matrix `rows` (n, E) (uint8 view) as compressed rows of the examples where
    it is true -- or, where that is more than half of them, where it is false (`complemented[i]`): at most
    E / 2 entries per row, which is all the prefix walk (`prefix_errors`) reads."""
    n, e = rows.shape
    ones = np.zeros(n, np.int64)
    for i in range(n):
        s = 0
        row = rows[i]
        for j in range(e):
            s += row[j]
        ones[i] = s
    complemented, indptr = _sparse_layout(ones, e)
    indices = np.empty(indptr[n], np.int32)
    for i in range(n):
        row = rows[i]
        p = indptr[i]
        want = 1 - complemented[i]
        for j in range(e):
            if row[j] == want:
                indices[p] = j
                p += 1
    return indptr, indices, complemented


@njit(cache=True, nogil=True)
def sparse_rows_ge(x, t):  # pragma: no cover - compiled
    """`sparse_rows` of the literal-major matrix x.T >= t[:, None], read from the example-major `x` (E, n)
    without forming it (nor the transposed copy of x)."""
    e, n = x.shape
    ones = np.zeros(n, np.int64)
    for j in range(e):
        row = x[j]
        for i in range(n):
            if row[i] >= t[i]:
                ones[i] += 1
    complemented, indptr = _sparse_layout(ones, e)
    indices = np.empty(indptr[n], np.int32)
    fill = indptr[:n].copy()
    for j in range(e):
        row = x[j]
        for i in range(n):
            if (row[i] >= t[i]) != (complemented[i] != 0):
                indices[fill[i]] = j
                fill[i] += 1
    return indptr, indices, complemented


@njit(cache=True, nogil=True)
def prefix_errors(indptr, indices, flip, order, up, n_pos, n_neg, out):  # pragma: no cover - compiled
    """Errors of every "M of the first N" of the literals `order` (rows of a `sparse_rows` matrix, each read
    as stored XOR flip[row]) for M = lo_N + 1 .. hi_N + 1, N = 0..n, where [lo_N, hi_N] is the range of the
    examples' counts c_N -- the values of `unit.candidates_from_histogram`'s `errors`, in its layout -- and
    per N the first M of least error (the seeds).

    Only the stored entries of a row are visited. A literal read as stored moves its examples' count up by
    one: they now fire at M = c + 1, whose error changes by up[e] (-1 for a positive target, +1 for a
    negative one). A flipped literal moves every count up except at its stored entries: that is a shift
    of the whole error curve by one M (kept as an offset F: err(M) = A[M - F]) and the stored examples'
    counts moving back down. d[e] = c[e] - F is kept per example, and the number of examples at each d
    gives lo and hi.

    Only the errors that can survive the pruning are stored: below min(#pos, #neg) + 1 (above it the
    always- and never-firing rules, of complexity 0, have less error), from the first M of each N with
    such an error to the last (`m_first[N]` is the first one's M). They go to `out` (int32, reused
    between calls: fresh memory costs page faults), grown when too small. Returns (out, offsets (n + 2,),
    m_first (n + 1,), seed_err, seed_m)."""
    n = len(order)
    e = len(up)
    base = n + 1  # A[d] lives at base + d, d in -n - 1 .. n + 1
    a = np.empty(2 * n + 4, np.int64)
    for i in range(2 * n + 4):
        a[i] = n_neg if i <= base else n_pos
    at = np.zeros(2 * n + 4, np.int64)  # examples per d
    at[base] = e
    d = np.zeros(e, np.int32)
    dmin = 0
    dmax = 0
    f = 0
    cap = min(n_pos, n_neg)
    m_first = np.ones(n + 1, np.int64)
    offsets = np.zeros(n + 2, np.int64)
    seed_err = np.zeros(n + 1, np.int64)
    seed_m = np.ones(n + 1, np.int64)
    if len(out) < 1:
        out = np.empty(max(16, 4 * (n + 1)), np.int32)
    seed_err[0] = n_pos  # N = 0: every count is 0, M = 1
    if n_pos <= cap:
        out[0] = n_pos
        offsets[1] = 1
    for k in range(n):
        r = order[k]
        if flip[r] != 0:
            f += 1
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                dj = d[j]
                a[base + dj] -= up[j]
                at[base + dj] -= 1
                at[base + dj - 1] += 1
                d[j] = dj - 1
        else:
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                dj = d[j]
                a[base + dj + 1] += up[j]
                at[base + dj] -= 1
                at[base + dj + 1] += 1
                d[j] = dj + 1
        if e > 0:
            while at[base + dmin - 1] > 0:
                dmin -= 1
            while at[base + dmin] == 0:
                dmin += 1
            while at[base + dmax + 1] > 0:
                dmax += 1
            while at[base + dmax] == 0:
                dmax -= 1
        else:
            dmin = -f
            dmax = -f
        lo = dmin + f
        width = dmax - dmin + 1
        best = a[base + dmin + 1]
        best_q = 0
        first = -1
        last = -2
        for q in range(width):
            v = a[base + dmin + 1 + q]
            if v < best:
                best = v
                best_q = q
            if v <= cap:
                if first < 0:
                    first = q
                last = q
        seed_err[k + 1] = best
        seed_m[k + 1] = lo + 1 + best_q
        m_first[k + 1] = lo + 1 + max(first, 0)
        start = offsets[k + 1]
        kept = last - first + 1
        if start + kept > len(out):
            grown = np.empty(max(2 * len(out), start + kept), np.int32)
            grown[:start] = out[:start]
            out = grown
        for q in range(kept):
            out[start + q] = a[base + dmin + 1 + first + q]
        offsets[k + 2] = start + kept
    return out, offsets, m_first, seed_err, seed_m


@njit(cache=True, nogil=True)
def _cx(big_n, m, table, exact, cols, den):  # pragma: no cover - compiled
    """complexity.complexity of one "m of big_n", operation for operation (so bit for bit)."""
    if exact:
        return table[big_n * cols + min(m, big_n + 1)]
    return (table[big_n] - table[max(big_n - m, 0)] - table[max(m - 1, 0)]) / den


@njit(cache=True, nogil=True)
def _below(lowest):  # pragma: no cover - compiled
    """below[i] = least of lowest[:i] (inf for i = 0)."""
    below = np.empty(len(lowest), np.float64)
    run = np.inf
    for i in range(len(lowest)):
        below[i] = run
        if lowest[i] < run:
            run = lowest[i]
    return below


@njit(cache=True, nogil=True)
def prune_candidates(errors, offsets, m_first, seed_err, seed_m, n_pos, n_neg, table, exact, cols, den,
                     lf):  # pragma: no cover - compiled
    """`unit.candidates_from_histogram` from `prefix_errors`' layout and seeds (see there for the argument),
    step for step: the seeds' staircase, the cheap bound `lf`, then the staircase of the survivors; no
    array the size of `errors` is made. Returns (n, m, errors, complexity) of the candidates kept, (0, 0)
    first."""
    n_seg = len(m_first)
    e = n_pos + n_neg
    lowest = np.full(e + 1, np.inf)
    for s in range(n_seg):
        c = _cx(s, seed_m[s], table, exact, cols, den)
        if c < lowest[seed_err[s]]:
            lowest[seed_err[s]] = c
    lowest[n_neg] = 0.0
    lowest[n_pos] = 0.0
    below = _below(lowest)
    for s in range(n_seg):  # the survivors of the bound lower the staircase
        bound = lf[s]
        for p in range(offsets[s], offsets[s + 1]):
            er = errors[p]
            if below[er] > bound:
                c = _cx(s, p - offsets[s] + m_first[s], table, exact, cols, den)
                if c < lowest[er]:
                    lowest[er] = c
    final = _below(lowest)
    kept = 1
    for s in range(n_seg):
        bound = lf[s]
        for p in range(offsets[s], offsets[s + 1]):
            er = errors[p]
            if below[er] > bound and _cx(s, p - offsets[s] + m_first[s], table, exact, cols, den) < final[er]:
                kept += 1
    n_out = np.zeros(kept, np.int64)
    m_out = np.zeros(kept, np.int64)
    e_out = np.zeros(kept, np.int64)
    c_out = np.zeros(kept, np.float64)
    e_out[0] = n_neg
    q = 1
    for s in range(n_seg):
        bound = lf[s]
        for p in range(offsets[s], offsets[s + 1]):
            er = errors[p]
            if below[er] > bound:
                m = p - offsets[s] + m_first[s]
                c = _cx(s, m, table, exact, cols, den)
                if c < final[er]:
                    n_out[q] = s
                    m_out[q] = m
                    e_out[q] = er
                    c_out[q] = c
                    q += 1
    return n_out, m_out, e_out, c_out
