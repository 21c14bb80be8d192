"""Rule cards: one rule read at a glance, like a clinical checklist ("at least 3 of these 5").

A card lists a rule's literals in the rule's own order (the search's: strongest weights first),
each as a test in words with its polarity, thresholds in the shortest form that reads back in the
tensor's dtype, and -- when the program has been run -- how often the rule agrees with the
network and how often it fires. Printed for the terminal (`mofn2logic show`), Markdown and
HTML (no scripts). `pixel_map` draws the first layer's rules on the input grid. A decision list
gives one card per rule in its order ("2. else class 7 if at least 2 of these 3 hold"), then one for
its default ("otherwise class 0: always"); these carry no agreement or coverage.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from mofn2logic.exporters.wording import AtomNames, shortest
from mofn2logic.ir.program import DecisionListBlock, Program, RuleBlock


@dataclass(frozen=True, slots=True)
class CardLiteral:
    text: str  # the atom's test, e.g. "relu_2[21] >= 9.3975"
    positive: bool  # must hold (True) or must not hold (False)


@dataclass(frozen=True, slots=True)
class RuleCard:
    block: str
    unit: int
    is_class: bool
    head: str  # "class 3" or "fc1 unit 21 (>= 2.62)"
    m: int
    literals: tuple[CardLiteral, ...]
    agreement: float | None = None  # share of samples where the rule equals its unit's test (the class: argmax)
    coverage: float | None = None  # share of samples where the rule fires

    @property
    def n(self) -> int:
        return len(self.literals)

    @property
    def sentence(self) -> str:
        if self.m == 0:
            return f"{self.head}: always"
        if self.m > self.n:
            return f"{self.head}: never"
        return f"{self.head} if at least {self.m} of these {self.n} hold"


def rule_cards(program: Program, *, fired: dict[str, np.ndarray] | None = None,
               truth: dict[str, np.ndarray] | None = None, blocks: tuple[str, ...] | None = None) -> list[RuleCard]:
    """Cards for every rule of the chosen blocks (default: every rule block, output first).

    `fired` (block -> (E, units) bool, the program's atoms) and `truth` (block -> (E, units) bool,
    what the network says) add agreement and coverage."""
    names = AtomNames(program)  # the rule graph's wording of atoms
    cards = []
    for b in reversed(program.atom_blocks()):
        if blocks is not None and b.name not in blocks:
            continue
        if isinstance(b, DecisionListBlock):
            cards += _list_cards(names, b)
            continue
        is_class = b is program.output
        for r in b.rules:
            head = names.head(b, r.unit)
            if r.threshold is not None:
                head += f" (>= {shortest(r.threshold)})"
            lits = tuple(CardLiteral(names.literal(b, li)[0], li.positive) for li in r.lits)
            agreement = coverage = None
            if fired is not None and b.name in fired:
                f = _unit_column(fired[b.name], b, r.unit)
                coverage = float(np.mean(f))
                if truth is not None and b.name in truth:
                    agreement = float(np.mean(f == _unit_column(truth[b.name], b, r.unit)))
            cards.append(RuleCard(b.name, r.unit, is_class, head, r.m, lits, agreement, coverage))
    return cards


def _list_cards(names: AtomNames, b: DecisionListBlock) -> list[RuleCard]:
    cards = []
    for k, r in enumerate(b.rules, 1):
        head = f"{k}. {'else ' if k > 1 else ''}{names.head(b, r.unit)}"
        lits = tuple(CardLiteral(names.literal(b, li)[0], li.positive) for li in r.lits)
        cards.append(RuleCard(b.name, r.unit, True, head, r.m, lits))
    cards.append(RuleCard(b.name, b.default, True, f"otherwise {names.head(b, b.default)}", 0, ()))
    return cards


def _unit_column(a: np.ndarray, b: RuleBlock, unit: int) -> np.ndarray:
    """A unit's truth per example: a dense unit's column, or a conv channel over every position."""
    a = np.asarray(a).reshape(len(a), *b.shape)
    return a[:, unit].reshape(-1) if b.kind == "dense" else a[:, unit].reshape(len(a), -1).reshape(-1)


def _stats(card: RuleCard) -> str:
    parts = []
    if card.agreement is not None:
        parts.append(f"agrees with the network on {card.agreement:.1%}")
    if card.coverage is not None:
        parts.append(f"fires on {card.coverage:.1%}")
    return "; ".join(parts)


def card_text(card: RuleCard) -> str:
    """The card for a terminal: one line per literal, + for must hold, - for must not."""
    lines = [card.sentence + (f"   ({_stats(card)})" if _stats(card) else "")]
    lines += [f"  {'+' if li.positive else '-'} {'' if li.positive else 'NOT '}{li.text}" for li in card.literals]
    return "\n".join(lines)


def card_markdown(card: RuleCard) -> str:
    lines = [f"**{card.sentence}**" + (f" — {_stats(card)}" if _stats(card) else ""), ""]
    lines += [f"- {'✔' if li.positive else '✘ not'} `{li.text}`" for li in card.literals]
    return "\n".join(lines) + "\n"


def card_html(card: RuleCard) -> str:
    """A self-contained card (inline styles only: the report has no scripts)."""
    items = "".join(
        f"<li class='{'pos' if li.positive else 'neg'}'><span class='mark'>{'✔' if li.positive else '✘'}</span> "
        f"{'' if li.positive else '<b>not</b> '}<code>{html.escape(li.text)}</code></li>"
        for li in card.literals)
    stats = f"<div class='stats'>{html.escape(_stats(card))}</div>" if _stats(card) else ""
    return (f"<div class='card'><div class='head'>{html.escape(card.sentence)}</div>{stats}"
            f"<ol>{items}</ol></div>")


CARD_CSS = """
.cards { display: flex; flex-wrap: wrap; gap: .8em; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: .5em .8em; flex: 1 1 300px; max-width: 420px;
        background: #fcfcff; }
.card .head { font-weight: 600; } .card .stats { color: #555; font-size: 12px; }
.card ol { margin: .3em 0 0; padding-left: 1.4em; font-size: 12px; } .card li { overflow-wrap: anywhere; }
.card li.pos .mark { color: #2b7a3b; } .card li.neg .mark { color: #b03030; }
.card code { font-size: 11px; }
"""


def image_grid(program: Program) -> tuple[int, int, int] | None:
    """(channels, height, width) when the program's input is image-shaped, else None."""
    shape = tuple(int(d) for d in program.input.shape)
    if len(shape) == 3 and shape[1] > 1 and shape[2] > 1:
        return (shape[0], shape[1], shape[2])
    if len(shape) == 2 and shape[0] > 1 and shape[1] > 1:
        return (1, shape[0], shape[1])
    return None


def pixel_map(program: Program, block: RuleBlock, unit: int) -> np.ndarray | None:
    """The first-layer rule of `unit` on the input grid: (channels, height, width) with +t where a
    position must be >= t, -t where it must not, NaN where untested; for a convolution the kernel
    pattern (offsets relative to the output position). None when the input is not an image or the
    block does not read the program's input directly."""
    grid = image_grid(program)
    if grid is None or block.source != "":
        return None
    rule = next((r for r in block.rules if r.unit == unit), None)
    if rule is None:
        return None
    tests = dict(program.input.tests)
    if block.kind == "conv":
        offs = [li.offset for li in rule.lits if li.offset is not None]
        if not offs:
            return None
        y0, x0 = min(o[0] for o in offs), min(o[1] for o in offs)
        h, w = max(o[0] for o in offs) - y0 + 1, max(o[1] for o in offs) - x0 + 1
        out = np.full((grid[0], h, w), np.nan)
        for li in rule.lits:
            assert li.offset is not None
            t = tests.get(li.src, 0.0)
            out[li.src, li.offset[0] - y0, li.offset[1] - x0] = (1 if li.positive else -1) * (abs(t) or 1e-9)
        return out
    out = np.full(grid, np.nan)
    flat = out.reshape(-1)
    for li in rule.lits:
        key = li.src // (grid[1] * grid[2]) if program.input.per_channel else li.src
        t = tests.get(key, 0.0)
        flat[li.src] = (1 if li.positive else -1) * (abs(t) or 1e-9)
    return out
