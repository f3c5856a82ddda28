"""The engine without Lightning: AND-OR interactions of an MLP on breast-cancer features.

Trains a small MLP on scikit-learn's bundled breast-cancer data (30 features), groups the
features into 10 players (the mean, error and worst value of each of the 10 measured
quantities), and measures the interactions of 16 held-out samples before and after training.
The untrained network's measurement is the slow one (about a minute on one CPU thread): a random
initialisation's outputs barely depend on the mask, so its extraction needs most of the
2 x 2^10 interactions; ``--quick`` measures 4 samples over 6 of the 10 players instead.

Run: .venv/bin/python examples/engine_tabular.py [--samples 16] [--quick]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from sklearn.datasets import load_breast_cancer

from lightning_interactions import FeatureMasker, compute_interactions


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--samples``, ``--steps``, ``--seed`` and ``--quick`` (4 samples, 6 players, 50 steps)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=16, help="held-out samples measured")
    parser.add_argument("--steps", type=int, default=200, help="full-batch Adam training steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the players")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="a few-seconds run: 4 samples, 6 players")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure before and after training and print both; returns the two results."""
    args = parse_args(argv)
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(before)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    players = 10
    if args.quick:
        args.samples, args.steps, players = 4, 50, 6
    data = load_breast_cancer()
    features = torch.tensor(data.data, dtype=torch.float32)
    features = (features - features.mean(dim=0)) / features.std(dim=0)
    labels = torch.tensor(data.target)
    train, held_out = slice(0, 400), slice(400, 400 + args.samples)

    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    # Player i is quantity i: its mean (column i), standard error (10 + i) and worst value (20 + i);
    # with fewer players than groups, each sample gets its own seeded choice of groups.
    groups = [[i, 10 + i, 20 + i] for i in range(10)]
    masker = FeatureMasker(groups=groups, num_players=players, baseline="mean", data=features[train])
    results = {}

    def measure(label: str) -> None:
        result = compute_interactions(
            model, features[held_out], labels[held_out], masker=masker, seed=args.seed
        )
        shape = " ".join(f"{value:.3f}" for value in result.strength_shape.tolist())
        print(f"{label:>9}: complexity {result.complexity:.3f}, shape by order 1..{players}: {shape}")
        print(f"{'':>9}  certified extraction gap <= {result.max_gap:.1e}, {result.timings['total_s']:.2f} s")
        results[label] = result

    measure("untrained")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(args.steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(features[train]), labels[train]).backward()
        optimiser.step()
    accuracy = (model(features[held_out]).argmax(dim=1) == labels[held_out]).float().mean()
    print(f"trained {args.steps} full-batch Adam steps; held-out accuracy {accuracy:.2f}")
    measure("trained")
    if players == len(groups):
        for index, (name, group) in enumerate(zip(data.feature_names[:10], groups)):
            print(f"  player {index}: {name} (features {group})")
    return results


if __name__ == "__main__":
    main()
