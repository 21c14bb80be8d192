"""The `mofn2logic` command line. User errors: one line on stderr, exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from mofn2logic.errors import Mofn2LogicError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def default_model_path() -> Path:
    return Path(str(resources.files("mofn2logic") / "data" / "default_cnn.onnx"))


def default_data_path() -> Path:
    return Path(str(resources.files("mofn2logic") / "data" / "digits.npz"))


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


# --------------------------------------------------------------------------- commands

@command
def cmd_inspect(args: argparse.Namespace) -> int:
    from mofn2logic.onnx_import import import_network

    net = import_network(args.model)
    if args.json:
        print(json.dumps({"layers": net.table()}, indent=2))
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
    from mofn2logic.data import load_data
    from mofn2logic.harvest import harvest, parse_size, save_npz
    from mofn2logic.io_util import check_output_path
    from mofn2logic.onnx_import import import_network

    check_output_path(args.output)
    net = import_network(args.model)
    x = load_data(args.data, net.input_shape, net.dtype, key=args.key)
    acts = harvest(net, args.model, x, batch_size=args.batch_size, providers=_providers(args),
                   memory_budget=parse_size(args.memory_budget), store_dir=args.store)
    save_npz(acts, net, args.output)
    print(f"harvested {acts.n_samples} samples, {len(acts)} tensors on {acts.providers[0]} -> {args.output}")
    return 0


@command
def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default model and its bundled digits."""
    import numpy as np

    from mofn2logic.data import check_data
    from mofn2logic.harvest import harvest
    from mofn2logic.onnx_import import import_network

    model = default_model_path()
    print(f"== embedded default model: {model.name}")
    cmd_inspect(argparse.Namespace(model=model, json=False))
    net = import_network(model)
    with np.load(default_data_path()) as z:
        images, labels = z["images"], z["labels"]
    x = check_data(images, net.input_shape, net.dtype, name="digits")
    acts = harvest(net, model, x)
    pred = np.asarray(acts[net.output]).argmax(1)
    print(f"== harvested {acts.n_samples} digits x {len(acts)} tensors on {acts.providers[0]}; "
          f"network accuracy {float((pred == labels).mean()):.4f}")
    return 0


def _providers(args: argparse.Namespace) -> list[str] | None:
    return [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None


# --------------------------------------------------------------------------- parser

EXAMPLES = {
    "inspect": "example:\n  mofn2logic inspect model.onnx\n  mofn2logic inspect model.onnx --json",
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

    s = add("demo", "Run the main job on the embedded default model (what `make demo` does).")
    s.add_argument("-o", "--output", default="demo-out", help="output folder (default demo-out)")

    s = add("harvest", "Run the model and save every layer's input and output activations (.npz).")
    s.add_argument("model", help="ONNX model file")
    _data_args(s)
    s.add_argument("-o", "--output", required=True, help="output .npz file")
    s.add_argument("--store", default=None, help="folder for the on-disk store when the budget is exceeded")
    return p


def _data_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--data", required=True, help="input samples: .npy, .npz (see --key) or .csv")
    s.add_argument("--key", default=None, help="array name inside an .npz file")
    s.add_argument("--batch-size", type=int, default=256, help="samples per onnxruntime run (default 256)")
    s.add_argument("--providers", default=None,
                   help="comma-separated onnxruntime execution providers (default: CUDA if it works, else CPU)")
    s.add_argument("--memory-budget", default="2G",
                   help="activations beyond this size go to memory-mapped files on disk (default 2G)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except Mofn2LogicError as e:
        print(f"mofn2logic {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mofn2logic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
