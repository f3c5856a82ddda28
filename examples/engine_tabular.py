"""The engine without Lightning: AND-OR interactions of an MLP on breast-cancer features.

Trains a small MLP on scikit-learn's bundled breast-cancer data (30 features), groups the
features into 10 players (the mean, error and worst value of each of the 10 measured
quantities), and measures the interactions of 16 held-out samples before and after training.

Run: .venv/bin/python examples/engine_tabular.py
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer

from lightning_interactions import FeatureMasker, compute_interactions


def main() -> None:
    data = load_breast_cancer()
    features = torch.tensor(data.data, dtype=torch.float32)
    features = (features - features.mean(dim=0)) / features.std(dim=0)
    labels = torch.tensor(data.target)
    train, held_out = slice(0, 400), slice(400, 416)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    # Player i is quantity i: its mean (column i), standard error (10 + i) and worst value (20 + i).
    groups = [[i, 10 + i, 20 + i] for i in range(10)]
    masker = FeatureMasker(groups=groups, baseline="mean", data=features[train])

    def measure(label: str) -> None:
        result = compute_interactions(model, features[held_out], labels[held_out], masker=masker)
        shape = " ".join(f"{value:.3f}" for value in result.strength_shape.tolist())
        print(f"{label:>9}: complexity {result.complexity:.3f}, shape by order 1..10: {shape}")
        print(f"{'':>9}  certified extraction gap <= {result.max_gap:.1e}, {result.timings['total_s']:.2f} s")

    measure("untrained")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(features[train]), labels[train]).backward()
        optimiser.step()
    accuracy = (model(features[held_out]).argmax(dim=1) == labels[held_out]).float().mean()
    print(f"trained 200 full-batch Adam steps; held-out accuracy {accuracy:.2f}")
    measure("trained")
    for name, group in zip(data.feature_names[:10], groups):
        print(f"  player {groups.index(group)}: {name} (features {group})")


if __name__ == "__main__":
    main()
