"""Phase tracking and the over-fitting alert (docs/theory.md, "Phases and the alert").

Phase 0 lasts until the first measurement; phase 1 is the fall of the complexity (the mean order
of interactions); phase 2 begins at the epoch of the smallest complexity, once the complexity has
risen above that minimum by a relative ``margin`` on ``patience`` consecutive measurements. The
alert fires once, at that measurement, and names the epoch of the minimum.

Example:
    >>> tracker = PhaseTracker(margin=0.05, patience=2)
    >>> [tracker.update(epoch, c) for epoch, c in enumerate([3.0, 2.4, 2.0, 2.2, 2.3])]
    [1, 1, 1, 1, 2]
    >>> tracker.alert, tracker.alert_epoch, tracker.onset_epoch
    (True, 4, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PhaseTracker", "alert_of"]


class PhaseTracker:
    """Consume one complexity measurement per call and report the phase (0, 1 or 2).

    Args:
        margin: relative rise above the running minimum that counts as "above"; a measurement
            counts when ``complexity > minimum + margin * |minimum|``.
        patience: number of consecutive measurements above the threshold that start phase 2.

    Attributes:
        phase: 0 before any measurement, 1 after the first, 2 once the alert has fired (for good).
        alert: False until the alert fires, True from then on.
        alert_epoch: epoch of the measurement at which the alert fired, else None.
        onset_epoch: epoch of the complexity minimum where phase 2 began, else None.
        min_complexity, min_epoch: the running minimum and its epoch (frozen once phase 2 begins).
        above_count: consecutive measurements above the threshold so far.
        just_fired: True only right after the ``update`` that fired the alert.

    Example:
        >>> tracker = PhaseTracker(patience=2)
        >>> [tracker.update(e, c) for e, c in enumerate([2.0, 1.5, 1.7, 1.5, 1.7])]  # single spikes
        [1, 1, 1, 1, 1]
        >>> tracker.alert
        False
    """

    def __init__(self, margin: float = 0.05, patience: int = 2) -> None:
        try:
            margin_value = float(margin)
        except (TypeError, ValueError) as err:
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}") from err
        if not (math.isfinite(margin_value) and margin_value >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        self.margin = margin_value
        self.patience = patience
        self.phase = 0
        self.alert = False
        self.just_fired = False
        self.alert_epoch: int | None = None
        self.onset_epoch: int | None = None
        self.min_complexity: float | None = None
        self.min_epoch: int | None = None
        self.above_count = 0

    def threshold(self) -> float | None:
        """The complexity a measurement must exceed to count as a rise (None before any measurement)."""
        if self.min_complexity is None:
            return None
        return self.min_complexity + self.margin * abs(self.min_complexity)

    def update(self, epoch: int, complexity: float) -> int:
        """Record the complexity measured at ``epoch`` and return the phase after it.

        Raises:
            ValueError: if ``complexity`` is not a finite number.
        """
        value = float(complexity)
        if not math.isfinite(value):
            raise ValueError(f"complexity must be finite, got {complexity!r} at epoch {epoch}")
        self.just_fired = False
        if self.phase == 2:
            # The alert fires once; phase 2 is final.
            return self.phase
        self.phase = 1
        threshold = self.threshold()
        if self.min_complexity is None or value < self.min_complexity:
            # A new minimum restarts the count: any rise is measured from here.
            self.min_complexity, self.min_epoch = value, int(epoch)
            self.above_count = 0
        elif threshold is not None and value > threshold:
            self.above_count += 1
            if self.above_count >= self.patience:
                self._fire(int(epoch))
        else:
            # Back within the margin: a rise must be consecutive to count.
            self.above_count = 0
        return self.phase

    def _fire(self, epoch: int) -> None:
        self.phase = 2
        self.alert = True
        self.just_fired = True
        self.alert_epoch = epoch
        self.onset_epoch = self.min_epoch

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain Python values (safe to put in a checkpoint)."""
        return {
            "margin": self.margin,
            "patience": self.patience,
            "phase": self.phase,
            "alert": self.alert,
            "just_fired": self.just_fired,
            "alert_epoch": self.alert_epoch,
            "onset_epoch": self.onset_epoch,
            "min_complexity": self.min_complexity,
            "min_epoch": self.min_epoch,
            "above_count": self.above_count,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` (settings included, as Lightning's callbacks do)."""
        for key, value in self.state_dict().items():
            setattr(self, key, state_dict.get(key, value))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(margin={self.margin}, patience={self.patience}, phase={self.phase}, "
            f"alert_epoch={self.alert_epoch}, onset_epoch={self.onset_epoch})"
        )


def alert_of(history: Sequence[Mapping[str, Any]]) -> tuple[int | None, int | None]:
    """``(alert_epoch, onset_epoch)`` of a saved history, as its phase tracker decided them.

    Records written by the monitor carry the tracker's ``alert_epoch`` and ``onset_epoch``: the
    last record's are the run's. Records without them (written by hand, or by 0.1.0.dev releases
    before the keys existed) are replayed through a default :class:`PhaseTracker`. Either way the
    rule is the tracker's; nothing here re-derives it.

    Example:
        >>> history = [{"epoch": e, "complexity": c} for e, c in enumerate([3.0, 2.4, 2.0, 2.2, 2.3])]
        >>> alert_of(history)
        (4, 2)
        >>> alert_of([{"epoch": 3, "complexity": 1.0, "alert_epoch": None, "onset_epoch": None}])
        (None, None)
    """
    if not history:
        return None, None
    last = history[-1]
    if "alert_epoch" in last:
        return last["alert_epoch"], last.get("onset_epoch")
    tracker = PhaseTracker()
    for record in history:
        tracker.update(int(record["epoch"]), float(record["complexity"]))
    return tracker.alert_epoch, tracker.onset_epoch
