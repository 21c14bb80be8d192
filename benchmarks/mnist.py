"""The MNIST test set in ../shared/data/mnist (IDX format), split 8,000 train / 2,000 held out."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
SEED = 0


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (10000, 1, 28, 28) float32 in [0, 1], labels, and a boolean held-out mask (2,000, seeded)."""
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"MNIST not found in {MNIST} (set MNIST_DIR)")
    x = _idx(MNIST / "t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
    y = _idx(MNIST / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    held = np.zeros(len(y), bool)
    held[np.random.default_rng(SEED).permutation(len(y))[:2000]] = True
    return x, y, held
