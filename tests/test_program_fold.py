"""Constant literals folded into M and N: exact on hand-built programs, and no atom changes."""

from __future__ import annotations

import numpy as np

from mofn2logic.engines.numpy_engine import evaluate
from mofn2logic.ir import AtomLiteral, IndexBlock, InputTests, MaxPool, MofNRule, PoolBlock, Program, RuleBlock
from mofn2logic.program import compile_program, fold_constants
from mofn2logic.program.fold import activation_range

RELU = activation_range("relu")


def test_activation_ranges():
    assert activation_range("relu") == (0.0, float("inf"))
    assert activation_range("sigmoid") == (0.0, 1.0)
    assert activation_range("tanh") == (-1.0, 1.0)
    assert activation_range("identity") is None


def test_input_tests_outside_the_range_fold_into_m_and_n():
    # inputs after a ReLU: ">= 0.0" always holds, ">= -1.0" too; ">= 0.5" depends on the value
    p = Program("p", InputTests("relu", (3,), False, ((0, 0.0), (1, -1.0), (2, 0.5))), (
        RuleBlock("out", "dense", "", (2,), (
            MofNRule(0, 2, (AtomLiteral(0), AtomLiteral(2))),          # true literal dropped: 1 of [2]
            MofNRule(1, 1, (AtomLiteral(1, False), AtomLiteral(2))),   # false literal dropped: 1 of [2]
        )),
    ))
    folded = fold_constants(p, {"": RELU, "out": None})
    assert folded.output.rules == (MofNRule(0, 1, (AtomLiteral(2),)), MofNRule(1, 1, (AtomLiteral(2),)))
    # without a known range nothing is constant
    assert fold_constants(p, {"": None, "out": None}) == p


def test_constant_hidden_rules_fold_through_pool_and_index():
    # a conv channel whose rule always holds (M = 0) feeds a pool, a flatten and the classes
    inp = InputTests("image", (1, 2, 2), True, ((0, 0.5),))
    conv = RuleBlock("c", "conv", "", (2, 2, 2), (
        MofNRule(0, 0, (AtomLiteral(0, True, (0, 0)),), -1.0),   # always true (pad truth 0 >= -1 agrees)
        MofNRule(1, 1, (AtomLiteral(0, True, (0, 0)),), 0.2),
    ), (1, 1))
    pool = PoolBlock("p", "c", (2, 1, 1), MaxPool(kernel=(2, 2), strides=(2, 2)))
    flat = IndexBlock("f", "p", (2,), (0, 1))
    out = RuleBlock("out", "dense", "f", (2,), (MofNRule(0, 2, (AtomLiteral(0), AtomLiteral(1))),
                                               MofNRule(1, 1, (AtomLiteral(0, False), AtomLiteral(1)))))
    p = Program("p", inp, (conv, pool, flat, out))
    folded = fold_constants(p, {"": None, "c": RELU, "out": None})
    assert folded.output.rules == (MofNRule(0, 1, (AtomLiteral(1),)), MofNRule(1, 1, (AtomLiteral(1),)))
    assert folded.block("c") == RuleBlock("c", "conv", "", (2, 2, 2), (
        MofNRule(0, 0, (), -1.0), conv.rules[1]), (1, 1))
    x = np.random.default_rng(0).normal(size=(50, 1, 2, 2)).astype(np.float32)
    a, _, _ = evaluate(p, x)
    b, _, _ = evaluate(folded, x)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_compiled_programs_keep_every_atom(default_rules, default_acts):
    """Folding changes no atom of the demo's programs (only the margins' denominators), and what
    it leaves are literals that can change."""
    _, acts = default_acts
    for cut in (default_rules.layers[0].name, "node_linear_1"):
        plain = compile_program(default_rules, cut=cut, beta=0.0, fold=False)
        folded = compile_program(default_rules, cut=cut, beta=0.0)
        x = np.asarray(acts[folded.input.tensor])[:300]
        a, _, _ = evaluate(plain, x)
        b, _, _ = evaluate(folded, x)
        for block in folded.rule_blocks():
            units = [r.unit for r in block.rules]
            np.testing.assert_array_equal(a[block.name][:, units], b[block.name][:, units])
        if cut == "node_linear_1":  # its inputs follow a ReLU: no test at or below 0 is left
            assert all(t > 0.0 for _, t in folded.input.tests)
            assert any(t <= 0.0 for _, t in plain.input.tests)
