"""The monitor's fault policy: a failing measurement never crashes training unless asked to.

``on_error="warn"`` (the default) turns a failure into one :class:`MeasurementWarning` and the run
goes on; ``on_error="raise"`` raises :class:`MeasurementError` from the original exception.

Example:
    >>> policy = FaultPolicy("raise")
    >>> policy.text(epoch=3, what="the measurement", problem="no sample gave finite outputs")
    'InteractionMonitor: the measurement at epoch 3 failed: no sample gave finite outputs'
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["ON_ERROR", "MeasurementError", "MeasurementWarning", "FaultPolicy", "SKIPPED", "KEPT"]

ON_ERROR = ("warn", "raise")
# What became of a measurement whose failure is reported with on_error="warn".
SKIPPED = "the measurement was skipped and training goes on"
KEPT = "the measurement is kept in the monitor's history and checkpoints and training goes on"


class MeasurementError(RuntimeError):
    """A measurement of :class:`InteractionMonitor` failed and ``on_error="raise"`` was set.

    The exception that made it fail, if any, is its ``__cause__``.
    """


class MeasurementWarning(UserWarning):
    """A measurement of :class:`InteractionMonitor` failed and was skipped (``on_error="warn"``)."""


class FaultPolicy:
    """Warn about or raise a failure of part of a measurement, worded the same way everywhere."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error

    @property
    def raises(self) -> bool:
        return self.on_error == "raise"

    @staticmethod
    def text(
        epoch: int, what: str, error: BaseException | None = None, problem: str = "", where: str = ""
    ) -> str:
        cause = f" with {type(error).__name__}: {error}" if error is not None else f": {problem}"
        return f"InteractionMonitor: {what} at epoch {epoch} failed{where}{cause}"

    def report(
        self,
        trainer: Any,
        epoch: int,
        *,
        error: BaseException | None = None,
        problem: str = "",
        what: str = "the measurement",
        outcome: str = SKIPPED,
        this_rank_only: bool = False,
    ) -> None:
        """Raise (``"raise"``) or warn once (``"warn"``) that ``what`` failed at ``epoch``.

        ``this_rank_only``: only this process knows the cause, so it warns itself (under DDP it
        may not be rank 0); otherwise rank 0 warns for everyone.
        """
        where = f" on rank {trainer.global_rank}" if this_rank_only and trainer.world_size > 1 else ""
        text = self.text(epoch, what, error, problem, where)
        if self.raises:
            raise MeasurementError(text) from error
        text = (
            f'{text}; {outcome} (pass on_error="raise" to InteractionMonitor to stop with the full traceback)'
        )
        if this_rank_only:
            warnings.warn(text, MeasurementWarning, stacklevel=3)
        else:
            rank_zero_warn(text, category=MeasurementWarning)
