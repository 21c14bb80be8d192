"""Exporters as printers, run on the real engines: SymPy, Graphviz (SWI-Prolog: test_exporters_prolog.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from conftest import require_tool
from program_gen import HOSTILE, conv_program, dense_program, sample_inputs

from mofn2logic.engines import numpy_engine as engine_python
from mofn2logic.engines import sympy_engine as engine_sympy
from mofn2logic.exporters.dot import render_svg, to_dot
from mofn2logic.exporters.sympy_expr import to_sympy, to_sympy_program
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
    for make in (dense_program, conv_program):
        p = make(seed)
        x = sample_inputs(p, 60, seed)
        a_py, m_py, c_py = engine_python.evaluate(p, x)
        a_sy, m_sy, c_sy = engine_sympy.evaluate(p, x)
        np.testing.assert_array_equal(c_py, c_sy)
        np.testing.assert_array_equal(m_py, m_sy)
        for b in p.rule_blocks():
            np.testing.assert_array_equal(a_py[b.name], a_sy[b.name])


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
