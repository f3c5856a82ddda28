"""The study suite's tasks: six architectures, each on data that ships or is generated locally.

Every task trains on a small training set whose labels are partly flipped (seeded), so that the
network over-fits within the run, and is judged on a clean validation set and a clean held-out
test set. Players are those of the examples: patches of the 8x8 digits, token positions, segments
of a 1-D signal, clusters of a point cloud.

Not an example itself; ``study_suite.py`` imports it from this folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from image_patches import digits_cnn
from point_clouds import PointNet, shape_clouds
from signal_segments import LENGTH as SIGNAL_LENGTH
from signal_segments import mnist1d, signal_cnn
from token_rules import MASK, TinyTransformer, make_sequences
from torch import Tensor, nn

from lightning_interactions import FeatureMasker, PatchMasker, PointCloudMasker, TokenMasker
from lightning_interactions.demos import build_mlp, load_digits_split, noisy_labels
from lightning_interactions.masking import Masker

__all__ = ["Task", "TASKS", "ResidualCNN"]

Data = dict[str, Tensor]


@dataclass(frozen=True)
class Task:
    """One task of the suite: its data, network, players and training settings.

    Attributes:
        name: short name, used in folder names and tables.
        architecture: what the network is, in words.
        data: ``seed -> {x_train, y_train (noisy), x_val, y_val, x_test, y_test}``.
        network: ``() -> nn.Module`` returning logits (called after the seed is set).
        masker: ``data -> Masker`` with the task's players.
        label_noise: fraction of training labels flipped.
        epochs, lr, batch_size: the training run.
        quick_epochs: epochs of ``--quick``.
        optimizer, weight_decay: the optimiser (``"adam"``, or ``"sgd"`` with momentum 0.9) and
            its weight decay.
    """

    name: str
    architecture: str
    data: Callable[[int, float], Data]
    network: Callable[[], nn.Module]
    masker: Callable[[Data], Masker]
    label_noise: float
    epochs: int
    lr: float = 1e-3
    batch_size: int = 32
    quick_epochs: int = 2
    optimizer: str = "adam"
    weight_decay: float = 0.0

    def clean_train_labels(self, seed: int) -> Tensor:
        """The training labels of ``seed`` before flipping (the split does not depend on the noise)."""
        return self.data(seed, 0.0)["y_train"]


def _split(x: Tensor, y: Tensor, sizes: tuple[int, int, int], noise: float, seed: int, classes: int) -> Data:
    """A seeded train/val/test split of ``(x, y)``; only the training labels get noise."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, val, test = torch.split(order[: sum(sizes)], list(sizes))
    return {
        "x_train": x[train],
        "y_train": noisy_labels(y[train], noise, seed + 1, num_classes=classes),
        "x_val": x[val],
        "y_val": y[val],
        "x_test": x[test],
        "y_test": y[test],
    }


def _digits(seed: int, noise: float) -> Data:
    data = load_digits_split(train_size=300, val_size=500, label_noise=noise, seed=seed)
    return {key: data[key] for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}


def _patches(data: Data) -> Masker:
    return PatchMasker(patch_size=2, num_players=8)


class _ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity, then ReLU (He et al.'s basic block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class ResidualCNN(nn.Module):
    """A small ResNet for 8x8 images: a BN stem, two residual blocks, global pooling, a linear head."""

    def __init__(self, channels: int = 32, blocks: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.blocks = nn.Sequential(*(_ResidualBlock(channels) for _ in range(blocks)))
        self.head = nn.Linear(channels, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def _tokens(seed: int, noise: float) -> Data:
    generator = torch.Generator().manual_seed(seed)
    x, y = make_sequences(3000, generator)
    return _split(x, y, (1000, 1000, 1000), noise, seed, classes=2)


def _token_positions(data: Data) -> Masker:
    return TokenMasker(mask_token_id=MASK, players=list(range(8)))


def _signals(seed: int, noise: float) -> Data:
    x_train, y_train, x_val, y_val = mnist1d(4000, seed=42 + seed)
    x, y = torch.cat([x_train, x_val]), torch.cat([y_train, y_val])
    return _split(x, y, (1000, 500, 1000), noise, seed, classes=10)


def _segments(data: Data) -> Masker:
    return FeatureMasker.segments(SIGNAL_LENGTH, 8, baseline="mean", data=data["x_train"])


def _shapes(seed: int, noise: float) -> Data:
    x, y = shape_clouds(300, seed=seed)
    return _split(x, y, (400, 400, 400), noise, seed, classes=4)


def _clusters(data: Data) -> Masker:
    return PointCloudMasker(num_players=8)


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "mlp",
            "MLP 64-256-256-10, digits",
            _digits,
            lambda: build_mlp(256),
            _patches,
            0.25,
            40,
            batch_size=8,
        ),
        Task("cnn", "plain CNN (2 conv), digits", _digits, digits_cnn, _patches, 0.25, 40, batch_size=8),
        # The optimiser variant: the same CNN with SGD (momentum 0.9) and weight decay.
        Task(
            "cnn_sgd_wd",
            "plain CNN, digits, SGD + weight decay 5e-4",
            _digits,
            digits_cnn,
            _patches,
            0.25,
            40,
            lr=0.05,
            batch_size=8,
            optimizer="sgd",
            weight_decay=5e-4,
        ),
        # The control: clean labels, where over-fitting is only the memorising of the 300 digits.
        Task(
            "mlp_clean",
            "MLP, digits, no flipped labels",
            _digits,
            lambda: build_mlp(256),
            _patches,
            0.0,
            40,
            batch_size=8,
        ),
        Task(
            "resnet_bn",
            "ResNet with BatchNorm, digits",
            _digits,
            ResidualCNN,
            _patches,
            0.30,
            40,
            batch_size=16,
        ),
        Task(
            "transformer",
            "transformer encoder, token rules",
            _tokens,
            TinyTransformer,
            _token_positions,
            0.20,
            40,
            lr=3e-3,
        ),
        Task("cnn1d", "1-D CNN, MNIST-1D", _signals, signal_cnn, _segments, 0.25, 40),
        Task(
            "pointnet",
            "PointNet, generated 3-D shapes",
            _shapes,
            PointNet,
            _clusters,
            0.25,
            60,
            lr=3e-3,
            batch_size=8,
        ),
    )
}
