"""Full extraction (all layers, chain mode, 2,000 samples): wall time and peak memory of
`mofn2logic extract`, and the plain one-rule-at-a-time cost of the same searches, in one run.

    .venv/bin/python benchmarks/train_mnist_cnn.py      # once: the Keras-style MNIST CNN
    .venv/bin/python benchmarks/bench_extract.py [--device cpu|torch|cuda]

The demo model runs on its 1,797 bundled digits; the MNIST CNN on 2,000 of its training images.
The plain cost is extrapolated per layer from one unit: its candidates are timed at sampled N
(see bench_search.py) and multiplied by the layer's units.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from timing import run_cli  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.search.network import _chain_input_thresholds, _examples, _heads, _problems, predicted_class  # noqa: E402


def plain_estimate(model: Path, x: np.ndarray) -> list[tuple[str, int, int, int, float]]:
    """Per layer: (name, units, fan-in, examples, estimated plain seconds)."""
    from bench_search import plain_time

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    work = HERE / "_work"
    work.mkdir(exist_ok=True)
    cases: list[tuple[str, Path, Path, str | None]] = [
        ("demo CNN (digits 8x8)", M.default_model_path(), M.default_data_path(), "images")]
    mnist = work / "mnist_cnn_relu.onnx"
    if mnist.is_file():
        cases.append(("Keras-style MNIST CNN", mnist, work / "mnist_train.npy", None))
    else:
        print(f"(skipping the MNIST CNN: run benchmarks/train_mnist_cnn.py to create {mnist})")
    for label, model, data, key in cases:
        r = run_cli(model, data, key, args.device, work / "rules.json")
        x = np.load(data)[key] if key else np.load(data)
        plain = plain_estimate(model, x)
        total_plain = sum(row[-1] for row in plain)
        print(f"\n== {label}: {model.name}, {len(x)} samples, chain mode, all layers, --device {args.device}")
        print(f"  mofn2logic extract: {r['wall']:.2f} s wall (harvest + splits + search + rules.json), "
              f"peak RSS {r['rss_main_gb']:.2f} GB (main), {r['rss_worker_gb']:.2f} GB (largest worker)")
        for name, units, fan_in, ex, secs in plain:
            print(f"    plain {name:<16} {units:4d} units, fan-in {fan_in:5d}, {ex:6d} examples: ~{secs:,.1f} s")
        print(f"  plain one-rule-at-a-time search, all layers: ~{total_plain:,.0f} s (~{total_plain / 3600:.1f} h, "
              f"extrapolated)  ->  speed-up x{total_plain / r['wall']:,.0f}")


if __name__ == "__main__":
    main()
