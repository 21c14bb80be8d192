"""Train the Keras example MNIST CNN (Conv32-Conv64-MaxPool-Dropout-Dense128-Dropout-Dense10) on
8,000 MNIST images and export it to ONNX. Seeded, CPU.

    .venv/bin/python benchmarks/train_mnist_cnn.py [--activation relu|tanh] [--out benchmarks/_work]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from mnist import load_mnist
from torch import nn

HERE = Path(__file__).resolve().parent


def keras_cnn(act: type[nn.Module]) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), act(), nn.Conv2d(32, 64, 3), act(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(12 * 12 * 64, 128), act(), nn.Dropout(0.5), nn.Linear(128, 10),
    )


def train(net: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0, lr: float = 1e-3) -> None:
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(yt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()


def export(net: nn.Module, example: np.ndarray, path: Path) -> None:
    model = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    torch.onnx.export(model, (torch.from_numpy(example[:2]),), str(path), input_names=["image"],
                      output_names=["probabilities"], dynamic_shapes={"input": {0: torch.export.Dim("batch", min=1)}},
                      external_data=False, dynamo=True)


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=HERE / "_work")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x, y, held = load_mnist()
    net = keras_cnn(nn.ReLU if args.activation == "relu" else nn.Tanh)
    t0 = time.perf_counter()
    train(net, x[~held], y[~held], args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"mnist_cnn_{args.activation}.onnx"
    export(net, x, path)
    print(f"{path.name}: held-out accuracy {accuracy(net, x[held], y[held]):.4f} "
          f"(train {accuracy(net, x[~held], y[~held]):.4f}), trained in {time.perf_counter() - t0:.0f} s")
    np.save(args.out / "mnist_train.npy", x[~held][:2000])


if __name__ == "__main__":
    main()
