"""The epoch's training and validation losses, read off what the LightningModule logged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["find_losses"]


def find_losses(metrics: Mapping[str, Any], prefix: str) -> dict[str, float | None]:
    """``train_loss`` and ``val_loss`` from ``callback_metrics``: names with the stage and "loss" in them.

    Epoch aggregates (``train_loss_epoch``) win over the last step's value; the monitor's own
    metrics (under ``prefix``) never count.

    Example:
        >>> find_losses({"train_loss_step": 0.9, "train_loss_epoch": 0.7, "val_loss": 0.8}, "interactions")
        {'train_loss': 0.7, 'val_loss': 0.8}
    """

    def pick(stage: str) -> float | None:
        names = [
            name
            for name in metrics
            if stage in name.lower() and "loss" in name.lower() and not name.startswith(prefix)
        ]
        names.sort(key=lambda name: (not name.endswith("_epoch"), name.endswith("_step"), len(name)))
        return float(metrics[names[0]]) if names else None

    return {"train_loss": pick("train"), "val_loss": pick("val")}
