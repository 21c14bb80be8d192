"""What the user brings: arrays read from files, the model loaded once, data and labels checked once."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import onnx
import pytest

import mofn2logic
from mofn2logic.cli import main
from mofn2logic.errors import DataError, InputFileError, ModelFormatError
from mofn2logic.inputs import (
    Dataset,
    LoadedModel,
    check_data,
    check_labels,
    load_dataset,
    load_model,
    provenance,
    read_array,
)
from mofn2logic.onnx.importer import import_network


def test_read_array_formats(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", images=x, labels=np.arange(3))
    (tmp_path / "c.csv").write_text("a,b,c,d\n" + "\n".join(",".join(str(v) for v in row) for row in x))
    (tmp_path / "d.csv").write_text("\n".join(",".join(str(v) for v in row) for row in x))
    assert np.array_equal(read_array(tmp_path / "a.npy"), x)
    assert np.array_equal(read_array(tmp_path / "b.npz", "images"), x)
    assert np.array_equal(read_array(tmp_path / "c.csv"), x)
    assert np.array_equal(read_array(tmp_path / "d.csv"), x)
    with pytest.raises(DataError, match=r"holds arrays \['images', 'labels'\]: expected one array, or a key"):
        read_array(tmp_path / "b.npz")
    with pytest.raises(InputFileError, match="does not exist"):
        read_array(tmp_path / "nope.npy")


def test_flat_rows_are_reshaped_and_cast():
    x = check_data(np.zeros((2, 64), np.int64), (1, 8, 8), np.dtype(np.float32))
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 63)), r"samples of shape \(63,\); the model expects \(1, 8, 8\) \(or 64 values per row\)"),
    (np.array([["a"] * 64]), r"dtype <U1; expected numbers \(the model takes float32\)"),
    (np.zeros((0, 64)), r"is empty"),
    (np.full((2, 64), np.nan), r"128 non-finite values \(first: NaN in sample 0\)"),
    (np.where(np.arange(128).reshape(2, 64) == 70, np.inf, 0.0), r"1 non-finite values \(first: Inf in sample 1\)"),
])
def test_bad_data(x, match):
    with pytest.raises(DataError, match=match):
        check_data(x, (1, 8, 8), np.dtype(np.float32))


# --------------------------------------------------------------------------- load_model

def test_load_model_reads_the_file_once(default_model, monkeypatch):
    loads = []
    real = onnx.load
    monkeypatch.setattr(onnx, "load", lambda *a, **k: loads.append(a) or real(*a, **k))
    model = load_model(default_model)
    assert len(loads) == 1
    assert isinstance(model, LoadedModel) and isinstance(model.proto, onnx.ModelProto)
    assert model.name == "default_cnn.onnx" and model.path == default_model
    assert model.sha256 == hashlib.sha256(default_model.read_bytes()).hexdigest()
    assert [la.name for la in model.network.layers] == ["node_conv2d", "node_conv2d_1", "node_linear", "node_linear_1"]
    assert model.network.source == str(default_model)


def test_import_network_from_a_proto_equals_from_the_file(model_zoo):
    for kind in ("tf2onnx", "gemm64", "external"):
        from_file = import_network(model_zoo[kind])
        from_proto = import_network(load_model(model_zoo[kind]).proto, source=str(model_zoo[kind]))
        assert [(la.name, la.kind, la.units, la.input, la.output) for la in from_proto.layers] == \
            [(la.name, la.kind, la.units, la.input, la.output) for la in from_file.layers], kind
        assert all(np.array_equal(a.weight, b.weight) for a, b in zip(from_proto.layers, from_file.layers))


def test_harvest_leaves_the_loaded_proto_as_it_was(default_model, digits):
    model = load_model(default_model)
    before = model.proto.SerializeToString()
    acts = mofn2logic.harvest(model.network, model.proto, check_data(digits["images"][:8], model.network.input_shape,
                                                                     model.network.dtype))
    assert acts.n_samples == 8 and model.proto.SerializeToString() == before


def test_load_model_errors(tmp_path):
    with pytest.raises(InputFileError, match=r"model file .*none\.onnx' does not exist"):
        load_model(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(ModelFormatError, match="is not an ONNX model"):
        load_model(junk)


# --------------------------------------------------------------------------- load_dataset

def test_load_dataset_from_files(tmp_path, default_model, digits):
    model = load_model(default_model)
    path = tmp_path / "d.npz"
    np.savez(path, images=digits["images"][:20], labels=digits["labels"][:20].astype(np.float64))
    data = load_dataset(path, model, key="images", labels=path, labels_key="labels")
    assert isinstance(data, Dataset) and len(data) == 20
    assert data.x.shape == (20, 1, 8, 8) and data.x.dtype == np.float32
    assert data.labels.dtype == np.int64 and np.array_equal(data.labels, digits["labels"][:20])
    assert (data.source, data.key) == ("d.npz", "images")
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance(model, data) == {"model": "default_cnn.onnx", "model_sha256": model.sha256, "data": "d.npz",
                                       "data_sha256": data.sha256, "data_key": "images"}


def test_load_dataset_from_arrays(default_model, digits):
    model = load_model(default_model)
    a = load_dataset(digits["images"][:10].reshape(10, 64), model, labels=digits["labels"][:10].reshape(10, 1))
    b = load_dataset(digits["images"][:10], model.network)
    assert a.source == "<array>" and a.key is None and a.x.shape == (10, 1, 8, 8) and a.labels.shape == (10,)
    assert a.sha256 == b.sha256 and b.labels is None
    assert "data_key" not in provenance(model, a)


@pytest.mark.parametrize("labels, match", [
    (np.arange(4), r"labels have 4 entries; the data has 5 samples"),
    (np.array(["1", "2", "3", "4", "5"]), r"labels have dtype <U1; expected integer class indices"),
    (np.array([1.0, np.nan, 2, 3, 4]), r"labels contain 1 non-finite values \(first: nan at sample 1\); "
                                        r"expected integer class indices"),
    (np.array([1.0, 2, 2.5, 3, 4]), r"labels contain 1 non-integer values \(first: 2\.5 at sample 2\); "
                                     r"expected integer class indices"),
    (np.array([0, 1, -1, 3, -4]), r"labels contain 2 negative values \(first: -1 at sample 2\); "
                                   r"expected class indices >= 0"),
    (np.eye(5, 10), r"labels have shape \(5, 10\); expected one class index per sample, shape \(5,\)"),
    (np.array([True, False, True, True, False]), r"labels have dtype bool; expected integer class indices"),
])
def test_bad_labels(labels, match):
    with pytest.raises(DataError, match=match):
        check_labels(labels, 5)


def test_labels_that_pass():
    assert check_labels(np.array([[1.0], [2.0], [0.0]]), 3).tolist() == [1, 2, 0]
    assert check_labels(np.array([1, 2, 0], np.uint8), 3).dtype == np.int64


def test_labels_file_named_in_the_error(tmp_path, default_model, digits):
    np.save(tmp_path / "y.npy", digits["labels"][:7])
    with pytest.raises(DataError, match=r"labels '.*y\.npy' have 7 entries; the data has 9 samples"):
        load_dataset(digits["images"][:9], load_model(default_model), labels=tmp_path / "y.npy")


def test_the_api_checks_labels_as_the_cli_does(tmp_path, default_model, digits, default_rules):
    """One check for both: the API refuses what the CLI refuses, with the same message."""
    x, y = digits["images"][:30], digits["labels"][:29]
    program = mofn2logic.compile(default_rules, cut="node_linear_1")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(DataError, match=r"labels have 29 entries; the data has 30 samples"):
        mofn2logic.verify(program, default_model, x, labels=y)
    with pytest.raises(DataError, match=r"labels have 29 entries; the data has 30 samples"):
        mofn2logic.run(default_model, x, tmp_path / "out", labels=y)
    assert not (tmp_path / "out").exists()
    code = main(["run", str(default_model), "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                 "-o", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()


def test_library_messages_name_no_cli_flags(tmp_path, default_model, digits):
    np.savez(tmp_path / "two.npz", a=digits["images"][:3], b=digits["images"][:3])
    for call in (lambda: read_array(tmp_path / "two.npz"),
                 lambda: mofn2logic.run(default_model, digits["images"][:20], tmp_path / "o", holdout=1.5)):
        with pytest.raises(DataError) as e:
            call()
        assert not re.search(r"--[a-z]", str(e.value)), str(e.value)


# --------------------------------------------------------------------------- memory bounds

def test_npy_of_the_model_dtype_is_used_in_place(tmp_path, digits):
    """A .npy file is memory-mapped, and data already of the model's dtype is not copied."""
    np.save(tmp_path / "x.npy", digits["images"][:30])
    raw = read_array(tmp_path / "x.npy")
    assert isinstance(raw, np.memmap) and not raw.flags.writeable
    x = check_data(raw, (1, 8, 8), np.dtype(np.float32))
    assert np.shares_memory(x, raw)
    flat = check_data(np.asarray(raw).reshape(30, 64), (1, 8, 8), np.dtype(np.float32))
    assert np.shares_memory(flat, raw) and flat.shape == (30, 1, 8, 8)


def test_a_cast_is_one_copy_within_the_budget(digits):
    x64 = digits["images"][:30].astype(np.float64)
    x = check_data(x64, (1, 8, 8), np.dtype(np.float32), max_bytes=30 * 64 * 4)
    assert x.dtype == np.float32 and np.array_equal(x, digits["images"][:30])
    with pytest.raises(DataError, match=r"data as float32 takes 7680 bytes in memory; more than the memory budget of "
                                        r"7679 bytes \(an \.npy file of float32 is read in place\)"):
        check_data(x64, (1, 8, 8), np.dtype(np.float32), max_bytes=30 * 64 * 4 - 1)


def test_npz_member_read_within_the_budget(tmp_path, digits):
    np.savez_compressed(tmp_path / "d.npz", images=digits["images"][:30], labels=digits["labels"][:30])
    assert np.array_equal(read_array(tmp_path / "d.npz", "images", max_bytes="8K"), digits["images"][:30])
    with pytest.raises(DataError, match=r"array 'images' holds shape \(30, 1, 8, 8\) float32, 7\.5 KiB in memory; "
                                        r"more than the memory budget of 1 KiB"):
        read_array(tmp_path / "d.npz", "images", max_bytes=1024)


def test_the_api_checks_labels_against_the_classes(default_model, digits, default_rules):
    """verify and run, given arrays or a Dataset, refuse what the CLI refuses."""
    x, y = digits["images"][:30], digits["labels"][:30].astype(np.int64)
    y[7] = 12
    program = mofn2logic.compile(default_rules, cut="node_linear_1")
    model = load_model(default_model)
    match = r"labels contain 1 values >= 10 \(first: 12 at sample 7\); expected class indices 0\.\.9"
    with pytest.raises(DataError, match=match):
        mofn2logic.verify(program, model, x, labels=y)
    with pytest.raises(DataError, match=match):
        mofn2logic.verify(program, model, load_dataset(x, model), labels=y)
    with pytest.raises(DataError, match=r"a labels key \('y'\) was given without labels"):
        mofn2logic.verify(program, model, load_dataset(x, model), labels_key="y")
