"""The package's own exceptions and warnings, all in one public module.

* :class:`MeasurementError`: a measurement of the monitor failed and ``on_error="raise"`` was set;
* :class:`MeasurementWarning`: a measurement failed and was skipped (``on_error="warn"``), or
  figures still being drawn when a fit stopped were dropped;
* :class:`MeasurementMemoryError`: a measurement was refused before it started, because it would
  not fit in the device's memory (``check_memory=True``, the default).

Example:
    >>> issubclass(MeasurementMemoryError, MemoryError), issubclass(MeasurementMemoryError, ValueError)
    (True, True)
"""

from __future__ import annotations

__all__ = ["MeasurementError", "MeasurementMemoryError", "MeasurementTooLarge", "MeasurementWarning"]


class MeasurementError(RuntimeError):
    """A measurement of :class:`~lightning_interactions.InteractionMonitor` failed and
    ``on_error="raise"`` was set.

    The exception that made it fail, if any, is its ``__cause__``.
    """


class MeasurementWarning(UserWarning):
    """A measurement of :class:`~lightning_interactions.InteractionMonitor` failed and was skipped
    (``on_error="warn"``), or figures were dropped when a fit stopped."""


class MeasurementMemoryError(MemoryError, ValueError):
    """A measurement refused before it started because it would not fit in the device's memory.

    Both a ``MemoryError`` and a ``ValueError``, like the other refusals of bad arguments. The
    message says which part is large and what to lower (samples, ``batch_size``, players).
    """


# The name before 0.1: kept as an alias so that code catching it keeps working.
MeasurementTooLarge = MeasurementMemoryError
