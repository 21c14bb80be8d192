"""Golden files: the Prolog, DOT, SymPy and .mofn texts of three fixed programs, byte for byte.

A change to a printer shows up here as a diff to review. To accept a deliberate change, run
``MOFN2LOGIC_REGOLD=1 pytest tests/test_goldens.py`` and commit the files in tests/golden/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mofn2logic import exporters
from mofn2logic.ir import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MaxPool,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)

GOLDEN = Path(__file__).parent / "golden"


def dense_program() -> Program:
    """Two layers over a 4-unit input, names that need quoting, a negated literal, a class without a rule."""
    return Program(
        "tiny 'dense'",
        InputTests("relu_2", (4,), False, ((0, 0.5), (1, -0.25), (3, 2.0))),
        (
            RuleBlock("hidden", "dense", "", (2,), (
                MofNRule(0, 2, (AtomLiteral(0), AtomLiteral(1, False), AtomLiteral(3)), 0.125),
                MofNRule(1, 1, (AtomLiteral(1),), 1.5),
            )),
            RuleBlock("Class Layer", "dense", "hidden", (3,), (
                MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(1, False))),
                MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1))),
            )),
        ),
    )


def conv_program() -> Program:
    """A conv layer with padding offsets, a 2x2 max pool, a flatten and a dense class layer."""
    return Program(
        "tiny conv",
        InputTests("image", (1, 4, 4), True, ((0, 0.3),)),
        (
            RuleBlock("c1", "conv", "", (2, 4, 4), (
                MofNRule(0, 2, (AtomLiteral(0, True, (-1, 0)), AtomLiteral(0, True, (0, 0)),
                                AtomLiteral(0, False, (0, 1))), 0.05),
                MofNRule(1, 1, (AtomLiteral(0, True, (1, 1)),), -0.5),
            ), (1, 1)),
            PoolBlock("c1/maxpool0", "c1", (2, 2, 2), MaxPool(kernel=(2, 2), strides=(2, 2))),
            IndexBlock("fc/input", "c1/maxpool0", (8,), tuple(range(8))),
            RuleBlock("fc", "dense", "fc/input", (2,), (
                MofNRule(0, 2, (AtomLiteral(0), AtomLiteral(5), AtomLiteral(6, False))),
                MofNRule(1, 1, (AtomLiteral(2), AtomLiteral(7))),
            )),
        ),
    )


def list_program() -> Program:
    """dense_program's hidden layer, then the classes as a decision list: a repeated class, a constant rule."""
    p = dense_program()
    return Program("tiny 'list'", p.input, (p.blocks[0], DecisionListBlock("Class List", "hidden", (3,), (
        MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1, False))),
        MofNRule(0, 1, (AtomLiteral(1),)),
        MofNRule(2, 3, (AtomLiteral(0), AtomLiteral(1))),
        MofNRule(1, 0, ()),
    ), 0)), "first")


def named_program() -> Program:
    """The dense program with names of inputs, a hidden unit and the classes: plain, with spaces, a quote,
    a newline, a Prolog operator and a built-in's name (quoted everywhere, said in the Prolog comments)."""
    p = dense_program()
    names = (("", ((0, "worst radius"), (1, "it's"), (3, "a\nb"))), ("hidden", ((1, ":-"),)),
             ("Class Layer", ((0, "malignant"), (1, "is"), (2, "Ω ≥ 1"))))
    return Program(p.name, p.input, p.blocks, p.decision, names)


CASES = {"dense": dense_program, "conv": conv_program, "list": list_program, "named": named_program}
TARGETS = {"prolog": ".pl", "dot": ".dot", "sympy": ".py", "mofn": ".mofn"}


@pytest.mark.parametrize("fmt", sorted(TARGETS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case, fmt):
    program = CASES[case]()
    text = exporters.to_text(program, fmt)
    path = GOLDEN / f"{case}{TARGETS[fmt]}.txt"
    if os.environ.get("MOFN2LOGIC_REGOLD") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}: run with MOFN2LOGIC_REGOLD=1 once and commit it"
    assert text == path.read_text(encoding="utf-8")
