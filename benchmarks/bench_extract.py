"""Full extraction (all layers, chain mode) of the Keras-style MNIST CNN: `mofn2logic extract` as a
user runs it, wall time and peak memory, per device and number of images, this checkout against
another one (the code before a change) side by side in one run, with the ratio and whether both
wrote the same rules.

    .venv/bin/python benchmarks/train_mnist_cnn.py      # once: the MNIST CNN
    git archive REV | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    .venv/bin/python benchmarks/bench_extract.py --before /tmp/before [--sizes 2000,8000]
        [--devices cpu,auto,torch] [--torch-sizes 2000] [--profile] [--plain]

Devices: cpu (numba), auto (what `extract` picks by default: cpu where no NVIDIA GPU can be
present), torch (torch on the CPU, standing in for CUDA; slow, so by default only at 2,000 images).
Targets (issue 11): <= 10 s at 8,000 images on the 2-core machine, peak RSS <= 2 GB. Where one is
missed, or with --profile, the top lines of a cProfile of the --device cpu extract at the largest
size follow the table (the search on one thread, so that the profile sees it). --plain adds the
plain one-rule-at-a-time cost of the same searches, extrapolated per layer from one unit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from timing import WORK, mnist_data, profile_cli, run_cli  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.search.rules_file import read_rules  # noqa: E402

TARGET_S = {8000: 10.0}
TARGET_RSS_GB = 2.0


def plain_estimate(model: Path, x: np.ndarray) -> list[tuple[str, int, int, int, float]]:
    """Per layer: (name, units, fan-in, examples, estimated plain seconds)."""
    from bench_search import plain_time

    from mofn2logic.search.network import _chain_input_thresholds, _examples, _heads, _problems, predicted_class

    net = M.import_network(model)
    acts = M.harvest(net, model, M.check_data(x, net.input_shape, net.dtype))
    pred = predicted_class(net, acts)
    k = int(np.asarray(acts[net.output]).shape[1])
    rows, prev = [], None
    for i, layer in enumerate(net.layers):
        last = i == len(net.layers) - 1
        ex = _examples(net, layer, acts, pred, 20000, "all", i, k)
        heads = None if last else _heads(layer, ex, k)
        chain = _chain_input_thresholds(net, i, prev, acts, pred, k, 20000, 1000 + i)
        (p,) = _problems(layer, ex, heads, chain, k, mode="chain", is_output=last)
        one = type(p)(x=p.x, weights=p.weights[:1], targets=p.targets[:, :1], input_thresholds=p.input_thresholds,
                      fan_in=p.fan_in)
        secs, _ = plain_time(one, 1, 10)
        rows.append((layer.name, layer.units, layer.fan_in, p.x.shape[0], secs * layer.units))
        prev = heads
    return rows


def same_rules(a: Path, b: Path) -> bool:
    ra, rb = read_rules(a), read_rules(b)
    return ra.betas == rb.betas and ra.layers == rb.layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, default=None, help="a checkout of the code before (its package folder's parent)")
    ap.add_argument("--after", type=Path, default=None, help="a checkout of the code after (default: the installed package)")
    ap.add_argument("--sizes", default="2000,8000")
    ap.add_argument("--devices", default="cpu,auto,torch")
    ap.add_argument("--torch-sizes", default="2000", help="sizes at which the torch device runs (it is slow on a CPU)")
    ap.add_argument("--profile", action="store_true", help="profile the --device cpu extract even if the targets are met")
    ap.add_argument("--plain", action="store_true", help="also extrapolate the plain one-rule-at-a-time search")
    args = ap.parse_args()
    model = WORK / "mnist_cnn_relu.onnx"
    if not model.is_file():
        raise SystemExit(f"{model} is missing: run benchmarks/train_mnist_cnn.py")
    sizes = [int(s) for s in args.sizes.split(",")]
    torch_sizes = {int(s) for s in args.torch_sizes.split(",") if s}
    devices = args.devices.split(",")
    versions = [("before", args.before), ("after", args.after)] if args.before else [("after", args.after)]
    print(f"MNIST CNN ({model.name}), chain mode, all layers; "
          + (f"before = {args.before}, " if args.before else "") + f"after = {args.after or 'this checkout'}", flush=True)
    head = (f"| images | device | {'before s':>9} | {'after s':>8} | {'ratio':>6} | {'CPU s before':>12} | "
            f"{'CPU s after':>11} | {'ratio':>6} | {'RSS before':>10} | {'RSS after':>9} | same rules |")
    lines = [head, "|" + "|".join("-" * (len(c) + 2) for c in head.strip("|").split("|")[:-1]) + "|------------|"]
    print(head, flush=True)
    results: dict[tuple[int, str], dict] = {}
    # torch on the CPU last: it is the slow one
    runs = [(n, d) for n in sizes for d in devices if d != "torch"] + [(n, "torch") for n in sizes
                                                                       if "torch" in devices and n in torch_sizes]
    for n, device in runs:
        data = mnist_data(n)
        got = {}
        for tag, source in versions:
            out = WORK / f"bench_rules_{n}_{device}_{tag}.json"
            got[tag] = run_cli(model, data, None, device, out, source) | {"out": out}
        after = got["after"]
        results[(n, device)] = after
        before = got.get("before")
        rss = lambda r: max(r["rss_main_gb"], r["rss_worker_gb"])
        cells = [f"{n:,}", device,
                 f"{before['wall']:9.2f}" if before else f"{'-':>9}", f"{after['wall']:8.2f}",
                 f"x{before['wall'] / after['wall']:5.2f}" if before else f"{'-':>6}",
                 f"{before['cpu']:12.2f}" if before else f"{'-':>12}", f"{after['cpu']:11.2f}",
                 f"x{before['cpu'] / after['cpu']:5.2f}" if before else f"{'-':>6}",
                 f"{rss(before):7.2f} GB" if before else f"{'-':>10}", f"{rss(after):6.2f} GB",
                 ("yes" if same_rules(before["out"], after["out"]) else "NO") if before else "-"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    missed = []
    for (n, device), r in results.items():
        if device == "cpu" and n in TARGET_S and r["wall"] > TARGET_S[n]:
            missed.append(f"extract at {n:,} images, --device cpu: {r['wall']:.2f} s (target <= {TARGET_S[n]:.0f} s)")
        peak = max(r["rss_main_gb"], r["rss_worker_gb"])
        if device == "cpu" and peak > TARGET_RSS_GB:
            missed.append(f"peak RSS at {n:,} images, --device cpu: {peak:.2f} GB (target <= {TARGET_RSS_GB:.0f} GB)")
    for m in missed:
        print("target missed:", m)
    if missed or args.profile:
        n = max(sizes)
        print(f"\ncProfile of `mofn2logic extract --device cpu` at {n:,} images (search on one thread), by own time:")
        print(profile_cli(model, mnist_data(n), None, "cpu", WORK / "bench_rules_profile.json", source=args.after))
    if args.plain:
        x = np.load(mnist_data(min(sizes)))
        plain = plain_estimate(model, x)
        total = sum(row[-1] for row in plain)
        for name, units, fan_in, ex, secs in plain:
            print(f"    plain {name:<16} {units:4d} units, fan-in {fan_in:5d}, {ex:6d} examples: ~{secs:,.1f} s")
        print(f"  plain one-rule-at-a-time search, all layers, {min(sizes):,} images: ~{total:,.0f} s "
              f"(~{total / 3600:.1f} h, extrapolated)")


if __name__ == "__main__":
    main()
