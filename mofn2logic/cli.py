"""The `mofn2logic` command line: it parses and prints; the work is `mofn2logic.api`'s.
Choices and defaults come from the library's tables.

User errors, the parser's included: one line on stderr, `mofn2logic COMMAND: error: ...`, exit
status 2, no traceback and no partial output. SIGINT and SIGTERM: `mofn2logic: interrupted`,
exit status 130 or 143, temporary files removed. Library warnings stay off stderr."""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import json
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mofn2logic import api
from mofn2logic import distributed as cluster
from mofn2logic.errors import Mofn2LogicError, UnsupportedModelError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


def _defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """A library function's keyword defaults: the CLI's defaults are the library's."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


# --------------------------------------------------------------------------- commands

@command
def cmd_inspect(args: argparse.Namespace) -> int:
    from mofn2logic.onnx.importer import layer_status, layer_table

    model = _load(args)
    net = model.network
    if args.json:
        print(json.dumps({"layers": layer_table(net), "graph_layers": layer_status(model.proto, output=net.output),
                          **({"head": {"input": net.head.input, "nodes": net.head.nodes, "reason": net.head.reason}}
                             if net.head else {})}, indent=2))
        return 0
    print(f"model {args.model}  (input {net.input!r} {_shape(net.input_shape)} {net.dtype}, "
          f"output {net.output!r}, opset {net.opset}{', producer ' + net.producer if net.producer else ''})")
    rows = [("#", "name", "kind", "input shape", "units", "fan-in", "activation", "input -> output")]
    for i, layer in enumerate(net.layers):
        rows.append((str(i), layer.name, layer.kind, _shape(layer.input_shape), str(layer.units), str(layer.fan_in),
                     layer.activation, f"{layer.input} -> {layer.output}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    steps = [s for s in net.sequence if not hasattr(s, "weight")]
    if steps:
        print("steps between layers: " + ", ".join(f"{s.op} ({s.input} -> {s.output})" for s in steps))
    if net.head:
        print(f"explained from {net.input!r}: the {net.head.nodes} nodes before it (from input {net.head.input!r} "
              f"{_shape(net.head.input_shape)}) run in onnxruntime only; {net.head.reason}")
        print("every layer of the graph (--from LAYER starts the explained part at an explainable one):")
        for row in layer_status(model.proto, output=net.output):
            print(f"  {row['name']} ({row['op']}): {row['status']}")
    return 0


def _load(args: argparse.Namespace) -> Any:
    """The model with the explained part's start (--from) and output (--graph-output)."""
    from mofn2logic.inputs import load_model

    return load_model(args.model, start=args.start, output=args.graph_output)


def _named(args: argparse.Namespace) -> Any:
    """`_load` with the names of inputs (--feature-names, or a CSV header), classes and units."""
    from mofn2logic.inputs import with_names

    return with_names(_load(args), args.data, feature_names=args.feature_names, class_names=args.class_names,
                      names=args.names)


def _plain_model_only(args: argparse.Namespace) -> None:
    """The Dask path loads the model on every worker from its file, with the default cut, output and
    names: options that change those are refused rather than silently dropped."""
    flags = {"--from": "start", "--graph-output": "graph_output", "--feature-names": "feature_names",
             "--class-names": "class_names", "--names": "names"}
    given = [flag for flag, attr in flags.items() if getattr(args, attr, None) is not None]
    if given:
        raise UnsupportedModelError(f"--scheduler/--workers take the model as its file says; got {', '.join(given)}; "
                                    "expected none of them (run without Dask to use them)")


def _shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


@command
def cmd_harvest(args: argparse.Namespace) -> int:
    from mofn2logic.files import check_output_path
    from mofn2logic.onnx.harvest import save_npz

    if cluster.wanted(args):  # a sharded store in the folder -o, written by the workers
        from mofn2logic.distributed import run as on_cluster

        _plain_model_only(args)
        store = on_cluster.harvest(args.model, args.data, args.output, key=args.key, scheduler=args.scheduler,
                                   workers=args.workers, shards=args.shards, batch_size=args.batch_size,
                                   providers=args.providers)
        print(f"harvested {store.n_samples} samples into {len(store.shards)} shards -> {args.output}")
        return 0
    check_output_path(args.output, inputs=(args.model, args.data))
    if args.store is not None:
        _check_store(args.store)
    model = _load(args)
    acts = api.activations(model, args.data, key=args.key, store_dir=args.store, **_harvest_options(args))
    save_npz(acts, model.network, args.output)
    print(f"harvested {acts.n_samples} samples, {len(acts)} tensors on {acts.providers[0]} -> {args.output}")
    return 0


def _check_store(path: str) -> None:
    """The activation store is a folder (made when needed): nothing else may be in the way."""
    import os
    from pathlib import Path

    from mofn2logic.errors import InputFileError
    from mofn2logic.files import shown

    p = Path(path)
    blocker = next((q for q in (p, *p.parents) if os.path.lexists(q)), None)
    if blocker is not None and not os.path.isdir(blocker):
        raise InputFileError(f"cannot use {shown(p)} as the activation store: {shown(blocker)} is a file; "
                             "expected a folder")


@command
def cmd_extract(args: argparse.Namespace) -> int:
    from mofn2logic.files import check_output_path
    from mofn2logic.search.rules_file import write_rules

    check_output_path(args.output, inputs=(args.model, args.data))
    if cluster.wanted(args):  # a Dask cluster: the same rules (mofn2logic.distributed)
        from mofn2logic.distributed import run as on_cluster

        _plain_model_only(args)
        run: Callable[..., Any] = functools.partial(on_cluster.extract, scheduler=args.scheduler, workers=args.workers,
                                shards=args.shards, store=args.store)
        model: Any = args.model
    else:
        run, model = api.extract, _named(args)
    rs = run(
        model, args.data, key=args.key, layers=args.layers, mode=args.mode, order=args.order,
        betas=args.beta, device=args.device, small_n=args.small_n, pool_size=args.pool,
        conv_examples=args.conv_examples, conv_position=args.conv_position, seed=args.seed, cuts=args.cuts,
        exact_pool=args.exact_pool, validation=args.validation, improve_steps=args.improve_steps, fit_on=args.fit_on,
        log=print, **_harvest_options(args),
    )
    write_rules(rs, args.output)
    print_summary(rs)
    print(f"wrote {args.output}")
    return 0


@command
def cmd_optimality(args: argparse.Namespace) -> int:
    from mofn2logic.search.network import optimality_report

    model = _load(args)
    acts = api.activations(model, args.data, key=args.key, **_harvest_options(args))
    report = optimality_report(model.network, acts, mode=args.mode, betas=args.beta, seed=args.seed,
                               max_inputs=args.max_inputs)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report:
        print(f"no layer has a fan-in <= {args.max_inputs}: the exhaustive search would be too large")
    for name, per_order in report.items():
        print(f"layer {name}: loss of each ordering's rule against the optimum over all literal subsets")
        print(f"  {'order':<7} {'at optimum':>10} {'mean gap':>10} {'max gap':>10}")
        for order, r in per_order.items():
            print(f"  {order:<7} {r['at_optimum']:>10.1%} {r['mean_gap']:>10.5f} {r['max_gap']:>10.5f}")
    return 0


@command
def cmd_compile(args: argparse.Namespace) -> int:
    from mofn2logic.errors import ExportError
    from mofn2logic.exporters import format_for_suffix, write
    from mofn2logic.files import check_output_path

    if args.budget is not None and args.decision_list is None:
        raise ExportError("--budget sizes a decision list; expected it with --decision-list ACTS.npz")
    check_output_path(args.output, inputs=(args.rules, *([args.decision_list] if args.decision_list else [])))
    try:
        fmt = format_for_suffix(args.output)
    except ExportError:
        fmt = None
    budget = _defaults(api.compile)["budget"] if args.budget is None else args.budget
    program = api.compile(args.rules, cut=args.cut, beta=args.beta, decision_list=args.decision_list, budget=budget)
    write(program, args.output, fmt or "mofn")
    sizes = ", ".join(f"{b.name}: {len(b.rules)}" for b in program.atom_blocks())
    listed = (f"; the classes by a decision list of {len(program.output.rules)} rules, "
              f"{sum(r.n for r in program.output.rules)} literals" if program.decision == "first" else "")
    print(f"program from {program.blocks[0].name!r} to the output: {len(program.input.tests)} input tests; "
          f"rules per layer {sizes}{listed} -> {args.output}")
    return 0


@command
def cmd_export(args: argparse.Namespace) -> int:
    from mofn2logic.exporters import get_format, load_program, write
    from mofn2logic.files import check_output_path

    check_output_path(args.output, inputs=(args.program,))
    fmt = get_format(args.to)
    options = _format_options(fmt, args)
    program = load_program(args.program)
    write(program, args.output, fmt, **options)
    print(f"wrote {fmt.name} -> {args.output}")
    return 0


def _format_options(fmt: Any, args: argparse.Namespace) -> dict[str, Any]:
    """--max-units and every --option NAME=VALUE, typed by the format's default for NAME."""
    from mofn2logic.errors import ExportError

    given = [("max_units", str(args.max_units))] if args.max_units is not None else []
    for item in args.option or []:
        name, eq, value = item.partition("=")
        if not eq:
            raise ExportError(f"option {item!r} is not NAME=VALUE")
        given.append((name.strip().replace("-", "_"), value.strip()))
    options = {}
    for name, value in given:
        if name not in fmt.options:
            raise ExportError(f"the {fmt.name} format has no option {name!r}; "
                              f"it takes {', '.join(fmt.options) or 'none'}")
        options[name] = _typed(fmt.name, name, value, fmt.options[name])
    return options


def _typed(fmt: str, name: str, text: str, default: Any) -> Any:
    from mofn2logic.errors import ExportError

    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        return type(default)(text) if default is not None else text
    except ValueError:
        kind = type(default).__name__
        raise ExportError(f"option {name} of the {fmt} format takes {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                          f"(default {default!r}); got {text!r}") from None


@command
def cmd_show(args: argparse.Namespace) -> int:
    from mofn2logic.errors import ProgramError
    from mofn2logic.exporters import load_program
    from mofn2logic.report.cards import card_text, rule_cards

    program = load_program(args.program)
    names = [b.name for b in program.atom_blocks()]
    block = args.block if args.block is not None else program.output.name
    if block not in names:
        raise ProgramError(f"the program has no rule block {block!r}; it has {', '.join(map(repr, names))}")
    cards = [c for c in rule_cards(program, blocks=(block,)) if args.unit is None or c.unit == args.unit]
    if not cards:
        units = [r.unit for r in program.block(block).rules]
        raise ProgramError(f"block {block!r} has no rule for unit {args.unit}; it has rules for units {units}")
    print("\n\n".join(card_text(c) for c in cards))
    return 0


@command
def cmd_verify(args: argparse.Namespace) -> int:
    from mofn2logic.engines import ENGINE_NAMES

    engines = list(ENGINE_NAMES) if args.engine == "all" else [args.engine]
    report = api.verify(args.program, _load(args), args.data, key=args.key, labels=args.labels,
                        labels_key=args.labels_key, engines=engines, **_harvest_options(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"{report.n_samples} samples; class fidelity to the network {report.fidelity:.4f}"
          + (f"; accuracy {report.accuracy:.4f} (network {report.network_accuracy:.4f})"
             if report.accuracy is not None and report.network_accuracy is not None else ""))
    for e in report.engines:
        print(f"  engine {e.name:<7} fidelity {e.fidelity:.4f}  ({e.seconds:.2f} s)")
    if len(engines) > 1:
        print(f"  engines agree on every class and atom: {'yes' if report.engines_agree else 'NO'}")
    for la in report.layers:
        if la.agreement is not None:
            print(f"  layer {la.name}: {la.units} rules, unit agreement {la.agreement:.4f} "
                  f"(worst unit {la.min_agreement:.4f})")
    return 0


@command
def cmd_run(args: argparse.Namespace) -> int:
    summary = api.run(_named(args), args.data, args.output, key=args.key, labels=args.labels,
                      labels_key=args.labels_key, holdout=args.holdout, seed=args.seed, order=args.order,
                      betas=args.beta, beta=args.program_beta, device=args.device,
                      paper_mode=not args.no_paper, fit_on=args.fit_on, log=print, **_harvest_options(args))
    _print_run_summary(summary, args.output)
    return 0


@command
def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default model and its bundled digits (--tabular: the breast cancer MLP)."""
    from mofn2logic.resources import default_model_path

    if args.tabular:
        return _demo_tabular(args.output or "demo-tabular-out")
    args.output = args.output or "demo-out"
    model = default_model_path()
    print(f"== embedded default model: {model.name} (digits 8x8; rules fitted on the training split, "
          "checked on the 360 held-out digits)")
    cmd_inspect(argparse.Namespace(model=model, json=False, start=None, graph_output=None))
    summary = api.demo(args.output, log=print)
    _print_run_summary(summary, args.output)
    return 0


def _demo_tabular(outdir: str) -> int:
    from mofn2logic import tabular_demo

    print(f"== tabular example: a scikit-learn MLP {tabular_demo.HIDDEN} on breast cancer (569 samples, 30 named "
          f"features), exported with skl2onnx; rules fitted on {1 - tabular_demo.HOLDOUT:.0%} of the samples (the MLP's "
          f"training split), checked on the rest; program beta {tabular_demo.BETA:g}")
    summary, made = tabular_demo.run_tabular(outdir, log=print)
    print(f"== the MLP's held-out accuracy: {made.accuracy_held_out:.4f}")
    _print_run_summary(summary, outdir)
    for line in tabular_demo.rule_lines(outdir, summary) + tabular_demo.tree_lines(summary):
        print(line)
    return 0


def _print_run_summary(summary: api.RunSummary, outdir: str) -> None:
    print("== cut table (held-out): cut layer -> end-to-end class fidelity, literals; the replica fitted on the "
          "network's activations and on the program's atoms")
    for c in summary.cuts:
        fitted = c.fitted()
        both = "   ".join(f"on the {way}: " + (f"{f['fidelity']:.4f} ({f['literals']})" if f else "--")
                           for way, f in fitted.items())
        print(f"   {c.cut:<20} fidelity {c.fidelity:.4f}   literals {c.literals:6d}   fitted {both}")
    for chk in summary.checks:
        rep = chk.report
        print(f"== {chk.label} program verified: fidelity {rep.fidelity:.4f} with engines "
              f"{', '.join(e.name for e in rep.engines)} ({'agree' if rep.engines_agree else 'DISAGREE'})")
    print(f"== outputs in {outdir}/: report.html, report.md, rules.json, program_*.mofn, softmax.pl, softmax.svg, "
          f"replica.pl, summary.json ({summary.timings['total']:.1f} s)")


def print_summary(rs, file=None) -> None:
    from mofn2logic.search.network import summarize

    rows = summarize(rs)
    for la in rs.layers:
        print(f"layer {la.name} ({la.kind}, {len(la.units)} units, fan-in {la.fan_in}, {la.n_examples} examples, "
              f"{la.mode} mode, order {la.order})", file=file)
        print(f"  {'beta':>8}  {'mean error':>10}  {'mean complexity':>15}  {'mean N':>7}  {'error<=1%':>9}", file=file)
        for r in rows:
            if r["layer"] == la.name:
                print(f"  {r['beta']:>8g}  {r['mean_error']:>10.4f}  {r['mean_complexity']:>15.4f}  "
                      f"{r['mean_n']:>7.2f}  {r['share_error_le_1pct']:>9.0%}", file=file)


def _harvest_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch_size": args.batch_size, "providers": args.providers, "memory_budget": args.memory_budget}


# --------------------------------------------------------------------------- option values
# Each turns one option's text into its value, or says what it expected and what it got (an
# OptionError, one line and exit status 2 like every user error). argparse checks the syntax
# (flags, choices, arity); these check the values, after parsing. Bounds keep the work finite.


class OptionError(Mofn2LogicError, ValueError):
    """An option's value is out of range or malformed."""

MAX_BETAS = 64
MAX_BATCH = 1 << 16
MAX_SEED = 2**63 - 1


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text!r}")
    return value


def _budget(text: str) -> int:
    from mofn2logic.inputs import memory_budget

    try:
        return memory_budget(text)
    except Mofn2LogicError:
        raise argparse.ArgumentTypeError(f"expected a positive size such as 512M, 2G or a number of bytes, "
                                         f"got {text!r}") from None


def _beta_list(text: str) -> tuple[float, ...]:
    from mofn2logic.search.network import check_betas

    given: list[Any] = [b.strip() for b in text.split(",")]  # check_betas names a bad one as given
    try:
        betas = check_betas(given)
    except Mofn2LogicError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(betas) > MAX_BETAS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_BETAS} betas, got {len(betas)}")
    twice = sorted({f"{b:g}" for b in betas if betas.count(b) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"expected distinct betas, got {', '.join(twice)} more than once in {text!r}")
    return betas


def _one_beta(text: str) -> float:
    if "," in text:
        raise argparse.ArgumentTypeError(f"expected one beta, got {text!r}")
    return _beta_list(text)[0]


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated layer names, got {text!r}")
    return names


def _providers(text: str) -> list[str]:
    from mofn2logic.onnx.harvest import select_providers

    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated onnxruntime execution providers, got {text!r}")
    try:
        return select_providers(names)
    except Mofn2LogicError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --------------------------------------------------------------------------- parser

EXAMPLES = {
    "inspect": "example:\n  mofn2logic inspect model.onnx\n  mofn2logic inspect model.onnx --json",
    "extract": "examples:\n  mofn2logic extract model.onnx --data images.npy -o rules.json\n"
               "  mofn2logic extract model.onnx --data d.npz --key images -o rules.json --layers fc2 --mode paper "
               "--order best --beta 0,0.2,1",
    "optimality": "example:\n  mofn2logic optimality model.onnx --data images.npy",
    "compile": "examples:\n"
               "  mofn2logic compile rules.json -o program.mofn                 # the full symbolic replica\n"
               "  mofn2logic compile rules.json --cut fc2 --beta 0.2 -o softmax.mofn  # explain the softmax layer\n"
               "  mofn2logic compile rules.json --cut fc2 --decision-list acts.npz --budget 50 -o list.pl",
    "export": "examples:\n  mofn2logic export program.mofn --to prolog -o program.pl\n"
              "  mofn2logic export program.mofn --to svg -o rules.svg --max-units 12",
    "show": "examples:\n  mofn2logic show softmax.mofn            # a card per class\n"
            "  mofn2logic show replica.pl --block node_linear --unit 21",
    "verify": "examples:\n  mofn2logic verify program.mofn model.onnx --data x.npy --labels y.npy --engine all\n"
              "  mofn2logic verify program.pl model.onnx --data x.npy --engine prolog --json",
    "run": "example:\n  mofn2logic run model.onnx --data x.npy --labels y.npy -o out/   # then open out/report.html",
    "demo": "example:\n  mofn2logic demo -o demo-out    # what `make demo` runs; open demo-out/report.html",
    "harvest": "example:\n  mofn2logic harvest model.onnx --data images.npy -o acts.npz --batch-size 512",
}
DEVICE_HELP = ("search backend: cpu (compiled numba kernels), numpy, cuda or torch (torch on CPU); "
               "auto: cuda if available, else cpu")


def _size(n: int) -> str:
    for unit, scale in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _csv(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def build_parser() -> Parser:
    from mofn2logic import __version__
    from mofn2logic.engines import ENGINE_NAMES
    from mofn2logic.exporters import formats
    from mofn2logic.search import (
        CONV_POSITIONS,
        DEFAULT_BETAS,
        DEVICES,
        FIT_ON,
        MODES,
        ORDERS,
        extract,
        optimality_report,
    )
    from mofn2logic.search.optimality import MAX_INPUTS

    search = _defaults(extract)
    run = _defaults(api.run)
    p = Parser(
        prog="mofn2logic",
        description="Turn a trained ONNX classifier into M-of-N rules and a logic program you can run and check.",
        epilog="Run 'mofn2logic COMMAND --help' for a command's options and an example.",
    )
    p.add_argument("--version", action="version", version=f"mofn2logic {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p.commands[name] = sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES.get(name),
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
        return p.commands[name]

    s = add("inspect", "Print the layer table of an ONNX model.")
    s.add_argument("model", help="ONNX model file")
    _model_args(s)
    s.add_argument("--json", action="store_true", help="print the table as JSON")

    s = add("extract", "Search M-of-N rules for every layer (or the chosen ones) and write rules.json.")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    _name_args(s)
    s.add_argument("-o", "--output", required=True, help="output rules.json")
    s.add_argument("--layers", check=_names, default=None, help="comma-separated layer names (default: all)")
    s.add_argument("--mode", choices=MODES, default=search["mode"],
                   help=f"chain: one threshold per unit, layers compose; paper: per (input, target) splits "
                        f"(default {search['mode']})")
    s.add_argument("--order", choices=ORDERS, default=search["order"],
                   help="literal ordering: weight (the paper's), std, gain; exact (the paper's prefixes, an exact "
                        "search of rules of <= small-n literals, local improvement), or best of all "
                        f"(default {search['order']})")
    s.add_argument("--beta", check=_beta_list, default=_csv(DEFAULT_BETAS), help="comma-separated complexity penalties")
    s.add_argument("--device", choices=DEVICES, default=search["device"],
                   help=f"{DEVICE_HELP} (default {search['device']})")
    s.add_argument("--small-n", check=_int_in(0), default=search["small_n"],
                   help=f"exact search over subsets of up to K literals (order best; default {search['small_n']})")
    s.add_argument("--pool", check=_int_in(1), default=search["pool_size"],
                   help=f"literal pool of the small-N search (default {search['pool_size']})")
    s.add_argument("--conv-examples", check=_int_in(1), default=search["conv_examples"],
                   help="(sample, position) examples per conv layer, subsampled with --seed "
                        f"(default {search['conv_examples']})")
    s.add_argument("--conv-position", choices=CONV_POSITIONS, default=search["conv_position"],
                   help="all positions (a shared rule) or the reference's single best-IG position "
                        f"(default {search['conv_position']})")
    s.add_argument("--seed", check=_int_in(0, MAX_SEED), default=search["seed"], help="seed of the example subsampling")
    s.add_argument("--cuts", check=_int_in(0, 254), default=search["cuts"],
                   help=f"quantile cuts per input for the exact search's literals in paper mode (orders exact, best; "
                        f"default {search['cuts']})")
    s.add_argument("--exact-pool", check=_int_in(1), default=search["exact_pool"],
                   help=f"literal pool of the exact search (orders exact, best; default {search['exact_pool']})")
    s.add_argument("--validation", check=_share, default=search["validation"],
                   help=f"share of the examples the exact search holds out to choose among near-equal rules "
                        f"(default {search['validation']})")
    s.add_argument("--improve-steps", check=_int_in(0), default=search["improve_steps"],
                   help=f"local moves per rule, 0 for none (orders exact, best; default {search['improve_steps']})")
    cluster.add_cluster_args(s, store=True)
    s.add_argument("--fit-on", choices=FIT_ON, default=search["fit_on"],
                   help=f"chain mode: fit each layer on the network's activations below, or on the atoms the program "
                        f"computes (default {search['fit_on']})")

    opt = _defaults(optimality_report)
    s = add("optimality", "Compare each literal ordering with the true optimum on small layers "
                          f"(fan-in <= {opt['max_inputs']}).")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("--mode", choices=MODES, default=opt["mode"])
    s.add_argument("--beta", check=_beta_list, default=_csv(DEFAULT_BETAS), help="comma-separated complexity penalties")
    s.add_argument("--seed", check=_int_in(0, MAX_SEED), default=opt["seed"])
    s.add_argument("--max-inputs", check=_int_in(1, MAX_INPUTS), default=opt["max_inputs"],
                   help=f"largest fan-in searched exhaustively (default {opt['max_inputs']})")
    s.add_argument("--json", action="store_true")

    fmts = formats()
    readable = ", ".join(s for f in fmts.values() if f.readable for s in f.suffixes)
    s = add("compile", "Compile a chain-mode rule set into a layered logic program.")
    s.add_argument("rules", help="rules.json from 'mofn2logic extract --mode chain'")
    s.add_argument("--cut", default=None, help="the first layer whose rules the program contains (default: the first)")
    s.add_argument("--beta", check=_one_beta, default=None,
                   help="which beta's rules (default: the smallest in the rule set)")
    s.add_argument("-o", "--output", required=True,
                   help="output program file, in the format of its suffix (.mofn when the suffix names none)")
    s.add_argument("--decision-list", metavar="ACTS.npz", default=None,
                   help="fit the classes as a decision list on these activations ('mofn2logic harvest'), for the "
                        "network's class there")
    s.add_argument("--budget", check=_int_in(0), default=None,
                   help=f"most literals of the decision list (default {_defaults(api.compile)['budget']})")

    s = add("export", f"Export a program ({readable}) to {', '.join(fmts)}.")
    s.add_argument("program", help=f"program file ({readable})")
    s.add_argument("--to", choices=tuple(fmts), required=True,
                   help="; ".join(f"{f.name}: {f.description}" for f in fmts.values() if f.description))
    s.add_argument("-o", "--output", required=True, help="output file")
    dot_units = fmts["dot"].options.get("max_units") if "dot" in fmts else None
    s.add_argument("--max-units", check=_int_in(1), default=None,
                   help=f"DOT/SVG: atoms shown per layer before summarising (default {dot_units})")
    s.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="an option of the format's exporter (repeatable), e.g. max_inputs=20 for dot")

    s = add("show", "Print rule cards: each rule as a checklist (\"class 3 if at least 8 of these 9 hold\").")
    s.add_argument("program", help=f"program file ({readable})")
    s.add_argument("--block", default=None, help="which rule block (default: the classes)")
    s.add_argument("--unit", check=_int_in(0), default=None, help="only this unit's (class's) rule")

    s = add("verify", "Run a program and the network on the same data: fidelity, unit agreement, engines.")
    s.add_argument("program", help=f"program file ({readable})")
    s.add_argument("model", help="the ONNX model the rules came from")
    _data_args(s)
    _label_args(s)
    s.add_argument("--engine", choices=(*ENGINE_NAMES, "all"), default=_defaults(api.verify)["engines"][0])
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = add("run", "The whole pipeline: rules, programs, Prolog/SymPy/DOT exports, checks and an HTML report.")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    _name_args(s)
    _label_args(s)
    s.add_argument("-o", "--output", required=True, help="output folder")
    s.add_argument("--holdout", check=_share, default=run["holdout"],
                   help=f"share of samples held out for fidelity (default {run['holdout']})")
    s.add_argument("--seed", check=_int_in(0, MAX_SEED), default=run["seed"])
    s.add_argument("--order", choices=ORDERS, default=run["order"], help=f"(default {run['order']})")
    s.add_argument("--beta", check=_beta_list, default=_csv(run["betas"]), help="betas of the trade-off curves")
    s.add_argument("--program-beta", check=_one_beta, default=f"{run['beta']:g}",
                   help=f"beta whose rules the programs use (default {run['beta']:g})")
    s.add_argument("--device", choices=DEVICES, default=run["device"], help=f"{DEVICE_HELP} (default {run['device']})")
    s.add_argument("--no-paper", action="store_true", help="skip the paper-mode extraction")
    s.add_argument("--fit-on", choices=FIT_ON, default=run["fit_on"],
                   help="fit each cut's program on the atoms it computes for the layer below ('program', one "
                        "extraction per cut, reported beside the rules fitted on the network's activations) or only "
                        f"on the network's activations (default {run['fit_on']})")

    s = add("demo", "Run the main job on the embedded default model (what `make demo` does).")
    s.add_argument("-o", "--output", default=None, help="output folder (default demo-out, or demo-tabular-out)")
    s.add_argument("--tabular", action="store_true",
                   help="the tabular example instead: a scikit-learn MLP on breast cancer, its 30 features named "
                        "(what `make demo-tabular` runs)")

    s = add("harvest", "Run the model and save every layer's input and output activations (.npz).")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("-o", "--output", required=True, help="output .npz file (with --scheduler/--workers: a folder)")
    s.add_argument("--store", default=None, help="folder for the on-disk store when the budget is exceeded")
    cluster.add_cluster_args(s, store=False)
    return p


def _model_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--from", dest="start", metavar="LAYER", default=None,
                   help="the first explained layer (a name from 'inspect'; default: the graph input, or the first "
                        "layer after the last branch or unsupported node)")
    s.add_argument("--graph-output", metavar="NAME", default=None,
                   help="the graph output holding the class probabilities or logits, when the model has several "
                        "(default: the only one, else the one a Softmax makes)")


def _name_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--feature-names", metavar="FILE", default=None,
                   help="names of the input values, one per line or a JSON list (default: a CSV file's header; "
                        "images: pixel[r,c])")
    s.add_argument("--class-names", metavar="FILE", default=None, help="names of the classes, one per line or a JSON list")
    s.add_argument("--names", metavar="FILE", default=None,
                   help='names of hidden units and classes, JSON {"layer": {"unit": "name"}, "classes": [...]}')


def _data_args(s: argparse.ArgumentParser) -> None:
    from mofn2logic.inputs import FORMATS

    _model_args(s)
    harvest = _defaults(api.activations)
    s.add_argument("--data", required=True, help=f"input samples: {', '.join(FORMATS)} (an .npz: see --key)")
    s.add_argument("--key", default=None, help="array name inside an .npz file")
    s.add_argument("--batch-size", check=_int_in(1, MAX_BATCH), default=harvest["batch_size"],
                   help=f"samples per onnxruntime run, at most {MAX_BATCH} (default {harvest['batch_size']})")
    s.add_argument("--providers", check=_providers, default=None,
                   help="comma-separated onnxruntime execution providers (default: CUDA if it works, else CPU)")
    s.add_argument("--memory-budget", check=_budget, default=harvest["memory_budget"],
                   help="activations beyond this size (e.g. 512M, 2G) go to memory-mapped files on disk; data "
                        f"read into memory must fit in it (default {_size(harvest['memory_budget'])})")


def _label_args(s: argparse.ArgumentParser) -> None:
    from mofn2logic.inputs import FORMATS

    s.add_argument("--labels", default=None, help=f"true labels ({', '.join(FORMATS)}) for accuracy")
    s.add_argument("--labels-key", default=None, help="array name inside a labels .npz")


class Parser(argparse.ArgumentParser):
    """argparse whose errors (unknown flag, bad choice, missing value) are one line, `PROG: error:
    MESSAGE`, and exit status 2. `commands` holds the subcommands' parsers; an argument added
    with `check=` has its value checked by `checked_values` after parsing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, Parser] = {}
        self.checks: dict[str, tuple[str, Callable[[str], Any]]] = {}

    def add_argument(self, *args: Any, check: Callable[[str], Any] | None = None, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if check is not None:
            self.checks[action.dest] = (action.option_strings[-1] if action.option_strings else action.dest, check)
        return action

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2)

    def checked_values(self, args: argparse.Namespace) -> None:
        """Turn each checked option's text (given or default) into its value, or raise OptionError."""
        for dest, (flag, check) in self.checks.items():
            value = getattr(args, dest, None)
            if isinstance(value, str):
                try:
                    setattr(args, dest, check(value))
                except argparse.ArgumentTypeError as e:
                    raise OptionError(f"argument {flag}: {e}") from None


# --------------------------------------------------------------------------- signals and warnings

_received: list[int] = []  # the signals that interrupted this run
_owner: list[int] = []  # the pid that installed the handlers


def _on_signal(signum: int, frame: Any) -> None:
    if _owner and os.getpid() != _owner[-1]:  # a forked search worker: the pool ends it with SIGTERM
        os._exit(128 + signum)  # quietly, as the default action would; the parent does the cleanup
    _received.append(signum)
    for s in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup short
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt


def _catch_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt (so every `finally` removes its temporary
    files); returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _received.clear()
    _owner[:] = [os.getpid()]
    for s in old:
        signal.signal(s, _on_signal)

    def restore() -> None:
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    return restore


def _interrupted(e: BaseException) -> bool:
    """A KeyboardInterrupt, or the SystemError numba raises when a signal lands inside a kernel."""
    if isinstance(e, KeyboardInterrupt) or _received:
        return True
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, KeyboardInterrupt):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _quiet_warnings(command: str) -> None:
    """Inside `warnings.catch_warnings()`: library warnings (numpy, matplotlib, onnx) are not for
    the user; a UserWarning mofn2logic emits on purpose shows as one line."""
    warnings.simplefilter("ignore")
    warnings.filterwarnings("always", category=UserWarning, module=r"mofn2logic(\.|$)")

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        print(f"mofn2logic {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = show


def _reader_left() -> bool:
    """Whether stdout's reader is gone (`mofn2logic ... | head`); if so, stdout goes to the null
    device so that the interpreter's last flush is quiet too."""
    import os
    import select

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    # The write end of a pipe whose reader has gone polls as POLLERR (a print that failed has
    # already dropped its buffer, so flushing again proves nothing).
    with contextlib.suppress(OSError, ValueError, AttributeError):
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        if not any(ev & select.POLLERR for _, ev in poll.poll(0)):
            return False
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    # SIGPIPE stays ignored (a helper such as `dot` closing its pipe early must not kill us
    # silently); a closed stdout is a BrokenPipeError, handled below.
    parser = build_parser()
    # The parser's errors print their one line and raise SystemExit(2), as --help and --version
    # raise SystemExit(0): argparse's contract, kept for callers of main().
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        print(f"mofn2logic: error: expected a command, one of {', '.join(parser.commands)} "
              "('mofn2logic --help' says more)", file=sys.stderr)
        return 2
    restore = _catch_signals()
    try:
        with warnings.catch_warnings():
            _quiet_warnings(args.command)
            parser.commands[args.command].checked_values(args)
            return COMMANDS[args.command](args)
    except Mofn2LogicError as e:
        # One line: a syntax error's caret context stays on the exception for API users.
        print(f"mofn2logic {args.command}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemError) as e:
        if not _interrupted(e):
            raise
        print("mofn2logic: interrupted", file=sys.stderr)
        return 128 + (_received[0] if _received else signal.SIGINT)
    except BrokenPipeError as e:
        if _reader_left():
            return 128 + 13  # what a SIGPIPE would have given
        print(f"mofn2logic {args.command}: error: a pipe closed early: {e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"mofn2logic {args.command}: error: out of memory; expected smaller data or a smaller memory budget",
              file=sys.stderr)
        return 2
    except OSError as e:  # a file that changed under us, a full disk
        where = f" ({e.filename!r})" if getattr(e, "filename", None) else ""
        print(f"mofn2logic {args.command}: error: {e.strerror or ' '.join(str(e).split())}{where}", file=sys.stderr)
        return 2
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
