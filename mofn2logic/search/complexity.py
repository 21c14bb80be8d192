"""The paper's complexity measure of an M-of-N rule (docs/method.md, section 3).

complexity(N, M) = log(M * C(N, M)) / log(Mmax * C(n, Mmax)), Mmax = ceil((n + 1) / 2), with
n the unit's fan-in; 0 when M = 0 or M > N (and for 1-of-1, since log 1 = 0). It is the
normalised log-length of the rule's DNF. Undefined for n = 1 (the denominator is log 1 = 0):
`denominator` refuses such a unit with a SearchError; there is no fallback value.
"""

from __future__ import annotations

import math

import numpy as np

from mofn2logic.errors import SearchError

EXACT_LIMIT = 256  # up to this fan-in, log(M * C(N, M)) is taken exactly from Python integers


def denominator(n: int, where: str = "") -> float:
    """log(Mmax * C(n, Mmax)), Mmax = ceil((n + 1) / 2); SearchError for n < 2 (docs/method.md, section 3)."""
    if n < 2:
        raise SearchError(
            f"{where or 'a unit'} has {n} input{'s' if n != 1 else ''}: the complexity measure "
            "log(M*C(N,M)) / log(Mmax*C(n,Mmax)) is undefined for fewer than 2 inputs (log 1 = 0)"
        )
    mmax = (n + 2) // 2  # ceil((n + 1) / 2)
    return math.log(mmax * math.comb(n, mmax))


_tables: dict[int, np.ndarray] = {}


def _table(n: int) -> np.ndarray:
    """n <= EXACT_LIMIT: complexity of "M of N" as a flat (n+1) x (n+2) table (exact logs of
    Python integers); larger n: log-factorials LF[k] = log k!."""
    if n not in _tables:
        if n <= EXACT_LIMIT:
            den = denominator(n)
            t = np.zeros((n + 1, n + 2), np.float64)
            for big_n in range(1, n + 1):
                for m in range(1, big_n + 1):
                    t[big_n, m] = math.log(m * math.comb(big_n, m)) / den
            _tables[n] = t.ravel()
        else:
            _tables[n] = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])
    return _tables[n]


def complexity(big_n: np.ndarray, m: np.ndarray, n: int, where: str = "") -> np.ndarray:
    """Complexity of the rules "m of big_n" (arrays of equal shape, 0 <= m <= big_n + 1 <= n + 1)
    for a unit with `n` inputs (its fan-in, zero weights included; docs/method.md, section 3)."""
    den = denominator(n, where)
    big_n = np.asarray(big_n, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    table = _table(n)
    if n <= EXACT_LIMIT:
        return table[big_n * (n + 2) + np.minimum(m, big_n + 1)]
    # log(M * C(N, M)) = LF[N] - LF[N - M] - LF[M - 1]; with both indices floored at 0 this is
    # exactly 0 for M = 0 and M = N + 1.
    return (table[big_n] - table[np.maximum(big_n - m, 0)] - table[np.maximum(m - 1, 0)]) / den
