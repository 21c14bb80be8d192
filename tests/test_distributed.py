"""The Dask path (mofn2logic.distributed): the exact sharded splits and histograms against the
single-machine code, and whole extractions on local clusters of 1, 2 and 3 workers against
`--device cpu` without Dask, byte for byte (rules.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_models
import pytest

from mofn2logic.distributed import splits as ds
from mofn2logic.distributed.histograms import merge_histograms
from mofn2logic.search.backends import NumpyBackend
from mofn2logic.search.splits import best_splits, binary_splits_per_target

if os.environ.get("CI", "").lower() != "true":  # the extra mofn2logic[dask] is in the test extra: CI has it
    pytest.importorskip("distributed")


def _sharded_splits(x, labels, n_classes, shards, bins, sample, kept_bins=False):
    parts = np.array_split(np.arange(len(x)), shards)
    edges = ds.edges_from_samples([ds.sample_part(x[p], sample) for p in parts], bins)
    r = None
    binned: dict[int, ds.Binned | None] = {}
    for p in parts:
        b, got_bins = ds.bin_part_and_bins(x[p], labels[p], n_classes, edges)
        binned[len(binned)] = got_bins if kept_bins else None
        r = b if r is None else ds.merge_bins(r, b)
    keep = ds.select_bins(r)
    v = None
    for i, p in enumerate(parts):
        q = ds.values_part(x[p], labels[p], edges, keep, binned[i])
        v = q if v is None else ds.merge_values(v, q)
    return ds.sweep(r, keep, v, n_classes), keep


def _columns(rng, kind, e, k):
    if kind == "normal":
        return rng.normal(size=(e, k)).astype(np.float32)
    if kind == "relu":  # many equal values (zeros) and ties
        return np.maximum(rng.normal(size=(e, k)), 0).round(1).astype(np.float32)
    return rng.integers(0, 4, size=(e, k)).astype(np.float64)


@pytest.mark.parametrize("kind", ["normal", "relu", "few"])
def test_sharded_splits_equal_best_splits(kind):
    rng = np.random.default_rng(7)
    for _ in range(40):
        e, k, c = int(rng.integers(2, 300)), int(rng.integers(1, 6)), int(rng.integers(2, 5))
        x = _columns(rng, kind, e, k)
        y = np.where(rng.random(e) < 0.6, (x[:, 0] > 0.2).astype(np.int64) % c, rng.integers(0, c, e))
        want, _ = best_splits(x, y, c)
        got, _ = _sharded_splits(x, y[:, None], c, int(rng.integers(1, 5)), int(rng.integers(2, 12)),
                                 int(rng.integers(1, 9)), kept_bins=bool(rng.random() < 0.5))
        assert got.dtype == want.dtype
        assert got[0].tobytes() == want.tobytes()


def test_sharded_binary_splits_equal_paper_mode_splits():
    rng = np.random.default_rng(8)
    for _ in range(30):
        e, k = int(rng.integers(2, 200)), int(rng.integers(1, 5))
        x = _columns(rng, ["normal", "relu", "few"][_ % 3], e, k).astype(np.float32)
        tb = rng.random((e, 3)) < 0.5
        tb[:, 0] = x[:, 0] > 0.1
        got, _ = _sharded_splits(x, tb.astype(np.int64), 2, int(rng.integers(1, 4)), int(rng.integers(2, 10)), 4)
        assert got.tobytes() == binary_splits_per_target(x, tb).tobytes()


def test_bins_without_a_best_cut_are_not_sent():
    """The bound prunes: on a smooth column only a few of many bins send their values."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(20000, 1)).astype(np.float32)
    y = (x[:, 0] + rng.normal(0, 0.5, 20000) > 0.3).astype(np.int64)
    got, keep = _sharded_splits(x, y[:, None], 2, 3, 128, 256)
    assert got[0].tobytes() == best_splits(x, y, 2)[0].tobytes()
    assert 0 < keep.sum() <= 32  # a quarter of the bins at most


def test_select_bins_keeps_every_bin_that_may_hold_a_best_cut():
    """Every cut between two distinct values, scored exactly: a cut inside a bin that select_bins drops
    scores below the best cut between bins, so the sweep, which cuts only inside kept bins, finds the best."""
    from mofn2logic.search.splits import split_gain, xlogx_table

    rng = np.random.default_rng(21)
    dropped = 0
    for it in range(40):
        e, c, n_lab = int(rng.integers(50, 4000)), int(rng.integers(2, 11)), int(rng.integers(1, 3))
        x = _columns(rng, ["normal", "relu", "normal", "few"][it % 4], e, 1)
        weak = rng.random((e, n_lab)) < [0.02, 0.3][it % 2]  # weakly or strongly informative labels
        labels = np.where(weak, (x > 0.1).astype(np.int64) * (c - 1), rng.integers(0, c, (e, n_lab)))
        edges = ds.edges_from_samples([ds.sample_part(x, int(rng.integers(8, 400)))], int(rng.integers(2, 300)))
        r, binned = ds.bin_part_and_bins(x, labels, c, edges)
        keep = ds.select_bins(r)
        order = np.argsort(x[:, 0], kind="stable")
        v, b = x[order, 0], binned.bins[0][order]
        cut = np.flatnonzero(v[1:] != v[:-1])  # a cut after position i
        table = xlogx_table(e)
        inside = b[cut] == b[cut + 1]
        for li in range(n_lab):
            left = np.cumsum(np.eye(c, dtype=np.int64)[labels[order, li]], axis=0)[cut]
            gain = split_gain(left, np.bincount(labels[:, li], minlength=c) - left, table)
            if not (~inside).any():
                continue
            best_between = gain[~inside].max()
            out = inside & ~keep[0, b[cut]]
            dropped += int(out.sum())
            assert (gain[out] < best_between).all()
    assert dropped > 1000  # the bound did drop bins with cuts inside


def test_narrow_bins_leave_few_values_of_weakly_informative_columns():
    """The labels hang weakly on many columns (as a layer's predicted class on its inputs): with
    bin_count's bins, pass 3 sends a small part of the values, and the splits stay exact."""
    rng = np.random.default_rng(22)
    e, k, c = 40000, 16, 10
    x = rng.normal(size=(e, k)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(k, c)) + rng.normal(0, 4, (e, c)), axis=1)
    bins = ds.bin_count(e)
    got, keep = _sharded_splits(x, y[:, None], c, 2, bins, ds.sample_size(bins, 2))
    assert got[0].tobytes() == best_splits(x, y, c)[0].tobytes()
    edges = ds.edges_from_samples([ds.sample_part(x, ds.sample_size(bins, 1))], bins)
    r, _ = ds.bin_part_and_bins(x, y[:, None], c, edges)
    sent = sum(int(r.counts[j, ds.select_bins(r)[j], 0].sum()) for j in range(k))
    assert sent < 0.25 * e * k


def test_bin_count_follows_the_examples_within_the_count_bytes():
    assert ds.bin_count(200_000, 2, 1, 10) == 1000  # about 200 examples a bin
    assert ds.bin_count(1_000) == ds.MIN_BINS and ds.bin_count(10**8) == ds.MAX_BINS
    # a 1,000-class head on 8 shards: a bin's counts (8 kB) would outweigh its ~160 values (5 B each)
    assert ds.bin_count(1_280_000, 8, 1, 1000) == ds.MIN_BINS
    assert ds.bin_count(2_000_000, 1, 1, 1000) == 2_000_000 * 5 // 8000
    assert ds.sample_size(1000, 3) == 2667


def test_a_heavy_value_gets_a_bin_of_its_own():
    """A ReLU's zeros (and any value sampled twice or more) form a bin with one value: nothing to send."""
    rng = np.random.default_rng(23)
    x = np.maximum(rng.normal(size=(5000, 3)), 0).astype(np.float32)
    edges = ds.edges_from_samples([ds.sample_part(x, 512)], 256)
    r, binned = ds.bin_part_and_bins(x, rng.integers(0, 3, (5000, 1)), 3, edges)
    for j in range(3):
        zero_bin = binned.bins[j][x[:, j] == 0]
        assert len(np.unique(zero_bin)) == 1
        assert r.lo[j, zero_bin[0]] == r.hi[j, zero_bin[0]] == 0
        assert (x[binned.bins[j] == zero_bin[0], j] == 0).all()


def test_bin_pass_equals_searchsorted_and_counting():
    """Pass 2's compiled read: each value's bin is searchsorted's (side right), the counts and the bins'
    least and greatest values are those of the values in it; pass 3 from the kept bins equals pass 3 anew."""
    rng = np.random.default_rng(11)
    for it in range(30):
        kind = ["normal", "relu", "few"][it % 3]
        e, k, c, n_lab = int(rng.integers(1, 300)), int(rng.integers(1, 6)), int(rng.integers(2, 5)), int(rng.integers(1, 3))
        x = _columns(rng, kind, e, k)
        if it % 4 == 0:  # infinities take the search's fallback
            x[rng.random(x.shape) < 0.05] = np.inf
            x[rng.random(x.shape) < 0.05] = -np.inf
        labels = rng.integers(0, c, (e, n_lab))
        edges = ds.edges_from_samples([ds.sample_part(x, int(rng.integers(1, 9)))], int(rng.integers(2, 12)))
        r, binned = ds.bin_part_and_bins(x, labels, c, edges)
        for col in range(k):
            want = np.searchsorted(edges[col], x[:, col], side="right")
            assert np.array_equal(binned.bins[col], want)
            for b in range(edges.shape[1] + 1):
                at = want == b
                for li in range(n_lab):
                    assert np.array_equal(r.counts[col, b, li], np.bincount(labels[at, li], minlength=c))
                assert r.lo[col, b] == (x[at, col].min() if at.any() else np.inf)
                assert r.hi[col, b] == (x[at, col].max() if at.any() else -np.inf)
        if it % 5 == 0:  # edges at -inf or +inf (not made by edges_from_samples, but searchsorted's bins all the same)
            edges = np.sort(np.concatenate([np.full((k, 2), -np.inf), edges, np.full((k, 1), np.inf)], 1), 1)
            r, binned = ds.bin_part_and_bins(x, labels, c, edges.astype(x.dtype))
            for col in range(k):
                assert np.array_equal(binned.bins[col], np.searchsorted(edges[col].astype(x.dtype), x[:, col], side="right"))
        keep = rng.random(r.lo.shape) < 0.5
        for (va, la), (vb, lb) in zip(ds.values_part(x, labels, edges, keep), ds.values_part(x, labels, edges, keep, binned)):
            assert va.tobytes() == vb.tobytes() and la.tobytes() == lb.tobytes()


def test_sparse_prefix_histogram_equals_the_dense_one():
    """A shard's histogram from the literal matrix's sparse rows (flipped rows for negative weights and
    complemented storage) equals the compiled dense histogram, array for array, empty shards included."""
    from mofn2logic.distributed.histograms import sparse_prefix_histogram
    from mofn2logic.search.backends import cpu_backend
    from mofn2logic.search.unit import SparseRows

    rng = np.random.default_rng(12)
    dense = cpu_backend()
    for it in range(200):
        n, e = int(rng.integers(1, 40)), int(rng.integers(0, 300))
        x = _columns(rng, ["normal", "relu", "few"][it % 3], e, n)
        t = x[rng.integers(0, e, n)].diagonal().copy() if e else np.zeros(n, x.dtype)
        rows = SparseRows.at_least(x, t)
        neg = rng.random(n) < 0.4
        order = rng.permutation(n)
        y = rng.random(e) < rng.random()
        want = dense.prefix_histogram((x.T >= t[:, None])[order] ^ neg[order][:, None], y)
        got = sparse_prefix_histogram(rows, order, neg, y)
        for a in ("lo", "hi", "offsets", "pos", "neg"):
            assert np.array_equal(getattr(got, a), getattr(want, a)), (it, a)


def test_chained_sums_give_numpys_std():
    """The std order's key: sums carried from shard to shard in example order give x.std(0) bit for bit."""
    from mofn2logic.distributed.search import chained_sum, std_from_sums

    rng = np.random.default_rng(13)
    for it in range(60):
        e, n = int(rng.integers(1, 9000)), int(rng.integers(2, 20))
        x = rng.normal(size=(e, n)) * rng.random(n) * 10.0 ** rng.integers(-3, 4) + rng.normal(size=n) * 50
        x = (np.maximum(x, 0) if it % 3 == 0 else x).astype([np.float32, np.float64][it % 2])
        parts = [p for p in np.split(x, np.sort(rng.integers(0, e, int(rng.integers(0, 4))))) if len(p)]
        total = squares = None
        for p in parts:
            total = chained_sum(total, p)
        mean = std_from_sums(total, None, e)
        for p in parts:
            squares = chained_sum(squares, p, mean)
        got = std_from_sums(total, squares, e)
        assert got.dtype == x.dtype and got.tobytes() == x.std(0).tobytes(), it


def test_merged_histograms_equal_the_whole():
    rng = np.random.default_rng(10)
    backend = NumpyBackend()
    for _ in range(20):
        n, e = int(rng.integers(1, 30)), int(rng.integers(2, 400))
        lits = rng.random((n, e)) < rng.random((n, 1))
        y = rng.random(e) < 0.4
        whole = backend.prefix_histogram(lits, y)
        merged = None
        for p in np.array_split(np.arange(e), int(rng.integers(1, 5))):
            merged = merge_histograms(merged, backend.prefix_histogram(lits[:, p], y[p]))
        for a in ("lo", "hi", "offsets", "pos", "neg"):
            assert np.array_equal(getattr(merged, a), getattr(whole, a)), a


# --------------------------------------------------------------------------- whole extractions

@pytest.fixture(scope="module")
def cases(tmp_path_factory, default_model, digits):
    d = tmp_path_factory.mktemp("dask")
    np.save(d / "digits.npy", digits["images"][:300])
    out = {"cnn": (default_model, d / "digits.npy")}
    for name, model in (("gemm64", onnx_models.gemm_zoo(dtype=np.float64)), ("convbn", onnx_models.conv_bn_gap())):
        path = onnx_models.save(model, d / f"{name}.onnx")
        np.save(d / f"{name}.npy", onnx_models.sample_input(model, n=150, seed=3))
        out[name] = (path, d / f"{name}.npy")
    return out


@pytest.fixture(scope="module")
def clusters():
    """Local clusters of 1, 2 and 3 single-threaded worker processes (threads of one process would share
    CPython 3.11's compiler, which is not thread-safe: "AST constructor recursion depth mismatch")."""
    from distributed import Client, LocalCluster

    made = {}
    try:
        for n in (1, 2, 3):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
            made[n] = (cluster, Client(cluster))
        yield {n: c for n, (_, c) in made.items()}
    finally:
        for cluster, client in made.values():
            client.close()
            cluster.close()


def _rules_bytes(rs, path: Path) -> bytes:
    from mofn2logic.search.rules_file import write_rules

    write_rules(rs, path)
    return path.read_bytes()


@pytest.mark.parametrize("case,mode,order,conv_examples", [
    ("cnn", "chain", "weight", 2000),  # conv (drawn examples, new channel split) -> pooling -> dense
    pytest.param("cnn", "paper", "gain", 2000, marks=pytest.mark.slow),
    ("gemm64", "chain", "weight", 2000),  # float64, a first dense layer split anew
    ("gemm64", "paper", "weight", 2000),
    ("gemm64", "chain", "std", 2000),  # the std key from sums chained over the shards
    ("cnn", "paper", "std", 2000),
    # every (sample, position); average pooling breaks the chain
    pytest.param("convbn", "chain", "gain", 100000, marks=pytest.mark.slow),
    # the pooled searches (small, exact, local) from the shards' counts and literal rows (distributed.best); in
    # chain mode each layer's new input splits for its targets (target_input_splits) too
    ("cnn", "chain", "best", 2000),
    ("gemm64", "chain", "exact", 2000),
    ("gemm64", "paper", "best", 2000),  # free thresholds: every input's quantile cuts
    pytest.param("cnn", "paper", "exact", 2000, marks=pytest.mark.slow),
    ("convbn", "chain", "best", 100000),  # conv layers of every (sample, position): each shard's examples counted
])
def test_cluster_rules_equal_single_machine_rules(cases, clusters, tmp_path, case, mode, order, conv_examples):
    from mofn2logic import api
    from mofn2logic.distributed import run

    model, data = cases[case]
    opts = {"mode": mode, "order": order, "conv_examples": conv_examples, "betas": (0.0, 0.2, 5.0), "batch_size": 32}
    want = _rules_bytes(api.extract(model, data, device="cpu", **opts), tmp_path / "one.json")
    for workers in (1, 2, 3):
        rs = run.extract(model, data, client=clusters[workers], shards=workers + 1, **opts)
        assert _rules_bytes(rs, tmp_path / f"dask{workers}.json") == want, f"{workers} workers"


def test_workers_on_other_machines_are_told_apart(clusters):
    """The default store (a folder on the client's machine) is refused when a worker runs elsewhere: which
    workers do is read from their addresses."""
    from mofn2logic.distributed.cluster import is_local_address, remote_workers

    assert is_local_address("127.0.0.1") and is_local_address("localhost")
    assert not is_local_address("192.0.2.1") and not is_local_address("no-such-host.invalid")  # TEST-NET-1, RFC 2606
    assert remote_workers(["tcp://127.0.0.1:4000", "tcp://192.0.2.1:4000"]) == ["tcp://192.0.2.1:4000"]
    assert remote_workers(clusters[2].scheduler_info()["workers"]) == []


def test_cli_refuses_what_cannot_be_exact(cases, tmp_path):
    model, data = cases["gemm64"]
    for extra, word in ((["--fit-on", "program"], "fit-on 'program'"), (["--conv-position", "best"], "conv position"),
                        (["--order", "weight", "--from", "fc1"], "--from"),
                        (["--order", "weight", "--class-names", str(data)], "--class-names")):
        out = tmp_path / "r.json"
        p = subprocess.run([sys.executable, "-m", "mofn2logic", "extract", str(model), "--data", str(data), "-o", str(out),
                            "--workers", "1", *extra], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        assert word in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not out.exists()


def test_harvest_writes_a_sharded_store(cases, tmp_path):
    from mofn2logic.distributed.store import open_shard
    from mofn2logic.onnx.harvest import harvest

    model, data = cases["cnn"]
    out = tmp_path / "store"
    p = subprocess.run([sys.executable, "-m", "mofn2logic", "harvest", str(model), "--data", str(data), "-o", str(out),
                        "--workers", "2", "--batch-size", "64"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    index = json.loads((out / "shards.json").read_text())
    assert [(s["start"], s["stop"]) for s in index["shards"]] == [(0, 192), (192, 300)]  # whole batches
    import mofn2logic as M

    net = M.import_network(model)
    whole = harvest(net, model, np.load(data), batch_size=64, preactivations=False)
    from mofn2logic.distributed.store import Shard

    for s in index["shards"]:
        assert "input_rows_of" not in s  # the harvest command's store stands alone: the input is copied
        got = open_shard(Shard(str(out / s["directory"]), s["start"], s["stop"]))
        assert set(got) == set(whole)
        for name, arr in got.items():
            assert np.array_equal(arr, whole[name][s["start"]:s["stop"]]), name


@pytest.mark.parametrize("dtype,linked", [(np.float32, True), (np.float64, False)])
def test_extract_store_reads_the_input_in_place(cases, clusters, tmp_path, dtype, linked):
    """An extract's store reads the network's input from an .npy data file of the model's dtype instead of
    copying it (the data file cast to another dtype is copied); every tensor reads as the whole harvest's."""
    import mofn2logic as M
    from mofn2logic.distributed.store import harvest_sharded, open_shard
    from mofn2logic.inputs import load_model
    from mofn2logic.onnx.harvest import harvest

    model, data = cases["convbn"]
    x = np.load(data).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    s = harvest_sharded(clusters[2], load_model(model), str(tmp_path / "x.npy"), None, tmp_path / "store", shards=2,
                        batch_size=32, link_input=True)
    net = M.import_network(model)
    whole = harvest(net, model, x.astype(np.float32), batch_size=32, preactivations=False)
    for sh in s.shards:
        assert (sh.linked is not None) == linked
        assert (net.input not in json.loads((Path(sh.directory) / "index.json").read_text())) == linked
        got = open_shard(sh)
        assert set(got) == set(whole)
        for name, arr in got.items():
            assert arr.tobytes() == np.asarray(whole[name][sh.start:sh.stop]).tobytes(), name
    assert s.shapes[net.input] == tuple(whole[net.input].shape[1:]) and s.dtypes[net.input] == "float32"


def test_no_dask_without_the_options(cases, tmp_path):
    model, data = cases["gemm64"]
    code = ("import sys\nfrom mofn2logic.cli import main\n"
            f"rc = main(['extract', {str(model)!r}, '--data', {str(data)!r}, '-o', {str(tmp_path / 'r.json')!r}, "
            "'--device', 'cpu'])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'zarr'))\n"
            "print(rc, bad)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.stdout.strip().splitlines()[-1] == "0 []", p.stdout + p.stderr


# --------------------------------------------------------------------------- a real scheduler

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Cluster:
    """`dask scheduler` and `dask worker` processes on localhost, each in its own process group."""

    def __init__(self, tmp: Path, workers: int) -> None:
        import os
        import shutil

        import mofn2logic

        self.dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
        assert self.dask, "the `dask` command of the distributed package"
        self.env = {**os.environ, "PYTHONPATH": str(Path(mofn2logic.__file__).parents[1]),
                    "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log = open(tmp / "cluster.log", "w")
        self.procs = [self._start("scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--no-dashboard")]
        self.workers = [self._start("worker", self.address, "--nthreads", "1", "--no-dashboard",
                                    "--local-directory", str(tmp / f"w{k}")) for k in range(workers)]
        self.procs += self.workers
        self._wait(workers)

    def _start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([self.dask, *args], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def _wait(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(workers, timeout=60)

    def kill(self, proc: subprocess.Popen) -> None:
        import os
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def close(self) -> None:
        for p in reversed(self.procs):
            self.kill(p)
        self.log.close()


@pytest.fixture
def real_cluster(tmp_path):
    c = _Cluster(tmp_path, workers=2)
    try:
        yield c
    finally:
        c.close()


def _extract_cmd(model, data, out, *extra):
    return [sys.executable, "-m", "mofn2logic", "extract", str(model), "--data", str(data), "-o", str(out),
            "--beta", "0,0.2,5", "--conv-examples", "2000", "--batch-size", "32", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("order", ["weight", "best"])  # best: unit tasks that submit their own shard tasks
def test_real_scheduler_and_a_worker_killed_mid_run(cases, tmp_path, real_cluster, order):
    import os
    import time

    model, data = cases["cnn"]
    single = tmp_path / "single.json"
    p = subprocess.run(_extract_cmd(model, data, single, "--device", "cpu", "--order", order), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "dask.json"
    env = real_cluster.env
    p = subprocess.run(_extract_cmd(model, data, out, "--scheduler", real_cluster.address, "--shards", "4",
                                    "--order", order), capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == single.read_bytes()

    # a worker killed once the shards are harvested: Dask reruns its tasks on the other worker (the
    # shards are on a shared disk), or the command fails in one line; never other rules or a partial file
    out2, store = tmp_path / "killed.json", tmp_path / "store"
    run = subprocess.Popen(_extract_cmd(model, data, out2, "--scheduler", real_cluster.address, "--shards", "4",
                                        "--store", str(store), "--order", order), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE,
                           text=True, env=env)
    deadline = time.time() + 120
    while not (store / "shards.json").exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed_mid_run = run.poll() is None
    real_cluster.kill(real_cluster.workers[0])
    stdout, stderr = run.communicate(timeout=300)
    if run.returncode == 0:
        assert out2.read_bytes() == single.read_bytes()
    else:
        assert run.returncode == 2, stderr
        assert len(stderr.strip().splitlines()) == 1 and "error:" in stderr, stderr
        assert not out2.exists()
        assert not [f for f in os.listdir(tmp_path) if f.startswith(".killed")]
    assert killed_mid_run, "the extraction ended before the worker was killed: nothing was tested"
