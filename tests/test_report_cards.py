"""Rule cards and pixel maps: exact text for a fixed program, stats from the engines, grids."""

from __future__ import annotations

import numpy as np
from test_exporters_goldens import conv_program, dense_program

from mofn2logic.engines.numpy_engine import evaluate
from mofn2logic.ir import AtomLiteral, InputTests, MofNRule, Program, RuleBlock
from mofn2logic.report.cards import card_html, card_markdown, card_text, pixel_map, rule_cards
from mofn2logic.report.html import pixel_map_figure


def test_card_text_is_exact():
    cards = rule_cards(dense_program())
    assert [c.head for c in cards] == ["class 0", "class 2", "hidden unit 0 (>= 0.125)", "hidden unit 1 (>= 1.5)"]
    assert card_text(cards[0]) == ("class 0 if at least 1 of these 2 hold\n"
                                   "  + hidden[0] >= 0.125\n"
                                   "  - NOT hidden[1] >= 1.5")
    assert card_text(cards[2]) == ("hidden unit 0 (>= 0.125) if at least 2 of these 3 hold\n"
                                   "  + relu_2[0] >= 0.5\n"
                                   "  - NOT relu_2[1] >= -0.25\n"
                                   "  + relu_2[3] >= 2.0")
    assert "✘ not `hidden[1] >= 1.5`" in card_markdown(cards[0])


def test_card_stats_come_from_the_atoms():
    p = dense_program()
    x = np.random.default_rng(1).normal(size=(200, 4)) * 2
    atoms, _, classes = evaluate(p, x)
    truth = {"Class Layer": (classes[:, None] == np.arange(3)[None, :])}
    cards = rule_cards(p, fired={k: v for k, v in atoms.items() if k}, truth=truth, blocks=("Class Layer",))
    c0 = cards[0]
    assert c0.coverage == float(np.mean(atoms["Class Layer"][:, 0]))
    assert c0.agreement == float(np.mean(atoms["Class Layer"][:, 0] == (classes == 0)))
    assert "agrees with the network on" in card_text(c0)


def test_hostile_names_are_escaped_in_html_cards():
    p = Program("x", InputTests("<script>alert(1)</script>", (2,), False, ((0, 0.5),)),
                (RuleBlock("b&'\"", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0),)),)),))
    html = card_html(rule_cards(p)[0])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_pixel_maps_on_the_input_grid():
    # a dense rule over a flattened 1x3x3 image: positions 0 (must hold) and 8 (must not)
    p = Program("img", InputTests("image", (1, 3, 3), False, ((0, 0.5), (8, 0.25))),
                (RuleBlock("out", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0), AtomLiteral(8, False))),)),))
    m = pixel_map(p, p.output, 0)
    assert m.shape == (1, 3, 3)
    assert m[0, 0, 0] == 0.5 and m[0, 2, 2] == -0.25 and np.isnan(m[0, 1, 1])
    # a conv rule: the kernel pattern over its offsets
    c = conv_program()
    k = pixel_map(c, c.block("c1"), 0)
    assert k.shape == (1, 2, 2) and k[0, 0, 0] > 0 and k[0, 1, 1] < 0
    svg = pixel_map_figure([("class 0", m), ("c1 channel 0", k)])
    assert svg.startswith("<svg") and "class 0" in svg
    # not an image: no map
    assert pixel_map(dense_program(), dense_program().blocks[0], 0) is None
