"""The size/fidelity front of a cut: the program's held-out class fidelity against its literal count,
beside a scikit-learn decision tree fitted on the same cut inputs and labels with as many tests.

Program points: the program compiled at the cut for each beta of a chain-mode rule set (compile
folds constant literals and prunes the rules no class depends on, so the count is of the literals
that can matter) up to `MAX_FRONT_LITERALS` literals, and any extra programs given (the replica
fitted on its own atoms).
Tree points: one `DecisionTreeClassifier` (best-first, `max_leaf_nodes`, fixed `random_state`)
fitted once per cut on the fitting split's cut inputs with the network's class as label, grown to
the largest budget; the tree with k tests is its first k expansions in sklearn's best-first order,
which is the tree sklearn fits with `max_leaf_nodes = k + 1` (tests/test_front.py checks this),
so a budget costs one prediction instead of one fit.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mofn2logic.ir.program import DecisionListBlock, Program, RuleBlock
from mofn2logic.ir.rules import RuleSet

# The largest tree grown per cut (tests): budgets above it get this tree, marked by its real count.
MAX_TREE_TESTS = 1024
# Trees at these numbers of tests as well as at the programs' literal counts: the tree's own curve.
TREE_GRID = (1, 3, 10, 30, 100, 300, 1000)
# Literal budgets of the decision lists `run` fits as the output layer's class block.
LIST_BUDGETS = (10, 30, 100)
# Programs above this many literals stay off the front unless already checked (the cut's own program).
MAX_FRONT_LITERALS = 20_000
TREE_SEED = 0


@dataclass(frozen=True, slots=True)
class Point:
    """One program or tree: its tests (a program's literals, a tree's internal nodes) and its held-out
    class fidelity to the network."""

    series: str  # "program", "program fitted on its atoms" or "tree"
    tests: int
    fidelity: float
    beta: float | None = None  # a program's beta
    budget: int | None = None  # a tree's asked number of tests (the program's literals it is matched to)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"series": self.series, "tests": self.tests, "fidelity": self.fidelity}
        if self.beta is not None:
            d["beta"] = self.beta
        if self.budget is not None:
            d["budget"] = self.budget
        return d


@dataclass(frozen=True, slots=True)
class CutFront:
    """The front of the program cut at one layer, and the tree beside it."""

    cut: str
    inputs: int  # features of the cut input the tree reads
    programs: tuple[Point, ...]
    trees: tuple[Point, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"cut": self.cut, "inputs": self.inputs, "programs": [p.to_dict() for p in self.programs],
                "trees": [t.to_dict() for t in self.trees]}


def literals(program: Program) -> int:
    """Every literal of the program's rules, a decision list's included."""
    return sum(r.n for b in program.blocks if isinstance(b, (RuleBlock, DecisionListBlock)) for r in b.rules)


def program_point(program: Program, x_held: np.ndarray, pred_held: np.ndarray, *, series: str = "program",
                  beta: float | None = None) -> Point:
    """A program's literals and held-out fidelity (the numpy engine's classes on the cut tensor's values)."""
    from mofn2logic.engines.numpy_engine import evaluate

    classes = evaluate(program, np.asarray(x_held))[2]
    return Point(series, literals(program), float(np.mean(classes == pred_held)), beta=beta)


def program_points(rules: RuleSet, cut: str, x_held: np.ndarray, pred_held: np.ndarray,
                   betas: Sequence[float] | None = None, *, known: Sequence[Point] = (),
                   max_literals: int | None = MAX_FRONT_LITERALS) -> list[Point]:
    """The program at `cut` for each beta of `rules` (default: all), fewest literals first. A beta of a
    `known` point takes that point (a program already checked); programs of more than `max_literals`
    literals are left out otherwise (running them costs the most and the front is about small programs)."""
    from mofn2logic.program.compile import compile_program

    given = {p.beta: p for p in known}
    pts = []
    for b in rules.betas if betas is None else betas:
        if b in given:
            pts.append(given[b])
            continue
        program = compile_program(rules, cut=cut, beta=b)
        if max_literals is None or literals(program) <= max_literals:
            pts.append(program_point(program, x_held, pred_held, beta=b))
    return sorted(pts, key=lambda p: (p.tests, -p.fidelity))


def decision_list_points(program: Program, x_fit: np.ndarray, y_fit: np.ndarray, x_held: np.ndarray,
                         y_held: np.ndarray, budgets: Sequence[int]) -> list[Point]:
    """`program` with its class block replaced by a decision list fitted on the fitting rows for each
    literal budget of the list (`mofn2logic.search.decision_list.fit_decision_list`), checked like the
    programs; `beta` unset, `budget` the list's."""
    from mofn2logic.search.decision_list import fit_decision_list

    pts = []
    for b in budgets:
        listed = fit_decision_list(program, np.asarray(x_fit), np.asarray(y_fit), int(b))
        p = program_point(listed, x_held, y_held, series="decision list")
        pts.append(Point(p.series, p.tests, p.fidelity, budget=int(b)))
    return pts


# --------------------------------------------------------------------------- the tree


def fit_tree(x_fit: np.ndarray, y_fit: np.ndarray, max_tests: int, seed: int = TREE_SEED):
    """A best-first tree of at most `max_tests` tests (internal nodes) on `x_fit` (samples, features)."""
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_leaf_nodes=max(2, max_tests + 1), random_state=seed)
    return tree.fit(_features(x_fit), np.asarray(y_fit))


def expansion_order(tree) -> np.ndarray:
    """The tree's internal nodes in the order sklearn's best-first builder expanded them: the frontier
    node of the largest weighted impurity decrease first (node ids break ties: they follow creation)."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    w, imp = t.weighted_n_node_samples, t.impurity

    def gain(i: int) -> float:
        lo, hi = left[i], right[i]
        return float(w[i] / w[0] * (imp[i] - w[hi] / w[i] * imp[hi] - w[lo] / w[i] * imp[lo]))

    order: list[int] = []
    heap = [(-gain(0), 0)] if left[0] != -1 else []
    while heap:
        _, i = heapq.heappop(heap)
        order.append(i)
        for c in (left[i], right[i]):
            if left[c] != -1:
                heapq.heappush(heap, (-gain(int(c)), int(c)))
    return np.asarray(order, np.int64)


def prefix_predict(tree, x: np.ndarray, expanded: np.ndarray) -> np.ndarray:
    """The classes the tree cut back to its `expanded` internal nodes (a set closed under parents) gives:
    every sample descends while its node is expanded; the node it stops at answers its majority class."""
    t = tree.tree_
    x = _features(x)
    node = np.zeros(len(x), np.int64)
    split = np.zeros(t.node_count, bool)
    split[expanded] = True
    while True:
        go = np.flatnonzero(split[node])
        if not len(go):
            break
        at = node[go]
        left = x[go, t.feature[at]] <= t.threshold[at]
        node[go] = np.where(left, t.children_left[at], t.children_right[at])
    return tree.classes_[np.argmax(t.value[node, 0], axis=1)]


def tree_points(x_fit: np.ndarray, y_fit: np.ndarray, x_held: np.ndarray, y_held: np.ndarray,
                budgets: Sequence[int], *, max_tests: int = MAX_TREE_TESTS, seed: int = TREE_SEED) -> list[Point]:
    """For each budget: the tree with that many tests (or all it has, when it stops growing sooner) and its
    held-out fidelity. One tree is fitted, grown to the largest budget (at most `max_tests`)."""
    wanted = sorted({int(b) for b in budgets if b >= 0})
    if not wanted:
        return []
    tree = fit_tree(x_fit, y_fit, min(max(wanted), max_tests), seed)
    order = expansion_order(tree)
    x_held = _features(x_held)
    out = []
    for b in wanted:
        k = min(b, len(order))
        pred = prefix_predict(tree, x_held, order[:k])
        out.append(Point("tree", int(k), float(np.mean(pred == np.asarray(y_held))), budget=b))
    return out


def _features(x: np.ndarray) -> np.ndarray:
    """(samples, features) float32: what sklearn's trees compare (its thresholds are set between float32 values)."""
    x = np.asarray(x)
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)


# --------------------------------------------------------------------------- one cut


def cut_front(rules: RuleSet, cut: str, fit_acts: Mapping[str, np.ndarray], held_acts: Mapping[str, np.ndarray],
              fit_pred: np.ndarray, held_pred: np.ndarray, *, known: Sequence[Point] = (), extra: Sequence[Point] = (),
              max_literals: int | None = MAX_FRONT_LITERALS, tree_grid: Sequence[int] = TREE_GRID,
              lists: Sequence[int] = (), beta: float | None = None, max_tests: int = MAX_TREE_TESTS,
              seed: int = TREE_SEED) -> CutFront:
    """The cut's program points (each beta of `rules`, see `program_points`, and `extra`; with `lists`,
    the program at `beta` (default the smallest) with a decision list of each of those literal budgets as
    its class block) and the trees with as many tests, and at `tree_grid`, fitted on the cut layer's
    input in `fit_acts` with the network's classes `fit_pred`."""
    from mofn2logic.program.compile import compile_program

    tensor = rules.layer(cut).input_tensor
    programs = program_points(rules, cut, held_acts[tensor], held_pred, known=known, max_literals=max_literals)
    x_fit = np.asarray(fit_acts[tensor])
    if lists:
        base = compile_program(rules, cut=cut, beta=beta)
        extra = [*extra, *decision_list_points(base, x_fit, fit_pred, held_acts[tensor], held_pred, lists)]
    programs = sorted([*programs, *extra], key=lambda p: (p.tests, -p.fidelity))
    trees = tree_points(x_fit, fit_pred, held_acts[tensor], held_pred, [*(p.tests for p in programs), *tree_grid],
                        max_tests=max_tests, seed=seed)
    return CutFront(cut, int(np.prod(x_fit.shape[1:])), tuple(programs), tuple(trees))


def front_rows(front: CutFront) -> list[list[str]]:
    """A table: each program point beside the tree matched to it."""
    tree_at = {t.budget: t for t in front.trees}
    rows = [["cut", "program", "literals", "program fidelity", "tree tests", "tree fidelity"]]
    for p in front.programs:
        t = tree_at.get(p.tests)
        what = (f"{p.series}, β={p.beta:g}" if p.beta is not None else
                f"{p.series}, budget {p.budget}" if p.budget is not None else p.series)
        rows.append([front.cut, what, str(p.tests), f"{p.fidelity:.4f}", "" if t is None else str(t.tests),
                     "" if t is None else f"{t.fidelity:.4f}"])
    return rows


def text_table(front: CutFront) -> str:
    """`front_rows` as aligned text (the run's log)."""
    rows = [r[1:] for r in front_rows(front)]
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = [f"   front at {front.cut} ({front.inputs} inputs): each program beside a tree with as many tests"]
    lines += ["     " + "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
              for r in rows]
    return "\n".join(lines)


__all__ = ["Point", "CutFront", "cut_front", "program_points", "program_point", "decision_list_points", "literals",
           "tree_points", "fit_tree", "expansion_order", "prefix_predict", "front_rows", "text_table",
           "MAX_TREE_TESTS", "MAX_FRONT_LITERALS", "TREE_GRID",
           "LIST_BUDGETS"]
