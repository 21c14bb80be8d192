"""The Prolog export: readable clauses, read back exactly, and run by SWI-Prolog exactly like the
numpy reference engine (classes, every atom, predict/2, margins, explain/3)."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest
from conftest import require_tool
from hypothesis import given, settings
from hypothesis import strategies as st
from program_gen import HOSTILE, conv_list_program, conv_program, dense_program, list_program, sample_inputs

from mofn2logic.engines import numpy_engine
from mofn2logic.engines.prolog_engine import PrologEngine
from mofn2logic.engines.prolog_engine import run as prolog_run
from mofn2logic.errors import ExportError, ProgramError, RuleSyntaxError, ToolMissingError
from mofn2logic.exporters.prolog import (
    data_facts,
    number,
    predicate_names,
    quote_atom,
    runtime_text,
    to_prolog,
    write_prolog,
)
from mofn2logic.exporters.prolog_read import parse_prolog, read_prolog
from mofn2logic.ir.program import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)
from mofn2logic.ir.steps import MaxPool
from mofn2logic.program import compile_program

# Names a block may not take as they are: built-ins, runtime helpers, header facts, special atoms.
RESERVED = ["predict", "x", "at_least", "is", ",", "length", "term_expansion", "$x", "a\0b", "window", "block",
            "predict_2", "goal_expansion", "|", "[]", "{}", ";", "!", "call", "maplist", "input", "format", ":",
            "/", "\\+", "'", "classify_file"]


def tiny_dense() -> Program:
    """Two dense layers; class 1 has no rule (margin -1)."""
    return Program("tiny", InputTests("relu_2", (3,), False, ((0, 0.5), (2, -1.25))), (
        RuleBlock("h", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(2, False)), 0.25),
                                           MofNRule(1, 0, (), -0.5))),
        RuleBlock("out", "dense", "h", (3,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(1, False))),
                                              MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1))))),
    ))


def tiny_conv(threshold: float = -0.5) -> Program:
    """A 2x2 image, one conv channel reading an offset into the padding, a 2x2 pool, a flatten."""
    return Program("tiny conv", InputTests("image", (1, 2, 2), True, ((0, threshold),)), (
        RuleBlock("c1", "conv", "", (1, 2, 2), (
            MofNRule(0, 2, (AtomLiteral(0, True, (0, 0)), AtomLiteral(0, True, (1, 1))), 0.1),), (1, 1)),
        PoolBlock("p", "c1", (1, 1, 1), MaxPool(kernel=(2, 2), strides=(2, 2))),
        IndexBlock("flat", "p", (1,), (0,)),
        RuleBlock("out", "dense", "flat", (2,), (MofNRule(0, 1, (AtomLiteral(0),)),
                                                 MofNRule(1, 1, (AtomLiteral(0, False),)))),
    ))


def tiny_list() -> Program:
    """Two hidden atoms (h0: x0 >= 0.5, h1: x2 >= -1.25), then a decision list: class 2 if h0 and not h1,
    else class 0 if h1, else class 1."""
    p = tiny_dense()
    hidden = RuleBlock("h", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0),), 0.25),
                                                MofNRule(1, 1, (AtomLiteral(2),), -0.5)))
    return Program("tiny list", p.input, (hidden, DecisionListBlock("out", "h", (3,), (
        MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1, False))), MofNRule(0, 1, (AtomLiteral(1),))), 1)), "first")


def _query(program: Program, x: np.ndarray, goal: str, tmp_path) -> str:
    """Run `goal` in SWI-Prolog on the exported program with the samples loaded; no warnings allowed."""
    exe = require_tool("swipl")
    write_prolog(program, tmp_path / "p.pl")
    (tmp_path / "d.pl").write_text(data_facts(x, program), encoding="utf-8")
    out = subprocess.run([exe, "-q", "-g", f"load_files('d.pl', [silent(true)]), {goal}", "-t", "halt", "p.pl"],
                         cwd=tmp_path, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return out.stdout


def _agree(p: Program, x: np.ndarray) -> None:
    atoms, classes = prolog_run(p, x)
    ref_atoms, _, ref_classes = numpy_engine.evaluate(p, x)
    np.testing.assert_array_equal(classes, ref_classes)
    assert set(atoms) == {b.name for b in p.atom_blocks()}
    for b in p.atom_blocks():
        np.testing.assert_array_equal(atoms[b.name], ref_atoms[b.name].reshape(len(x), -1), err_msg=b.name)


# ---- the text ---------------------------------------------------------------------------

def test_tokens():
    assert quote_atom("it's") == "'it\\'s'"
    assert quote_atom("a\\b\nc") == "'a\\\\b\\nc'"
    assert quote_atom("a\0b") == "'a\\0\\b'"
    assert number(1e-05) == "1.0e-05" and number(-0.5) == "-0.5" and number(3.0) == "3.0"
    assert number(1e20) == "1.0e+20" and number(0.1 + 0.2) == "0.30000000000000004"


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match=r"PrologPrinter got unknown option\(s\) colour"):
        to_prolog(dense_program(0), colour=True)


def test_exact_text_of_a_small_dense_program():
    text = to_prolog(tiny_dense(), runtime=False)
    program_part = text.split("\n\nprogram_name(")[1]
    assert "program_name(" + program_part == """program_name('tiny').
decision(margin).
input('relu_2', [3], unit, 'relu_2').
block(1, 'h', dense, 'h', 'relu_2', [2]).
block(2, 'out', dense, 'out', 'h', [3]).

% ---- input tests on tensor 'relu_2', per unit: 'relu_2'(S, U)
'relu_2'(S, 0) :- x(S, 0, V), V >= 0.5.
'relu_2'(S, 2) :- x(S, 2, V), V >= -1.25.

% ---- dense 'h', 2 units, reads 'relu_2'
:- table 'h'/2.
threshold('h', 0, 0.25).
threshold('h', 1, -0.5).
'h'(S, 0) :- at_least(1, ['relu_2'(S, 0), \\+ 'relu_2'(S, 2)]).
'h'(_, 1) :- at_least(0, []).

% ---- dense 'out', 3 units (the classes), reads 'h'
'out'(S, 0) :- at_least(1, ['h'(S, 0), \\+ 'h'(S, 1)]).
'out'(S, 2) :- at_least(2, ['h'(S, 0), 'h'(S, 1)]).
"""
    assert text.startswith(":- encoding(utf8).\n")
    assert "\n:- dynamic x/3.\n" in text


def test_exact_text_of_a_decision_list():
    """Ordered clauses with cuts, the class bound after the cut, the default last."""
    text = to_prolog(tiny_list(), runtime=False)
    assert "decision(first).\n" in text and "block(2, 'out', decision_list, 'out', 'h', [3]).\n" in text
    assert text.endswith("""% ---- decision list 'out', 3 classes, reads 'h': the first rule that holds decides, else class 1
'out'(S, Class) :- at_least(2, ['h'(S, 0), \\+ 'h'(S, 1)]), !, Class = 2.
'out'(S, Class) :- at_least(1, ['h'(S, 1)]), !, Class = 0.
'out'(_, 1).
""")
    assert parse_prolog(text) == tiny_list()


def test_decision_list_top_down(tmp_path):
    """predict/2, margins/2 (the one-hot), explain/3 and a class asked for directly, against numpy."""
    x = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, -2.0], [0.0, 0.0, -2.0]])
    _, margins, classes = numpy_engine.evaluate(tiny_list(), x)
    assert classes.tolist() == [0, 0, 2, 1]
    out = _query(tiny_list(), x, "forall(predict(S, C), (margins(S, M), format('~w ~w ~w~n', [S, C, M])))", tmp_path)
    rows = [ln.split(" ", 2) for ln in out.splitlines()]
    assert [int(c) for _, c, _ in rows] == classes.tolist()
    np.testing.assert_array_equal([[float(v) for v in m.strip("[]").split(",")] for _, _, m in rows], margins)
    out = _query(tiny_list(), x, "forall(between(0, 3, S), (findall(C, 'out'(S, C), Cs), print(Cs), nl))", tmp_path)
    assert out.splitlines() == [f"[{c}]" for c in classes]  # one class each, also when asked for
    out = _query(tiny_list(), x, "forall(explain(S, C, P), (print(S-C), nl, print(P), nl))", tmp_path).splitlines()
    assert out == ["0-0", "first(out(0,0),2,rule(out(0,0),1,1,[rule(h(0,1),1,1,[test(relu_2(0,2),0.0,-1.25)])]))",
                   "1-0", "first(out(1,0),2,rule(out(1,0),1,1,[rule(h(1,1),1,1,[test(relu_2(1,2),0.0,-1.25)])]))",
                   "2-2", "first(out(2,2),1,rule(out(2,2),2,2,[rule(h(2,0),1,1,[test(relu_2(2,0),1.0,0.5)]),"
                   "not(h(2,1))]))",
                   "3-1", "default(out(3,1))"]


def test_conv_pool_and_index_clauses():
    p = conv_program(1)
    p = replace(p, blocks=(replace(p.blocks[0], stride=(2, 1), shape=(p.blocks[0].shape[0], 3, 6)),
                           replace(p.blocks[1], shape=(p.blocks[1].shape[0], 1, 3)),
                           replace(p.blocks[2], shape=(p.blocks[1].shape[0] * 3,),
                                   index=tuple(range(p.blocks[1].shape[0] * 3))),
                           replace(p.blocks[3], rules=())))
    lines = to_prolog(p).splitlines()
    conv = [ln for ln in lines if ln.startswith("'conv'(S, ")]
    assert conv and all(ln.endswith(":-") or "position(Y, X, 3, 6)" in ln for ln in conv)
    assert "'image'(S, 0, 2 * Y" in "\n".join(lines)  # stride 2 down, 1 across
    assert "'pool'(S, C, Y, X) :- window('pool', Y, X, Y1, X1), 'conv'(S, C, Y1, X1)." in lines
    assert "'flat'(S, 4) :- 'pool'(S, 1, 0, 1)." in lines
    assert "maxpool('pool', kernel(2, 2), strides(2, 2), pads(0, 0, 0, 0), dilations(1, 1), ceil_mode(false), " \
           "onnx('', '', ''))." in lines
    assert ":- discontiguous 'out'/2.  % no rules: no atom holds" in lines
    assert parse_prolog("\n".join(lines)) == p


def test_padding_clauses_follow_the_thresholds():
    on = to_prolog(tiny_conv(-0.5), runtime=False)
    assert "'image'(_, 0, Y, X) :- outside(Y, X, 2, 2)." in on.splitlines()
    assert "outside(" not in to_prolog(tiny_conv(0.5), runtime=False)
    with pytest.raises(RuleSyntaxError, match=r"padding clauses of 'image' cover channels \[0\]; "
                                              r"its thresholds say \[\]"):
        parse_prolog(on.replace("V >= -0.5.", "V >= 0.5."))


def test_demo_softmax_program_is_clauses(default_rules):
    p = compile_program(default_rules, cut="node_linear_1", beta=0.2)
    text = to_prolog(p)
    assert text.endswith(runtime_text())
    program_part = text[:-len(runtime_text())]
    rules = [ln for ln in program_part.splitlines() if ln.startswith("'node_linear_1'(")]
    assert len(rules) == len(p.output.rules)
    assert all(re.fullmatch(r"'node_linear_1'\((S|_), \d+\) :-( at_least\(\d+, \[.*)?", ln) for ln in rules)
    tests = [ln for ln in program_part.splitlines() if ln.startswith(quote_atom(p.input.tensor) + "(")]
    assert len(tests) == len(p.input.tests)
    i, t = p.input.tests[0]
    assert tests[0] == f"{quote_atom(p.input.tensor)}(S, {i}) :- x(S, {i}, V), V >= {number(t)}."
    assert "mofn(" not in program_part and "INTERPRETER" not in text


def test_runtime_is_package_data():
    text = resources.files("mofn2logic.grammars").joinpath("mofn_runtime.pl").read_text(encoding="utf-8")
    assert text == runtime_text() and "at_least(M, Literals) :-" in text
    assert to_prolog(tiny_dense()).endswith(text)
    assert text not in to_prolog(tiny_dense(), runtime=False)


# ---- names ----------------------------------------------------------------------------

def test_predicate_names_are_unique_and_never_builtins():
    p = conv_program(1, names=["predict", "predict_2", "x", "at_least"])
    p = replace(p, input=replace(p.input, tensor="predict"))
    assert predicate_names(p) == {"predict": "predict_2", "predict_2": "predict_2_2", "x": "x_2",
                                  "at_least": "at_least_2", "": "predict_3"}
    d = dense_program(1, names=["h", "out"])
    assert predicate_names(replace(d, input=replace(d.input, tensor="h"))) == {"h": "h", "out": "out", "": "h_2"}


@pytest.mark.parametrize("make, k", [(dense_program, 2), (conv_program, 4), (list_program, 2), (conv_list_program, 4)])
def test_hostile_and_reserved_names_run_and_read_back(make, k):
    require_tool("swipl")
    names = HOSTILE + RESERVED
    for offset in range(0, len(names) - k + 1, k):
        p = make(offset + 3, names=names[offset:offset + k])
        tensor = names[offset] if offset // k % 2 else ""  # named like a block, or the empty name
        p = replace(p, input=replace(p.input, tensor=tensor))
        text = to_prolog(p)
        assert not any(line.lstrip().startswith(":- halt") for line in text.splitlines())  # only inside quotes
        assert parse_prolog(text) == p
        _agree(p, sample_inputs(p, 30, offset))


# ---- reading back ---------------------------------------------------------------------------

def test_round_trip_of_the_demo_programs(default_rules):
    for beta in (0.0, 0.2, 1.0):
        for cut in (None, "node_conv2d_1", "node_linear", "node_linear_1"):
            p = compile_program(default_rules, cut=cut, beta=beta)
            assert parse_prolog(to_prolog(p)) == p


def test_round_trip_of_random_programs():
    for seed in range(12):
        for make in (dense_program, conv_program, list_program, conv_list_program):
            p = make(seed)
            assert parse_prolog(to_prolog(p, comments=seed % 2 == 0)) == p


names = st.text(min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def programs(draw):
    n_in, hidden, k = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    a, b = draw(st.lists(names, min_size=2, max_size=2, unique=True))
    tests = tuple(sorted({i: t for i, t in draw(st.lists(st.tuples(st.integers(0, n_in - 1), floats),
                                                         max_size=n_in))}.items()))

    def rules(units, n_src, heads):
        out = []
        for u in sorted(draw(st.sets(st.integers(0, units - 1)))):
            srcs = draw(st.lists(st.integers(0, n_src - 1), max_size=4))
            lits = tuple(AtomLiteral(s, draw(st.booleans())) for s in srcs)
            out.append(MofNRule(u, draw(st.integers(0, len(lits) + 1)), lits, draw(floats) if heads else None))
        return tuple(out)

    return Program(
        name=draw(st.text(max_size=10)), input=InputTests(draw(st.text(max_size=8)), (n_in,), False, tests),
        blocks=(RuleBlock(a, "dense", "", (hidden,), rules(hidden, n_in, True)),
                IndexBlock(a + "/idx", a, (hidden,), tuple(draw(st.permutations(range(hidden))))),
                RuleBlock(b, "dense", a + "/idx", (k,), rules(k, hidden, False))))


@settings(max_examples=100, deadline=None)
@given(programs())
def test_round_trip_is_exact(p):
    text = to_prolog(p)
    q = parse_prolog(text)
    assert q == p
    assert to_prolog(q) == text


def test_read_prolog_file(tmp_path):
    p = conv_program(4, names=HOSTILE[:4])
    write_prolog(p, tmp_path / "p.pl")
    assert read_prolog(tmp_path / "p.pl") == p
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("at_least(1, [", "at_least(1, [[", 1), r"^f\.pl:24:\d+: not Prolog that mofn2logic writes"),
    (lambda t: t.replace("['relu_2'(S, 0)", "['out'(S, 0)"),
     r"^f\.pl:24:1: literal 'out'\(S, 0\) does not read the block's source 'relu_2'"),
    (lambda t: t.replace("'relu_2'(S, 2)]", "'relu_2'(S, 7)]"), r"^f\.pl:24:1: .* outside shape \[3\]"),
    (lambda t: t.replace("at_least(1, ['relu_2'", "at_least(9, ['relu_2'"), r"rule 0 of 'h' asks 9 of 2 literals"),
    (lambda t: t.replace("decision(margin).\n", ""), r"^f\.pl: expected one decision/1 fact, found 0"),
    (lambda t: t + ":- initialization(main).\n", r"directive 'initialization'\('main'\) is not one mofn2logic writes"),
    (lambda t: t + "'ghost'(S, 0) :- at_least(0, []).\n", r"clause for 'ghost', which no block or input declares"),
    (lambda t: t.replace("'relu_2'(S, 2) :- x(S, 2, V)", "'relu_2'(S, 2) :- x(S, 1, V)"),
     r"^f\.pl:18:1: input test 'relu_2'\(S, 2\) does not have the form"),
])
def test_reader_errors_name_file_line_and_column(edit, match):
    bad = edit(to_prolog(tiny_dense(), runtime=False))
    with pytest.raises((RuleSyntaxError, ProgramError), match=match):
        parse_prolog(bad, "f.pl")


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("'out'(_, 1).\n", ""), r"^f\.pl:\d+:\d+: decision list 'out' needs exactly one default fact"),
    (lambda t: t + "'out'(_, 2).\n", r"^f\.pl:\d+:1: decision list 'out' needs exactly one default fact 'out'\(_, Class\); "
                                    r"found 2"),
    (lambda t: t.replace("'out'(_, 1).\n", "'out'(_, 1).\n'out'(S, Class) :- at_least(0, []), !, Class = 2.\n"),
     r"^f\.pl:\d+:1: a rule of decision list 'out' comes after its default; the default is last"),
    (lambda t: t.replace("]), !, Class = 2.", "]), Class = 2."),
     r"^f\.pl:\d+:1: rule 'out'\(S, Class\) of decision list 'out' does not have the form"),
    (lambda t: t.replace("!, Class = 2.", "!, C = 2."), r"does not have the form 'out'\(S, Class\) :- at_least"),
    (lambda t: t.replace("!, Class = 2.", "!, Class = two."), r"does not have the form"),
    (lambda t: t.replace("'out'(_, 1).", "'out'(_, C)."), r"the default 'out'\(_, C\) of decision list 'out' does not "),
    (lambda t: t.replace("'out'(_, 1).", "'out'(_, 5)."), r"decision list 'out' has default class 5; expected 0 to 2"),
    (lambda t: t.replace("Class = 2.", "Class = 3."), r"rule 1 of decision list 'out' names class 3; expected 0 to 2"),
    (lambda t: t.replace("decision(first).", "decision(margin)."), r"ends with decision list 'out' but decides by margin"),
    (lambda t: t + "'h'(_, 1).\n", r"fact 'h'\(_, 1\) is not one mofn2logic writes"),
    (lambda t: t.replace("block(2, 'out', decision_list", "block(2, 'out', dense"),
     r"fact 'out'\(_, 1\) is not one mofn2logic writes"),
    (lambda t: t.replace("'h'(S, 1)]), !", "'h'(S, 7)]), !"), r"outside shape \[2\]"),
])
def test_reader_refuses_malformed_decision_lists(edit, match):
    bad = edit(to_prolog(tiny_list(), runtime=False))
    with pytest.raises((RuleSyntaxError, ProgramError), match=match) as e:
        parse_prolog(bad, "f.pl")
    assert "\n" not in str(e.value)


def test_reader_refuses_bad_escapes_and_index_gaps():
    with pytest.raises(RuleSyntaxError, match=r"unknown escape"):
        parse_prolog(to_prolog(tiny_dense()).replace("'relu_2', [3]", "'relu\\q_2', [3]"))
    text = to_prolog(tiny_conv())
    with pytest.raises(RuleSyntaxError, match=r"index block 'flat' has 0 clauses for its 1 atoms"):
        parse_prolog(text.replace("'flat'(S, 0) :- 'p'(S, 0, 0, 0).\n", ""))


# ---- running it -------------------------------------------------------------------------------

def test_predict_and_margins_equal_numpy(tmp_path, default_rules, default_acts):
    _, acts = default_acts
    cases = [(tiny_dense(), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -2.0], [0.7, 3.0, 1.0]])),
             (compile_program(default_rules, cut="node_linear_1", beta=0.2), None)]
    for k, (p, x) in enumerate(cases):
        x = np.asarray(acts[p.input.tensor])[:120] if x is None else x
        d = tmp_path / str(k)
        d.mkdir()
        out = _query(p, x, "forall(predict(S, C), (margins(S, M), format('~w ~w ~w~n', [S, C, M])))", d)
        _, margins, classes = numpy_engine.evaluate(p, x)
        rows = [ln.split(" ", 2) for ln in out.splitlines()]
        assert [int(s) for s, _, _ in rows] == list(range(len(x)))
        np.testing.assert_array_equal([int(c) for _, c, _ in rows], classes)
        got = np.array([[float(v) for v in m.strip("[]").split(",")] for _, _, m in rows])
        np.testing.assert_array_equal(got, margins)  # the same floats, not just close


def test_ties_and_classes_without_rules():
    # class 0: (2 - 1) / 3; class 1: (4 - 2) / 6 -- the same float: the lowest class wins; class 2 has no rule
    lits = tuple(AtomLiteral(i) for i in range(6))
    p = Program("ties", InputTests("t", (6,), False, tuple((i, 0.5) for i in range(6))), (
        RuleBlock("out", "dense", "", (4,), (MofNRule(0, 1, lits[:3]), MofNRule(1, 2, lits), MofNRule(3, 5, lits))),))
    x = np.array([[1, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]], float)
    _agree(p, x)
    _, margins, classes = numpy_engine.evaluate(p, x)
    assert classes.tolist() == [0, 0] and margins[0, 0] == margins[0, 1] and margins[1, 2] == -1.0
    # with nothing held, a rule asking more than it has (M = N + 1) is below -1: a class without a rule wins
    q = replace(p, blocks=(replace(p.output, rules=(MofNRule(0, 4, lits[:3]),)),))
    _agree(q, x)
    assert numpy_engine.evaluate(q, x)[2].tolist() == [0, 1]


def test_explain_gives_only_the_path_of_the_predicted_class(tmp_path):
    goal = "forall(explain(S, C, P), (print(S-C), nl, print(P), nl))"
    out = _query(tiny_dense(), np.array([[1.0, 0.0, 0.0]]), goal, tmp_path).splitlines()
    # class 0 and class 2 tie at margin 0.0: class 0; class 2's rule is not in the proof
    assert out == ["0-0", "rule(out(0,0),1,2,[rule(h(0,0),1,2,[test(relu_2(0,0),1.0,0.5)])])"]
    out = _query(tiny_conv(-0.5), np.array([[[[-1.0, -1.0], [-1.0, 1.0]]]]), goal, tmp_path).splitlines()
    assert out == ["0-0", "rule(out(0,0),1,1,[index(flat(0,0),pool(p(0,0,0,0),"
                          "rule(c1(0,0,1,1),2,2,[test(image(0,0,1,1),1.0,-0.5),padding(image(0,0,2,2))])))])"]
    out = _query(tiny_conv(-0.5), np.array([[[[-1.0, -1.0], [-1.0, -1.0]]]]), goal, tmp_path).splitlines()
    assert out == ["0-1", "rule(out(0,1),1,1,[not(flat(0,0))])"]


@pytest.mark.parametrize("seed", range(6))
def test_engine_agrees_with_numpy_on_random_programs(seed):
    require_tool("swipl")
    for make in (dense_program, conv_program, list_program, conv_list_program):
        p = make(seed)
        _agree(p, sample_inputs(p, 60, seed))


def test_engine_agrees_on_the_demo_model(default_rules, default_acts):
    require_tool("swipl")
    _, acts = default_acts
    for cut, beta in (("node_linear_1", 0.2), ("node_conv2d_1", 0.2), ("node_linear", 1.0)):
        p = compile_program(default_rules, cut=cut, beta=beta)
        _agree(p, np.asarray(acts[p.input.tensor])[:150])


def test_full_replica_on_360_samples_well_under_a_minute(default_rules, default_acts):
    require_tool("swipl")
    _, acts = default_acts
    p = compile_program(default_rules, beta=0.0)
    assert [type(b).__name__ for b in p.blocks] == ["RuleBlock", "RuleBlock", "PoolBlock", "IndexBlock",
                                                   "RuleBlock", "RuleBlock"]
    x = np.asarray(acts[p.input.tensor])[:360]
    t0 = time.perf_counter()
    result = PrologEngine().run(p, x)
    seconds = time.perf_counter() - t0
    atoms, _, classes = numpy_engine.evaluate(p, x)
    np.testing.assert_array_equal(result.classes, classes)
    for b in p.rule_blocks():
        np.testing.assert_array_equal(result.atoms[b.name], atoms[b.name].reshape(len(x), -1))
    assert seconds < 45, f"{seconds:.1f} s"


def test_engine_errors(monkeypatch):
    require_tool("swipl")
    import mofn2logic.engines.prolog_engine as engine

    p = tiny_dense()
    monkeypatch.setattr(engine, "to_prolog", lambda program: "broken(.\n")
    with pytest.raises(ExportError, match=r"^SWI-Prolog could not run the exported program \(exit \d+\): ") as e:
        engine.run(p, np.zeros((2, 3)))
    assert "\n" not in str(e.value)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match=r"SWI-Prolog \('swipl'\) is not installed; install SWI-Prolog with"):
        engine.PrologEngine().run(p, np.zeros((2, 3)))


def test_data_facts():
    p = tiny_conv()
    text = data_facts(np.array([[[[0.5, -1.0], [np.inf, 2.0]]]]), p)
    assert text.splitlines()[2:] == ["x(0, 0, 0, 0, 0.5).", "x(0, 0, 0, 1, -1.0).", "x(0, 0, 1, 0, 1.0Inf).",
                                     "x(0, 0, 1, 1, 2.0)."]


# ---- the batch evaluation (classify_file): every geometry, every mode ------------------------

def geometry_program(seed: int) -> Program:
    """Strides, offsets that reach far into the padding, padding that holds, pools with pads,
    dilations and overlapping windows, per-unit tests on an image, and a dense block reshaped
    into a grid that a second convolution reads."""
    rng = np.random.default_rng(seed)
    c_in, h, w = int(rng.integers(1, 3)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
    per_channel = bool(rng.random() < 0.6)
    if per_channel:
        tests = tuple((c, float(np.float32(rng.normal()))) for c in range(c_in))
    else:
        tests = tuple((i, float(np.float32(rng.normal()))) for i in range(c_in * h * w) if rng.random() < 0.8)
    sy, sx = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    c1 = int(rng.integers(1, 4))
    shape1 = (c1, (h - 1) // sy + 1, (w - 1) // sx + 1)

    def conv_rules(units: int, channels: int, reach: int) -> tuple[MofNRule, ...]:
        rules = []
        for u in range(units):
            n = int(rng.integers(0, 7))
            lits = tuple(AtomLiteral(int(rng.integers(channels)), bool(rng.random() < 0.6),
                                     (int(rng.integers(-reach, reach + 1)), int(rng.integers(-reach, reach + 1))))
                         for _ in range(n))
            rules.append(MofNRule(u, int(rng.integers(0, n + 2)), lits, float(np.float32(rng.normal(scale=0.5)))))
        return tuple(rules)

    conv1 = RuleBlock("c1", "conv", "", shape1, conv_rules(c1, c_in, 3), (sy, sx))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pool = MaxPool(kernel=k, strides=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                   pads=(int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), int(rng.integers(0, k[0])),
                         int(rng.integers(0, k[1]))),
                   dilations=(int(rng.integers(1, 3)), 1), ceil_mode=bool(rng.random() < 0.5))
    try:
        pshape = pool.output_shape(shape1)
    except ProgramError:
        pool = MaxPool(kernel=(1, 1), strides=(1, 1))
        pshape = pool.output_shape(shape1)
    pooled = PoolBlock("p", "c1", pshape, pool)  # type: ignore[arg-type]
    n_flat = int(np.prod(pshape))
    flat = IndexBlock("flat", "p", (n_flat,), tuple(int(i) for i in rng.permutation(n_flat)))
    hidden = RuleBlock("h", "dense", "flat", (4,), tuple(
        MofNRule(u, int(rng.integers(0, 3)), tuple(AtomLiteral(int(i), bool(rng.random() < 0.5))
                                                   for i in rng.choice(n_flat, size=min(n_flat, 3), replace=False)),
                 float(np.float32(rng.normal()))) for u in range(4)))
    grid = IndexBlock("grid", "h", (1, 2, 2), (0, 1, 2, 3))
    conv2 = RuleBlock("c2", "conv", "grid", (2, 2, 2), conv_rules(2, 1, 1))
    flat2 = IndexBlock("flat2", "c2", (8,), tuple(range(8)))
    out = RuleBlock("out", "dense", "flat2", (3,), tuple(
        MofNRule(u, int(rng.integers(0, 4)), tuple(AtomLiteral(int(i), bool(rng.random() < 0.5))
                                                   for i in rng.choice(8, size=3, replace=False))) for u in range(3)))
    inp = InputTests("image", (c_in, h, w), per_channel, tests)
    return Program(f"geometry {seed}", inp, (conv1, pooled, flat, hidden, grid, conv2, flat2, out))


@pytest.mark.parametrize("seed", range(16))
def test_batch_evaluation_agrees_with_numpy_on_every_geometry(seed):
    require_tool("swipl")
    p = geometry_program(seed)
    from mofn2logic.program.check import check_program

    check_program(p, "geometry")
    x = sample_inputs(p, 70, seed)
    if seed % 4 == 0:
        x[0, 0, 0, 0] = np.nan  # compares false in both
        x[1, 0, 0, 0] = np.inf
    _agree(p, x)


def test_classify_file_modes_agree(tmp_path):
    """class, atoms (0/1 strings, for people) and masks (integers, for the engine) say the same."""
    _classify_file_modes_agree(geometry_program(3), tmp_path)
    _classify_file_modes_agree(conv_list_program(3), tmp_path)


def _classify_file_modes_agree(p: Program, tmp_path) -> None:
    x = sample_inputs(p, 9, 3)
    atoms, _, classes = numpy_engine.evaluate(p, x)
    class_lines = _query(p, x, "classify_file('d.pl', class)", tmp_path).splitlines()
    assert class_lines == [f"{s} {c}" for s, c in enumerate(classes)]
    rows = _query(p, x, "classify_file('d.pl', atoms)", tmp_path).splitlines()
    for s, row in enumerate(rows):
        parts = row.split()
        assert parts[:2] == [str(s), str(classes[s])]
        assert parts[2:] == ["".join("1" if v else "0" for v in atoms[b.name][s].reshape(-1)) for b in p.atom_blocks()]
    masks = _query(p, x, "classify_file('d.pl', masks)", tmp_path).splitlines()
    assert masks[:len(x)] == class_lines and len(masks) == len(x) + sum(b.shape[0] for b in p.atom_blocks())


def test_classify_file_reads_samples_in_file_order_with_any_names(tmp_path):
    """A hand-written data file: samples named by atoms, in no particular order."""
    exe = require_tool("swipl")
    p = tiny_dense()
    write_prolog(p, tmp_path / "p.pl")
    (tmp_path / "d.pl").write_text("x(zed, 0, 1.0).\nx(zed, 1, 0.0).\nx(zed, 2, 0.0).\n"
                                   "x(alpha, 0, 0.0).\nx(alpha, 1, 0.0).\nx(alpha, 2, 5.0).\n", encoding="utf-8")
    out = subprocess.run([exe, "-q", "-g", "classify_file('d.pl', class)", "-t", "halt", "p.pl"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr
    _, _, classes = numpy_engine.evaluate(p, np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))
    assert out.stdout.splitlines() == [f"zed {classes[0]}", f"alpha {classes[1]}"]


def test_engine_runs_in_batches(monkeypatch):
    """More samples than one SWI-Prolog run takes: the batches join up in order."""
    require_tool("swipl")
    import mofn2logic.engines.prolog_engine as engine

    monkeypatch.setattr(engine, "BATCH_BITS", 1)  # 64 samples per run
    p = conv_program(2)
    x = sample_inputs(p, 150, 2)
    _agree(p, x)
    assert engine.batch_size(p) == 64
