"""The package's argument checks, with messages that say what to do: one set for every class.

A value of the wrong kind for a flag, a seed or a callable is a ``TypeError``; a number out of
its range (a count below 1, a negative or infinite fraction) is a ``ValueError``, whatever its type.

Example:
    >>> check_positive_int("num_samples", 16)
    16
    >>> check_flag("stop_on_alert", "yes")
    Traceback (most recent call last):
    ...
    TypeError: stop_on_alert must be True or False, got 'yes'
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "check_flag",
    "check_fraction",
    "check_int",
    "check_masked_field",
    "check_optional_callable",
    "check_positive_int",
    "check_prefix",
]


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A finite number >= 0 (a margin, a rise as a fraction of a loss)."""
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from err
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise ValueError(f"log_prefix must be a non-empty string such as 'interactions', got {value!r}")
    return value


def check_optional_callable(name: str, value: Any, signature: str) -> Any | None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable {signature} or None, got {type(value).__name__}")
    return value


def check_masked_field(value: Any) -> str | int | None:
    """``masked_field``: None, a dict key (str) or a tuple position (int >= 0)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(
            f"masked_field must be a dict key (str), a tuple position (int >= 0) or None, got {value!r}"
        )
    return value
