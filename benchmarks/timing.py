"""What the benchmarks share: `mofn2logic` run as a user runs it, timed, in a subprocess; the MNIST
training images they extract from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"

RUNNER = """
import resource, sys, time
import mofn2logic
from mofn2logic.cli import main
print(f"BENCHPKG {mofn2logic.__file__}", file=sys.stderr)
t0 = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
self, kid = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = self.ru_utime + self.ru_stime + kid.ru_utime + kid.ru_stime  # all threads and workers, imports included
print(f"BENCH wall={wall:.3f} cpu={cpu:.3f} rss_main_kb={self.ru_maxrss} rss_worker_kb={kid.ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""

# the same, under cProfile, with the search on the main thread (its threads would hide from the profile)
PROFILER = """
import cProfile, io, pstats, sys
from mofn2logic.cli import main
from mofn2logic.search.backends import set_search_threads
set_search_threads(1)
prof = cProfile.Profile()
prof.enable()
code = main(sys.argv[2:])
prof.disable()
out = io.StringIO()
pstats.Stats(prof, stream=out).sort_stats(sys.argv[1]).print_stats(18)
print(out.getvalue())
sys.exit(code)
"""


def _env(source: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if source is not None:  # another checkout of the package (e.g. `git archive REV | tar -x -C DIR`)
        env["PYTHONPATH"] = str(source) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -P: without it `python -c` puts the working folder first on sys.path, and run from a checkout's root it
# imports that checkout's package whatever PYTHONPATH says (before this, a "before" run from the root ran
# the "after" code)
PYTHON = [sys.executable, "-P"]


def _check_package(stderr: str, source: Path | None) -> None:
    """The subprocess ran the package asked for: `source`'s, or the installed one."""
    line = next((s for s in stderr.splitlines() if s.startswith("BENCHPKG ")), "")
    got = Path(line.removeprefix("BENCHPKG ").strip()).resolve()
    if source is not None and not got.is_relative_to(Path(source).resolve()):
        raise SystemExit(f"the run meant for {source} imported mofn2logic from {got}")


def extract_args(model: Path, data: Path, key: str | None, device: str, out: Path) -> list[str]:
    args = ["extract", str(model), "--data", str(data), "-o", str(out), "--device", device]
    return args + (["--key", key] if key else [])


def run_cli(model: Path, data: Path, key: str | None, device: str, out: Path, source: Path | None = None) -> dict:
    """`mofn2logic extract` in a subprocess: wall time (in the process, after imports) and peak memory.
    `source`: run the package found there instead of the installed one."""
    proc = subprocess.run([*PYTHON, "-c", RUNNER, *extract_args(model, data, key, device, out)],
                          capture_output=True, text=True, env=_env(source))
    if proc.returncode:
        raise SystemExit(proc.stderr)
    _check_package(proc.stderr, source)
    line = next(s for s in proc.stderr.splitlines() if s.startswith("BENCH "))
    vals = dict(kv.split("=") for kv in line.split()[1:])
    return {"wall": float(vals["wall"]), "cpu": float(vals["cpu"]), "rss_main_gb": int(vals["rss_main_kb"]) / 1024**2,
            "rss_worker_gb": int(vals["rss_worker_kb"]) / 1024**2}


def profile_cli(model: Path, data: Path, key: str | None, device: str, out: Path, sort: str = "tottime",
                source: Path | None = None) -> str:
    """The top lines of a cProfile of `mofn2logic extract` (search on one thread)."""
    proc = subprocess.run([*PYTHON, "-c", PROFILER, sort, *extract_args(model, data, key, device, out)],
                          capture_output=True, text=True, env=_env(source))
    if proc.returncode:
        raise SystemExit(proc.stderr)
    text = proc.stdout
    start = text.find("   ncalls")
    return text[start:].rstrip() if start >= 0 else text


def mnist_data(n: int) -> Path:
    """The first `n` MNIST training images (benchmarks/mnist.py's split), saved once as _work/mnist_train_N.npy."""
    path = WORK / f"mnist_train_{n}.npy"
    if not path.is_file():
        from mnist import load_mnist

        x, _, held = load_mnist()
        train = x[~held]
        if len(train) < n:
            raise SystemExit(f"MNIST has {len(train)} training images here; {n} asked")
        WORK.mkdir(exist_ok=True)
        np.save(path, train[:n])
    return path
