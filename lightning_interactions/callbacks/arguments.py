"""The monitor's argument checks, all made at construction, with messages that say what to do.

Example:
    >>> check_positive_int("num_samples", 16)
    16
    >>> check_flag("stop_on_alert", "yes")
    Traceback (most recent call last):
    ...
    TypeError: stop_on_alert must be True or False, got 'yes'
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_positive_int", "check_int", "check_flag", "check_prefix", "check_optional_callable"]


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


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
