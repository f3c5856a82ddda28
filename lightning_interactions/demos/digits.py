"""Scikit-learn's bundled 8x8 digits (no download) as tensors, with seeded label noise and split.

The demo's data: a small training set with part of its labels replaced by random ones, a clean
validation set, and the remaining digits as a held-out test set. The examples take the images
and labels from :func:`load_digits_tensors` and split them their own way.

Example:
    >>> data = load_digits_split(train_size=30, val_size=20, label_noise=0.2, seed=0)
    >>> data["x_train"].shape, data["y_val"].shape, len(data["y_test"])
    (torch.Size([30, 1, 8, 8]), torch.Size([20]), 1747)
    >>> int((data["y_train"] != data["y_train_clean"]).sum())  # 20% of 30 labels replaced
    6
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["DemoError", "load_digits_tensors", "noisy_labels", "load_digits_split"]


class DemoError(Exception):
    """A problem with the demo's settings or environment, reported without a traceback."""


def load_digits_tensors() -> tuple[Tensor, Tensor]:
    """All 1797 digits as ``(N, 1, 8, 8)`` float32 images in [0, 1] and their ``int64`` labels.

    Raises :class:`DemoError` when scikit-learn (which bundles the data) is not installed.

    Example:
        >>> images, labels = load_digits_tensors()
        >>> images.shape, labels.dtype, float(images.max())
        (torch.Size([1797, 1, 8, 8]), torch.int64, 1.0)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DemoError(
            "the demo needs scikit-learn for its bundled digits data set: pip install scikit-learn "
            "(or pip install 'lightning-interactions[dev]')"
        ) from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    return images, torch.tensor(digits.target, dtype=torch.long)


def noisy_labels(labels: Tensor, fraction: float, seed: int, num_classes: int = 10) -> Tensor:
    """``labels`` with ``round(fraction * N)`` of them (seeded choice) replaced by another class.

    Example:
        >>> labels = torch.zeros(10, dtype=torch.long)
        >>> int((noisy_labels(labels, 0.3, seed=0) != labels).sum())
        3
    """
    generator = torch.Generator().manual_seed(seed)
    count = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:count]
    shift = torch.randint(1, num_classes, (count,), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def load_digits_split(train_size: int, val_size: int, label_noise: float, seed: int) -> dict[str, Tensor]:
    """A seeded split of the digits: a small noisy training set and a clean validation set.

    Returns ``x_train``, ``y_train`` (noisy), ``y_train_clean``, ``x_val``, ``y_val``, and
    ``x_test``, ``y_test``: the remaining digits, a held-out test set. The split is the
    permutation seeded with ``seed``; the label noise is seeded with ``seed + 1``.
    """
    images, labels = load_digits_tensors()
    if train_size + val_size > len(labels):
        raise DemoError(f"--train-size {train_size} + --val-size {val_size} exceeds the {len(labels)} digits")
    if not 0.0 <= label_noise <= 1.0:
        raise DemoError(f"--label-noise must lie in [0, 1], got {label_noise}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    train, val = order[:train_size], order[train_size : train_size + val_size]
    test = order[train_size + val_size :]
    return {
        "x_test": images[test],
        "y_test": labels[test],
        "x_train": images[train],
        "y_train": noisy_labels(labels[train], label_noise, seed + 1),
        "y_train_clean": labels[train],
        "x_val": images[val],
        "y_val": labels[val],
    }
