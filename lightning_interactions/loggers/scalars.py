"""The scalars of a record and their metric names (``{prefix}/order_k``, ``{prefix}/complexity``, ...).

Example:
    >>> record = {"epoch": 2, "strength": [0.5, 0.3, 0.2], "shape": [0.5, 0.3, 0.2], "complexity": 1.7,
    ...           "noise_level": None, "theory_error": None, "phase": 1, "overfit_alert": 0}
    >>> record_scalars(record)["interactions/order_2"]
    0.3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RECORD_SCALARS", "scalar_tags", "record_scalars", "describe_tag"]

# The per-record scalars after the per-order ones, in logging order.
RECORD_SCALARS = ("complexity", "noise_level", "theory_error", "phase", "overfit_alert", "phase1_seen")


def scalar_tags(num_players: int, prefix: str = "interactions") -> list[str]:
    """Every scalar tag a record can produce, in logging order.

    ``{prefix}/order_k`` (raw strength ``A(k)``), ``{prefix}/shape/order_k`` (its share), then
    ``complexity``, ``noise_level``, ``theory_error``, ``phase``, ``overfit_alert`` and ``phase1_seen``.

    Example:
        >>> scalar_tags(2)
        ['interactions/order_1', 'interactions/order_2', 'interactions/shape/order_1', 'interactions/shape/order_2', 'interactions/complexity', 'interactions/noise_level', 'interactions/theory_error', 'interactions/phase', 'interactions/overfit_alert', 'interactions/phase1_seen']
    """  # noqa: E501
    if num_players < 1:
        raise ValueError(f"num_players must be at least 1, got {num_players}")
    orders = range(1, num_players + 1)
    return (
        [f"{prefix}/order_{k}" for k in orders]
        + [f"{prefix}/shape/order_{k}" for k in orders]
        + [f"{prefix}/{name}" for name in RECORD_SCALARS]
    )


def record_scalars(record: Mapping[str, Any], prefix: str = "interactions") -> dict[str, float]:
    """Map one history record to its scalars, keyed by the tags of :func:`scalar_tags`.

    Values that are ``None`` (no fitted noise level yet, for example) are left out.

    Example:
        >>> sorted(record_scalars({"strength": [2.0], "shape": [1.0], "complexity": 1.0,
        ...                        "noise_level": None, "phase": 1}, prefix="p"))
        ['p/complexity', 'p/order_1', 'p/phase', 'p/shape/order_1']
    """
    scalars: dict[str, float] = {}
    for key, group in (("strength", ""), ("shape", "shape/")):
        values = record.get(key)
        if values is None:
            continue
        for k, value in enumerate(values, start=1):
            if value is not None:
                scalars[f"{prefix}/{group}order_{k}"] = float(value)
    for name in RECORD_SCALARS:
        value = record.get(name)
        if value is not None:
            scalars[f"{prefix}/{name}"] = float(value)
    return scalars


_DESCRIPTIONS = {
    "complexity": "Complexity: the mean order of the interactions, sum_k k * shape(k). It falls in phase 1 "
    "and rises again in phase 2, when over-fitted higher-order interactions are learned.",
    "noise_level": "The noise level s that the two-phase theory fits to this epoch's shape (prior mode: "
    "independent reference interactions; reference mode: the previous epoch against this one).",
    "theory_error": "Fit error of the theory: L1 distance between the measured and the predicted shape.",
    "phase": "Phase of the phase tracker: 0 before the first measurement, 1 until the alert, 2 from the "
    "alert on (phase 2 began at the complexity minimum, the onset).",
    "overfit_alert": "Over-fitting alert: 0, then 1 once the complexity has risen above its minimum by the "
    "margin on `patience` consecutive measurements and the validation-minus-training loss gap has widened "
    "since (by 5% of the validation loss, on 2 measured epochs in a row, and still rising; without logged "
    "losses the rise alone).",
    "phase1_seen": "Phase 1 seen: 1 once the complexity has fallen 10% below the untrained network's. "
    "0 for a network that starts with low-order interactions (no phase 1): its alert marks over-fitting "
    "after task learning, not the end of phase 1.",
    "loss_gap": "Loss gap: validation loss minus training loss of the epoch.",
    "train_loss": "The epoch's training loss, as the monitor read it from what the LightningModule logged "
    "(the alert compares it with the validation loss).",
    "val_loss": "The epoch's validation loss, as the monitor read it from what the LightningModule logged.",
}


def describe_tag(tag: str, prefix: str = "interactions") -> str:
    """A one-paragraph markdown description of one of the monitor's scalar tags (see docs/theory.md).

    Example:
        >>> describe_tag("interactions/order_2")[:40]
        'Strength A(2) of order-2 interactions: t'
    """
    name = tag[len(prefix) + 1 :] if tag.startswith(prefix + "/") else tag
    if name.startswith("order_"):
        k = name[len("order_") :]
        return (
            f"Strength A({k}) of order-{k} interactions: the mean over the measured samples of "
            f"sum |I_and(S)| + |I_or(S)| over the player sets S of size {k}."
        )
    if name.startswith("shape/order_"):
        k = name[len("shape/order_") :]
        return f"Share of order {k} in the strength: A({k}) / sum_j A(j)."
    return _DESCRIPTIONS.get(name, "")
