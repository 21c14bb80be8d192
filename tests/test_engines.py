"""Exporters as printers, run on the real engines: SymPy, Graphviz (SWI-Prolog: test_exporters_prolog.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from conftest import require_tool
from program_gen import (
    HOSTILE,
    conv_list_program,
    conv_program,
    dense_program,
    list_program,
    pool_list_program,
    sample_inputs,
)

from mofn2logic.engines import numpy_engine as engine_python
from mofn2logic.engines import sympy_engine as engine_sympy
from mofn2logic.exporters.dot import render_svg, to_dot
from mofn2logic.exporters.sympy_expr import to_sympy, to_sympy_program
from mofn2logic.ir.program import AtomLiteral, IndexBlock, InputTests, MofNRule, PoolBlock, Program, RuleBlock
from mofn2logic.ir.steps import MaxPool
from mofn2logic.program.check import check_program
from mofn2logic.program.compile import compile_program


def test_sympy_file_executes_and_lambdifies(default_rules, default_acts):
    net, acts = default_acts
    p = compile_program(default_rules, cut="node_linear_1", beta=0.2)
    ns: dict = {}
    exec(to_sympy(p), ns)
    assert set(ns["atoms"]) == {("node_linear_1", r.unit) for r in p.output.rules}
    assert ns["blocks"] == {1: "node_linear_1"}
    rule = p.output.rules[0]
    expr = ns["atoms"][("node_linear_1", rule.unit)]
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    f = sympy.lambdify(syms, expr, "numpy")
    x = np.asarray(acts[p.input.tensor])
    atoms, _, _ = engine_python.evaluate(p, x)
    src = atoms[""].reshape(len(x), -1).astype(int)
    got = f(*[src[:, int(s.name.split("_")[1])] for s in syms])
    np.testing.assert_array_equal(np.broadcast_to(got, (len(x),)).astype(bool), atoms["node_linear_1"][:, rule.unit])
    assert ns["dnf"], "small rules have their DNF"


def test_sympy_dnf_only_when_small():
    from mofn2logic.exporters.sympy_expr import rule_dnf
    from mofn2logic.ir.program import AtomLiteral, MofNRule

    big = MofNRule(0, 10, tuple(AtomLiteral(i) for i in range(20)))
    small = MofNRule(0, 2, tuple(AtomLiteral(i) for i in range(4)))
    assert rule_dnf(big, 0, 64) is None
    assert len(rule_dnf(small, 0, 64).args) == 6  # C(4, 2) conjunctions


@pytest.mark.parametrize("make, n_names", [(dense_program, 2), (conv_program, 4)])
def test_dot_renders_for_any_names(make, n_names, tmp_path):
    require_tool("dot")
    p = make(5, names=HOSTILE[2:2 + n_names])
    svg = render_svg(to_dot(p))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "of" in svg  # the "M of N" labels


def test_dot_summarises_large_layers(default_rules):
    require_tool("dot")
    p = compile_program(default_rules, cut="node_linear", beta=0.0)
    text = to_dot(p, max_units=5, max_literals=10)
    assert "more rules of node_linear" in text and re.search(r"\+ \d+ more: \d+ that must hold", text)
    assert "<svg" in render_svg(text)


@pytest.mark.parametrize("seed", range(6))
def test_engines_agree_on_random_programs(seed):
    for make in (dense_program, conv_program, list_program, conv_list_program):
        p = make(seed)
        x = sample_inputs(p, 60, seed)
        a_py, m_py, c_py = engine_python.evaluate(p, x)
        a_sy, m_sy, c_sy = engine_sympy.evaluate(p, x)
        np.testing.assert_array_equal(c_py, c_sy)
        np.testing.assert_array_equal(m_py, m_sy)
        for b in p.atom_blocks():
            np.testing.assert_array_equal(a_py[b.name], a_sy[b.name])


@pytest.mark.parametrize("seed", range(8))
def test_three_engines_agree_on_random_decision_lists(seed):
    """numpy, SymPy and SWI-Prolog (batch mode) give the same class and the same atoms, the decision
    list's one-hot included, on random programs ending with a decision list."""
    require_tool("swipl")
    from mofn2logic.engines.base import flat_atoms
    from mofn2logic.engines.prolog_engine import run as prolog_run

    for make in (list_program, conv_list_program, pool_list_program):
        p = make(seed)
        x = sample_inputs(p, 80, seed)
        a_py, m_py, c_py = engine_python.evaluate(p, x)
        a_sy, m_sy, c_sy = engine_sympy.evaluate(p, x)
        a_pl, c_pl = prolog_run(p, x)
        np.testing.assert_array_equal(c_py, c_sy)
        np.testing.assert_array_equal(c_py, c_pl)
        np.testing.assert_array_equal(m_py, m_sy)
        np.testing.assert_array_equal(m_py, a_py[p.output.name].astype(float))  # margins: the one-hot
        flat = flat_atoms(p, a_py)
        assert set(a_pl) == set(flat) == {b.name for b in p.atom_blocks()}
        for name in flat:
            np.testing.assert_array_equal(flat[name], a_pl[name], err_msg=name)
            np.testing.assert_array_equal(flat[name], flat_atoms(p, a_sy)[name], err_msg=name)


def test_decision_list_is_first_true():
    """The first rule that holds names the class; a constant rule ends the list for every sample."""
    from mofn2logic.ir.program import DecisionListBlock

    inp = InputTests("x", (3,), False, ((0, 0.5), (1, 0.5), (2, 0.5)))
    rules = (MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1))), MofNRule(1, 1, (AtomLiteral(2, False),)),
             MofNRule(0, 0, ()), MofNRule(1, 1, (AtomLiteral(0),)))
    p = Program("first", inp, (DecisionListBlock("out", "", (3,), rules, 1),), "first")
    x = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]], float)
    for engine in (engine_python, engine_sympy):
        atoms, margins, classes = engine.evaluate(p, x)
        assert classes.tolist() == [2, 2, 0, 0]
        assert atoms["out"].tolist() == [[False, False, True], [False, False, True], [True, False, False],
                                         [True, False, False]]
    q = Program("default", inp, (DecisionListBlock("out", "", (3,), rules[:2], 1),), "first")
    assert engine_python.evaluate(q, x)[2].tolist() == [2, 2, 1, 1]


def test_sympy_decision_list_is_one_piecewise():
    """Written as it reads (one pair per rule, first true wins): its size grows with the list, not as a DNF."""
    from mofn2logic.exporters.sympy_expr import list_expr

    for seed in range(6):
        p = list_program(seed)
        ns: dict = {}
        exec(to_sympy(p), ns)  # the exported file rebuilds the list as written
        expr = ns["decision_list"]["out"]
        classes = []  # SymPy keeps the pairs up to the first true condition and drops the false ones
        for r in p.output.rules:
            if r.m <= r.n:
                classes.append(r.unit)
            if r.m == 0:
                break
        else:
            classes.append(p.output.default)
        assert isinstance(expr, sympy.Piecewise) and [int(e) for e, _ in expr.args] == classes
        assert sympy.srepr(expr) == sympy.srepr(list_expr(p.output, 1))
    # a list of 200 rules of 3 literals each over 300 atoms: 201 pairs, built and lambdified at once
    from mofn2logic.ir.program import DecisionListBlock

    rng = np.random.default_rng(0)
    big = DecisionListBlock("out", "", (10,), tuple(
        MofNRule(int(rng.integers(10)), 2, tuple(AtomLiteral(int(i), bool(rng.random() < 0.5))
                                                 for i in rng.choice(300, 3, replace=False))) for _ in range(200)), 4)
    q = Program("big", InputTests("x", (300,), False, tuple((i, 0.0) for i in range(300))), (big,), "first")
    assert len(list_expr(big, 0).args) == 201
    x = sample_inputs(q, 50, 0)
    np.testing.assert_array_equal(engine_python.evaluate(q, x)[2], engine_sympy.evaluate(q, x)[2])


def test_engines_agree_on_the_demo_model(default_rules, default_acts):
    require_tool("swipl")
    from mofn2logic.engines.verify import verify

    net, acts = default_acts
    sub = {k: np.asarray(v)[:150] for k, v in acts.items()}
    for cut in ("node_conv2d", "node_linear_1"):
        p = compile_program(default_rules, cut=cut, beta=0.2)
        report = verify(p, net, sub, engines=("python", "sympy", "prolog")).to_dict()
        assert report["engines_agree"] is True
        assert len({r["fidelity"] for r in report["engines"].values()}) == 1
    assert to_sympy_program(p).atoms


def _long_rule(rng: np.random.Generator, n: int, conv_channels: int | None = None) -> MofNRule:
    """A rule of n distinct literals, about 60% positive; M near half, so that it holds on some samples."""
    if conv_channels is None:
        lits = tuple(AtomLiteral(int(i), bool(rng.random() < 0.6)) for i in rng.permutation(n))
    else:
        where = [(c, dy, dx) for c in range(conv_channels) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        lits = tuple(AtomLiteral(c, bool(rng.random() < 0.6), (dy, dx))
                     for c, dy, dx in (where[int(k)] for k in rng.permutation(len(where))[:n]))
    return MofNRule(0, int(sum(li.positive for li in lits) * 0.5 + n * 0.2), lits, 0.5)


def long_dense_program(n: int = 10_000) -> Program:
    """Three classes over n input units; class 0 reads all n (a single 10,000-literal rule)."""
    rng = np.random.default_rng(0)
    big = _long_rule(rng, n)
    out = RuleBlock("out", "dense", "", (3,), (MofNRule(0, big.m, big.lits),
                                               MofNRule(1, 2, (AtomLiteral(0), AtomLiteral(1, False), AtomLiteral(7))),
                                               MofNRule(2, 1, (AtomLiteral(5),))))
    inp = InputTests("x", (n,), False, tuple((i, float(np.float32(rng.normal()))) for i in range(n)))
    return Program("long dense", inp, (out,))


def long_conv_program(n: int = 2_000) -> Program:
    """A conv channel whose rule reads 2,000 (channel, offset) literals, then a pool, a flatten and classes."""
    rng = np.random.default_rng(1)
    channels = -(-n // 9)
    conv = RuleBlock("conv", "conv", "", (2, 5, 5), (_long_rule(rng, n, channels),
                                                    MofNRule(1, 1, (AtomLiteral(3, False, (0, 1)),), -0.25)))
    pool = PoolBlock("pool", "conv", (2, 2, 2), MaxPool(kernel=(2, 2), strides=(2, 2)))
    flat = IndexBlock("flat", "pool", (8,), tuple(range(8)))
    out = RuleBlock("out", "dense", "flat", (2,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(3, False))),
                                                  MofNRule(1, 2, (AtomLiteral(1), AtomLiteral(6), AtomLiteral(7)))))
    inp = InputTests("image", (channels, 5, 5), True,
                     tuple((c, float(np.float32(rng.normal(scale=0.5)))) for c in range(channels)))
    return Program("long conv", inp, (conv, pool, flat, out))


@pytest.mark.parametrize("make, block", [(long_dense_program, "out"), (long_conv_program, "conv")])
def test_sympy_handles_rules_of_any_length(make, block):
    """A 10,000-literal dense rule and a 2,000-literal conv rule: the export executes and
    lambdifies, and the SymPy engine equals numpy bit for bit."""
    from mofn2logic.exporters.sympy_expr import CHUNK

    p = make()
    check_program(p, "long")
    rule = p.block(block).rules[0]
    assert rule.n > 7 * CHUNK
    x = sample_inputs(p, 50, 0)
    a_py, m_py, c_py = engine_python.evaluate(p, x)
    a_sy, m_sy, c_sy = engine_sympy.evaluate(p, x)
    for b in p.rule_blocks():
        np.testing.assert_array_equal(a_py[b.name], a_sy[b.name])
    np.testing.assert_array_equal(m_py, m_sy)
    np.testing.assert_array_equal(c_py, c_sy)
    assert 0 < a_py[block][:, 0].mean() < 1, "the long rule holds on some samples, not all"
    ns: dict = {}
    exec(to_sympy(p), ns)  # the exported file, as a user runs it
    expr = ns["atoms"][(block, 0)]
    built = to_sympy_program(p).atoms[(block, 0)]
    assert sympy.srepr(expr, order="none") == sympy.srepr(built, order="none")  # exec rebuilds the same expression
    if block == "out":  # a user's own lambdify of the exported expression, on the source atoms
        syms = sorted(expr.free_symbols, key=lambda s: int(s.name.split("_")[1]))
        f = sympy.lambdify([syms], expr, "numpy")
        src = a_py[""].reshape(len(x), -1).astype(np.int64)
        got = f([src[:, int(s.name.split("_")[1])] for s in syms])
        np.testing.assert_array_equal(np.asarray(got, dtype=bool), a_py[block][:, 0])


def test_long_rules_nest_their_sums():
    from mofn2logic.exporters.sympy_expr import CHUNK, rule_count, rule_expr

    rng = np.random.default_rng(2)
    rule = _long_rule(rng, 3 * CHUNK + 5)
    count = rule_count(rule, 0)
    assert len(count.args) == 4 and all(isinstance(a, sympy.UnevaluatedExpr) for a in count.args)
    assert all(len(a.args[0].args) <= CHUNK + 1 for a in count.args)  # + 1: the negated literals' constant
    flat = sympy.Add(*[sympy.Symbol(f"a0_{li.src}", integer=True, nonnegative=True) if li.positive
                       else 1 - sympy.Symbol(f"a0_{li.src}", integer=True, nonnegative=True) for li in rule.lits])
    assert count.doit() == flat  # the same sum, nested
    small = MofNRule(0, 2, rule.lits[:CHUNK])
    assert rule_expr(small, 0) == sympy.Piecewise((1, rule_count(small, 0) >= 2), (0, True))
    assert not any(isinstance(a, sympy.UnevaluatedExpr) for a in rule_count(small, 0).args)
