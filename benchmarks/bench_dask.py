"""The Dask path on a synthetic layer: one process against local clusters of 1 and 2 workers.

    .venv/bin/python benchmarks/bench_dask.py --examples 200000 --inputs 2048 --units 64

A dense layer (inputs -> units, ReLU) under a softmax layer of `--classes` units, random weights and
random normal data (an .npy written once to benchmarks/_work/dask). Each run is one `mofn2logic
extract --layers fc1` in its own process (chain mode, order weight): the first layer's input splits,
its head splits and every unit's search. Reported per run: wall time, the command process's peak
RSS (the client, for the Dask runs: its workers are other processes) and its largest child's (a
worker's); the rules.json of every Dask run must equal the single process's byte for byte.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work" / "dask"
RUNNER = """
import json, resource, sys, time
from mofn2logic.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - t
print("BENCH " + json.dumps({"rc": rc, "wall_s": wall,
      "client_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def build(examples: int, inputs: int, units: int, classes: int, seed: int = 0) -> tuple[Path, Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    WORK.mkdir(parents=True, exist_ok=True)
    tag = f"{examples}x{inputs}x{units}x{classes}"
    model, data = WORK / f"layer-{tag}.onnx", WORK / f"x-{tag}.npy"
    rng = np.random.default_rng(seed)
    if not model.exists():
        w1 = rng.normal(0, 1 / np.sqrt(inputs), (units, inputs)).astype(np.float32)
        w2 = rng.normal(0, 1, (classes, units)).astype(np.float32)
        nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
                 helper.make_node("Relu", ["h"], ["a"], name="relu1"),
                 helper.make_node("Gemm", ["a", "w2", "b2"], ["g"], transB=1, name="fc2"),
                 helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax")]
        inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(np.zeros(units, np.float32), "b1"),
                 numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(np.zeros(classes, np.float32), "b2")]
        graph = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     ["N", inputs])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], inits)
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), model)
    if not data.exists():
        x = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(examples, inputs))
        for s in range(0, examples, 10000):
            x[s:s + 10000] = rng.normal(0, 1, (min(10000, examples - s), inputs))
        x.flush()
        del x
    return model, data


def run(model: Path, data: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-c", RUNNER, "extract", str(model), "--data", str(data), "-o", str(out),
           "--layers", "fc1", "--batch-size", "1024", *extra]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"{' '.join(extra)} failed: {p.stderr[-2000:]}")
    got = json.loads(line[-1][6:])
    got["process_s"] = time.perf_counter() - t
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=200000)
    ap.add_argument("--inputs", type=int, default=2048)
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()
    model, data = build(a.examples, a.inputs, a.units, a.classes)
    rows = {}
    single = WORK / "single.json"
    rows["1 process (--device cpu)"] = run(model, data, single, ["--device", "cpu"])
    for w in (int(s) for s in a.workers.split(",")):
        out = WORK / f"dask{w}.json"
        r = run(model, data, out, ["--workers", str(w)])
        r["same_rules"] = out.read_bytes() == single.read_bytes()
        rows[f"Dask, {w} local worker{'s' if w > 1 else ''}"] = r
    base = rows["1 process (--device cpu)"]["wall_s"]
    one = next((r["wall_s"] for k, r in rows.items() if k.startswith("Dask, 1 ")), None)
    print(f"layer: {a.examples:,} examples x {a.inputs:,} inputs x {a.units} units, {a.classes} classes "
          f"(data {a.examples * a.inputs * 4 / 2**30:.2f} GiB)")
    print("| run | wall s | / 1 process | / 1 worker | client peak MiB | largest child MiB | same rules |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for k, r in rows.items():
        vs_one = "" if one is None else f"{r['wall_s'] / one:.2f}"
        print(f"| {k} | {r['wall_s']:.1f} | {r['wall_s'] / base:.2f} | {vs_one} | {r['client_peak_mib']:.0f} | "
              f"{r['child_peak_mib']:.0f} | {r.get('same_rules', '')} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"shape": vars(a), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
