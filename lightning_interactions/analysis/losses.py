"""Training and validation losses read off a monitored run's history (no Lightning, no matplotlib).

The records carry ``train_loss`` and ``val_loss`` when the LightningModule logs them; either may be
None (not logged) or not finite (a diverged step). Only records with both, finite, count.

Example:
    >>> history = [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.2},
    ...            {"epoch": 1, "train_loss": 0.8, "val_loss": None},
    ...            {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6}]
    >>> loss_rows(history)
    [(0, 1.0, 1.2), (2, 0.5, 0.6)]
    >>> loss_gap_minimum(history)
    2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["loss_rows", "loss_gap_minimum"]


def loss_rows(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, float, float]]:
    """``(epoch, train_loss, val_loss)`` of the records that carry both, finite, in history order.

    Example:
        >>> loss_rows([{"epoch": 0, "train_loss": 1.0, "val_loss": float("nan")},
        ...            {"epoch": 1, "train_loss": 0.5, "val_loss": 0.7}])
        [(1, 0.5, 0.7)]
    """
    rows = []
    for record in history:
        train, val = record.get("train_loss"), record.get("val_loss")
        if train is None or val is None:
            continue
        train, val = float(train), float(val)
        if math.isfinite(train) and math.isfinite(val):
            rows.append((int(record["epoch"]), train, val))
    return rows


def loss_gap_minimum(history: Sequence[Mapping[str, Any]]) -> int | None:
    """Epoch where ``val_loss - train_loss`` is smallest (the first, on ties), or None without losses.

    Example:
        >>> loss_gap_minimum([{"epoch": 0, "train_loss": 1.0, "val_loss": 1.2},
        ...                   {"epoch": 1, "train_loss": 0.8, "val_loss": 0.9},
        ...                   {"epoch": 2, "train_loss": 0.5, "val_loss": 0.9}])
        1
    """
    rows = loss_rows(history)
    if not rows:
        return None
    return min(rows, key=lambda row: row[2] - row[1])[0]
