"""Exporters as printers, run on the real engines: SWI-Prolog, SymPy, Graphviz."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import sympy

from conftest import require_tool
from mofn2logic.engines import numpy_engine as engine_python
from mofn2logic.engines import sympy_engine as engine_sympy
from mofn2logic.program.compile import compile_program
from mofn2logic.engines.prolog_engine import run as prolog_run
from mofn2logic.exporters.dot import render_svg, to_dot
from mofn2logic.exporters.prolog import number, quote_atom, to_prolog
from mofn2logic.exporters.prolog_read import read_prolog_text
from mofn2logic.exporters.sympy_expr import to_sympy, to_sympy_program
from program_gen import HOSTILE, conv_program, dense_program, sample_inputs


def test_prolog_tokens():
    assert quote_atom("it's") == "'it\\'s'"
    assert quote_atom("a\\b\nc") == "'a\\\\b\\nc'"
    assert number(1e-05) == "1.0e-05" and number(-0.5) == "-0.5" and number(3.0) == "3.0"


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match=r"PrologPrinter got unknown option\(s\) colour"):
        to_prolog(dense_program(0), colour=True)


@pytest.mark.parametrize("make, n_names", [(dense_program, 2), (conv_program, 4)])
def test_prolog_with_hostile_names_runs_and_reads_back(make, n_names):
    require_tool("swipl")
    for offset in range(0, len(HOSTILE) - n_names + 1, n_names):
        p = make(offset + 3, names=HOSTILE[offset:offset + n_names])
        text = to_prolog(p)
        assert ":- encoding(utf8)." in text
        assert not any(line.lstrip().startswith(":- halt") for line in text.splitlines())  # only inside quotes
        assert read_prolog_text(text) == p
        x = sample_inputs(p, 40, offset)
        atoms, classes = prolog_run(p, x)
        ref_atoms, _, ref_classes = engine_python.evaluate(p, x)
        np.testing.assert_array_equal(classes, ref_classes)
        for b in p.rule_blocks():
            np.testing.assert_array_equal(atoms[b.name], ref_atoms[b.name].reshape(len(x), -1))


def test_prolog_predict_and_explain(default_rules, default_acts, tmp_path):
    exe = require_tool("swipl")
    net, acts = default_acts
    p = compile_program(default_rules, cut="node_linear", beta=0.2)
    (tmp_path / "p.pl").write_text(to_prolog(p), encoding="utf-8")
    from mofn2logic.exporters.prolog import data_facts

    (tmp_path / "d.pl").write_text(data_facts(np.asarray(acts[p.input.tensor])[:3], p), encoding="utf-8")
    goal = ("load_files('d.pl', []), predict(0, C), format('~w~n', [C]), explain(0, C2, Proof), "
            "length(Proof, L), format('~w ~w~n', [C2, L]), Proof = [_-Fired|_], length(Fired, F), format('~w~n', [F])")
    out = subprocess.run([exe, "-q", "-g", goal, "-t", "halt", "p.pl"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    c, line2, fired = out.stdout.split("\n")[:3]
    _, _, ref = engine_python.evaluate(p, np.asarray(acts[p.input.tensor])[:1])
    assert int(c) == ref[0] and line2.split() == [c, "2"] and int(fired) >= 0


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
    from mofn2logic.ir.program import AtomLiteral, MofNRule
    from mofn2logic.exporters.sympy_expr import rule_dnf

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
    text = to_dot(p, max_units=5, max_inputs=10)
    assert "more rules of node_linear" in text and "more inputs" in text
    assert "<svg" in render_svg(text)


@pytest.mark.parametrize("seed", range(6))
def test_engines_agree_on_random_programs(seed):
    require_tool("swipl")
    for make in (dense_program, conv_program):
        p = make(seed)
        x = sample_inputs(p, 60, seed)
        a_py, m_py, c_py = engine_python.evaluate(p, x)
        a_sy, m_sy, c_sy = engine_sympy.evaluate(p, x)
        a_pl, c_pl = prolog_run(p, x)
        np.testing.assert_array_equal(c_py, c_sy)
        np.testing.assert_array_equal(c_py, c_pl)
        np.testing.assert_array_equal(m_py, m_sy)
        for b in p.rule_blocks():
            np.testing.assert_array_equal(a_py[b.name], a_sy[b.name])
            np.testing.assert_array_equal(a_py[b.name].reshape(len(x), -1), a_pl[b.name])


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
