"""--device cpu against --device cuda, side by side in one run: the single-layer search and
`mofn2logic extract` of the MNIST CNN, with the ratio and whether both found the same rules.

    bash benchmarks/gpu.sh               # sets up the environment, then runs this
    python benchmarks/bench_gpu.py [--second cuda|torch] [--quick]

Rows: the search of one random ReLU-like layer (bench_search.layer) at E=2000 n=128 U=10,
E=2000 n=1024 U=16 and E=10000 n=9216 U=32 (chain mode: one threshold per input), and at E=2000
n=1024 U=16 in paper mode (thresholds per unit and input), in one process: on the CPU the compiled
search of every unit on as many threads as there are cores; on torch all units of the layer at
once on the device (mofn2logic.search.batched); `mofn2logic extract` of the Keras-style MNIST CNN (benchmarks/train_mnist_cnn.py)
on 2,000 and 8,000 training images, as a user runs it (a subprocess; wall time). Each row runs
with --device cpu and with the second device (cuda; torch -- torch on the CPU -- where there is
no GPU), after one warm-up run per device (compilation, CUDA context). "same rules": the search
rows compare the units' rules, the extract rows the two rules.json files' rule sets (every layer,
unit, rule, literal and front; the provenance records the device, so it may differ).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_search import BETAS, layer  # noqa: E402
from timing import mnist_data, run_cli  # noqa: E402

from mofn2logic.search.backends import make_backend  # noqa: E402
from mofn2logic.search.layer import search_layer  # noqa: E402
from mofn2logic.search.rules_file import read_rules  # noqa: E402

WORK = HERE / "_work"
SEARCH_ROWS = ((2000, 128, 10, "chain"), (2000, 1024, 16, "chain"), (2000, 1024, 16, "paper"),
               (10000, 9216, 32, "chain"))
EXTRACT_ROWS = (2000, 8000)


def search_time(e: int, n: int, u: int, device: str, repeat: int, mode: str = "chain"):
    p = layer(e, n, u)
    if mode == "paper":
        from mofn2logic.search.splits import binary_splits_per_target

        p = type(p)(x=p.x, weights=p.weights, targets=p.targets,
                    input_thresholds=binary_splits_per_target(p.x, p.targets), fan_in=p.fan_in)
    backend = make_backend(device)
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = search_layer(p, betas=BETAS, order="weight", backend=backend, progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, out


def warm_up(device: str) -> None:
    """Compile the kernels / start the CUDA context outside the timed runs."""
    search_time(200, 16, 2, device, 1)


def same_rules(a: Path, b: Path) -> bool:
    ra, rb = read_rules(a), read_rules(b)
    return ra.betas == rb.betas and ra.layers == rb.layers


def row(label: str, t_cpu: float, t_second: float | None, same: bool | None) -> str:
    second = f"{t_second:10.3f}" if t_second is not None else f"{'-':>10}"
    ratio = f"x{t_cpu / t_second:8.2f}" if t_second else f"{'-':>9}"
    verdict = "-" if same is None else "yes" if same else "NO"
    return f"| {label:<34} | {t_cpu:10.3f} | {second} | {ratio} | {verdict:^10} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--second", default="cuda", help="the device set against --device cpu (cuda; torch: torch on the CPU)")
    ap.add_argument("--quick", action="store_true", help="only the three smaller search rows and 2,000 images")
    ap.add_argument("--search-only", action="store_true", help="no extract rows")
    args = ap.parse_args()
    if args.second == "torch" and not args.quick:
        print("torch on the CPU is slow: the smaller rows only (as --quick)")
        args.quick = True
    WORK.mkdir(exist_ok=True)
    devices = ("cpu", args.second)
    print(f"devices: cpu (numba) against {args.second}", flush=True)
    for d in devices:
        warm_up(d)
    lines = [f"| {'benchmark':<34} | {'cpu s':>10} | {args.second + ' s':>10} | {'cpu/' + args.second:>9} | same rules |",
             f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 11}|{'-' * 12}|"]
    for e, n, u, mode in SEARCH_ROWS[:3] if args.quick else SEARCH_ROWS:
        repeat = 3 if e * n * u < 10**8 else 1
        (t1, r1), (t2, r2) = (search_time(e, n, u, d, repeat, mode) for d in devices)
        lines.append(row(f"search E={e} n={n} U={u}" + (" paper" if mode == "paper" else ""), t1, t2, r1 == r2))
        print(lines[-1], flush=True)
    model = WORK / "mnist_cnn_relu.onnx"
    if not model.is_file():
        raise SystemExit(f"{model} is missing: run benchmarks/train_mnist_cnn.py (gpu.sh does)")
    for n in () if args.search_only else EXTRACT_ROWS[:1] if args.quick else EXTRACT_ROWS:
        data = mnist_data(n)
        outs = [WORK / f"rules_{n}_{d}.json" for d in devices]
        t1, t2 = (run_cli(model, data, None, d, out)["wall"] for d, out in zip(devices, outs))
        lines.append(row(f"extract MNIST CNN, {n:,} images", t1, t2, same_rules(*outs)))
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    if any(line.rstrip("| ").endswith("NO") for line in lines):
        raise SystemExit("the devices found different rules")


if __name__ == "__main__":
    main()
