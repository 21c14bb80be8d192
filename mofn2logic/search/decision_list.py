"""Decision lists fitted for the class (ours; docs/method.md, section 5.8).

A program's class block can be an ordered decision list of M-of-N rules over the atoms of the
block below it (`mofn2logic.ir.program.DecisionListBlock`): the first rule that holds names the
class, else a default class. `learn_decision_list` fits one by greedy sequential covering on
boolean source atoms X (E, A) and the network's classes y, within a literal budget; each step:

1. the examples not yet covered (all at first) and their majority class d, the default so far
   (ties: the lowest class);
2. for every other class c present there, the examples of class c or d; a rule for c that fires on
   tp of the c's and f_d of the d's lowers the list's errors by exactly ``gain = tp - f_d`` (the
   others it fires on were wrong under d and stay wrong). ``gain = P_c - errors`` where errors are
   those of the rule as a classifier of "c, not d" on these examples, so the exact small-rule search
   (`backend.subset_topk`, docs/method.md section 3.10) finds the best rule: every "M of S" with S
   a subset of the class's literal pool, |S| <= `max_n`, 1 <= M <= |S|, ties to the first S in
   pool order;
3. the pool: per atom the literal whose true side holds the larger share of class c (positive on
   equal shares), the `pool` atoms of highest information gain about "c, not d" (ties: the lower
   atom index), in that order;
4. of all (class, N, M) candidates that fit the budget left, the largest gain per literal wins
   (ties: the larger gain, the fewer literals, the lower class, the lower M); it is appended only
   when its gain is at least `min_gain`; the examples it fires on are covered.

The loop ends at the budget, when no candidate gains enough, or when every example is covered.
The default is the majority class of the examples left (ties: the lowest; none left: the
majority of all); rules at the end that name the default are dropped (they change no decision).
Each accepted rule lowers the training errors, and the final default is the best one for the
examples left, so the list is never worse on its training data than the majority class.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from mofn2logic.errors import DataError, SearchError
from mofn2logic.ir.program import AtomLiteral, DecisionListBlock, MofNRule, Program
from mofn2logic.search.exact import pack_bits
from mofn2logic.search.splits import split_gain, xlogx_table

DEFAULT_BUDGET = 50  # literals
DEFAULT_MAX_N = 3
DEFAULT_POOL = 32
DEFAULT_MIN_GAIN = 1  # examples


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


def learn_decision_list(x: np.ndarray, y: np.ndarray, n_classes: int, budget: int = DEFAULT_BUDGET, *,
                        max_n: int = DEFAULT_MAX_N, pool: int = DEFAULT_POOL, min_gain: int = DEFAULT_MIN_GAIN,
                        device: str = "cpu") -> tuple[tuple[MofNRule, ...], int]:
    """(rules in order, default class) of a decision list over the atoms `x` (E, A) bool for the
    classes `y` (E,) in 0..n_classes-1, with at most `budget` literals (module docstring)."""
    from mofn2logic.search.backends import make_backend

    x = np.asarray(x, dtype=bool)
    y = np.asarray(y, dtype=np.int64)
    if budget < 0 or max_n < 1 or pool < 1 or min_gain < 1:
        raise SearchError(f"a decision list needs budget >= 0, max_n >= 1, pool >= 1 and min_gain >= 1; got budget "
                          f"{budget}, max_n {max_n}, pool {pool}, min_gain {min_gain}")
    backend = make_backend(device)
    left = np.ones(len(y), bool)
    rules: list[MofNRule] = []
    used = 0
    while used < budget and left.any():
        counts = np.bincount(y[left], minlength=n_classes)
        d = int(np.argmax(counts))
        best: tuple | None = None
        for c in range(n_classes):
            if c == d or counts[c] == 0:
                continue
            rows = left & ((y == c) | (y == d))
            target = y[rows] == c
            atoms, positive = class_pool(x[rows], target, pool)
            truth = x[rows][:, atoms].T == positive[:, None]  # (P, E') literal truth
            bits, ybits = pack_bits(truth), pack_bits(target)[0]
            n_pos = int(counts[c])
            for big_n in range(1, min(max_n, len(atoms), budget - used) + 1):
                errors, subsets = backend.subset_topk(bits, ybits, n_pos, big_n, 1)
                for m in range(1, big_n + 1):
                    if subsets[m - 1, 0, 0] < 0:
                        continue
                    gain = n_pos - int(errors[m - 1, 0])
                    key = (-Fraction(gain, big_n), -gain, big_n, c, m)
                    if best is None or key < best[0]:
                        best = (key, c, m, atoms[subsets[m - 1, 0]], positive[subsets[m - 1, 0]])
        if best is None or -best[0][1] < min_gain:
            break
        _, c, m, sub_atoms, sub_pos = best
        lits = tuple(AtomLiteral(int(a), bool(p)) for a, p in zip(sub_atoms, sub_pos))
        fires = (x[:, sub_atoms] == sub_pos[None, :]).sum(1) >= m
        rules.append(MofNRule(c, m, lits))
        used += len(lits)
        left &= ~fires
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
                      max_n: int = DEFAULT_MAX_N, pool: int = DEFAULT_POOL, min_gain: int = DEFAULT_MIN_GAIN,
                      device: str = "cpu") -> Program:
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
    rules, default = learn_decision_list(cut_atoms(program, x), y, k, budget, max_n=max_n, pool=pool,
                                         min_gain=min_gain, device=device)
    block = DecisionListBlock(out.name, out.source, (k,), rules, default)
    return prune(Program(program.name, program.input, (*program.blocks[:-1], block), "first"))
