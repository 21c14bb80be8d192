"""Hostile data, labels, options, output paths, signals and names, each through the real command
line. Every refusal keeps the README's promise: exit status 2, exactly one line on stderr,
`mofn2logic COMMAND: error: ...` saying what was expected and what arrived, no traceback, no
warning lines, and nothing left behind (no output, no temporary file or folder)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

import mofn2logic
from mofn2logic.cli import main

MODEL = mofn2logic.default_model_path()
needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
LAST = "node_linear_1"
N = 20  # samples in the good data set


def cli(capsys, *argv):
    """Exit status, stdout, stderr of `mofn2logic ARGV` in this process (the parser's own errors
    leave through SystemExit(2), as argparse's do)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def tree(folder: Path) -> set[str]:
    """Every path under `folder`, hidden ones included (temporary files start with a dot)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def npy_header(shape, descr="<f4") -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.fixture(scope="module")
def w(tmp_path_factory, digits):
    """The inputs, good and bad, written once; `w.root` holds only inputs."""
    d = tmp_path_factory.mktemp("hostile")
    x, y = digits["images"][:N], digits["labels"][:N]
    f = SimpleNamespace(root=d, model=MODEL)

    def save(name, array, **kw):
        np.save(d / name, array, **kw)
        return d / name

    def text(name, content, mode="w"):
        (d / name).write_bytes(content) if mode == "wb" else (d / name).write_text(content)
        return d / name

    f.x, f.y = save("x.npy", x), save("y.npy", y)
    # data files
    (d / "folder.npy").mkdir()
    f.folder = d / "folder.npy"
    os.mkfifo(d / "fifo.npy")
    f.fifo = d / "fifo.npy"
    os.symlink("/dev/zero", d / "zero.npy")
    f.device = d / "zero.npy"
    f.txt = text("x.txt", "1,2,3\n")
    f.junk_npy = text("junk.npy", b"this is not numpy" * 10, "wb")
    f.huge_npy = text("huge.npy", npy_header((10**12, 1, 8, 8)) + b"\0" * 64, "wb")
    f.trunc_npy = text("trunc.npy", (d / "x.npy").read_bytes()[:2000], "wb")
    f.obj_npy = save("obj.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
    f.scalar_npy = save("scalar.npy", np.float32(1.0))
    f.empty_npy = save("empty.npy", np.zeros((0, 1, 8, 8), np.float32))
    f.shape_npy = save("shape.npy", np.zeros((3, 7), np.float32))
    f.str_npy = save("str.npy", np.array([["x"] * 64] * 2))
    f.complex_npy = save("complex.npy", np.zeros((2, 64), np.complex128))
    f.nan_npy = save("nan.npy", np.where(np.arange(2 * 64).reshape(2, 64) == 70, np.nan, 0.0))
    f.range_npy = save("range.npy", np.where(np.arange(3 * 64).reshape(3, 64) == 130, 1e300, 0.0))
    f.f64_npy = save("f64.npy", x.astype(np.float64))
    np.savez_compressed(d / "bomb.npz", x=np.zeros((32768, 1, 8, 8), np.float32))  # 8 MiB of zeros, ~8 KB
    f.bomb_npz = d / "bomb.npz"
    with zipfile.ZipFile(d / "liar.npz", "w") as z:  # a member whose header claims 10^12 samples
        z.writestr("x.npy", npy_header((10**12, 1, 8, 8)) + b"\0" * 64)
    f.liar_npz = d / "liar.npz"
    f.notzip_npz = text("notzip.npz", b"PK? not really a zip" * 5, "wb")
    np.savez(d / "two.npz", a=x, b=x)
    f.two_npz = d / "two.npz"
    np.savez(d / "objz.npz", x=np.array([None, 1], dtype=object), allow_pickle=True)
    f.obj_npz = d / "objz.npz"
    with zipfile.ZipFile(d / "textmember.npz", "w") as z:
        z.writestr("readme.txt", "hello")
    f.textmember_npz = d / "textmember.npz"
    flat = x.reshape(N, 64)
    f.ragged_csv = text("ragged.csv", "\n".join(",".join(map(str, r)) for r in flat[:3]) + "\n1,2,3\n")
    f.words_csv = text("words.csv", "\n".join(",".join(map(str, r)) for r in flat[:2]) + "\n" + ",".join(["cat"] * 64))
    f.empty_csv = text("empty.csv", "")
    f.big_csv = text("big.csv", "\n".join(",".join(map(str, r)) for r in flat) + "\n")
    f.binary_csv = text("binary.csv", b"\xff\xfe\x00\x81" * 64, "wb")
    # labels
    f.y_str = save("y_str.npy", np.array([str(v) for v in y]))
    f.y_half = save("y_half.npy", np.where(np.arange(N) == 3, 0.5, 1.0))
    f.y_nan = save("y_nan.npy", np.where(np.arange(N) == 5, np.nan, 1.0))
    f.y_short = save("y_short.npy", y[:N - 1])
    f.y_onehot = save("y_onehot.npy", np.eye(10)[y])
    f.y_bool = save("y_bool.npy", y > 4)
    f.y_neg = save("y_neg.npy", np.where(np.arange(N) == 2, -1, y.astype(np.int64)))
    f.y_big = save("y_big.npy", np.where(np.arange(N) == 4, 10, y.astype(np.int64)))
    f.y_huge = save("y_huge.npy", np.where(np.arange(N) == 6, 1e30, 1.0))
    f.y_words_csv = text("y_words.csv", "label\n" + "\n".join(["1"] * 5 + ["cat"] + ["1"] * (N - 6)) + "\n")
    f.y_two_csv = text("y_two.csv", "\n".join(f"{v},{v}" for v in y) + "\n")
    np.savez(d / "y_two.npz", a=y, b=y)
    f.y_two_npz = d / "y_two.npz"
    # a rule set and a program for `verify` and `compile`
    work = tmp_path_factory.mktemp("hostile-work")
    f.rules, f.prog = work / "rules.json", work / "p.mofn"
    assert main(["extract", str(MODEL), "--data", str(f.x), "-o", str(f.rules), "--layers", LAST,
                 "--device", "cpu"]) == 0
    assert main(["compile", str(f.rules), "--cut", LAST, "-o", str(f.prog)]) == 0
    f.regular = text("regular-file", "not a folder")
    (d / "not-a-report").mkdir()
    (d / "not-a-report" / "notes.txt").write_text("mine")
    os.symlink(d / "x.npy", d / "x-link.npy")
    return f


def refused(capsys, root: Path, argv, pattern: str) -> str:
    """`mofn2logic ARGV` is refused as promised; `root`: a folder that must not change."""
    root = Path(root)
    before = tree(root)
    code, _, err = cli(capsys, *argv)
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and err.endswith("\n"), err
    command = str(argv[0])
    assert lines[0].startswith(f"mofn2logic {command}: error: "), err
    assert re.search(pattern, lines[0]), (pattern, err)
    assert "Traceback" not in err and "warning" not in err.lower(), err
    assert tree(root) == before, tree(root) ^ before
    return lines[0]


def harvest(w, tmp_path, data, *more):
    return ["harvest", w.model, "--data", data, "-o", tmp_path / "acts.npz", *more]


# --------------------------------------------------------------------------- data files

DATA_CASES = [
    ("missing", lambda w: w.root / "none.npy", (), r"data file '.*none\.npy' does not exist"),
    ("folder", lambda w: w.folder, (), r"data file '.*folder\.npy' is a folder; expected a regular file"),
    ("fifo", lambda w: w.fifo, (), r"data file '.*fifo\.npy' is a named pipe; expected a regular file"),
    ("device", lambda w: w.device, (), r"data file '.*zero\.npy' is a device; expected a regular file"),
    ("suffix", lambda w: w.txt, (), r"has suffix '\.txt'; expected one of \.npy, \.npz, \.csv"),
    ("npy junk", lambda w: w.junk_npy, (), r"cannot read '.*junk\.npy' as \.npy data: .*magic"),
    ("npy declares 10^12 rows", lambda w: w.huge_npy, (),
     r"declares shape \(1000000000000, 1, 8, 8\) float32 \(232\.8 TiB\) but holds 64 bytes of data; "
     r"expected a complete \.npy array"),
    ("npy truncated", lambda w: w.trunc_npy, (),
     r"declares shape \(20, 1, 8, 8\) float32 \(5 KiB\) but holds 1\.8 KiB of data"),
    ("npy pickled objects", lambda w: w.obj_npy, (),
     r"holds Python objects \(dtype object\); expected an array of numbers"),
    ("npy scalar", lambda w: w.scalar_npy, (), r"is empty \(shape \(\)\); expected at least one sample"),
    ("npy no rows", lambda w: w.empty_npy, (), r"is empty \(shape \(0, 1, 8, 8\)\)"),
    ("sample shape", lambda w: w.shape_npy, (), r"samples of shape \(7,\); the model expects \(1, 8, 8\)"),
    ("text dtype", lambda w: w.str_npy, (), r"has dtype <U1; expected numbers \(the model takes float32\)"),
    ("complex dtype", lambda w: w.complex_npy, (), r"has dtype complex128; expected numbers"),
    ("nan", lambda w: w.nan_npy, (), r"contains 1 non-finite values \(first: NaN in sample 1\); expected finite"),
    ("beyond float32", lambda w: w.range_npy, (),
     r"holds 1 values beyond the range of float32 \(first: 1e\+300 in sample 2\); expected numbers within"),
    ("cast over budget", lambda w: w.f64_npy, ("--memory-budget", "4K"),
     r"as float32 takes 5 KiB in memory; more than the memory budget of 4 KiB"),
    ("npz bomb", lambda w: w.bomb_npz, ("--memory-budget", "1M"),
     r"bomb\.npz' array 'x' inflates to 8 MiB; more than the memory budget of 1 MiB"),
    ("npz member declares 10^12 rows", lambda w: w.liar_npz, (),
     r"liar\.npz' array 'x' declares shape \(1000000000000, 1, 8, 8\) float32 .* but holds 64 bytes"),
    ("npz not a zip", lambda w: w.notzip_npz, (), r"cannot read '.*notzip\.npz' as \.npz data: File is not a zip"),
    ("npz two arrays", lambda w: w.two_npz, (), r"holds arrays \['a', 'b'\]: expected one array, or a key"),
    ("npz missing key", lambda w: w.two_npz, ("--key", "nope"), r"has no array 'nope'; it holds \['a', 'b'\]"),
    ("npz pickled member", lambda w: w.obj_npz, (), r"array 'x' holds Python objects \(dtype object\)"),
    ("npz text member", lambda w: w.textmember_npz, (), r"array 'readme\.txt' is not an \.npy member"),
    ("key for npy", lambda w: w.x, ("--key", "images"),
     r"is a \.npy file, which holds one array; a key \('images'\) names an array inside an \.npz file"),
    ("csv ragged", lambda w: w.ragged_csv, (), r"cannot read '.*ragged\.csv' as \.csv data: .*columns"),
    ("csv words", lambda w: w.words_csv, (), r"as \.csv data: could not convert string 'cat'"),
    ("csv empty", lambda w: w.empty_csv, (), r"data '.*empty\.csv' is empty"),
    ("csv over budget", lambda w: w.big_csv, ("--memory-budget", "8K"),
     r"has [\d.]+ KiB of CSV text, up to [\d.]+ KiB as numbers; more than the memory budget of 8 KiB"),
    ("csv not text", lambda w: w.binary_csv, (), r"cannot read '.*binary\.csv' as \.csv data: .*utf-8"),
]


@pytest.mark.parametrize("make, more, pattern", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_hostile_data(capsys, tmp_path, w, make, more, pattern):
    refused(capsys, w.root, harvest(w, tmp_path, make(w), *more), pattern)
    assert not list(tmp_path.iterdir())


def test_big_declared_data_is_refused_before_allocating(capsys, tmp_path, w):
    """The header is read, not the data: a refusal of 232 TiB takes no time and no memory."""
    t = time.perf_counter()
    refused(capsys, w.root, ["extract", w.model, "--data", w.huge_npy, "-o", tmp_path / "r.json"], r"232\.8 TiB")
    assert time.perf_counter() - t < 5


# --------------------------------------------------------------------------- labels

LABEL_CASES = [
    ("text", "y_str", (), r"labels '.*y_str\.npy' have dtype <U1; expected integer class indices"),
    ("non-integer", "y_half", (), r"contain 1 non-integer values \(first: 0\.5 at sample 3\); expected integer"),
    ("nan", "y_nan", (), r"contain 1 non-finite values \(first: nan at sample 5\); expected integer"),
    ("short", "y_short", (), r"have 19 entries; the data has 20 samples"),
    ("one-hot", "y_onehot", (), r"have shape \(20, 10\); expected one class index per sample, shape \(20,\)"),
    ("bool", "y_bool", (), r"have dtype bool; expected integer class indices"),
    ("negative", "y_neg", (), r"contain 1 negative values \(first: -1 at sample 2\); expected class indices >= 0"),
    ("beyond the classes", "y_big", (),
     r"contain 1 values >= 10 \(first: 10 at sample 4\); expected class indices 0\.\.9 \(the model has 10 classes\)"),
    ("huge float", "y_huge", (), r"contain 1 values >= 10 \(first: 1e\+30 at sample 6\)"),
    ("csv word", "y_words_csv", (), r"as \.csv data: could not convert string 'cat'"),
    ("csv two columns", "y_two_csv", (), r"have shape \(20, 2\); expected one class index per sample"),
    ("npz two arrays", "y_two_npz", (), r"y_two\.npz' holds arrays \['a', 'b'\]: expected one array"),
    ("npz missing key", "y_two_npz", ("--labels-key", "c"), r"has no array 'c'; it holds \['a', 'b'\]"),
]


@pytest.mark.parametrize("name, more, pattern", [c[1:] for c in LABEL_CASES], ids=[c[0] for c in LABEL_CASES])
def test_hostile_labels_verify(capsys, w, name, more, pattern):
    refused(capsys, w.root, ["verify", w.prog, w.model, "--data", w.x, "--labels", getattr(w, name), *more], pattern)


@pytest.mark.parametrize("name, pattern", [
    ("y_half", r"labels '.*y_half\.npy' contain 1 non-integer values"),
    ("y_big", r"labels '.*y_big\.npy' contain 1 values >= 10"),
])
def test_hostile_labels_run(capsys, tmp_path, w, name, pattern):
    refused(capsys, tmp_path, ["run", w.model, "--data", w.x, "--labels", getattr(w, name), "-o", tmp_path / "out"],
            pattern)
    assert not list(tmp_path.iterdir())


def test_labels_key_without_labels(capsys, w):
    refused(capsys, w.root, ["verify", w.prog, w.model, "--data", w.x, "--labels-key", "y"],
            r"a labels key \('y'\) was given without labels")


# --------------------------------------------------------------------------- options

def _extract(w, tmp_path, *more):
    return ["extract", w.model, "--data", w.x, "-o", tmp_path / "r.json", "--layers", LAST, "--device", "cpu", *more]


def _run(w, tmp_path, *more):
    return ["run", w.model, "--data", w.x, "-o", tmp_path / "out", "--no-paper", *more]


OPTION_CASES = [
    ("holdout 1", _run, ("--holdout", "1"), r"argument --holdout: expected a share in \[0, 1\), got '1'"),
    ("holdout nan", _run, ("--holdout", "nan"), r"expected a share in \[0, 1\), got 'nan'"),
    ("holdout negative", _run, ("--holdout", "-0.1"), r"expected a share in \[0, 1\), got '-0\.1'"),
    ("holdout leaves none", _run, ("--holdout", "0.01"),
     r"20 samples cannot be split into fitting and held-out parts \(20 fitting, 0 held out\)"),
    ("seed negative", _run, ("--seed", "-1"), r"argument --seed: expected an integer from 0 to \d+, got '-1'"),
    ("program beta not searched", _run, ("--beta", "0,0.2", "--program-beta", "0.3"),
     r"the program beta 0\.3 is not among the betas searched \(0, 0\.2\); expected one of them"),
    ("program beta list", _run, ("--program-beta", "0,1"), r"argument --program-beta: expected one beta, got '0,1'"),
    ("run batch size 0", _run, ("--batch-size", "0"), r"argument --batch-size: expected an integer from 1 to 65536"),
    ("batch size 0", _extract, ("--batch-size", "0"), r"expected an integer from 1 to 65536, got '0'"),
    ("batch size negative", _extract, ("--batch-size", "-5"), r"got '-5'"),
    ("batch size text", _extract, ("--batch-size", "many"), r"expected an integer from 1 to 65536, got 'many'"),
    ("batch size huge", _extract, ("--batch-size", str(10**9)), r"got '1000000000'"),
    ("memory budget garbage", _extract, ("--memory-budget", "lots"),
     r"argument --memory-budget: expected a positive size such as 512M, 2G or a number of bytes, got 'lots'"),
    ("memory budget zero", _extract, ("--memory-budget", "0"), r"got '0'"),
    ("beta negative", _extract, ("--beta", "-1"), r"argument --beta: beta '-1' is not a non-negative number"),
    ("beta nan", _extract, ("--beta", "0,nan"), r"beta 'nan' is not a non-negative number"),
    ("beta inf", _extract, ("--beta", "inf"), r"beta 'inf' is not a non-negative number"),
    ("beta empty", _extract, ("--beta", ""), r"beta '' is not a non-negative number"),
    ("beta text", _extract, ("--beta", "low,high"), r"beta 'low' is not a non-negative number"),
    ("beta twice", _extract, ("--beta", "0,0.2,0"), r"expected distinct betas, got 0 more than once in '0,0\.2,0'"),
    ("betas too many", _extract, ("--beta", ",".join(str(i) for i in range(65))), r"expected at most 64 betas, got 65"),
    ("layer unknown", _extract, ("--layers", "fc9"),
     r"unknown layer 'fc9'; the model has 'node_conv2d', 'node_conv2d_1', 'node_linear', 'node_linear_1'"),
    ("layers empty", _extract, ("--layers", ","), r"argument --layers: expected comma-separated layer names, got ','"),
    ("pool 0", _extract, ("--pool", "0"), r"argument --pool: expected an integer >= 1, got '0'"),
    ("small-n negative", _extract, ("--small-n", "-1"), r"argument --small-n: expected an integer >= 0, got '-1'"),
    ("small-n search too large", _extract, ("--order", "best", "--small-n", "9", "--pool", "200"),
     r"search with a pool of \d+ literals and N up to 9 would score [\d,]+ subsets per unit; "
     r"expected at most [\d,]+"),
    ("conv examples 0", _extract, ("--conv-examples", "0"), r"argument --conv-examples: expected an integer >= 1"),
    ("providers unknown", _extract, ("--providers", "WarpDriveExecutionProvider"),
     r"argument --providers: execution providers \['WarpDriveExecutionProvider'\] are not available"),
    ("providers empty", _extract, ("--providers", ""), r"expected comma-separated onnxruntime execution providers"),
    ("unknown flag", _extract, ("--frobnicate", "3"), r"unrecognized arguments: --frobnicate 3"),
    ("bad choice", _extract, ("--mode", "zen"), r"argument --mode: invalid choice: 'zen' \(choose from "),
    ("missing value", _extract, ("--seed",), r"argument --seed: expected one argument"),
]


@pytest.mark.parametrize("argv, more, pattern", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_hostile_options(capsys, tmp_path, w, argv, more, pattern):
    refused(capsys, tmp_path, argv(w, tmp_path, *more), pattern)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, pattern", [
    (["harvest", MODEL, "-o", "a.npz"], r"the following arguments are required: --data"),
    (["optimality", MODEL, "--data", "x.npy", "--max-inputs", "99"],
     r"argument --max-inputs: expected an integer from 1 to 12, got '99'"),
    (["compile", "rules.json", "--beta", "0,1", "-o", "p.mofn"], r"argument --beta: expected one beta, got '0,1'"),
    (["export", "p.mofn", "--to", "prolog", "--max-units", "0", "-o", "p.pl"],
     r"argument --max-units: expected an integer >= 1, got '0'"),
    (["export", "p.mofn", "--to", "pdf", "-o", "p.pdf"], r"argument --to: invalid choice: 'pdf'"),
    (["verify", "p.mofn", MODEL, "--data", "x.npy", "--engine", "z3"], r"argument --engine: invalid choice: 'z3'"),
])
def test_hostile_options_of_other_commands(capsys, tmp_path, argv, pattern):
    refused(capsys, tmp_path, argv, pattern)


def test_no_command_or_unknown_command(capsys):
    for argv, pattern in (([], r"^mofn2logic: error: expected a command, one of inspect, extract, "),
                          (["frobnicate"], r"^mofn2logic: error: argument COMMAND: invalid choice: 'frobnicate'")):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and len(err.splitlines()) == 1 and re.search(pattern, err), err


# --------------------------------------------------------------------------- output paths

def test_output_is_a_folder(capsys, tmp_path, w):
    (tmp_path / "acts.npz").mkdir()
    refused(capsys, tmp_path, harvest(w, tmp_path, w.x), r"cannot write '.*acts\.npz': it is a folder; expected a file")


def test_output_under_a_file(capsys, tmp_path, w):
    refused(capsys, w.root, ["harvest", w.model, "--data", w.x, "-o", w.regular / "acts.npz"],
            r"cannot write '.*regular-file/acts\.npz': '.*regular-file' is a file, not a folder")


def test_output_folder_missing(capsys, tmp_path, w):
    refused(capsys, tmp_path, ["harvest", w.model, "--data", w.x, "-o", tmp_path / "no" / "such" / "acts.npz"],
            r"cannot write '.*acts\.npz': folder '.*no/such' does not exist")


@needs_proc
def test_output_unwritable(capsys, tmp_path, w):
    """/proc refuses new files even to root (where chmod would not)."""
    code, _, err = cli(capsys, "harvest", w.model, "--data", w.x, "-o", "/proc/acts.npz")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.match(r"mofn2logic harvest: error: cannot write '/proc/acts\.npz': \w", err), err
    assert not os.path.exists("/proc/acts.npz")


def test_output_is_a_device(capsys, tmp_path, w):
    refused(capsys, tmp_path, ["harvest", w.model, "--data", w.x, "-o", "/dev/null"],
            r"cannot write '/dev/null': it is a device; expected a file path")


def test_output_name_too_long(capsys, tmp_path, w):
    refused(capsys, tmp_path, ["harvest", w.model, "--data", w.x, "-o", tmp_path / ("a" * 300 + ".npz")],
            r"cannot write '.*\.\.\..*\.npz': File name too long")


@pytest.mark.parametrize("argv, pattern", [
    (lambda w: ["harvest", w.model, "--data", w.x, "-o", w.x], r"cannot write '.*x\.npy': it is the input '.*x\.npy'"),
    (lambda w: ["harvest", w.model, "--data", w.x, "-o", w.model], r"it is the input '.*default_cnn\.onnx'"),
    (lambda w: ["extract", w.model, "--data", w.x, "-o", w.root / "x-link.npy"], r"x-link\.npy': it is the input"),
    (lambda w: ["compile", w.rules, "-o", w.rules], r"cannot write '.*rules\.json': it is the input"),
    (lambda w: ["export", w.prog, "--to", "mofn", "-o", w.prog], r"cannot write '.*p\.mofn': it is the input"),
], ids=["harvest over data", "harvest over model", "extract over data via a link", "compile over rules",
        "export over program"])
def test_output_over_an_input(capsys, w, argv, pattern):
    argv = argv(w)
    before = {p: Path(p).read_bytes() for p in argv[1:] if Path(p).is_file()}
    refused(capsys, w.root, argv, pattern)
    assert {p: Path(p).read_bytes() for p in before} == before


def test_store_under_a_file(capsys, tmp_path, w):
    refused(capsys, w.root, harvest(w, tmp_path, w.x, "--store", w.regular / "store"),
            r"cannot use '.*regular-file/store' as the activation store: '.*regular-file' is a file; expected a folder")


def test_run_folder_is_a_file(capsys, tmp_path, w):
    (tmp_path / "out").write_text("mine")
    refused(capsys, tmp_path, _run(w, tmp_path), r"cannot write the folder '.*out': it is a file; expected a folder")
    assert (tmp_path / "out").read_text() == "mine"


def test_run_folder_holds_the_data(capsys, w):
    refused(capsys, w.root, ["run", w.model, "--data", w.x, "-o", w.root, "--no-paper"],
            r"it holds the input '.*x\.npy', and the folder is replaced as a whole; expected an output folder apart")


def test_run_folder_holds_other_files(capsys, w):
    refused(capsys, w.root, ["run", w.model, "--data", w.x, "-o", w.root / "not-a-report", "--no-paper"],
            r"it holds 1 files that are not an earlier output \(no summary\.json\)")


def test_run_folder_under_a_file(capsys, w):
    refused(capsys, w.root, ["run", w.model, "--data", w.x, "-o", w.regular / "out", "--no-paper"],
            r"cannot write '.*regular-file/out': '.*regular-file' is a file, not a folder")


@needs_proc
def test_run_folder_unwritable(capsys, w):
    code, _, err = cli(capsys, "run", w.model, "--data", w.x, "-o", "/proc/mofn2logic-out", "--no-paper",
                       "--device", "cpu")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.match(r"mofn2logic run: error: cannot write '/proc/mofn2logic-out': \w", err), err


def test_outputs_get_the_umask_permissions(capsys, tmp_path, w):
    old = os.umask(0o027)
    try:
        code, _, err = cli(capsys, *harvest(w, tmp_path, w.x))
    finally:
        os.umask(old)
    assert code == 0 and err == ""
    assert (tmp_path / "acts.npz").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["acts.npz"]


# --------------------------------------------------------------------------- names

@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    """The default model with layer names that break naive code: mathtext, a name longer than
    any file name, a newline and a tab, emoji and CJK, and a name that a naive file name
    would share with another."""
    m = onnx.load(str(MODEL))
    names = {"node_conv2d": r"$x^2$ \frac{a}{b} $", "node_conv2d_1": "c" * 5000,
             "node_linear": "a/b\n\tc 😀 漢字", "node_linear_1": "a_b_c"}
    for node in m.graph.node:
        node.name = names.get(node.name, node.name)
    path = tmp_path_factory.mktemp("names") / "names.onnx"
    onnx.save(m, str(path))
    return path, list(names.values())


def test_names_that_break_naive_code(capsys, tmp_path, w, digits, named_model):
    """Exit 0, nothing on stderr (no glyph or mathtext warnings), bounded and distinct file
    names; run into a folder holding an earlier report, which is replaced as a whole."""
    model, names = named_model
    np.save(tmp_path / "x.npy", digits["images"][:80])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "stale.txt").write_text("from an earlier run")
    code, _, err = cli(capsys, "inspect", model)
    assert code == 0 and err == ""
    code, stdout, err = cli(capsys, "run", model, "--data", tmp_path / "x.npy", "-o", out, "--no-paper",
                            "--device", "cpu")
    assert code == 0, err
    assert err == ""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not (out / "stale.txt").exists() and (out / "report.html").is_file()
    assert all(len(p.name.encode()) <= 100 and re.fullmatch(r"[A-Za-z0-9_.-]+", p.name) for p in files), files
    assert len({p.name for p in out.glob("program_*.mofn")}) == 4
    assert len(list((out / "figures").glob("tradeoff_*.svg"))) == 4
    report = (out / "report.html").read_text()
    assert "$x^2$ \\frac{a}{b} $" in report and "a/b\\n\\tc 😀 漢字" in report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.npy"]


# --------------------------------------------------------------------------- signals

def _start_run(folder: Path, digits, out: Path, n: int = 400) -> subprocess.Popen:
    np.save(folder / "x.npy", digits["images"][:n])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mofn2logic", "run", str(MODEL), "--data", str(folder / "x.npy"),
                             "-o", str(out), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _interrupt(proc: subprocess.Popen, signum: int, after: str = "== extract", wait: float = 0.5) -> str:
    """Send `signum` `wait` seconds after the run logs a line starting with `after`."""
    for line in proc.stdout:
        if line.startswith(after):
            break
    time.sleep(wait)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return err


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_leaves_nothing(tmp_path, digits, signum, code):
    proc = _start_run(tmp_path, digits, tmp_path / "out")
    err = _interrupt(proc, signum)
    assert proc.returncode == code and err == "mofn2logic: interrupted\n", (proc.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_interrupted_run_keeps_the_earlier_report(tmp_path, digits):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"earlier": true}')
    proc = _start_run(tmp_path, digits, out)
    err = _interrupt(proc, signal.SIGTERM, after="== harvest", wait=1.0)
    assert proc.returncode == 143 and err == "mofn2logic: interrupted\n", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.npy"]
    assert [p.name for p in out.iterdir()] == ["summary.json"] and "earlier" in (out / "summary.json").read_text()


def test_reader_leaving_ends_quietly():
    """`mofn2logic inspect ... | true`: the status a SIGPIPE gives, and nothing on stderr.
    (SIGPIPE itself stays ignored, so a helper program closing its pipe cannot kill a run.)"""
    proc = subprocess.Popen([sys.executable, "-m", "mofn2logic", "inspect", str(MODEL), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the command has printed anything
    assert proc.wait(timeout=60) == 141 and proc.stderr.read() == b""


def test_two_runs_into_one_folder_do_not_mix(tmp_path, digits):
    """Two runs at once into one folder: both succeed, and the folder is one run's, whole."""
    import json

    np.save(tmp_path / "x.npy", digits["images"][:60])
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "mofn2logic", "run", str(MODEL), "--data", str(tmp_path / "x.npy"),
                               "-o", str(out), "--no-paper", "--device", "cpu", "--holdout", holdout],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for holdout in ("0.2", "0.3")]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and errs == ["", ""], errs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.npy"]
    summary = json.loads((out / "summary.json").read_text())
    rules = json.loads((out / "rules.json").read_text())
    assert summary["n_held_out"] in (12, 18)
    assert rules["provenance"]["options"]["n_samples"] + summary["n_held_out"] == 60  # one run's files
    assert len(list(out.glob("program_*.mofn"))) == 4 and not list(out.glob(".*"))


def test_a_forked_search_worker_ends_quietly_on_sigterm():
    """The search's process pool ends its workers with SIGTERM; the CLI's handler, inherited by the
    fork, must let them go without a KeyboardInterrupt traceback on the user's terminal."""
    code = (
        "import os, signal, time\n"
        "from mofn2logic import cli\n"
        "cli._catch_signals()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
        "os.kill(pid, signal.SIGTERM)\n"
        "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(128 + signal.SIGTERM), p.stdout
    assert "Traceback" not in p.stderr, p.stderr
