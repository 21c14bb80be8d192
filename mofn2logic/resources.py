"""Files shipped inside the package: the embedded default model and its digits."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_model_path() -> Path:
    """The embedded default model: a small CNN trained on scikit-learn's 8x8 digits."""
    return Path(str(resources.files("mofn2logic") / "data" / "default_cnn.onnx"))


def default_data_path() -> Path:
    """The digits the default model was trained on (images, labels, and a held-out mask `test`)."""
    return Path(str(resources.files("mofn2logic") / "data" / "digits.npz"))
