"""Names of atoms (Program.names) in every format: the readable ones give them back exactly, the
others show them, hostile names keep every quoting guarantee, and the engines run named programs
the same as unnamed ones."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import require_tool
from program_gen import HOSTILE, conv_list_program, conv_program, dense_program, list_program, sample_inputs

from mofn2logic import exporters
from mofn2logic.engines import get_engine
from mofn2logic.errors import ProgramError
from mofn2logic.exporters.dot import quote_id, render_svg
from mofn2logic.exporters.prolog import quote_atom
from mofn2logic.ir.program import DecisionListBlock, Program, RuleBlock
from mofn2logic.program.check import check_program
from mofn2logic.report.cards import card_text, rule_cards

# Hostile texts, names that are Prolog built-ins, header facts and operators, and plain ones.
NAMES = [*HOSTILE, "label", "is", "x", ":-", "predict", "\\+", "worst radius", "pixel[3,4]", "names", "input", "Ω ≥ 1"]
GENERATORS = {"dense": dense_program, "conv": conv_program, "list": list_program, "conv_list": conv_list_program}


def named(program: Program, seed: int) -> Program:
    """`program` with names drawn from NAMES on about half of its input tests and rule atoms, every class."""
    rng = np.random.default_rng(seed)

    def pick() -> str:
        return str(rng.choice(NAMES)) + ("" if rng.random() < 0.5 else f" {int(rng.integers(100))}")

    table = []
    tests = [i for i, _ in program.input.tests if rng.random() < 0.6]
    if tests:
        table.append(("", tuple((i, pick()) for i in tests)))
    for b in program.blocks:
        if isinstance(b, (RuleBlock, DecisionListBlock)):
            units = range(b.shape[0]) if b is program.output else sorted({r.unit for r in b.rules if rng.random() < 0.6})
            if units:
                table.append((b.name, tuple((u, pick()) for u in units)))
    out = Program(program.name, program.input, program.blocks, program.decision, tuple(table))
    check_program(out, "named")
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", sorted(GENERATORS))
@pytest.mark.parametrize("fmt", ["mofn", "json", "prolog"])
def test_named_programs_round_trip_exactly(kind, fmt, seed):
    p = named(GENERATORS[kind](seed), seed)
    assert p.names
    back = exporters.parse(exporters.to_text(p, fmt), fmt)
    assert back == p
    assert back.names == p.names


def test_prolog_says_each_rule_in_names_and_keeps_quoting():
    p = named(dense_program(3), 3)
    text = exporters.to_text(p, "prolog", runtime=False)
    for block, units in p.names:
        pred = quote_atom(block if block else p.input.tensor)
        for u, n in units:
            assert f"label({pred}, {u}, {quote_atom(n)})." in text
    said = [line for line in text.splitlines() if line.startswith("% ") and ":- at_least(" in line]
    assert said, text
    head = p.atom_name(p.output.name, p.output.rules[0].unit)
    if p.output.rules[0].lits:
        assert any(line.startswith(f"% {quote_atom(head)} :- at_least(") for line in said), said
    # without comments, only the label facts carry the names, and they still read back
    bare = exporters.to_text(p, "prolog", comments=False)
    program_part = bare.split("% ---- mofn2logic runtime")[0]
    assert ":- at_least(" in program_part and not re.search(r"^% .*:- at_least\(|\.  % ", program_part, re.M)
    assert exporters.parse(bare, "prolog") == p


def test_dot_cards_and_sympy_show_the_names():
    p = named(dense_program(5), 5)
    dot = exporters.to_text(p, "dot")
    cards = rule_cards(p)
    for r in p.output.rules:
        name = p.atom_name(p.output.name, r.unit)
        assert quote_id(name)[1:-1] in dot
        assert any(c.head == name for c in cards)
    named_inputs = dict(dict(p.names).get("", ()))
    shown = {li.text for c in cards for li in c.literals}
    read = {i for b in p.blocks if isinstance(b, RuleBlock) and b.source == "" for r in b.rules for i in
            (li.src for li in r.lits)}
    for i in read & set(named_inputs):
        assert any(t.startswith(named_inputs[i] + " >= ") for t in shown), (named_inputs[i], shown)
    assert all(card_text(c) for c in cards)
    ns: dict = {}
    exec(exporters.to_text(p, "sympy"), ns)
    assert ns["names"] == {(block, u): n for block, units in p.names for u, n in units}


def test_dot_with_hostile_names_lays_out():
    require_tool("dot")
    p = named(conv_list_program(2), 2)
    svg = render_svg(exporters.to_text(p, "dot"))
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_engines_agree_on_named_programs(kind):
    require_tool("swipl")
    p = named(GENERATORS[kind](7), 7)
    x = sample_inputs(p, 40, 7)
    plain = Program(p.name, p.input, p.blocks, p.decision)
    ref = get_engine("python").run(plain, x)
    for engine in ("python", "sympy", "prolog"):
        got = get_engine(engine).run(p, x)
        np.testing.assert_array_equal(got.classes, ref.classes, err_msg=engine)


@pytest.mark.parametrize("names, pattern", [
    ((("nope", ((0, "a"),)),), r"names atoms of .*nope.*expected the input or a rule block"),
    ((("", ((0, "a"), (0, "b"))),), r"units ascending"),
    ((("", ((999, "a"),)),), r"units ascending in 0\.\."),
    ((("", ((0, "bad\x01"),)),), r"control character U\+0001"),
    ((("", ((0, ""),)),), r"expected a non-empty text"),
    ((("", ((0, 5),)),), r"expected a non-empty text"),
    ((("", ()),), r"expected \(unit, name\) pairs"),
])
def test_bad_names_tables_are_one_line(names, pattern):
    p = dense_program(1)
    bad = Program(p.name, p.input, p.blocks, p.decision, names)
    with pytest.raises(ProgramError, match=pattern) as e:
        check_program(bad, "t")
    assert "\n" not in str(e.value)


def test_names_out_of_program_order_are_refused():
    p = named(dense_program(4), 4)
    if len(p.names) > 1:
        swapped = Program(p.name, p.input, p.blocks, p.decision, tuple(reversed(p.names)))
        with pytest.raises(ProgramError, match="out of order"):
            check_program(swapped, "t")
    text = exporters.to_text(p, "mofn")
    if "names input" in text:  # a .mofn file with its sections swapped is refused, not reordered
        head, _, rest = text.partition("names input")
        first, _, tail = rest.partition("names '")
        swapped_text = head + "names '" + tail + "names input" + first if tail else text
        if swapped_text != text:
            with pytest.raises(ProgramError):
                exporters.parse(swapped_text, "mofn")


def test_a_json_names_key_that_is_not_a_list_is_refused():
    p = named(dense_program(2), 2)
    text = exporters.to_text(p, "json")
    bad = re.sub(r'"names": \[', '"names": {"x": [', text, count=1)
    with pytest.raises(ProgramError):
        exporters.parse(bad, "json")


def test_a_named_decision_list_says_its_default_in_names():
    p = named(list_program(4), 4)
    text = exporters.to_text(p, "prolog", runtime=False)
    default = p.atom_name(p.output.name, p.output.default)
    assert f"% otherwise {quote_atom(default)}.\n{quote_atom(p.output.name)}(_, {p.output.default})." in text
    assert exporters.parse(exporters.to_text(p, "prolog"), "prolog") == p
