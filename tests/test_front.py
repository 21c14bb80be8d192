"""The size/fidelity front (mofn2logic/report/front.py): programs compiled from real rules, run by the
numpy engine, beside real scikit-learn trees with as many tests."""

from __future__ import annotations

import numpy as np
import onnx_models
import pytest
from sklearn.tree import DecisionTreeClassifier

import mofn2logic as M
from mofn2logic.engines import verify
from mofn2logic.program.compile import compile_program
from mofn2logic.report.front import (
    TREE_GRID,
    Point,
    cut_front,
    expansion_order,
    fit_tree,
    front_rows,
    prefix_predict,
    program_points,
    text_table,
    tree_points,
)
from mofn2logic.search.network import extract, predicted_class

BETAS = (0.0, 0.2, 1.0, 5.0)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """The 4-5-3 MLP of onnx_models on 600 random samples: rules fitted on 450, 150 held out."""
    path = onnx_models.save(onnx_models.mlp(), tmp_path_factory.mktemp("front") / "mlp.onnx")
    net = M.import_network(path)
    x = onnx_models.sample_input(onnx_models.mlp(), n=600, seed=3)
    acts = M.harvest(net, path, M.check_data(x, net.input_shape, net.dtype))
    pred = predicted_class(net, acts)
    fit = np.arange(600) < 450
    fit_acts, held_acts = acts.rows(np.flatnonzero(fit)), acts.rows(np.flatnonzero(~fit))
    rules = extract(net, fit_acts, betas=BETAS, device="cpu", predicted=pred[fit])
    return net, rules, fit_acts, held_acts, pred[fit], pred[~fit]


def _flat(a):
    a = np.asarray(a)
    return a.reshape(len(a), -1).astype(np.float32)


def test_a_prefix_of_the_grown_tree_is_the_tree_sklearn_fits_with_that_many_tests(default_acts):
    """One tree grown to the largest budget serves every smaller one: its first k best-first expansions
    predict what `DecisionTreeClassifier(max_leaf_nodes=k + 1)` fitted from scratch predicts."""
    net, acts = default_acts
    pred = predicted_class(net, acts)
    layer = net.layers[2]  # the dense layer: 256 inputs from the pooled convolutions
    x = _flat(acts[layer.input])
    fit = np.arange(len(x)) % 4 != 0
    grown = fit_tree(x[fit], pred[fit], 120)
    order = expansion_order(grown)
    assert len(order) == grown.tree_.node_count - grown.tree_.n_leaves
    for k in (0, 1, 2, 5, 13, 40, len(order)):
        alone = DecisionTreeClassifier(max_leaf_nodes=max(2, k + 1), random_state=0).fit(x[fit], pred[fit])
        if k == 0:  # max_leaf_nodes must be >= 2: the constant answer is the root's majority class
            expected = np.full(len(x), alone.classes_[np.argmax(alone.tree_.value[0, 0])])
        else:
            assert alone.tree_.node_count - alone.tree_.n_leaves == k
            expected = alone.predict(x)
        np.testing.assert_array_equal(prefix_predict(grown, x, order[:k]), expected)


def test_the_front_holds_the_programs_of_each_beta_and_trees_with_as_many_tests(mlp_run):
    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    for la in rules.layers:
        front = cut_front(rules, la.name, fit_acts, held_acts, fit_pred, held_pred)
        assert front.inputs == int(np.prod(np.asarray(held_acts[la.input_tensor]).shape[1:]))
        assert sorted(p.beta for p in front.programs) == sorted(BETAS)
        for p in front.programs:  # each point is the compiled program, checked by verify on the held-out rows
            program = compile_program(rules, cut=la.name, beta=p.beta)
            assert p.tests == sum(r.n for b in program.rule_blocks() for r in b.rules)
            assert p.fidelity == verify(program, net, held_acts, predicted=held_pred).fidelity
        assert [t.tests for t in front.programs] == sorted(t.tests for t in front.programs)
        # one tree per distinct literal count and grid size, with that many tests unless the tree stops growing first
        assert sorted(t.budget for t in front.trees) == sorted({p.tests for p in front.programs} | set(TREE_GRID))
        x_fit, x_held = _flat(fit_acts[la.input_tensor]), _flat(held_acts[la.input_tensor])
        for t in front.trees:
            alone = DecisionTreeClassifier(max_leaf_nodes=max(2, t.budget + 1), random_state=0).fit(x_fit, fit_pred)
            grown = alone.tree_.node_count - alone.tree_.n_leaves
            assert t.tests == min(t.budget, grown)
            if t.budget > 0:
                assert t.fidelity == float(np.mean(alone.predict(x_held) == held_pred))
        assert any(t.tests > 0 for t in front.trees)


def test_the_front_is_deterministic_and_tabulated(mlp_run):
    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    cut = rules.layers[0].name
    a = cut_front(rules, cut, fit_acts, held_acts, fit_pred, held_pred).to_dict()
    b = cut_front(rules, cut, fit_acts, held_acts, fit_pred, held_pred).to_dict()
    assert a == b
    front = cut_front(rules, cut, fit_acts, held_acts, fit_pred, held_pred)
    rows = front_rows(front)
    assert rows[0] == ["cut", "program", "literals", "program fidelity", "tree tests", "tree fidelity"]
    assert len(rows) == 1 + len(BETAS)
    text = text_table(front)
    assert f"front at {cut}" in text and "program, β=0 " in text


def test_tree_budgets_past_what_the_tree_grows_get_the_whole_tree(mlp_run):
    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    x_fit, x_held = _flat(fit_acts[net.input]), _flat(held_acts[net.input])
    pts = tree_points(x_fit, fit_pred, x_held, held_pred, [3, 10_000], max_tests=50)
    assert [p.budget for p in pts] == [3, 10_000]
    assert pts[0].tests == 3 and 3 < pts[1].tests <= 50
    full = DecisionTreeClassifier(max_leaf_nodes=51, random_state=0).fit(x_fit, fit_pred)
    assert pts[1].tests == full.tree_.node_count - full.tree_.n_leaves
    assert pts[1].fidelity == float(np.mean(full.predict(x_held) == held_pred))


def test_program_points_are_sorted_by_literals(mlp_run):
    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    last = rules.layers[-1]
    pts = program_points(rules, last.name, held_acts[last.input_tensor], held_pred)
    assert [p.tests for p in pts] == sorted(p.tests for p in pts) and {p.series for p in pts} == {"program"}


def test_known_programs_are_taken_and_large_ones_left_out(mlp_run):
    """The pipeline hands over the program it already checked; programs over the literal bound are not run."""
    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    cut = rules.layers[0].name
    x, sizes = held_acts[rules.layers[0].input_tensor], {}
    for p in program_points(rules, cut, x, held_pred, max_literals=None):
        sizes[p.beta] = p.tests
    known = Point("program", sizes[0.0], 0.5, beta=0.0)
    bound = sorted(sizes.values())[1]
    pts = program_points(rules, cut, x, held_pred, known=[known], max_literals=bound)
    assert known in pts
    assert {p.beta for p in pts} == {0.0} | {b for b, n in sizes.items() if n <= bound}


def test_decision_lists_at_the_output_layer_are_points_of_their_budget(mlp_run):
    """A decision list in place of the class block, fitted on the fitting rows for each literal budget."""
    from mofn2logic.search.decision_list import fit_decision_list

    net, rules, fit_acts, held_acts, fit_pred, held_pred = mlp_run
    last = rules.layers[-1]
    front = cut_front(rules, last.name, fit_acts, held_acts, fit_pred, held_pred, lists=(2, 6), beta=0.0)
    lists = [p for p in front.programs if p.series == "decision list"]
    assert [p.budget for p in sorted(lists, key=lambda p: p.budget)] == [2, 6]
    base = compile_program(rules, cut=last.name, beta=0.0)
    for p in lists:
        listed = fit_decision_list(base, np.asarray(fit_acts[last.input_tensor]), fit_pred, p.budget)
        assert p.tests == sum(r.n for r in listed.output.rules) <= p.budget
        assert p.fidelity == verify(listed, net, held_acts, predicted=held_pred).fidelity
    assert {p.tests for p in lists} <= {t.budget for t in front.trees}
    assert any(r[1].startswith("decision list, budget ") for r in front_rows(front))
