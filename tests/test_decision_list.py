"""Decision lists fitted for the class (`mofn2logic.search.decision_list`): the learner, the program it
makes from a compiled one, the three engines on it, its text forms and `compile --decision-list`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import require_tool

from mofn2logic import exporters
from mofn2logic.cli import main
from mofn2logic.engines import numpy_engine
from mofn2logic.errors import DataError, SearchError
from mofn2logic.ir.program import DecisionListBlock, literal_count
from mofn2logic.program import check_program, compile_program
from mofn2logic.search.decision_list import fit_decision_list, learn_decision_list, subset_counts
from mofn2logic.search.exact import pack_bits


def _classes(rules, default, x: np.ndarray) -> np.ndarray:
    """A decision list's classes, read straight off its rules (first that holds, else the default)."""
    out = []
    for row in x:
        for r in rules:
            if sum(row[li.src] == li.positive for li in r.lits) >= r.m:
                out.append(r.unit)
                break
        else:
            out.append(default)
    return np.array(out)


def _data(seed: int, e: int = 600, a: int = 14, k: int = 4, noise: float = 0.1):
    """Atoms and classes from a planted decision list of 2-of-3 rules, some labels flipped."""
    rng = np.random.default_rng(seed)
    x = rng.random((e, a)) < 0.45
    y = np.full(e, k - 1)
    for c in reversed(range(k - 1)):
        cols = rng.choice(a, 3, replace=False)
        y[x[:, cols].sum(1) >= 2] = c
    flip = rng.random(e) < noise
    y[flip] = rng.integers(0, k, int(flip.sum()))
    return x, y, k


def test_subset_counts_equal_brute_force():
    rng = np.random.default_rng(0)
    truth = rng.random((7, 150)) < 0.4
    masks = np.stack([rng.random(150) < 0.3, np.ones(150, bool)])
    for big_n in (1, 2, 3):
        found, combos = subset_counts(pack_bits(truth), pack_bits(masks), big_n)
        assert [tuple(c) for c in combos] == list(itertools.combinations(range(7), big_n))
        for i, combo in enumerate(combos):
            count = truth[list(combo)].sum(0)
            for m in range(1, big_n + 1):
                assert found[m - 1, i].tolist() == [int((masks[k] & (count >= m)).sum()) for k in range(2)]


@pytest.mark.parametrize("seed", range(4))
def test_learner_is_deterministic_within_budget_and_never_worse_than_the_majority(seed):
    x, y, k = _data(seed)
    majority = np.bincount(y, minlength=k).max() / len(y)
    for budget in (0, 1, 2, 5, 12, 40):
        rules, default = learn_decision_list(x, y, k, budget)
        assert (rules, default) == learn_decision_list(x.copy(), y.copy(), k, budget)
        assert sum(r.n for r in rules) <= budget
        assert all(r.threshold is None and 1 <= r.m <= r.n and 0 <= r.unit < k for r in rules)
        assert np.mean(_classes(rules, default, x) == y) >= majority
        if budget == 0:
            assert rules == () and default == int(np.argmax(np.bincount(y, minlength=k)))


def test_learner_finds_a_planted_list():
    x, y, k = _data(5, e=2000, noise=0.0)
    rules, default = learn_decision_list(x, y, k, 30)
    assert np.mean(_classes(rules, default, x) == y) >= 0.97


def test_more_budget_is_not_worse_on_training_data():
    x, y, k = _data(7, e=1500, noise=0.05)
    scores = [np.mean(_classes(*learn_decision_list(x, y, k, b), x) == y) for b in (2, 6, 20)]
    assert scores == sorted(scores) and scores[-1] > scores[0]


def test_learner_options_are_checked():
    x, y, k = _data(0, e=50)
    for bad in ({"budget": -1}, {"max_n": 0}, {"pool": 0}, {"min_gain": 0}, {"penalty": 0.5, "min_penalty": 1}):
        with pytest.raises(SearchError, match=r"a decision list needs budget >= 0"):
            learn_decision_list(x, y, k, **{"budget": 5, **bad})


# ---- on a compiled program ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(default_rules, default_acts):
    net, acts = default_acts
    y = np.argmax(np.asarray(acts[net.output]), axis=1)
    full = compile_program(default_rules, cut="node_linear", beta=0.2, complete=True)
    x = np.asarray(acts[full.input.tensor])
    return full, x, y, fit_decision_list(full, x, y, 40)


def test_fitted_program_is_checked_pruned_and_no_worse_than_the_majority(fitted):
    full, x, y, p = fitted
    check_program(p, "fitted")
    assert p.decision == "first" and isinstance(p.output, DecisionListBlock)
    assert p.output.name == full.output.name and p.output.source == full.output.source
    assert sum(r.n for r in p.output.rules) <= 40
    assert literal_count(p) < literal_count(full)  # hidden rules no class reads are pruned
    used = {li.src for r in p.output.rules for li in r.lits}
    assert {r.unit for r in p.block("node_linear").rules} == used
    fidelity = np.mean(numpy_engine.evaluate(p, x)[2] == y)
    assert fidelity >= np.bincount(y).max() / len(y)
    assert fit_decision_list(full, x, y, 40) == p  # deterministic


def test_fitted_program_in_every_engine_and_text_form(fitted, default_acts):
    require_tool("swipl")
    from mofn2logic.engines import verify

    net, acts = default_acts
    p = fitted[3]
    sub = {k: np.asarray(v)[:200] for k, v in acts.items()}
    report = verify(p, net, sub, engines=("python", "sympy", "prolog"))
    assert report.engines_agree and len({e.fidelity for e in report.engines}) == 1
    assert report.layers[-1].name == p.output.name and report.layers[-1].units == len(p.output.rules)
    for fmt in ("mofn", "json", "prolog"):
        text = exporters.to_text(p, fmt)
        assert exporters.parse(text, fmt) == p
        assert exporters.to_text(exporters.parse(text, fmt), fmt) == text


def test_cards_and_graph_of_a_decision_list(fitted):
    from mofn2logic.report.cards import card_html, card_markdown, card_text, rule_cards

    p = fitted[3]
    cards = rule_cards(p, blocks=(p.output.name,))
    assert len(cards) == len(p.output.rules) + 1
    assert cards[0].sentence.startswith("1. class ") and cards[1].sentence.startswith("2. else class ")
    assert cards[-1].sentence == f"otherwise class {p.output.default}: always"
    assert all(card_text(c) and card_markdown(c) and card_html(c) for c in cards)
    assert len(rule_cards(p)) == len(cards) + len(p.block("node_linear").rules)
    text = exporters.to_text(p, "dot")
    assert f"otherwise class {p.output.default}" in text and text.count('label="else"') == len(p.output.rules)
    require_tool("dot")
    assert "<svg" in exporters.to_text(p, "svg")


def test_a_list_over_a_convolution_cut(default_rules, default_acts):
    """Cut below the dense layers: the list reads the flattened atoms the program computes."""
    net, acts = default_acts
    y = np.argmax(np.asarray(acts[net.output]), axis=1)
    full = compile_program(default_rules, cut="node_conv2d_1", beta=1.0, complete=True)
    x = np.asarray(acts[full.input.tensor])[:400]
    p = fit_decision_list(full, x, y[:400], 15)
    check_program(p, "conv list")
    assert p.output.source == full.output.source and sum(r.n for r in p.output.rules) <= 15
    assert np.mean(numpy_engine.evaluate(p, x)[2] == y[:400]) >= np.bincount(y[:400]).max() / 400


@pytest.mark.parametrize("x_shape, y, match", [
    ((5, 3), np.zeros(5, int), r"the cut tensor's values have shape \[5, 3\]; the program reads"),
    (None, np.zeros(7, int), r"the classes have shape \[7\] and dtype int64; expected \d+ integers from 0 to 9"),
    (None, "float", r"dtype float64; expected \d+ integers"),
    (None, "big", r"expected \d+ integers from 0 to 9"),
])
def test_fit_refuses_bad_data(fitted, x_shape, y, match):
    full, x, y_ok, _ = fitted
    x = np.zeros(x_shape) if x_shape is not None else x
    y = y_ok.astype(float) if isinstance(y, str) and y == "float" else y_ok + 10 if isinstance(y, str) else y
    with pytest.raises(DataError, match=match) as e:
        fit_decision_list(full, x, y, 10)
    assert "\n" not in str(e.value)


# ---- the command line -------------------------------------------------------------------------

def test_compile_with_a_decision_list(tmp_path, default_model, default_rules, capsys):
    from mofn2logic.resources import default_data_path
    from mofn2logic.search.rules_file import write_rules

    rules, acts = tmp_path / "rules.json", tmp_path / "acts.npz"
    write_rules(default_rules, rules)
    assert main(["harvest", str(default_model), "--data", str(default_data_path()), "--key", "images",
                 "-o", str(acts)]) == 0
    out = tmp_path / "list.pl"
    assert main(["compile", str(rules), "--cut", "node_linear_1", "--decision-list", str(acts), "--budget", "12",
                 "-o", str(out)]) == 0
    said = capsys.readouterr().out
    p = exporters.load_program(out)
    assert p.decision == "first" and sum(r.n for r in p.output.rules) <= 12
    assert f"the classes by a decision list of {len(p.output.rules)} rules" in said
    assert main(["compile", str(rules), "--cut", "node_linear_1", "--decision-list", str(acts), "--budget", "12",
                 "-o", str(tmp_path / "again.pl")]) == 0
    assert (tmp_path / "again.pl").read_text() == out.read_text()  # byte-identical
    assert main(["show", str(out)]) == 0 and "1. class " in capsys.readouterr().out


@pytest.mark.parametrize("extra, match", [
    (["--budget", "5"], r"--budget sizes a decision list; expected it with --decision-list ACTS\.npz"),
    (["--decision-list", "RULES"], r"activations file .* has suffix '\.json'; expected one of"),
    (["--decision-list", "NOLAYERS"], r"has no array '__layers__'"),
    (["--decision-list", "ACTS", "--budget", "-1"], r"argument --budget: expected an integer >= 0, got '-1'"),
    (["--decision-list", "ACTS", "--budget", "x"], r"argument --budget: expected an integer >= 0, got 'x'"),
])
def test_compile_refuses_bad_decision_list_options(tmp_path, default_rules, capsys, extra, match):
    from mofn2logic.search.rules_file import write_rules

    rules = tmp_path / "rules.json"
    write_rules(default_rules, rules)
    np.savez(tmp_path / "nolayers.npz", relu_2=np.zeros((3, 4)))
    np.savez(tmp_path / "acts.npz", __layers__=np.array('{"output": "out"}'), out=np.zeros((3, 10)))
    paths = {"RULES": str(rules), "NOLAYERS": str(tmp_path / "nolayers.npz"), "ACTS": str(tmp_path / "acts.npz")}
    out = tmp_path / "p.mofn"
    code = main(["compile", str(rules), "--cut", "node_linear_1", *[paths.get(a, a) for a in extra], "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and pytest.importorskip("re").search(match, err), err
