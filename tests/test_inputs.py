from __future__ import annotations

import numpy as np
import pytest

from mofn2logic.inputs import check_data, read_array
from mofn2logic.errors import DataError, InputFileError


def test_formats(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", images=x, labels=np.arange(3))
    (tmp_path / "c.csv").write_text("a,b,c,d\n" + "\n".join(",".join(str(v) for v in row) for row in x))
    (tmp_path / "d.csv").write_text("\n".join(",".join(str(v) for v in row) for row in x))
    assert np.array_equal(read_array(tmp_path / "a.npy"), x)
    assert np.array_equal(read_array(tmp_path / "b.npz", "images"), x)
    assert np.array_equal(read_array(tmp_path / "c.csv"), x)
    assert np.array_equal(read_array(tmp_path / "d.csv"), x)
    with pytest.raises(DataError, match=r"holds arrays \['images', 'labels'\]: pick one with --key"):
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
