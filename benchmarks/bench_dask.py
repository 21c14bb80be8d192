"""The Dask path on a synthetic layer: one process against local clusters of 1 and 2 workers.

    .venv/bin/python benchmarks/bench_dask.py --examples 200000 --inputs 2048 --units 64

A dense layer (inputs -> units, ReLU) under a softmax layer of `--classes` units, random weights and
random normal data (an .npy written once to benchmarks/_work/dask). Each run is one `mofn2logic
extract --layers fc1` in its own process (chain mode, `--order`, default weight): the first layer's input splits,
its head splits and every unit's search. Reported per run: wall time, the command process's peak
RSS (the client, for the Dask runs: its workers are other processes) and its largest child's (a
worker's), its CPU seconds and the load average; before each Dask run, a probe of the CPU two processes
get together against one (2.0 on two free cores): on a shared machine it says what 2 workers could gain.
The rules.json of every Dask run must equal the single process's byte for byte.
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
import json, os, resource, sys, time
from mofn2logic.cli import main
load = os.getloadavg()[0]
t = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
# this process's own peak (VmHWM): ru_maxrss may keep the forking parent's size across the exec
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else me.ru_maxrss / 1024
print("BENCH " + json.dumps({"rc": rc, "wall_s": wall, "load_before": load, "load_after": os.getloadavg()[0],
      "client_cpu_s": me.ru_utime + me.ru_stime, "children_cpu_s": kids.ru_utime + kids.ru_stime,
      "client_peak_mib": peak, "child_peak_mib": kids.ru_maxrss / 1024}))
"""


PROBE = """
import time, numpy as np
x = np.random.default_rng(0).normal(size=2_000_000).astype(np.float32)
t = time.perf_counter()
while time.perf_counter() - t < 3.0:
    np.sort(x)
print(time.process_time())
"""


def cpu_probe() -> float:
    """CPU seconds two busy processes get together in 3 s, over what one alone gets: 2.0 on two idle cores,
    about 1.0 when the machine's other load leaves room for one process only (then 2 workers cannot beat 1)."""
    def together(n: int) -> float:
        ps = [subprocess.Popen([sys.executable, "-c", PROBE], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return sum(float(p.communicate()[0]) for p in ps)

    return together(2) / together(1)


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


def run(model: Path, data: Path, out: Path, extra: list[str], order: str = "weight") -> dict:
    cmd = [sys.executable, "-c", RUNNER, "extract", str(model), "--data", str(data), "-o", str(out),
           "--layers", "fc1", "--batch-size", "1024", "--order", order, *extra]
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
    ap.add_argument("--repeat", type=int, default=1,
                    help="Dask runs per worker count, alternated (1, 2, 2, 1, ...) so a changing load hits both alike")
    ap.add_argument("--no-single", action="store_true", help="skip the single-process run (rules then not compared)")
    ap.add_argument("--order", default="weight", help="the search order (exact and best run each unit's pooled "
                    "searches on one worker, from the shards' counts and literal rows)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()
    model, data = build(a.examples, a.inputs, a.units, a.classes)
    rows: dict[str, dict] = {}
    single = WORK / "single.json"
    if not a.no_single:
        rows["1 process (--device cpu)"] = run(model, data, single, ["--device", "cpu"], a.order)
    counts = [int(s) for s in a.workers.split(",")]
    for rep in range(a.repeat):
        for w in (counts if rep % 2 == 0 else counts[::-1]):
            out = WORK / f"dask{w}.json"
            probe = cpu_probe()
            r = run(model, data, out, ["--workers", str(w)], a.order)
            r["cpu_probe"] = probe
            r["same_rules"] = "" if a.no_single else out.read_bytes() == single.read_bytes()
            rows[f"Dask, {w} local worker{'s' if w > 1 else ''}" + (f" (run {rep + 1})" if a.repeat > 1 else "")] = r
    base = rows.get("1 process (--device cpu)", {}).get("wall_s")
    ones = [r["wall_s"] for k, r in rows.items() if k.startswith("Dask, 1 ")]
    one = min(ones) if ones else None
    print(f"layer: {a.examples:,} examples x {a.inputs:,} inputs x {a.units} units, {a.classes} classes, order {a.order} "
          f"(data {a.examples * a.inputs * 4 / 2**30:.2f} GiB); / 1 worker: against the fastest 1-worker run")
    print("| run | wall s | / 1 process | / 1 worker | CPU s (client + children) | load avg before / after | "
          "2-process CPU probe | client peak MiB | largest child MiB | same rules |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for k, r in rows.items():
        vs_one = "" if one is None else f"{r['wall_s'] / one:.2f}"
        vs_base = "" if base is None else f"{r['wall_s'] / base:.2f}"
        print(f"| {k} | {r['wall_s']:.1f} | {vs_base} | {vs_one} | {r['client_cpu_s'] + r['children_cpu_s']:.0f} | "
              f"{r['load_before']:.1f} / {r['load_after']:.1f} | {r.get('cpu_probe', float('nan')):.2f} | "
              f"{r['client_peak_mib']:.0f} | "
              f"{r['child_peak_mib']:.0f} | {r.get('same_rules', '')} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"shape": vars(a), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
