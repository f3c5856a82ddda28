"""Tabular features: an MLP on scikit-learn's breast-cancer data, feature groups as players.

The Lightning version of ``engine_tabular.py``: the same 30 features grouped into 8 players
(player ``i`` is measured quantity ``i``: its mean, standard error and worst value, columns ``i``,
``10 + i`` and ``20 + i``, for the first 8 quantities; the other columns are never masked), a
masked group taking the training mean. A two-layer MLP trains on a small split (200 samples) so
that it can over-fit, while ``InteractionMonitor`` measures 8 validation samples after every
epoch. The output is the binary log-odds of the true class. Prints the complexity by epoch, the
alert if any, and the players' names.

Run: .venv/bin/python examples/tabular_features.py [--epochs 25] [--out runs/tabular_features] [--quick]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from _common import Classifier, TensorDataModule, fit, parse_args
from sklearn.datasets import load_breast_cancer
from torch import nn

from lightning_interactions import FeatureMasker, InteractionMonitor

NAME = "tabular_features"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the MLP with the monitor and print the summary; returns the pieces."""
    args = parse_args(argv, __doc__, NAME, epochs=25, samples=8)
    train_size, players = 200, 8
    if args.quick:
        args.epochs, args.samples, players = 2, 4, 5
    data = load_breast_cancer()
    features = torch.tensor(data.data, dtype=torch.float32)
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))
    train, val = order[:train_size], order[train_size:]
    mean, std = features[train].mean(dim=0), features[train].std(dim=0)
    features = (features - mean) / std

    groups = [[i, 10 + i, 20 + i] for i in range(players)]
    masker = FeatureMasker(groups=groups, baseline="mean", data=features[train])
    monitor = InteractionMonitor(masker, num_samples=args.samples, seed=args.seed)
    torch.manual_seed(args.seed)
    net = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
    model = Classifier(net, lr=1e-3)
    datamodule = TensorDataModule(features[train], labels[train], features[val], labels[val], batch_size=32)
    trainer = fit(model, datamodule, monitor, args, NAME)
    quantities = [name.removeprefix("mean ") for name in data.feature_names[:players]]
    names = ", ".join(f"{i}: {name}" for i, name in enumerate(quantities))
    print(f"players (mean, error and worst value of each): {names}")
    return {"trainer": trainer, "monitor": monitor, "model": model}


if __name__ == "__main__":
    main()
