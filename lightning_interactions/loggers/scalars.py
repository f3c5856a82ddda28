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

__all__ = ["RECORD_SCALARS", "scalar_tags", "record_scalars"]

# The per-record scalars after the per-order ones, in logging order.
RECORD_SCALARS = ("complexity", "noise_level", "theory_error", "phase", "overfit_alert")


def scalar_tags(num_players: int, prefix: str = "interactions") -> list[str]:
    """Every scalar tag a record can produce, in logging order.

    ``{prefix}/order_k`` (raw strength ``A(k)``), ``{prefix}/shape/order_k`` (its share), then
    ``complexity``, ``noise_level``, ``theory_error``, ``phase`` and ``overfit_alert``.

    Example:
        >>> scalar_tags(2)
        ['interactions/order_1', 'interactions/order_2', 'interactions/shape/order_1', 'interactions/shape/order_2', 'interactions/complexity', 'interactions/noise_level', 'interactions/theory_error', 'interactions/phase', 'interactions/overfit_alert']
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
