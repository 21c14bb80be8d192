"""The `mofn2logic` command line. User errors: one line on stderr, exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mofn2logic.errors import Mofn2LogicError
from mofn2logic.resources import default_data_path, default_model_path

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


# --------------------------------------------------------------------------- commands

@command
def cmd_inspect(args: argparse.Namespace) -> int:
    from mofn2logic.onnx.importer import import_network, layer_table

    net = import_network(args.model)
    if args.json:
        print(json.dumps({"layers": layer_table(net)}, indent=2))
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
    return 0


def _shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


@command
def cmd_harvest(args: argparse.Namespace) -> int:
    from mofn2logic.onnx.harvest import save_npz
    from mofn2logic.files import check_output_path

    check_output_path(args.output)
    net, acts = _harvest_for(args, store_dir=args.store)
    save_npz(acts, net, args.output)
    print(f"harvested {acts.n_samples} samples, {len(acts)} tensors on {acts.providers[0]} -> {args.output}")
    return 0


@command
def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default model and its bundled digits."""
    import numpy as np

    from mofn2logic.pipeline import run_pipeline

    model = default_model_path()
    print(f"== embedded default model: {model.name} (digits 8x8; rules fitted on the training split, "
          "checked on the 360 held-out digits)")
    cmd_inspect(argparse.Namespace(model=model, json=False))
    with np.load(default_data_path()) as z:
        images, labels, test = z["images"], z["labels"].astype(np.int64), z["test"]
    summary = run_pipeline(model, images, labels, args.output, fit=~test, device="auto",
                           provenance={"model": model.name, "model_sha256": _sha256(model),
                                       "data": default_data_path().name, "data_sha256": _sha256(default_data_path())},
                           log=print)
    _print_run_summary(summary, args.output)
    return 0


@command
def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from mofn2logic.inputs import load_data, read_array
    from mofn2logic.errors import DataError
    from mofn2logic.onnx.importer import import_network
    from mofn2logic.pipeline import run_pipeline

    net = import_network(args.model)
    x = load_data(args.data, net.input_shape, net.dtype, key=args.key)
    labels = None
    if args.labels:
        labels = np.asarray(read_array(args.labels, args.labels_key)).reshape(-1)
        if len(labels) != len(x):
            raise DataError(f"labels {args.labels!r} have {len(labels)} entries; the data has {len(x)} samples")
        labels = labels.astype(np.int64)
    if not 0 <= args.holdout < 1:
        raise DataError(f"--holdout must be in [0, 1), got {args.holdout}")
    summary = run_pipeline(args.model, x, labels, args.output, holdout=args.holdout, seed=args.seed, order=args.order,
                           betas=_parse_betas(args.beta), beta=_parse_betas(args.program_beta)[0], device=args.device,
                           paper_mode=not args.no_paper,
                           provenance={"model": Path(args.model).name, "model_sha256": _sha256(args.model),
                                       "data": Path(args.data).name, "data_sha256": _sha256(args.data)},
                           log=print)
    _print_run_summary(summary, args.output)
    return 0


def _print_run_summary(summary: dict, outdir: str) -> None:
    print("== cut table (held-out): cut layer -> end-to-end class fidelity, literals")
    for c in summary["cuts"]:
        print(f"   {c['cut']:<20} fidelity {c['fidelity']:.4f}   literals {c['literals']:6d}")
    for label, chk in summary["checks"].items():
        agree = "agree" if chk["engines_agree"] else "DISAGREE"
        print(f"== {label} program verified: fidelity {chk['fidelity']:.4f} with engines "
              f"{', '.join(chk['engines'])} ({agree})")
    print(f"== outputs in {outdir}/: report.html, report.md, rules.json, program_*.mofn, softmax.pl, softmax.svg, "
          "replica.pl, summary.json "
          f"({summary['timings']['total']:.1f} s)")


def _sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parse_betas(text: str) -> list[float]:
    from mofn2logic.search.network import check_betas

    return list(check_betas([b.strip() for b in text.split(",") if b.strip()] or [text]))


def _harvest_for(args: argparse.Namespace, store_dir: str | None = None):
    from mofn2logic.inputs import load_data
    from mofn2logic.onnx.harvest import harvest, parse_size
    from mofn2logic.onnx.importer import import_network

    net = import_network(args.model)
    x = load_data(args.data, net.input_shape, net.dtype, key=args.key)
    acts = harvest(net, args.model, x, batch_size=args.batch_size, providers=_providers(args),
                   memory_budget=parse_size(args.memory_budget), store_dir=store_dir)
    return net, acts


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


@command
def cmd_extract(args: argparse.Namespace) -> int:
    from mofn2logic.search.network import extract
    from mofn2logic.files import check_output_path
    from mofn2logic.search.rules_file import write_rules

    check_output_path(args.output)
    betas = _parse_betas(args.beta)
    net, acts = _harvest_for(args)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    rs = extract(
        net, acts, layers=layers, mode=args.mode, order=args.order, betas=betas, device=args.device,
        small_n=args.small_n, pool_size=args.pool, conv_examples=args.conv_examples,
        conv_position=args.conv_position, seed=args.seed,
        provenance={"model": Path(args.model).name, "model_sha256": _sha256(args.model),
                    "data": Path(args.data).name, "data_sha256": _sha256(args.data),
                    **({"data_key": args.key} if args.key else {})},
        log=lambda msg: print(msg, file=sys.stderr),
    )
    write_rules(rs, args.output)
    print_summary(rs)
    print(f"wrote {args.output}")
    return 0


@command
def cmd_optimality(args: argparse.Namespace) -> int:
    from mofn2logic.search.network import optimality_report

    net, acts = _harvest_for(args)
    report = optimality_report(net, acts, mode=args.mode, betas=_parse_betas(args.beta), seed=args.seed,
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
    from mofn2logic.program.compile import compile_program
    from mofn2logic.files import check_output_path
    from mofn2logic.exporters.mofn import write_program
    from mofn2logic.search.rules_file import read_rules

    check_output_path(args.output)
    rs = read_rules(args.rules)
    beta = None if args.beta is None else _parse_betas(args.beta)[0]
    program = compile_program(rs, cut=args.cut, beta=beta)
    write_program(program, args.output)
    sizes = ", ".join(f"{b.name}: {len(b.rules)}" for b in program.rule_blocks())
    print(f"program from {program.blocks[0].name!r} to the output: {len(program.input.tests)} input tests; "
          f"rules per layer {sizes} -> {args.output}")
    return 0


def load_program(path: str):
    from mofn2logic.exporters.mofn import read_program

    if str(path).endswith(".pl"):
        from mofn2logic.exporters.prolog_read import read_prolog

        return read_prolog(path)
    if str(path).endswith(".json"):
        from mofn2logic.exporters.json_program import read_program_json

        return read_program_json(path)
    return read_program(path)


@command
def cmd_export(args: argparse.Namespace) -> int:
    from mofn2logic.files import check_output_path, write_text_atomic

    check_output_path(args.output)
    program = load_program(args.program)
    if args.to == "json":
        from mofn2logic.exporters.json_program import dumps

        text = dumps(program)
    elif args.to == "mofn":
        from mofn2logic.exporters.mofn import format_program

        text = format_program(program)
    elif args.to == "prolog":
        from mofn2logic.exporters.prolog import to_prolog

        text = to_prolog(program)
    elif args.to == "sympy":
        from mofn2logic.exporters.sympy_expr import to_sympy

        text = to_sympy(program)
    else:
        from mofn2logic.exporters.dot import render_svg, to_dot

        text = to_dot(program, max_units=args.max_units)
        if args.to == "svg":
            text = render_svg(text)
    write_text_atomic(args.output, text)
    print(f"wrote {args.to} -> {args.output}")
    return 0


@command
def cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    from mofn2logic.inputs import read_array
    from mofn2logic.errors import DataError
    from mofn2logic.engines import ENGINE_NAMES as ENGINES
    from mofn2logic.engines import verify

    program = load_program(args.program)
    engines = list(ENGINES) if args.engine == "all" else [args.engine]
    if "prolog" in engines:
        from mofn2logic.engines.prolog_engine import swipl

        swipl()  # fail before the work when SWI-Prolog is missing
    net, acts = _harvest_for(args)
    labels = None
    if args.labels:
        labels = np.asarray(read_array(args.labels, args.labels_key)).reshape(-1)
        if len(labels) != acts.n_samples:
            raise DataError(f"labels {args.labels!r} have {len(labels)} entries; the data has {acts.n_samples} samples")
    report = verify(program, net, acts, labels=labels, engines=engines).to_dict()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['n_samples']} samples; class fidelity to the network {report['fidelity']:.4f}"
          + (f"; accuracy {report['accuracy']:.4f} (network {report['network_accuracy']:.4f})" if labels is not None else ""))
    for name, r in report["engines"].items():
        print(f"  engine {name:<7} fidelity {r['fidelity']:.4f}  ({r['seconds']:.2f} s)")
    if len(engines) > 1:
        print(f"  engines agree on every class and atom: {'yes' if report['engines_agree'] else 'NO'}")
    for la in report["layers"]:
        if la["agreement"] is not None:
            print(f"  layer {la['name']}: {la['units']} rules, unit agreement {la['agreement']:.4f} "
                  f"(worst unit {la['min_agreement']:.4f})")
    return 0


def _providers(args: argparse.Namespace) -> list[str] | None:
    return [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None


# --------------------------------------------------------------------------- parser

EXAMPLES = {
    "inspect": "example:\n  mofn2logic inspect model.onnx\n  mofn2logic inspect model.onnx --json",
    "extract": "examples:\n  mofn2logic extract model.onnx --data images.npy -o rules.json\n"
               "  mofn2logic extract model.onnx --data d.npz --key images -o rules.json --layers fc2 --mode paper "
               "--order best --beta 0,0.2,1",
    "optimality": "example:\n  mofn2logic optimality model.onnx --data images.npy",
    "compile": "examples:\n  mofn2logic compile rules.json -o program.mofn                 # the full symbolic replica\n"
               "  mofn2logic compile rules.json --cut fc2 --beta 0.2 -o softmax.mofn  # explain the softmax layer",
    "export": "examples:\n  mofn2logic export program.mofn --to prolog -o program.pl\n"
              "  mofn2logic export program.mofn --to svg -o rules.svg",
    "verify": "examples:\n  mofn2logic verify program.mofn model.onnx --data x.npy --labels y.npy --engine all\n"
              "  mofn2logic verify program.pl model.onnx --data x.npy --engine prolog --json",
    "run": "example:\n  mofn2logic run model.onnx --data x.npy --labels y.npy -o out/   # then open out/report.html",
    "demo": "example:\n  mofn2logic demo -o demo-out    # what `make demo` runs; open demo-out/report.html",
    "harvest": "example:\n  mofn2logic harvest model.onnx --data images.npy -o acts.npz --batch-size 512",
}


def build_parser() -> argparse.ArgumentParser:
    from mofn2logic import __version__

    p = argparse.ArgumentParser(
        prog="mofn2logic",
        description="Turn a trained ONNX classifier into M-of-N rules and a logic program you can run and check.",
        epilog="Run 'mofn2logic COMMAND --help' for a command's options and an example.",
    )
    p.add_argument("--version", action="version", version=f"mofn2logic {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES.get(name),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = add("inspect", "Print the layer table of an ONNX model.")
    s.add_argument("model", help="ONNX model file")
    s.add_argument("--json", action="store_true", help="print the table as JSON")

    s = add("extract", "Search M-of-N rules for every layer (or the chosen ones) and write rules.json.")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("-o", "--output", required=True, help="output rules.json")
    _search_args(s)

    s = add("optimality", "Compare each literal ordering with the true optimum on small layers (fan-in <= 12).")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("--mode", choices=("chain", "paper"), default="chain")
    s.add_argument("--beta", default="0,0.1,0.2,1,5,1000", help="comma-separated complexity penalties")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-inputs", type=int, default=12, help="largest fan-in searched exhaustively (default 12)")
    s.add_argument("--json", action="store_true")

    s = add("compile", "Compile a chain-mode rule set into a layered logic program (.mofn).")
    s.add_argument("rules", help="rules.json from 'mofn2logic extract --mode chain'")
    s.add_argument("--cut", default=None, help="the first layer whose rules the program contains (default: the first)")
    s.add_argument("--beta", default=None, help="which beta's rules (default: the smallest in the rule set)")
    s.add_argument("-o", "--output", required=True, help="output .mofn file")

    s = add("export", "Export a program (.mofn, .json or an exported .pl) to Prolog, SymPy, DOT, SVG, JSON or .mofn.")
    s.add_argument("program", help="program file (.mofn, .json or .pl)")
    s.add_argument("--to", choices=("prolog", "sympy", "dot", "svg", "json", "mofn"), required=True)
    s.add_argument("-o", "--output", required=True, help="output file")
    s.add_argument("--max-units", type=int, default=24, help="DOT: atoms shown per layer before summarising")

    s = add("verify", "Run a program and the network on the same data: fidelity, unit agreement, engines.")
    s.add_argument("program", help="program file (.mofn or .pl)")
    s.add_argument("model", help="the ONNX model the rules came from")
    _data_args(s)
    s.add_argument("--labels", default=None, help="true labels (.npy, .npz, .csv) for accuracy")
    s.add_argument("--labels-key", default=None, help="array name inside a labels .npz")
    s.add_argument("--engine", choices=("python", "sympy", "prolog", "all"), default="python")
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = add("run", "The whole pipeline: rules, programs, Prolog/SymPy/DOT exports, checks and an HTML report.")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("--labels", default=None, help="true labels (.npy, .npz, .csv) for accuracy")
    s.add_argument("--labels-key", default=None, help="array name inside a labels .npz")
    s.add_argument("-o", "--output", required=True, help="output folder")
    s.add_argument("--holdout", type=float, default=0.2, help="share of samples held out for fidelity (default 0.2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--order", choices=("weight", "std", "gain", "best"), default="best")
    s.add_argument("--beta", default="0,0.1,0.2,1,5,1000", help="betas of the trade-off curves")
    s.add_argument("--program-beta", default="0", help="beta whose rules the programs use (default 0)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "torch", "numpy"), default="auto")
    s.add_argument("--no-paper", action="store_true", help="skip the paper-mode extraction")

    s = add("demo", "Run the main job on the embedded default model (what `make demo` does).")
    s.add_argument("-o", "--output", default="demo-out", help="output folder (default demo-out)")

    s = add("harvest", "Run the model and save every layer's input and output activations (.npz).")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("-o", "--output", required=True, help="output .npz file")
    s.add_argument("--store", default=None, help="folder for the on-disk store when the budget is exceeded")
    return p


def _search_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--layers", default=None, help="comma-separated layer names (default: all)")
    s.add_argument("--mode", choices=("chain", "paper"), default="chain",
                   help="chain: one threshold per unit, layers compose (default); paper: per (input, target) splits")
    s.add_argument("--order", choices=("weight", "std", "gain", "best"), default="weight",
                   help="literal ordering: weight (the paper's, default), std, gain, or best of all + small-N search")
    s.add_argument("--beta", default="0,0.1,0.2,1,5,1000", help="comma-separated complexity penalties")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "torch", "numpy"), default="auto",
                   help="search backend: cpu (compiled numba kernels), numpy, cuda or torch (torch on CPU); "
                        "auto: cuda if available, else cpu")
    s.add_argument("--small-n", type=int, default=3, help="exact search over subsets of up to K literals (order best)")
    s.add_argument("--pool", type=int, default=16, help="literal pool of the small-N search (default 16)")
    s.add_argument("--conv-examples", type=int, default=20000,
                   help="(sample, position) examples per conv layer, subsampled with --seed (default 20000)")
    s.add_argument("--conv-position", choices=("all", "best"), default="all",
                   help="all positions (a shared rule, default) or the reference's single best-IG position")
    s.add_argument("--seed", type=int, default=0, help="seed of the example subsampling")


def _data_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--data", required=True, help="input samples: .npy, .npz (see --key) or .csv")
    s.add_argument("--key", default=None, help="array name inside an .npz file")
    s.add_argument("--batch-size", type=int, default=256, help="samples per onnxruntime run (default 256)")
    s.add_argument("--providers", default=None,
                   help="comma-separated onnxruntime execution providers (default: CUDA if it works, else CPU)")
    s.add_argument("--memory-budget", default="2G",
                   help="activations beyond this size go to memory-mapped files on disk (default 2G)")


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    if hasattr(signal, "SIGPIPE") and argv is None:  # `mofn2logic ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except Mofn2LogicError as e:
        # One line: a syntax error's caret context stays on the exception for API users.
        print(f"mofn2logic {args.command}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mofn2logic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
