"""The monitor's fault policy: a failing measurement never crashes training unless asked to.

``on_error="warn"`` (the default) turns a failure into one :class:`MeasurementWarning` and the run
goes on; ``on_error="raise"`` raises :class:`MeasurementError` from the original exception. A
failure that repeats the previous one of the same part (the same exception type and message up
to its numbers) is not warned about again until that part has succeeded once
(:meth:`FaultPolicy.succeeded`): a model whose output the monitor cannot read warns once, not
once per epoch.

Example:
    >>> policy = FaultPolicy("raise")
    >>> policy.text(epoch=3, what="the measurement", problem="no sample gave finite outputs")
    'InteractionMonitor: the measurement at epoch 3 failed: no sample gave finite outputs'
    >>> failure_kind("the measurement", RuntimeError("forward exploded on a batch of 48"))
    ('the measurement', 'RuntimeError', 'forward exploded on a batch of #')
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lightning_interactions.errors import MeasurementError, MeasurementWarning

__all__ = [
    "ON_ERROR",
    "MeasurementError",
    "MeasurementWarning",
    "FaultPolicy",
    "SKIPPED",
    "KEPT",
    "failure_kind",
]

ON_ERROR = ("warn", "raise")
# What became of a measurement whose failure is reported with on_error="warn".
SKIPPED = "the measurement was skipped and training goes on"
KEPT = "the measurement is kept in the monitor's history and checkpoints and training goes on"
MEASUREMENT = "the measurement"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:e[-+]?\d+)?")


def failure_kind(what: str, error: BaseException | None = None, problem: str = "") -> tuple[str, str, str]:
    """What makes two failures "the same": the part that failed, the exception type, the message.

    Numbers in the message (epochs, batch sizes, GiB) are replaced by ``#``, so the same fault at
    another epoch or size is the same kind.
    """
    text = str(error) if error is not None else problem
    return what, type(error).__name__ if error is not None else "", _NUMBER.sub("#", text)


class FaultPolicy:
    """Warn about or raise a failure of part of a measurement, worded the same way everywhere."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        # The kind of the last failure of each part (``what``) since that part last succeeded.
        self._last: dict[str, tuple[str, str, str]] = {}
        # The first failed measurement's text, for the fit-end note of a run that measured nothing.
        self.first_failure: str | None = None

    def succeeded(self, what: str = MEASUREMENT) -> None:
        """``what`` worked this time: its next failure is warned about even if it repeats the last.

        Example:
            >>> import warnings
            >>> policy = FaultPolicy("warn")
            >>> trainer = type("T", (), {"global_rank": 0, "world_size": 1})()
            >>> with warnings.catch_warnings(record=True) as caught:
            ...     warnings.simplefilter("always")
            ...     for epoch in (1, 2, 3):
            ...         policy.report(trainer, epoch, problem="no sample gave finite outputs")
            ...     policy.succeeded()
            ...     policy.report(trainer, 5, problem="no sample gave finite outputs")
            >>> [str(w.message).split(" failed")[0][-10:] for w in caught]  # epochs 2 and 3: the same again
            ['at epoch 1', 'at epoch 5']
        """
        self._last.pop(what, None)

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
        what: str = MEASUREMENT,
        outcome: str = SKIPPED,
        this_rank_only: bool = False,
    ) -> None:
        """Raise (``"raise"``) or warn once (``"warn"``) that ``what`` failed at ``epoch``.

        With ``"warn"``, a failure of the same kind as the last failure of ``what``
        (:func:`failure_kind`), with no :meth:`succeeded` in between, is not warned about again;
        the first warning says so.

        ``this_rank_only``: only this process knows the cause, so it warns itself (under DDP it
        may not be rank 0); otherwise rank 0 warns for everyone.
        """
        where = f" on rank {trainer.global_rank}" if this_rank_only and trainer.world_size > 1 else ""
        text = self.text(epoch, what, error, problem, where)
        if what == MEASUREMENT and self.first_failure is None:
            self.first_failure = text
        if self.raises:
            raise MeasurementError(text) from error
        kind = failure_kind(what, error, problem)
        if self._last.get(what) == kind:
            return
        self._last[what] = kind
        text = (
            f'{text}; {outcome} (pass on_error="raise" to InteractionMonitor to stop with the full '
            f"traceback); failures like this one are not warned about again until {what} succeeds"
        )
        if this_rank_only:
            warnings.warn(text, MeasurementWarning, stacklevel=3)
        else:
            rank_zero_warn(text, category=MeasurementWarning)
