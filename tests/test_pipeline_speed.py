"""The fast paths `run` takes give what the plain ones give: block atoms as matrix products equal the
numpy engine's atoms (which the program-fitted search and the front read)."""

from __future__ import annotations

import numpy as np
import pytest

from mofn2logic.engines import block_counts, numpy_engine
from mofn2logic.ir.program import AtomLiteral, InputTests, MofNRule, Program, RuleBlock
from mofn2logic.program.compile import compile_program


def _block_by_block(program: Program, x: np.ndarray) -> int:
    """Every rule block of `program` on the numpy engine's source atoms, both ways; the blocks compared."""
    atoms = {"": numpy_engine.input_atoms(program, x)}
    e = len(x)
    seen = 0
    for b in program.blocks:
        src = atoms[b.source]
        if not isinstance(b, RuleBlock):
            atoms[b.name] = numpy_engine.structural(src, b)
            continue
        if b.kind == "dense":
            ref = numpy_engine.dense_atoms(src.reshape(e, -1), b)[0]
            got = block_counts.dense_atoms(src.reshape(e, -1), b)
        else:
            ref = numpy_engine.conv_atoms(program, src, b)
            got = block_counts.conv_atoms(program, src, b)
        assert got.dtype == bool and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref, err_msg=b.name)
        atoms[b.name] = ref
        seen += 1
    return seen


@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0])
def test_block_counts_equal_the_numpy_engine_on_the_default_program(default_rules, default_acts, beta):
    """The embedded CNN's full replica (padded convolutions, max pooling, dense layers) block by block."""
    _, acts = default_acts
    program = compile_program(default_rules, cut=default_rules.layers[0].name, beta=beta)
    x = np.asarray(acts[program.input.tensor])[:200]
    assert _block_by_block(program, x) == 4


def _random_rules(rng, units: int, channels: int, conv: bool) -> tuple[MofNRule, ...]:
    rules = []
    for u in range(units):
        if u == 1:
            continue  # a unit without a rule never fires
        n = int(rng.integers(0, 12))
        lits = tuple(AtomLiteral(int(rng.integers(channels)), bool(rng.random() < 0.6),
                                 (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))) if conv else None)
                     for _ in range(n))
        lits = lits + lits[:2]  # the same literal twice counts twice
        m = 0 if u == 2 else int(rng.integers(1, len(lits) + 2))
        rules.append(MofNRule(u, m, lits, threshold=float(rng.normal()) if conv else None))
    return tuple(rules)


@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
def test_block_counts_equal_the_numpy_engine_on_random_blocks(stride):
    """Negated and repeated literals, offsets reading the padding on every side, strides, a unit without a
    rule, a rule with M = 0, channels whose padding is true and false."""
    rng = np.random.default_rng(7)
    c, h, w, units = 3, 7, 6, 5
    thresholds = ((0, -0.5), (1, 0.25), (2, 0.0))  # padding reads 0 >= t: true, false, true
    inp = InputTests("x", (c, h, w), True, thresholds)
    oh, ow = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
    conv = RuleBlock("conv", "conv", "", (units, oh, ow), _random_rules(rng, units, c, True), stride)
    dense = RuleBlock("dense", "dense", "conv", (units,), _random_rules(rng, units, units * oh * ow, False))
    program = Program("p", inp, (conv, dense))
    x = rng.normal(size=(40, c, h, w)).astype(np.float32)
    assert _block_by_block(program, x) == 2
