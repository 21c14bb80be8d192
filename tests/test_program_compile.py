"""The program IR: the .mofn language (format/parse exact inverses), checks, compile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from program_gen import HOSTILE, conv_program, dense_program

from mofn2logic.errors import ProgramError, RuleSyntaxError
from mofn2logic.exporters.mofn import parse_mofn as parse_program
from mofn2logic.exporters.mofn import to_mofn as format_program
from mofn2logic.ir.program import AtomLiteral, IndexBlock, InputTests, MofNRule, Program, RuleBlock
from mofn2logic.program.compile import compile_program

names = st.text(min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 6))
    hidden = draw(st.integers(1, 5))
    k = draw(st.integers(1, 4))
    a, b = draw(st.lists(names, min_size=2, max_size=2, unique=True))
    tests = tuple(sorted({i: t for i, t in draw(st.lists(st.tuples(st.integers(0, n_in - 1), floats), max_size=n_in))}.items()))

    def rules(units, n_src, heads):
        out = []
        for u in sorted(draw(st.sets(st.integers(0, units - 1)))):
            lits = tuple(AtomLiteral(s, draw(st.booleans())) for s in draw(st.lists(st.integers(0, n_src - 1), max_size=4)))
            out.append(MofNRule(u, draw(st.integers(0, len(lits) + 1)), lits, draw(floats) if heads else None))
        return tuple(out)

    return Program(
        name=draw(st.text(max_size=10)), input=InputTests(draw(names), (n_in,), False, tests),
        blocks=(RuleBlock(a, "dense", "", (hidden,), rules(hidden, n_in, True)),
                IndexBlock(a + "/idx", a, (hidden,), tuple(draw(st.permutations(range(hidden))))),
                RuleBlock(b, "dense", a + "/idx", (k,), rules(k, hidden, False))))


@settings(max_examples=150, deadline=None)
@given(programs())
def test_format_and_parse_are_exact_inverses(p):
    text = format_program(p)
    q = parse_program(text)
    assert q == p
    assert format_program(q) == text


@pytest.mark.parametrize("make", [dense_program, conv_program])
def test_roundtrip_generated_and_hostile(make):
    for seed in range(5):
        p = make(seed)
        assert parse_program(format_program(p)) == p
    hostile = make(7, names=HOSTILE[: 2 if make is dense_program else 4])
    assert parse_program(format_program(hostile)) == hostile


def test_exact_text():
    p = Program("demo", InputTests("x", (3,), False, ((0, 0.5), (2, -1.25))),
                (RuleBlock("out", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(2, False))),
                                                      MofNRule(1, 2, ()))),))
    assert format_program(p) == (
        "mofn2logic program 1\n"
        "name 'demo'\n"
        "decision margin\n"
        "input 'x' shape [3] per unit\n"
        "  0 >= 0.5\n"
        "  2 >= -1.25\n"
        "dense 'out' from input shape [2]\n"
        "  0 :- 1 of [0, ~2]\n"
        "  1 :- 2 of []\n")


def test_syntax_error_has_line_column_and_caret():
    text = "mofn2logic program 1\nname 'x'\ndecision margin\ninput 'a' shape [3] per unit\n  0 >= abc\n"
    with pytest.raises(RuleSyntaxError, match=r"^f.mofn:5:8: syntax error at 'abc'") as e:
        parse_program(text, "f.mofn")
    assert str(e.value).splitlines()[-1].strip() == "^"


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("[0, ~2]", "[0, ~7]"), r"rule 0 of 'out' uses atom 7 of 'input', which is not defined"),
    (lambda t: t.replace("from input", "from 'nowhere'"), r"block 'out' reads 'nowhere', which is not defined"),
    (lambda t: t.replace("from input", "from 'out'"), r"block 'out' reads 'out', which is not defined before it"),
    (lambda t: t.replace("1 of [0", "5 of [0"), r"asks 5 of 2 literals"),
])
def test_program_checks(edit, match):
    p = Program("demo", InputTests("x", (3,), False, ((0, 0.5),)),
                (RuleBlock("out", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(2, False))),)),))
    with pytest.raises(ProgramError, match=match):
        parse_program(edit(format_program(p)))


def test_compile_cuts_and_prunes(default_rules):
    full = compile_program(default_rules, beta=0.0)
    assert [b.name for b in full.rule_blocks()] == ["node_conv2d", "node_conv2d_1", "node_linear", "node_linear_1"]
    assert full.input.per_channel and full.input.tensor == "image"
    kinds = [type(b).__name__ for b in full.blocks]
    assert kinds == ["RuleBlock", "RuleBlock", "PoolBlock", "IndexBlock", "RuleBlock", "RuleBlock"]
    soft = compile_program(default_rules, cut="node_linear_1", beta=0.2)
    assert [b.name for b in soft.blocks] == ["node_linear_1"] and not soft.input.per_channel
    used = {li.src for r in soft.output.rules for li in r.lits}
    assert {i for i, _ in soft.input.tests} == used  # pruned to the inputs the classes read
    mid = compile_program(default_rules, cut="node_linear", beta=1.0)
    read = {li.src for r in mid.output.rules for li in r.lits}
    assert {r.unit for r in mid.rule_blocks()[0].rules} == read  # unreachable hidden units dropped


def test_compile_errors(default_rules):
    with pytest.raises(ProgramError, match=r"cut layer 'nope' does not exist; the rule set has 'node_conv2d'"):
        compile_program(default_rules, cut="nope")
    with pytest.raises(ProgramError, match=r"no rules for beta 0.7"):
        compile_program(default_rules, beta=0.7)


def test_compile_refuses_paper_mode(default_model, digits):
    import mofn2logic as M
    from mofn2logic.search.network import extract

    net = M.import_network(default_model)
    acts = M.harvest(net, default_model, M.check_data(digits["images"][:200], net.input_shape, net.dtype))
    rs = extract(net, acts, layers=["node_linear_1"], mode="paper", betas=(0.0,), device="cpu")
    with pytest.raises(ProgramError, match="extracted in paper mode; a program needs chain mode"):
        compile_program(rs)
    np.testing.assert_equal(len(rs.layers), 1)


@settings(max_examples=60, deadline=None)
@given(programs())
def test_json_roundtrip(p):
    import json

    from mofn2logic.exporters.json_program import from_dict
    from mofn2logic.exporters.json_program import to_json as dumps

    assert from_dict(json.loads(dumps(p))) == p


def test_json_roundtrip_conv_and_cli(tmp_path, capsys):
    from mofn2logic.cli import main
    from mofn2logic.exporters.mofn import read_mofn as read_program
    from mofn2logic.exporters.mofn import write_mofn as write_program

    p = conv_program(3, names=HOSTILE[:4])
    write_program(p, tmp_path / "p.mofn")
    assert main(["export", str(tmp_path / "p.mofn"), "--to", "json", "-o", str(tmp_path / "p.json")]) == 0
    assert main(["export", str(tmp_path / "p.json"), "--to", "mofn", "-o", str(tmp_path / "q.mofn")]) == 0
    assert read_program(tmp_path / "q.mofn") == p
    assert (tmp_path / "q.mofn").read_text() == (tmp_path / "p.mofn").read_text()
