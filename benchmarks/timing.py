"""What the benchmarks share: `mofn2logic` run as a user runs it, timed, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNNER = """
import resource, sys, time
from mofn2logic.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"BENCH wall={wall:.3f} rss_main_kb={me} rss_worker_kb={kids}", file=sys.stderr)
sys.exit(code)
"""


def run_cli(model: Path, data: Path, key: str | None, device: str, out: Path) -> dict:
    """`mofn2logic extract` in a subprocess: wall time (in the process, after imports) and peak memory."""
    args = [sys.executable, "-c", RUNNER, "extract", str(model), "--data", str(data), "-o", str(out),
            "--device", device]
    if key:
        args += ["--key", key]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    line = next(s for s in proc.stderr.splitlines() if s.startswith("BENCH"))
    vals = dict(kv.split("=") for kv in line.split()[1:])
    return {"wall": float(vals["wall"]), "rss_main_gb": int(vals["rss_main_kb"]) / 1024**2,
            "rss_worker_gb": int(vals["rss_worker_kb"]) / 1024**2}
