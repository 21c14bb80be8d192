"""The typed steps: shapes and value movement, checked against torch's own operators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofn2logic.errors import ProgramError
from mofn2logic.ir import AvgPool, Flatten, GlobalAvgPool, Identity, MaxPool, Reshape, Transpose, index_map
from mofn2logic.search import propagate_thresholds

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("pool", [
    MaxPool(kernel=(2, 2), strides=(2, 2)),
    MaxPool(kernel=(3, 3), strides=(2, 1), pads=(1, 0, 1, 1)),
    MaxPool(kernel=(2, 3), strides=(1, 2), dilations=(2, 1), pads=(0, 1, 0, 1)),
    MaxPool(kernel=(3, 3), strides=(2, 2), ceil_mode=True),
])
def test_max_pool_equals_torch(pool):
    x = RNG.normal(size=(3, 2, 7, 8)).astype(np.float32)
    t = torch.nn.functional.pad(torch.from_numpy(x), (pool.pads[1], pool.pads[3], pool.pads[0], pool.pads[2]),
                                value=-np.inf)
    want = torch.nn.functional.max_pool2d(t, pool.kernel, pool.strides, dilation=pool.dilations,
                                          ceil_mode=pool.ceil_mode).numpy()
    got = pool.apply(x)
    assert pool.output_shape(x.shape[1:]) == want.shape[1:]
    np.testing.assert_array_equal(got, want)
    # on booleans the same windows give an OR, padding never true
    b = x > 0
    np.testing.assert_array_equal(pool.apply(b), want > 0)


def test_avg_pools_equal_torch():
    x = RNG.normal(size=(2, 3, 6, 6))
    pool = AvgPool(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), count_include_pad=True)
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, padding=1, count_include_pad=True).numpy()
    np.testing.assert_allclose(pool.apply(x), want)
    np.testing.assert_allclose(GlobalAvgPool().apply(x), x.mean(axis=(2, 3), keepdims=True))
    assert GlobalAvgPool().output_shape((3, 6, 6)) == (3, 1, 1)


def test_index_steps_map_values_like_numpy():
    shape = (2, 3, 4)
    x = RNG.normal(size=(5, *shape))
    steps = [Transpose(perm=(0, 2, 3, 1)), Flatten(), Identity(), Reshape(shape=(-1, 4, 6))]
    out_shape, index = index_map(steps, shape)
    want = np.transpose(x, (0, 2, 3, 1)).reshape(5, 4, 6)
    assert out_shape == (4, 6)
    np.testing.assert_array_equal(x.reshape(5, -1)[:, index].reshape(5, *out_shape), want)


@pytest.mark.parametrize("step, shape, match", [
    (Reshape(shape=(-1, 7)), (2, 3), "needs 7 values per sample; the input has 6"),
    (Reshape(shape=(-1, -1, 4)), (2, 3), "cannot hold 6 values"),
    (Reshape(shape=(-1, -1, -1)), (2, 3), "not a per-sample shape"),
    (Reshape(shape=(1, 5)), (2, 3), "needs 5 values per sample"),
    (Transpose(perm=(1, 0, 2)), (2, 3), "batch axis first"),
    (Flatten(axis=0), (2, 3), "mixes samples"),
    (MaxPool(kernel=(5, 5), strides=(1, 1)), (1, 3, 3), "leaves no output"),
    (MaxPool(kernel=(2, 2), strides=(0, 1)), (1, 3, 3), "expected positive sizes"),
    (MaxPool(kernel=(2, 2), strides=(1, 1)), (3, 3), r"\(channels, height, width\)"),
])
def test_impossible_steps_are_refused(step, shape, match):
    with pytest.raises(ProgramError, match=match):
        step.output_shape(shape)


def test_index_map_refuses_a_pool():
    with pytest.raises(ProgramError, match="maxpool is not an index step"):
        index_map([MaxPool(kernel=(2, 2), strides=(2, 2))], (1, 4, 4))


def test_thresholds_follow_the_values_through_pool_and_flatten():
    heads = np.array([0.5, -1.0, 2.0], np.float32)
    steps = [MaxPool(kernel=(2, 2), strides=(2, 2)), Flatten()]
    out = propagate_thresholds(heads, (3, 4, 4), steps)
    np.testing.assert_array_equal(out, np.repeat(heads, 4))
    assert propagate_thresholds(heads, (3, 4, 4), [AvgPool(kernel=(2, 2), strides=(2, 2))]) is None
