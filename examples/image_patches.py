"""Image patches: a small CNN on scikit-learn's 8x8 digits, with 2x2 patches as players.

Trains a two-layer CNN on a small training split of the bundled digits (no download; small on
purpose, so that the network over-fits within the run) with ``InteractionMonitor`` measuring 16
validation digits after every epoch. Each digit's players are 8 of its 16 patches of 2x2 pixels,
chosen at random (seeded); a masked patch becomes 0, the digits' background. Prints the
complexity (mean interaction order) by epoch and the over-fitting alert, if any; TensorBoard
shows the strength by order, the shape heat map and the measured-versus-predicted figures.

Run: .venv/bin/python examples/image_patches.py [--epochs 30] [--out runs/image_patches] [--quick]
     tensorboard --logdir runs/image_patches
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from _common import Classifier, TensorDataModule, fit, parse_args
from torch import Tensor, nn

from lightning_interactions import InteractionMonitor, PatchMasker
from lightning_interactions.demos import load_digits_tensors

NAME = "image_patches"


def digits(train_size: int = 300, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits as ``(N, 1, 8, 8)`` images in [0, 1]: a seeded ``train_size`` split, the rest validation."""
    images, labels = load_digits_tensors()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    train, val = order[:train_size], order[train_size:]
    return images[train], labels[train], images[val], labels[val]


def digits_cnn(channels: int = 16, hidden: int = 64) -> nn.Module:
    """Two 3x3 convolutions, one 2x2 max-pool, and a two-layer head: logits of the 10 digits."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the CNN with the monitor and print the measured summary; returns the pieces."""
    args = parse_args(argv, __doc__, NAME, epochs=30)
    train_size, players = (300, 8)
    if args.quick:
        args.epochs, args.samples, train_size, players = 2, 4, 200, 6
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = digits(train_size, args.seed)
    masker = PatchMasker(patch_size=2, num_players=players)
    monitor = InteractionMonitor(masker, num_samples=args.samples, seed=args.seed)
    model = Classifier(digits_cnn(), lr=1e-3)
    data = TensorDataModule(x_train, y_train, x_val, y_val, batch_size=32)
    trainer = fit(model, data, monitor, args, NAME)
    return {"trainer": trainer, "monitor": monitor, "model": model}


if __name__ == "__main__":
    main()
