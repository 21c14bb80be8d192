"""The rule graph: small multiples that stay readable, measured on a program the size of an MNIST
CNN's softmax layer, rendered by the real Graphviz."""

from __future__ import annotations

import re
import subprocess

import numpy as np
from conftest import require_tool

from mofn2logic.exporters.dot import to_dot
from mofn2logic.exporters.wording import shortest
from mofn2logic.ir import AtomLiteral, InputTests, MofNRule, Program, RuleBlock


def softmax_sized(literals: int = 40) -> Program:
    """10 classes over 128 thresholded ReLU units, `literals` literals per class (seeded)."""
    rng = np.random.default_rng(0)
    tests = tuple((i, float(np.float32(rng.uniform(0.5, 10)))) for i in range(128))
    rules = tuple(MofNRule(c, literals // 2, tuple(AtomLiteral(int(s), bool(rng.random() < 0.5))
                                                    for s in rng.choice(128, literals, replace=False)))
                  for c in range(10))
    return Program("mnist softmax", InputTests("relu_2", (128,), False, tests),
                   (RuleBlock("dense_1", "dense", "", (10,), rules),))


def test_each_class_is_a_star_in_its_own_cluster():
    """Every edge inside a class's cluster ends at that class's rule node: a star, so no two edges
    of a class can cross; and no edge runs between clusters."""
    dot = to_dot(softmax_sized())
    clusters = re.findall(r'subgraph "cluster_dense_1\|(\d+)" \{(.*?)\n    \}', dot, flags=re.S)
    assert [int(c) for c, _ in clusters] == list(range(10))
    for c, body in clusters:
        heads = {head for _, head in re.findall(r'("[^"]*") -> ("[^"]*")', body)}
        assert heads == {f'"dense_1|{c}"'}
    outside = dot.split('subgraph "cluster_dense_1"')[0]
    assert "->" not in outside.replace('"legend/pos" -> "legend/rule"', "").replace('"legend/neg" -> "legend/rule"', "")


def test_long_rules_are_summarised():
    dot = to_dot(softmax_sized(), max_literals=12)
    assert dot.count('"dense_1|0|') == 2 * 12 + 2  # 12 literal nodes and edges, the summary node and edge
    assert re.search(r'"dense_1\|0\|more" \[label="\+ 28 more: \d+ that must hold, \d+ that must not"', dot)


def test_softmax_sized_graph_fits_a_page():
    require_tool("dot")
    svg = subprocess.run(["dot", "-Tsvg"], input=to_dot(softmax_sized()), capture_output=True, text=True,
                         check=True).stdout
    w, h = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    # CSS pixels are 4/3 of a point
    assert w * 4 / 3 <= 1600 and h * 4 / 3 <= 4000, (w, h)
    assert svg.count("<title>") > 10 * 14 and 'xlink:title="dense_1 class' not in svg  # every node has a title
    assert "class 3 needs: relu_2[" in svg  # tooltips carry the full test


def test_thresholds_print_in_the_shortest_form_of_their_dtype():
    assert shortest(float(np.float32(2.6209912300109863))) == "2.6209912"  # not 2.6209912300109863
    assert shortest(0.1) == "0.1"  # a float64 value that is not a float32 keeps its own digits
    assert float(np.float32(shortest(float(np.float32(9.3975))))) == float(np.float32(9.3975))
