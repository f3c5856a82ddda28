"""1-D signals: a small 1-D CNN on MNIST-1D, with contiguous segments of the signal as players.

MNIST-1D (Greydanus and Steinbach) is a 1-D analogue of MNIST: each of 10 digit templates is
padded, sheared, translated, and given correlated and independent noise, giving 40-point
signals. The ``mnist1d`` package *generates* it locally from a seed (``make_dataset``); this
example never calls its download function. The 40 points are cut into 8 contiguous segments of
5 points (``FeatureMasker.segments``), the players; a masked segment takes the training mean.
``InteractionMonitor`` measures 8 validation signals after every epoch; the summary shows the
complexity by epoch and the over-fitting alert, if any.

Needs ``pip install mnist1d`` (in the ``dev`` extras).

Run: .venv/bin/python examples/signal_segments.py [--epochs 15] [--out runs/signal_segments] [--quick]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from _common import Classifier, TensorDataModule, fit, parse_args
from torch import Tensor, nn

from lightning_interactions import FeatureMasker, InteractionMonitor

NAME = "signal_segments"
LENGTH = 40


def mnist1d(num_samples: int = 5000, seed: int = 42) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Generate MNIST-1D locally: ``(N, 1, 40)`` signals and labels, split 80/20 into train/validation.

    ``make_dataset`` seeds numpy's and Python's global generators with ``seed``; their states are
    restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # generator only: nothing is downloaded

    settings = get_dataset_args()
    settings.num_samples, settings.seed = num_samples, seed
    states = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(settings)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    x_train = torch.tensor(data["x"], dtype=torch.float32)[:, None]
    x_val = torch.tensor(data["x_test"], dtype=torch.float32)[:, None]
    return x_train, torch.tensor(data["y"]), x_val, torch.tensor(data["y_test"])


def signal_cnn(channels: int = 32) -> nn.Module:
    """Three 1-D convolutions (the last two with stride 2) and a linear head: 10 logits."""
    return nn.Sequential(
        nn.Conv1d(1, channels, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * LENGTH // 4, 10),
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Generate the data, train the CNN with the monitor and print the summary; returns the pieces."""
    args = parse_args(argv, __doc__, NAME, epochs=15, samples=8)
    num_samples, segments = 4000, 8
    if args.quick:
        args.epochs, args.samples, num_samples, segments = 2, 4, 600, 6
    x_train, y_train, x_val, y_val = mnist1d(num_samples, seed=42 + args.seed)
    torch.manual_seed(args.seed)
    masker = FeatureMasker.segments(LENGTH, segments, baseline="mean", data=x_train)
    monitor = InteractionMonitor(masker, num_samples=args.samples, seed=args.seed)
    model = Classifier(signal_cnn(), lr=1e-3)
    data = TensorDataModule(x_train, y_train, x_val, y_val, batch_size=64)
    trainer = fit(model, data, monitor, args, NAME)
    return {"trainer": trainer, "monitor": monitor, "model": model}


if __name__ == "__main__":
    main()
