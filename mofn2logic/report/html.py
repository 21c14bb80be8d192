"""The run's report: OUTDIR/report.html (self-contained, offline: inline SVG, no scripts) and
OUTDIR/report.md (for terminals and diffs), with the figures also saved under OUTDIR/figures/.

A layer's name comes from the ONNX file and can be anything: figures show it as plain text
(never mathtext or TeX, control characters escaped, shortened), file names use `file_stem`, and
matplotlib's own warnings and log lines stay inside this module."""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mofn2logic.files import file_stem, write_text_atomic
from mofn2logic.ir.rules import RuleSet
from mofn2logic.report.cards import CARD_CSS, RuleCard, card_html, card_markdown
from mofn2logic.report.front import CutFront, front_rows
from mofn2logic.run_summary import RunSummary

PROLOG_LINES = 60  # of the softmax program's Prolog shown in the report

CSS = """
body { font: 14px/1.45 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; } .figs > div { flex: 1 1 460px; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: 12px; max-height: 24em; }
.graph { overflow-x: auto; border: 1px solid #eee; } .graph svg { max-width: 100%; height: auto; }
.note { color: #555; }
"""


# Figure settings fixed here, whatever the user's matplotlibrc says (usetex would need LaTeX).
RC: dict[Any, Any] = {"svg.hashsalt": "mofn2logic", "svg.fonttype": "none", "text.usetex": False, "font.family": "sans-serif",
      "axes.formatter.use_mathtext": False}
# Characters of a layer name shown in a figure title (the tables show it whole).
TITLE_CHARS = 60
# Text properties of every string a figure shows: plain text, never mathtext ('$x$') or TeX.
PLAIN = {"parse_math": False, "usetex": False}


def plain(name: str) -> str:
    """`name` with control characters (newlines, NUL) escaped, as text that is one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def _title_name(name: str) -> str:
    text = plain(name)
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"


@contextlib.contextmanager
def _quiet_matplotlib() -> Iterator[None]:
    """matplotlib's warnings ("Glyph ... missing from font") and log lines (findfont) stay here."""
    import matplotlib

    log = logging.getLogger("matplotlib")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), matplotlib.rc_context(RC):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _figure():
    """A figure of its own (no pyplot: no global state, no backend to choose)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 3.4))
    return fig, fig.subplots()


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def pixel_map_figure(maps: list[tuple[str, Any]], columns: int = 5) -> str:
    """Small multiples of pixel maps (`cards.pixel_map`): green must hold, red must not, blank untested."""
    import math

    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    with _quiet_matplotlib():
        rows = max(1, math.ceil(len(maps) / columns))
        fig = Figure(figsize=(1.6 * columns, 1.8 * rows))
        axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
        for ax in axes:
            ax.axis("off")
        for ax, (title, m) in zip(axes, maps):
            tested = ~np.isnan(m).all(axis=0)
            must = np.where(np.isnan(m), 0.0, np.sign(m)).sum(axis=0)  # channels summed: + must hold, - must not
            ax.imshow(np.where(tested, (must > 0).astype(float), np.nan), cmap=ListedColormap(["#b03030", "#2b7a3b"]),
                      vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(_title_name(title), fontsize=8, **PLAIN)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
        return _svg(fig)


def tradeoff_figure(layer: str, rows_chain: list[dict], rows_paper: list[dict]) -> str:
    with _quiet_matplotlib():
        fig, ax = _figure()
        for rows, label, style in ((rows_chain, "chain mode", "o-"), (rows_paper, "paper mode", "s--")):
            pts = [(r["mean_complexity"], r["mean_error"], r["beta"]) for r in rows if r["layer"] == layer]
            if not pts:
                continue
            cx, err, betas = zip(*pts)
            ax.plot(cx, err, style, label=label, markersize=4)
            for c, e, b in zip(cx, err, betas):
                ax.annotate(f"β={b:g}", (c, e), fontsize=6, xytext=(3, 3), textcoords="offset points", **PLAIN)
        ax.set_xlabel("mean complexity", **PLAIN)
        ax.set_ylabel("mean error", **PLAIN)
        ax.set_title(f"{_title_name(layer)}: error / complexity trade-off", fontsize=9, **PLAIN)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return _svg(fig)


def front_figure(fronts: Sequence[CutFront]) -> str:
    """One plot of every cut's size/fidelity front: the programs (solid, one point per beta; a star for
    the replica fitted on its own atoms; squares, dotted, with a decision list as the class block) and the
    decision trees (dashed), one colour per cut, tests on a log axis (points of 0 tests, the constant
    answer, are in the table only)."""
    import matplotlib

    with _quiet_matplotlib():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.2))
        ax: Any = fig.subplots()
        colors = matplotlib.colormaps["tab10"]
        for k, f in enumerate(fronts):
            color = colors(k % 10)
            name = _title_name(f.cut)
            by: dict[str, list[tuple[int, float]]] = {}
            for p in f.programs:
                if p.tests > 0:
                    by.setdefault(p.series, []).append((p.tests, p.fidelity))
            trees = sorted({(t.tests, t.fidelity) for t in f.trees if t.tests > 0})
            for pts, style, size, what in ((by.get("program"), "o-", 4, "program"),
                                           (by.get("program fitted on its atoms"), "*", 10, "program fitted on its atoms"),
                                           (by.get("decision list"), "s:", 4, "program with a decision list"),
                                           (trees, "x--", 5, "decision tree")):
                if pts:
                    ax.plot(*zip(*pts), style, color=color, markersize=size, label=f"{name}: {what}")
        ax.set_xscale("log")
        ax.set_xlabel("tests (program: literals; tree: internal nodes)", **PLAIN)
        ax.set_ylabel("held-out class fidelity to the network", **PLAIN)
        ax.set_title("Size against fidelity, per cut: programs and decision trees", fontsize=9, **PLAIN)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        return _svg(fig)


def scatter_figure(rs: RuleSet, layer: str) -> str:
    import matplotlib

    la = rs.layer(layer)
    with _quiet_matplotlib():
        fig, ax = _figure()
        cmap = matplotlib.colormaps["viridis"]
        for k, b in enumerate(rs.betas):
            rules = [u.rule(b) for u in la.units]
            ax.scatter([r.complexity for r in rules], [r.error for r in rules], s=12, alpha=0.75,
                       color=cmap(k / max(1, len(rs.betas) - 1)), label=f"β={b:g}")
        ax.set_xlabel("complexity of the unit's rule", **PLAIN)
        ax.set_ylabel("error of the unit's rule", **PLAIN)
        ax.set_title(f"{_title_name(layer)}: one point per unit and beta (chain mode)", fontsize=9, **PLAIN)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        return _svg(fig)


def layer_table(rs: RuleSet, rows: list[dict]) -> list[list[str]]:
    head = ["layer", "units", "β", "mean error", "mean complexity", "mean N", "units with error ≤ 1%"]
    table = [head]
    for r in rows:
        table.append([r["layer"], str(r["units"]), f"{r['beta']:g}", f"{r['mean_error']:.4f}",
                      f"{r['mean_complexity']:.4f}", f"{r['mean_n']:.2f}", f"{r['share_error_le_1pct']:.0%}"])
    return table


def _html_table(rows: list[list[str]]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(plain(c))}</th>" for c in rows[0]) + "</tr>"]
    for r in rows[1:]:
        out.append("<tr>" + "".join(f'<td class="n">{html.escape(c)}</td>' if _numeric(c)
                                    else f"<td>{html.escape(plain(c))}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _md_table(rows: list[list[str]]) -> str:
    esc = [[plain(c).replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(esc[0])]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def _numeric(c: str) -> bool:
    try:
        float(c.rstrip("%"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ReportTexts:
    """What the report shows of the softmax program, as the pipeline made it (never read back):
    its .mofn text, its Prolog text, and its rule graph as SVG (None without Graphviz)."""

    mofn: str
    prolog: str
    svg: str | None
    cards: tuple[RuleCard, ...] = ()  # the softmax program's class rules, with held-out agreement and coverage
    pixel_maps: str | None = None  # SVG: the replica's first-layer rules on the input grid (image inputs)
    input_cards: tuple[RuleCard, ...] = ()  # the replica's rules, when its inputs are named (tabular data)


INPUT_CARDS = "Rule cards of the replica, from the named inputs"


def _input_cards_html(cards: tuple[RuleCard, ...]) -> str:
    """The replica's rules in the names of the inputs and classes (a tabular model's features)."""
    if not cards:
        return ""
    return (f"<h2>{INPUT_CARDS}</h2>\n<p class='note'>The program from the network's inputs: every rule in the "
            "features' and classes' names, the class rules first.</p>\n"
            f"<div class='cards'>{''.join(card_html(c) for c in cards)}</div>")


def write_report(outdir: str | Path, summary: RunSummary, chain: RuleSet, paper: RuleSet | None,
                 texts: ReportTexts) -> None:
    """OUTDIR/report.html, OUTDIR/report.md and OUTDIR/figures/*.svg."""
    out = Path(outdir)
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    rows_chain = list(summary.tradeoff_chain)
    rows_paper = list(summary.tradeoff_paper)
    sections_html, sections_md = [], []
    for la in chain.layers:
        t = tradeoff_figure(la.name, rows_chain, rows_paper)
        s = scatter_figure(chain, la.name)
        safe = file_stem(la.name)
        write_text_atomic(figs / f"tradeoff_{safe}.svg", t)
        write_text_atomic(figs / f"units_{safe}.svg", s)
        table = layer_table(chain, [r for r in rows_chain if r["layer"] == la.name])
        sections_html.append(
            f"<h3>{html.escape(plain(la.name))} <span class='note'>({la.kind}, {len(la.units)} units, fan-in {la.fan_in}, "
            f"{la.n_examples} examples)</span></h3>\n<div class='figs'><div>{t}</div><div>{s}</div></div>\n"
            + _html_table(table))
        sections_md.append(f"### {plain(la.name)} ({la.kind}, {len(la.units)} units, fan-in {la.fan_in})\n\n"
                           f"![trade-off](figures/tradeoff_{safe}.svg) ![units](figures/units_{safe}.svg)\n\n"
                           + _md_table(table))
    cut_rows = [["cut layer", "held-out fidelity", "accuracy", "rules", "literals", "input tests",
                 "fitted on the network: fidelity", "literals", "fitted on the program: fidelity", "literals"]]
    for c in summary.cuts:
        both = [v for f in c.fitted().values() for v in ((f"{f['fidelity']:.4f}", str(f["literals"])) if f else ("", ""))]
        cut_rows.append([c.cut, f"{c.fidelity:.4f}", "" if c.accuracy is None else f"{c.accuracy:.4f}",
                         str(c.rules), str(c.literals), str(c.input_tests), *both])
    front_section_html = front_section_md = ""
    if summary.fronts:
        fsvg = front_figure(summary.fronts)
        write_text_atomic(figs / "front.svg", fsvg)
        ftable = [front_rows(summary.fronts[0])[0]] + [r for f in summary.fronts for r in front_rows(f)[1:]]
        front_section_html = (
            "<h2>Size and fidelity: the program beside a decision tree</h2>\n<p class='note'>Per cut, each program "
            "(the rules of each β, compiled at the cut: constant literals folded, rules no class depends on pruned) "
            "by its number of literals, and a scikit-learn decision tree fitted on the same cut inputs (the "
            "activations feeding the cut layer) and labels (the network's class) on the fitting samples, with as "
            "many tests (internal nodes) as the program has literals, or all it grows; fidelity on the held-out "
            "samples.</p>\n"
            f"<div class='graph'>{fsvg}</div>\n" + _html_table(ftable))
        front_section_md = "\n".join(["## Size and fidelity: the program beside a decision tree", "",
                                      "![front](figures/front.svg)", "", _md_table(ftable), ""])
    check_rows = [["program", "cut", "engine", "fidelity", "seconds", "engines agree"]]
    for chk in summary.checks:
        for eng in chk.report.engines:
            check_rows.append([chk.label, chk.cut, eng.name, f"{eng.fidelity:.4f}", f"{eng.seconds:.2f}",
                               "yes" if chk.report.engines_agree else "NO"])
    graph = texts.svg if texts.svg else "<p>(Graphviz not installed: no graph)</p>"
    graph = graph[graph.find("<svg"):] if "<svg" in graph else graph
    mofn = texts.mofn
    prolog_head = "\n".join(texts.prolog.splitlines()[:PROLOG_LINES])
    acc = summary.network_accuracy_held_out
    model = plain(summary.model)
    intro = (f"Model <b>{html.escape(model)}</b>: {summary.n_samples} samples, rules fitted on "
             f"{summary.n_fit}, checked on {summary.n_held_out} held out"
             + (f" (network accuracy there {acc:.4f})" if acc is not None else "")
             + f". Programs use β = {summary.beta:g}.")
    timings = json.dumps({k: round(v, 3) for k, v in summary.timings.items()})
    pixel_section = ""
    if texts.pixel_maps:
        write_text_atomic(figs / "pixel_maps.svg", texts.pixel_maps)
        pixel_section = ("<h2>The first layer's rules on the input grid</h2>\n<p class='note'>Each rule of the "
                         "replica's first layer drawn where it tests the input (a convolution: its kernel pattern): "
                         "green must hold, red must not, blank untested.</p>\n"
                         f"<div class='graph'>{texts.pixel_maps}</div>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mofn2logic report: {html.escape(model)}</title>
<style>{CSS}{CARD_CSS}</style></head><body>
<h1>mofn2logic report: {html.escape(model)}</h1>
<p>{intro}</p>
<h2>Which layers are explainable?</h2>
<p class="note">Per layer, the mean error and mean complexity of the units' best M-of-N rules for each β
(the paper's trade-off curve), and each unit's rule. Error is the rule's disagreement with the unit's
thresholded activation (for the output layer: with the network's one-hot argmax).</p>
{''.join(sections_html)}
<h2>Cut table</h2>
<p class="note">A program cut at a layer runs the network up to that layer's input, then only rules:
end-to-end class fidelity to the network on held-out data. The replica from a cut is fitted two ways: each
layer's rules on the network's activations of the layer below, or on the atoms the program itself computes
for it (so each layer corrects the errors under it); the output layer alone is the same either way.</p>
{_html_table(cut_rows)}
{front_section_html}
<h2>Engines</h2>
{_html_table(check_rows)}
<h2>Rule cards of the softmax layer</h2>
<p class="note">Each class's rule as a checklist, literals in the search's order (strongest weights first);
agreement is with the network's one-hot argmax and coverage the share of held-out samples where the rule fires.</p>
<div class="cards">{''.join(card_html(c) for c in texts.cards)}</div>
<h2>Rule graph of the softmax layer</h2>
<p class="note">One star per class: green literals must hold, red dashed ones must not; hover a node for the full test.</p>
<div class="graph">{graph}</div>
{pixel_section}
{_input_cards_html(texts.input_cards)}
<h2>Example rules</h2>
<h3>In the .mofn language</h3>
<pre>{html.escape(mofn[:6000])}</pre>
<h3>In Prolog (the first {PROLOG_LINES} lines of softmax.pl)</h3>
<pre>{html.escape(prolog_head)}</pre>
<p class="note">Timings (s): {html.escape(timings)}</p>
</body></html>
"""
    write_text_atomic(out / "report.html", page)
    md = [f"# mofn2logic report: {model}", "",
          intro.replace("<b>", "**").replace("</b>", "**"), "", "## Layers", "", "\n\n".join(sections_md), "",
          "## Cut table", "", _md_table(cut_rows), "", front_section_md, "## Engines", "", _md_table(check_rows), "",
          "## Rule cards of the softmax layer", "", "\n".join(card_markdown(c) for c in texts.cards), "",
          "## Rule graph of the softmax layer", "", "![softmax rule graph](softmax.svg)", "",
          *(["## The first layer's rules on the input grid", "", "![pixel maps](figures/pixel_maps.svg)", ""]
            if texts.pixel_maps else []),
          *([f"## {INPUT_CARDS}", "", "\n".join(card_markdown(c) for c in texts.input_cards), ""]
            if texts.input_cards else []),
          "## Example rules (.mofn)", "", "```", mofn[:3000].rstrip(), "```", ""]
    write_text_atomic(out / "report.md", "\n".join(md))
