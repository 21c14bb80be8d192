"""Train and export the embedded default model (not run by the demo).

A small CNN on scikit-learn's 8x8 handwritten digits (1,797 images):
Conv(1->8, 3x3) -> ReLU -> Conv(8->16, 3x3) -> ReLU -> MaxPool(2) -> Flatten
-> Dense(256->32) -> ReLU -> Dense(32->10) -> Softmax.

Seeded and deterministic on CPU. Writes
  mofn2logic/data/default_cnn.onnx   the model (weights inside the file)
  mofn2logic/data/digits.npz         images (N,1,8,8) float32 in [0,1], labels, split
and prints the held-out accuracy quoted in the README.

    .venv/bin/pip install -e '.[train]' && .venv/bin/python scripts/train_default_model.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 0
ROOT = Path(__file__).resolve().parents[1]


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class WithSoftmax(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(SEED).permutation(len(y))
    test = np.zeros(len(y), dtype=bool)
    test[perm[:360]] = True  # 1,437 train / 360 held out
    return x, y, test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "mofn2logic" / "data")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    x, y, test = load_digits()
    xt, yt = torch.from_numpy(x[~test]), torch.from_numpy(y[~test])
    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(args.epochs):
        net.train()
        for idx in torch.randperm(len(yt), generator=gen).split(64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x)).argmax(1).numpy()
    acc_test = float((pred[test] == y[test]).mean())
    acc_train = float((pred[~test] == y[~test]).mean())
    print(f"train accuracy {acc_train:.4f}  held-out accuracy {acc_test:.4f} ({test.sum()} images)")

    args.out.mkdir(parents=True, exist_ok=True)
    model = WithSoftmax(net).eval()
    batch = torch.export.Dim("batch", min=1)
    onnx_path = args.out / "default_cnn.onnx"
    torch.onnx.export(
        model, (torch.from_numpy(x[:2]),), str(onnx_path), input_names=["image"],
        output_names=["probabilities"], dynamic_shapes={"x": {0: batch}},
        external_data=False, dynamo=True,
    )
    np.savez_compressed(
        args.out / "digits.npz",
        images=x, labels=y.astype(np.uint8), test=test,
    )
    print(f"wrote {onnx_path} and {args.out / 'digits.npz'}")


if __name__ == "__main__":
    main()
