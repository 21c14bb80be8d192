"""The fast paths `run` takes give what the plain ones give: block atoms as matrix products equal the
numpy engine's atoms and classes (which the program-fitted search and the front read); the replicas
fitted on the program take the chain extraction's cut layer, with the rules a search finds."""

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


def _classes_by_counts(program: Program, x: np.ndarray) -> np.ndarray:
    """The numpy engine's classes with every rule block on its integer counts (no products)."""
    atoms = {"": numpy_engine.input_atoms(program, x)}
    e = len(x)
    for b in program.blocks[:-1]:
        src = atoms[b.source]
        atoms[b.name] = (numpy_engine.structural(src, b) if not isinstance(b, RuleBlock) else
                         numpy_engine.dense_atoms(src.reshape(e, -1), b)[0] if b.kind == "dense" else
                         numpy_engine.conv_atoms(program, src, b))
    out = program.output
    src = atoms[out.source].reshape(e, -1)
    if not isinstance(out, RuleBlock):
        return numpy_engine.list_classes(src, out)
    counts, m, n = numpy_engine.dense_atoms(src, out)[1:]
    return np.argmax((counts - m) / np.maximum(n, 1), axis=1)


def test_engine_classes_equal_the_integer_counts_at_every_cut(default_rules, default_acts):
    """The numpy engine (rule blocks as products) decides the classes its integer counts decide: the program
    at each cut and beta, and with a decision list."""
    from mofn2logic.search.decision_list import fit_decision_list
    from mofn2logic.search.network import predicted_class

    net, acts = default_acts
    pred = predicted_class(net, acts)
    for la in default_rules.layers:
        x = np.asarray(acts[la.input_tensor])
        for beta in default_rules.betas:
            program = compile_program(default_rules, cut=la.name, beta=beta)
            np.testing.assert_array_equal(numpy_engine.evaluate(program, x)[2], _classes_by_counts(program, x))
    program = compile_program(default_rules, cut=default_rules.layers[1].name, beta=0.2)
    x = np.asarray(acts[program.input.tensor])
    listed = fit_decision_list(program, x[:600], pred[:600], 30)
    got = numpy_engine.evaluate(listed, x)[2]
    np.testing.assert_array_equal(got, _classes_by_counts(listed, x))
    assert len(np.unique(got)) > 2


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


# --------------------------------------------------------------------------- reusing the chain's layer


OPTIONS = {"order": "best", "device": "cpu", "conv_examples": 3000}  # `run`'s order; fewer conv examples: fast


@pytest.fixture(scope="module")
def few_digits(default_model, digits):
    from mofn2logic import check_data, harvest, import_network

    net = import_network(default_model)
    return net, harvest(net, default_model, check_data(digits["images"][:300], net.input_shape, net.dtype))


@pytest.fixture(scope="module")
def chain(few_digits):
    from mofn2logic.search.network import extract

    net, acts = few_digits
    return extract(net, acts, betas=(0.0, 0.2, 1.0), **OPTIONS)


@pytest.mark.parametrize("cut", [0, 1, 2])
def test_reused_cut_layer_has_the_rules_a_search_finds(few_digits, chain, cut):
    """`run`'s replica fitted on the program from a cut takes the cut layer from the chain extraction instead of
    searching it again: the same rules at the program beta, and every layer above it the same, fronts included.
    The cut layer's front is the chain search's (its local moves were made for all of the chain's betas)."""
    import dataclasses

    from mofn2logic.search.network import extract

    net, acts = few_digits
    names = [la.name for la in net.layers]
    searched = extract(net, acts, layers=names[cut:], betas=(0.2,), fit_on="program", **OPTIONS)
    reused = extract(net, acts, layers=names[cut:], betas=(0.2,), fit_on="program", reuse=chain, **OPTIONS)
    assert [la.fit_on for la in reused.layers] == ["network"] + ["program"] * (len(names) - cut - 1)
    assert reused.layers[1:] == searched.layers[1:]
    first, chained = reused.layers[0], chain.layer(names[cut])
    assert [u.rules for u in first.units] == [u.rules for u in searched.layers[0].units]
    assert [u.front for u in first.units] == [u.front for u in chained.units]
    assert first == dataclasses.replace(searched.layers[0], units=first.units)
    assert reused.provenance == searched.provenance


def test_reuse_refuses_a_rule_set_searched_otherwise(few_digits):
    from mofn2logic.errors import SearchError
    from mofn2logic.search.network import extract

    net, acts = few_digits
    names = [la.name for la in net.layers]
    chain = extract(net, acts, layers=names[2:], betas=(0.0, 0.2), order="weight", device="cpu")
    with pytest.raises(SearchError, match="differs in order"):
        extract(net, acts, layers=names[2:], betas=(0.0,), order="best", device="cpu", fit_on="program", reuse=chain)
    with pytest.raises(SearchError, match="differs in beta 1"):
        extract(net, acts, layers=names[2:], betas=(1.0,), order="weight", device="cpu", fit_on="program", reuse=chain)
    fewer = {k: np.asarray(v)[:200] for k, v in acts.items()}
    with pytest.raises(SearchError, match="differs in n_samples"):
        extract(net, fewer, layers=names[2:], betas=(0.0,), order="weight", device="cpu", fit_on="program", reuse=chain)
    fitted = extract(net, acts, layers=names[2:], betas=(0.0,), order="weight", device="cpu", fit_on="program")
    with pytest.raises(SearchError, match="differs in fit-on"):
        extract(net, acts, layers=names[2:], betas=(0.0,), order="weight", device="cpu", fit_on="program", reuse=fitted)
