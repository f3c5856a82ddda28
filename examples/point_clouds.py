"""Point clouds: a small PointNet classifies simple shapes; clusters of points are the players.

Generates (locally, seeded) clouds of 128 points on the surfaces of four shapes, spheres, cubes,
cylinders and cones, each with a random size, a random rotation about the vertical axis and
Gaussian noise. A PointNet-style network (a shared per-point MLP, a max-pool over points, and a
classifier head) learns the shape. ``PointCloudMasker`` cuts each measured cloud into 8 clusters
with a seeded k-means; a masked cluster collapses to its centroid. ``InteractionMonitor``
measures 8 validation clouds after every epoch; the summary shows the complexity by epoch and
the over-fitting alert, if any.

Run: .venv/bin/python examples/point_clouds.py [--epochs 20] [--out runs/point_clouds] [--quick]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from _common import Classifier, TensorDataModule, fit, parse_args
from torch import Tensor, nn

from lightning_interactions import InteractionMonitor, PointCloudMasker

NAME = "point_clouds"
SHAPES = ("sphere", "cube", "cylinder", "cone")


def _surface(shape: str, count: int, points: int, generator: torch.Generator) -> Tensor:
    """``count`` clouds of ``points`` points uniform-ish on the unit-sized surface of ``shape``."""
    u = torch.rand(count, points, generator=generator)
    w = torch.rand(count, points, generator=generator)
    if shape == "sphere":
        z, angle = 2 * u - 1, 2 * math.pi * w
        radius = (1 - z.square()).sqrt()
        return torch.stack([radius * angle.cos(), radius * angle.sin(), z], dim=-1)
    if shape == "cube":
        # A point inside the cube pushed onto one of its six faces (axis and side at random).
        cloud = 2 * torch.rand(count, points, 3, generator=generator) - 1
        axis = torch.randint(3, (count, points, 1), generator=generator)
        side = torch.randint(2, (count, points, 1), generator=generator).float() * 2 - 1
        return cloud.scatter(-1, axis, side)
    angle = 2 * math.pi * w
    if shape == "cylinder":
        return torch.stack([angle.cos(), angle.sin(), 2 * u - 1], dim=-1)
    # Cone: apex at z = 1, base circle of radius 1 at z = -1; sqrt(u) spreads points by area.
    radius = u.sqrt()
    return torch.stack([radius * angle.cos(), radius * angle.sin(), 1 - 2 * radius], dim=-1)


def shape_clouds(
    per_shape: int, points: int = 128, noise: float = 0.05, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``4 * per_shape`` clouds ``(N, points, 3)`` and their shape labels, shuffled."""
    generator = torch.Generator().manual_seed(seed)
    clouds, labels = [], []
    for label, shape in enumerate(SHAPES):
        cloud = _surface(shape, per_shape, points, generator)
        scale = 0.6 + 0.8 * torch.rand(per_shape, 1, 1, generator=generator)
        turn = 2 * math.pi * torch.rand(per_shape, generator=generator)
        cos, sin = turn.cos(), turn.sin()
        x, y = cloud[..., 0], cloud[..., 1]
        cos, sin = cos[:, None], sin[:, None]
        cloud = torch.stack([cos * x - sin * y, sin * x + cos * y, cloud[..., 2]], dim=-1)
        cloud = scale * cloud + noise * torch.randn(cloud.shape, generator=generator)
        clouds.append(cloud)
        labels.append(torch.full((per_shape,), label))
    order = torch.randperm(4 * per_shape, generator=generator)
    return torch.cat(clouds)[order], torch.cat(labels)[order]


class PointNet(nn.Module):
    """A shared per-point MLP, a max-pool over the points, and a two-layer classifier head."""

    def __init__(self, width: int = 64, classes: int = len(SHAPES)) -> None:
        super().__init__()
        self.points = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))

    def forward(self, clouds: Tensor) -> Tensor:
        return self.head(self.points(clouds).amax(dim=1))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Generate the clouds, train the PointNet with the monitor and print the summary."""
    args = parse_args(argv, __doc__, NAME, epochs=20, samples=8)
    per_shape, players = 150, 8
    if args.quick:
        args.epochs, args.samples, per_shape, players = 2, 4, 30, 6
    x_train, y_train = shape_clouds(per_shape, seed=args.seed)
    x_val, y_val = shape_clouds(50, seed=args.seed + 1)
    torch.manual_seed(args.seed)
    masker = PointCloudMasker(num_players=players)
    monitor = InteractionMonitor(masker, num_samples=args.samples, seed=args.seed)
    model = Classifier(PointNet(), lr=1e-3)
    data = TensorDataModule(x_train, y_train, x_val, y_val, batch_size=32)
    trainer = fit(model, data, monitor, args, NAME)
    return {"trainer": trainer, "monitor": monitor, "model": model}


if __name__ == "__main__":
    main()
