"""Decision lists fitted for the class (ours; docs/method.md, section 5.8).

A program's class block can be an ordered decision list of M-of-N rules over the atoms of the
block below it (`mofn2logic.ir.program.DecisionListBlock`): the first rule that holds names the
class, else a default class. `learn_decision_list` fits one by greedy sequential covering on
boolean source atoms X (E, A) and the network's classes y, within a literal budget. Each step:

1. the examples not yet covered (all at first), and their majority class d (ties: the lowest);
2. for every class c present there, the pool of its candidate literals: per atom the literal
   whose true side holds the larger share of class c (positive on equal shares); the `pool` atoms
   of highest information gain about "class c" among the examples left, gain descending, ties to
   the lower atom;
3. every rule "M of S", S a subset of the pool with |S| <= `max_n` and 1 <= M <= |S|, counted
   exactly on bit-packed literal rows (the layout of `mofn2logic.search.exact.pack_bits`; every
   subset at once, with popcounts): among the examples left it fires on tp of class c, fp of the
   other classes, f_d of class d. Its score is ``tp - penalty * fp`` (the fp examples are covered
   for good, and wrongly, so a rule must be precise). It qualifies when the score is positive and
   ``tp - f_d >= min_gain`` -- by exactly tp - f_d it lowers the errors of the list so far
   followed by the default d -- or, for c = d, ``tp >= min_gain``: it changes no error, but takes
   d's examples out of the way of precise rules for the other classes (and the default may then
   change to a better one). Per (|S|, M) the best qualifying subset is a candidate (ties: the
   first in lexicographic pool order);
4. from the class's best candidate (the highest score; ties: fewer literals, lower M), a rule grown
   one pool literal at a time up to `grow` literals: the literal and M (unchanged, or plus one) of
   the highest score (ties: M unchanged, then the first literal), while the score rises; each grown
   rule is a candidate too;
5. of the candidates that fit the budget left, the largest score per literal wins (ties: the
   larger score, the fewer literals, the lower class, the lower M); it is appended, and the
   examples it fires on are covered. When no rule qualifies, the penalty is halved, from `penalty`
   (default 8: more than 8/9 of what a rule fires on is its class) down to `min_penalty` (default
   1: more than half), so precise rules come first and broader ones while budget is left.

The loop ends at the budget, when no rule qualifies at the lowest penalty, or when every example
is covered. The default is the majority class of the examples left (ties: the lowest; none left:
the majority of all); rules at the end that name the default are dropped (they change no
decision). No rule raises the training errors of the list followed by the majority class of what
is left, so the list is never worse on its training data than the majority class.
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import numpy as np

from mofn2logic.errors import DataError, SearchError
from mofn2logic.ir.program import AtomLiteral, DecisionListBlock, MofNRule, Program
from mofn2logic.search.exact import pack_bits
from mofn2logic.search.splits import split_gain, xlogx_table

DEFAULT_BUDGET = 50  # literals
DEFAULT_MAX_N = 3  # literals of the exact search
DEFAULT_GROW = 12  # literals a rule may grow to from the best exact one
DEFAULT_POOL = 32
DEFAULT_PENALTY = 8  # the first penalty; halved whenever no rule qualifies, down to MIN_PENALTY
DEFAULT_MIN_PENALTY = 1
DEFAULT_MIN_GAIN = 1  # examples
CHUNK_WORDS = 1 << 22  # uint64 words per array while counting a chunk of subsets


def _majority(y: np.ndarray, n_classes: int) -> int:
    return int(np.argmax(np.bincount(y, minlength=n_classes)))  # argmax: the lowest class on ties


def class_pool(x: np.ndarray, target: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(atoms, positive) of the `size` literals of highest information gain about `target` on the rows
    of `x` (E, A) bool: each atom with the polarity whose true side holds the larger share of the
    target (positive on equal shares), gain descending, ties to the lower atom."""
    e, n_pos = len(target), int(target.sum())
    on_true = x[target].sum(0).astype(np.int64)  # target examples where the atom holds
    on_all = x.sum(0).astype(np.int64)
    on = np.stack([on_all - on_true, on_true], 1)  # (A, 2): [not target, target] where the atom holds
    off = np.array([e - n_pos, n_pos], np.int64)[None, :] - on
    gain = np.nan_to_num(split_gain(on, off, xlogx_table(e)))
    positive = on[:, 1] * off.sum(1) >= off[:, 1] * on.sum(1)  # P(t | a) >= P(t | not a), in integers
    atoms = np.argsort(-gain, kind="stable")[:size]
    return atoms, positive[atoms]


@functools.cache
def _subsets(p: int, n: int) -> np.ndarray:
    """Every n-subset of range(p), lexicographic, (C, n)."""
    return np.array(list(itertools.combinations(range(p), n)), np.int64).reshape(-1, n)


def subset_counts(bits: np.ndarray, masks: np.ndarray, big_n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every big_n-subset S of the rows of `bits` (P, W) uint64 (lexicographic) and M = 1..big_n:
    how many examples of each of `masks` (K, W) uint64 "at least M of S" holds on, (big_n, C, K), and
    the subsets (C, big_n). "At least m of the literals so far" is built literal by literal,
    A_m <- A_m or (A_(m-1) and x), as in the exact search (docs/method.md, section 3.10)."""
    combos = _subsets(bits.shape[0], big_n)
    w = bits.shape[1]
    out = np.zeros((big_n, len(combos), len(masks)), np.int64)
    step = max(1, CHUNK_WORDS // max(1, w * (big_n + 1)))
    for c0 in range(0, len(combos), step):
        part = combos[c0:c0 + step]
        levels = [np.full((len(part), w), np.iinfo(np.uint64).max, np.uint64)]
        levels += [np.zeros((len(part), w), np.uint64) for _ in range(big_n)]
        for j in range(big_n):
            xj = bits[part[:, j]]
            for m in range(j + 1, 0, -1):
                levels[m] |= levels[m - 1] & xj
        for m in range(1, big_n + 1):
            for k, mask in enumerate(masks):
                out[m - 1, c0:c0 + len(part), k] = np.bitwise_count(levels[m] & mask).sum(1, dtype=np.int64)
    return out, combos


def _qualified(tp: np.ndarray, f_d: np.ndarray, f: np.ndarray, pen: Fraction, min_gain: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores times the penalty's denominator, whether each rule qualifies): module docstring, step 3."""
    score = tp * pen.denominator - pen.numerator * (f - tp)
    return score, (score > 0) & (tp - f_d >= min_gain)


def _class_rules(truth: np.ndarray, masks: np.ndarray, pen: Fraction, max_n: int, grow: int, room: int,
                 min_gain: int) -> list[tuple[Fraction, int, np.ndarray]]:
    """The qualifying rules of one class, as (score, M, pool indices): per (N, M) the best exact rule of
    at most `max_n` literals, then those grown from the best of them (the highest score; ties: fewer
    literals, lower M, first subset) one literal at a time up to `grow` literals: each step adds the
    pool literal, keeping M or raising it by one, that gives the highest score (ties: keep M, then the
    first literal), while the score rises. At most `room` literals."""
    out: list[tuple[Fraction, int, np.ndarray]] = []
    bits = pack_bits(truth.T)
    packed = pack_bits(masks)
    for big_n in range(1, min(max_n, truth.shape[1], room) + 1):
        found, combos = subset_counts(bits, packed, big_n)
        for m in range(1, big_n + 1):
            tp, f_d, f = found[m - 1].T
            score, ok = _qualified(tp, f_d, f, pen, min_gain)
            if ok.any():
                i = int(np.argmax(np.where(ok, score, -1)))  # argmax: the first subset on ties
                out.append((Fraction(int(score[i]), pen.denominator), m, combos[i]))
    if not out:
        return out
    value, m, cur = max(out, key=lambda r: (r[0], -len(r[2]), -r[1]))  # max: the first of equals
    count = truth[:, cur].sum(1)
    while len(cur) < min(grow, room, truth.shape[1]):
        rest = np.setdiff1d(np.arange(truth.shape[1]), cur)  # ascending
        new = count[:, None] + truth[:, rest]  # (E, candidates): the count with each literal added
        best = None
        for m2 in (m, m + 1):
            fires = new >= m2
            tp, f_d, f = (masks[:, :, None] & fires[None]).sum(1)
            score, ok = _qualified(tp, f_d, f, pen, min_gain)
            if ok.any():
                i = int(np.argmax(np.where(ok, score, -1)))
                v = Fraction(int(score[i]), pen.denominator)
                if best is None or v > best[0]:
                    best = (v, m2, int(rest[i]))
        if best is None or best[0] <= value:
            break
        value, m, j = best
        cur = np.append(cur, j)
        count = count + truth[:, j]
        out.append((value, m, cur))
    return out


def learn_decision_list(x: np.ndarray, y: np.ndarray, n_classes: int, budget: int = DEFAULT_BUDGET, *,
                        max_n: int = DEFAULT_MAX_N, grow: int = DEFAULT_GROW, pool: int = DEFAULT_POOL,
                        penalty: float = DEFAULT_PENALTY, min_penalty: float = DEFAULT_MIN_PENALTY,
                        min_gain: int = DEFAULT_MIN_GAIN, per_literal: bool = True) -> tuple[tuple[MofNRule, ...], int]:
    """(rules in order, default class) of a decision list over the atoms `x` (E, A) bool for the
    classes `y` (E,) in 0..n_classes-1, with at most `budget` literals (module docstring)."""
    x = np.asarray(x, dtype=bool)
    y = np.asarray(y, dtype=np.int64)
    if budget < 0 or max_n < 1 or grow < 0 or pool < 1 or min_gain < 1 or not penalty >= min_penalty > 0:
        raise SearchError(f"a decision list needs budget >= 0, max_n >= 1, grow >= 0, pool >= 1, penalty >= "
                          f"min_penalty > 0 and min_gain >= 1; got budget {budget}, max_n {max_n}, grow {grow}, "
                          f"pool {pool}, penalty {penalty}, min_penalty {min_penalty}, min_gain {min_gain}")
    pen, floor = Fraction(penalty), Fraction(min_penalty)
    left = np.ones(len(y), bool)
    rules: list[MofNRule] = []
    used = 0
    while used < budget and left.any():
        ys, xs = y[left], x[left]
        counts = np.bincount(ys, minlength=n_classes)
        d = int(np.argmax(counts))
        best: tuple | None = None
        for c in range(n_classes):
            if counts[c] == 0:
                continue
            target = ys == c
            atoms, positive = class_pool(xs, target, pool)
            truth = xs[:, atoms] == positive[None, :]  # (E, P) literal truth
            # class c, class d (none for c = d: covering d's own examples changes no error), all
            masks = np.stack([target, (ys == d) & (c != d), np.ones(len(ys), bool)])
            for value, m, idx in _class_rules(truth, masks, pen, max_n, grow, budget - used, min_gain):
                key = (-value / len(idx) if per_literal else -value, -value, len(idx), c, m)
                if best is None or key < best[0]:
                    best = (key, c, m, atoms[idx], positive[idx])
        if best is None:
            if pen / 2 < floor:
                break
            pen /= 2  # no precise rule left: accept less precise ones
            continue
        _, c, m, sub_atoms, sub_pos = best
        rules.append(MofNRule(c, m, tuple(AtomLiteral(int(a), bool(p)) for a, p in zip(sub_atoms, sub_pos))))
        used += len(sub_atoms)
        left &= ~((x[:, sub_atoms] == sub_pos[None, :]).sum(1) >= m)
    default = _majority(y[left] if left.any() else y, n_classes)
    while rules and rules[-1].unit == default:
        rules.pop()
    return tuple(rules), default


def cut_atoms(program: Program, x: np.ndarray) -> np.ndarray:
    """(E, A) bool: the atoms of the block the program's class block reads, computed by the program
    itself (the numpy engine) on the cut tensor's values `x`."""
    from mofn2logic.engines.numpy_engine import evaluate

    atoms, _, _ = evaluate(program, x)
    return atoms[program.output.source].reshape(len(x), -1)


def fit_decision_list(program: Program, x: np.ndarray, y: np.ndarray, budget: int = DEFAULT_BUDGET, *,
                      max_n: int = DEFAULT_MAX_N, grow: int = DEFAULT_GROW, pool: int = DEFAULT_POOL,
                      penalty: float = DEFAULT_PENALTY, min_penalty: float = DEFAULT_MIN_PENALTY,
                      min_gain: int = DEFAULT_MIN_GAIN, per_literal: bool = True) -> Program:
    """`program` with its class block replaced by a decision list fitted on the atoms that the program
    computes below it from `x` (the cut tensor's values, (E, *program.input.shape)) for the classes
    `y` (E,) -- the network's class. The result decides by ``first``, is pruned (rules and input tests
    no class depends on go) and passes `check_program`."""
    from mofn2logic.program.check import check_program
    from mofn2logic.program.prune import prune

    check_program(program, "the program to fit a decision list to")
    out = program.output
    k = int(out.shape[0])
    x = np.asarray(x)
    if x.ndim < 1 or tuple(x.shape[1:]) != tuple(program.input.shape):
        raise DataError(f"the cut tensor's values have shape {list(x.shape)}; the program reads "
                        f"{program.input.tensor!r} as [samples, {', '.join(map(str, program.input.shape))}]")
    y = np.asarray(y)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= k)):
        raise DataError(f"the classes have shape {list(y.shape)} and dtype {y.dtype}; expected {len(x)} integers "
                        f"from 0 to {k - 1}")
    if len(y) == 0:
        raise DataError("no samples to fit a decision list on; expected at least one")
    rules, default = learn_decision_list(cut_atoms(program, x), y, k, budget, max_n=max_n, grow=grow, pool=pool,
                                         penalty=penalty, min_penalty=min_penalty, min_gain=min_gain,
                                         per_literal=per_literal)
    block = DecisionListBlock(out.name, out.source, (k,), rules, default)
    return prune(Program(program.name, program.input, (*program.blocks[:-1], block), "first", program.names))
