"""Phase tracking and the over-fitting alert (docs/theory.md, "Phases and the alert").

Phase 0 lasts until the first measurement; phase 1 is the fall of the complexity (the mean order
of interactions). The complexity *rises* once it has stayed above its running minimum by a
relative ``margin`` on ``patience`` consecutive measurements; the minimum is the onset of phase 2.
The alert fires at the first measurement, from the rise on, at which the validation-minus-training
loss gap is widening too (when the tracker is given losses, :meth:`PhaseTracker.add_losses`):
the interactions say that the network has started to learn higher orders again, the losses that
this no longer pays on unseen data. Without losses the rise alone fires the alert.

Example:
    >>> tracker = PhaseTracker(margin=0.05, patience=2)
    >>> [tracker.update(epoch, c) for epoch, c in enumerate([3.0, 2.4, 2.0, 2.2, 2.3])]
    [1, 1, 1, 1, 2]
    >>> tracker.alert, tracker.alert_epoch, tracker.onset_epoch, tracker.phase1_seen
    (True, 4, 2, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_interactions._arguments import check_flag, check_fraction, check_positive_int

__all__ = [
    "ALERT_GAP_RISE",
    "ALERT_MARGIN",
    "ALERT_PATIENCE",
    "PhaseTracker",
    "alert_of",
    "gap_widening",
    "phase1_of",
    "replay_tracker",
]

# The rule's settings, as PhaseTracker's constructor takes them and the records keep them.
_SETTINGS = ("margin", "patience", "gap_rise", "gap_patience", "gap_window", "phase1_drop")
# The alert's defaults, here only: the monitor's arguments take them from these names.
ALERT_MARGIN = 0.05  # the complexity must exceed its minimum by 5% of it...
ALERT_PATIENCE = 2  # ...on 2 measurements in a row,
ALERT_GAP_RISE = 0.05  # and the loss gap widen by 5% of the validation loss (None: not consulted).


def gap_widening(gaps: Sequence[tuple[float, float]], rise: float, patience: int, window: int) -> bool:
    """Whether the loss gap is widening: the rule that confirms the alert.

    ``gaps`` are ``(val_loss - train_loss, val_loss)`` per measured epoch, oldest first. The gap is
    averaged over each run of ``window`` consecutive entries. It is widening when each of the last
    ``patience`` averages exceeds the smallest average before it by more than ``rise`` times that
    entry's validation loss (a scale-free margin: losses of different tasks differ by orders of
    magnitude), and the last average is above the one ``window`` entries earlier (the gap is
    rising now, not just still above an early low). It needs ``2 * window`` entries.

    Example:
        >>> flat = [(-0.30, 1.0)] * 6
        >>> gap_widening(flat, 0.05, 2, 3), gap_widening(flat + [(-0.1, 1.0), (0.0, 1.0)], 0.05, 2, 3)
        (False, True)
    """
    if len(gaps) < max(window + patience, 2 * window):
        return False
    averages = [
        sum(gap for gap, _ in gaps[end - window : end]) / window for end in range(window, len(gaps) + 1)
    ]
    for index in range(len(averages) - patience, len(averages)):
        val = gaps[index + window - 1][1]
        if not averages[index] > min(averages[: index + 1]) + rise * abs(val):
            return False
    return averages[-1] > averages[-1 - window]


class PhaseTracker:
    """Consume one complexity measurement per call and report the phase (0, 1 or 2).

    Args:
        margin: relative rise above the running minimum that counts as "above"; a measurement
            counts when ``complexity > minimum + margin * |minimum|``.
        patience: number of consecutive measurements above the threshold that make the rise.
        gap_rise: how much the loss gap must widen to confirm the alert, as a fraction of the
            validation loss (:func:`gap_widening`); None: the rise alone fires the alert.
        gap_patience: measured epochs in a row the widened gap must hold.
        gap_window: measured epochs over which the gap is averaged.
        phase1_drop: phase 1 counts as seen once the complexity has fallen below the first
            measurement by this fraction of it.
        wait_for_losses: before any losses have been added, wait for them (True: the monitor,
            whose losses come after each measurement) or let the rise alone fire (False: a
            tracker fed complexities only). Either way, once a trained epoch is reported without
            losses (:meth:`add_losses`) and none came before, the rise alone fires.

    Attributes:
        phase: 0 before any measurement, 1 after the first, 2 once the alert has fired (for good).
        alert: False until the alert fires, True from then on.
        alert_epoch: epoch of the measurement at which the alert fired, else None.
        onset_epoch: epoch of the complexity minimum where phase 2 began, once the alert has fired.
        rise_epoch: epoch of the measurement that completed the rise, else None.
        phase1_seen: whether the complexity fell by ``phase1_drop`` from the first measurement: the
            untrained network had medium- and high-order interactions to shed. False for a network
            that starts low-order (docs/theory.md: the alert then follows task learning, not phase 1).
        min_complexity, min_epoch: the running minimum and its epoch (frozen from the rise on).
        above_count: consecutive measurements above the threshold so far.
        gaps: ``(epoch, val_loss - train_loss, val_loss)`` of the epochs whose losses were added.
        losses_missing: a trained epoch was reported without losses (see :meth:`add_losses`).
        just_fired: True only right after the ``update`` that fired the alert.

    Example:
        >>> tracker = PhaseTracker(patience=2)
        >>> [tracker.update(e, c) for e, c in enumerate([2.0, 1.5, 1.7, 1.5, 1.7])]  # single spikes
        [1, 1, 1, 1, 1]
        >>> tracker.alert
        False
    """

    def __init__(
        self,
        margin: float = ALERT_MARGIN,
        patience: int = ALERT_PATIENCE,
        *,
        gap_rise: float | None = ALERT_GAP_RISE,
        gap_patience: int = 2,
        gap_window: int = 3,
        phase1_drop: float = 0.10,
        wait_for_losses: bool = False,
    ) -> None:
        self.margin = check_fraction("margin", margin)
        self.patience = check_positive_int("patience", patience)
        self.gap_rise = None if gap_rise is None else check_fraction("gap_rise", gap_rise)
        self.gap_patience = check_positive_int("gap_patience", gap_patience)
        self.gap_window = check_positive_int("gap_window", gap_window)
        self.phase1_drop = check_fraction("phase1_drop", phase1_drop)
        self.wait_for_losses = check_flag("wait_for_losses", wait_for_losses)
        self.phase = 0
        self.alert = False
        self.just_fired = False
        self.alert_epoch: int | None = None
        self.onset_epoch: int | None = None
        self.rise_epoch: int | None = None
        self.first_complexity: float | None = None
        self.phase1_seen = False
        self.min_complexity: float | None = None
        self.min_epoch: int | None = None
        self.above_count = 0
        self.gaps: list[list[float]] = []
        self.losses_missing = False

    def settings(self) -> dict[str, Any]:
        """The rule's settings, as the constructor takes them (each record keeps them).

        Example:
            >>> PhaseTracker(margin=0.1, gap_rise=None).settings()["margin"]
            0.1
        """
        return {name: getattr(self, name) for name in _SETTINGS}

    def threshold(self) -> float | None:
        """The complexity a measurement must exceed to count as a rise (None before any measurement)."""
        if self.min_complexity is None:
            return None
        return self.min_complexity + self.margin * abs(self.min_complexity)

    def rise(self, history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The records of ``history`` that made the rise: the last ``patience`` up to ``rise_epoch``.

        Empty before the rise. Example:
            >>> tracker = PhaseTracker(patience=2)
            >>> history = [{"epoch": e, "complexity": c} for e, c in enumerate([2.0, 1.5, 1.7, 1.8])]
            >>> _ = [tracker.update(r["epoch"], r["complexity"]) for r in history]
            >>> [r["epoch"] for r in tracker.rise(history)], tracker.threshold()
            ([2, 3], 1.575)
        """
        if self.rise_epoch is None:
            return []
        return [record for record in history if int(record["epoch"]) <= self.rise_epoch][-self.patience :]

    def add_losses(self, epoch: int, train_loss: float | None, val_loss: float | None) -> None:
        """Record the training and validation losses of ``epoch`` (ignored unless both are finite).

        The monitor adds them at the end of each measured training epoch, after that epoch's
        measurement, so the measurement of epoch ``e`` is confirmed by the losses of epochs before
        ``e``. A trained epoch (``epoch >= 1``; epoch 0 is the untrained model) without both losses
        sets ``losses_missing``: from then on, while no losses have been added, the rise alone fires
        the alert.
        """
        if train_loss is None or val_loss is None:
            self.losses_missing = self.losses_missing or int(epoch) >= 1
            return
        train, val = float(train_loss), float(val_loss)
        if not (math.isfinite(train) and math.isfinite(val)):
            return
        self.gaps = [entry for entry in self.gaps if entry[0] != int(epoch)]
        self.gaps.append([int(epoch), val - train, val])
        self.gaps.sort(key=lambda entry: entry[0])

    def gap_confirms(self) -> bool:
        """Whether the losses added so far confirm the alert.

        Always with ``gap_rise=None``. Before any losses: with ``wait_for_losses`` only once a
        trained epoch came without them (the module logs none), else at once.
        """
        if self.gap_rise is None:
            return True
        if not self.gaps:
            return self.losses_missing or not self.wait_for_losses
        pairs = [(gap, val) for _, gap, val in self.gaps]
        return gap_widening(pairs, self.gap_rise, self.gap_patience, self.gap_window)

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
        if self.first_complexity is None:
            self.first_complexity = value
        elif value < self.first_complexity - self.phase1_drop * abs(self.first_complexity):
            self.phase1_seen = True
        if self.rise_epoch is None:
            self._track_rise(int(epoch), value)
        if self.rise_epoch is not None and self.gap_confirms():
            self._fire(int(epoch))
        return self.phase

    def _track_rise(self, epoch: int, value: float) -> None:
        threshold = self.threshold()
        if self.min_complexity is None or value < self.min_complexity:
            # A new minimum restarts the count: any rise is measured from here.
            self.min_complexity, self.min_epoch = value, epoch
            self.above_count = 0
        elif threshold is not None and value > threshold:
            self.above_count += 1
            if self.above_count >= self.patience:
                self.rise_epoch = epoch
        else:
            # Back within the margin: a rise must be consecutive to count.
            self.above_count = 0

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
            "gap_rise": self.gap_rise,
            "gap_patience": self.gap_patience,
            "gap_window": self.gap_window,
            "phase1_drop": self.phase1_drop,
            "wait_for_losses": self.wait_for_losses,
            "phase": self.phase,
            "alert": self.alert,
            "just_fired": self.just_fired,
            "alert_epoch": self.alert_epoch,
            "onset_epoch": self.onset_epoch,
            "rise_epoch": self.rise_epoch,
            "first_complexity": self.first_complexity,
            "phase1_seen": self.phase1_seen,
            "min_complexity": self.min_complexity,
            "min_epoch": self.min_epoch,
            "above_count": self.above_count,
            "gaps": [list(entry) for entry in self.gaps],
            "losses_missing": self.losses_missing,
        }

    def load_state_dict(
        self, state_dict: dict[str, Any], history: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Restore the state saved by :meth:`state_dict` (settings included, as Lightning's callbacks do).

        A state saved before a key existed keeps this tracker's value for it; a state saved before
        the rise was tracked apart from the alert has its rise at the alert. Given the run's
        ``history`` (its records), what such a state lacks and the records hold (the first
        complexity, phase 1, the losses) is replayed from them.
        """
        for key, value in self.state_dict().items():
            setattr(self, key, state_dict.get(key, value))
        if "rise_epoch" not in state_dict and self.alert:
            self.rise_epoch = self.alert_epoch
        self.gaps = [list(entry) for entry in self.gaps]
        rebuilt = ("first_complexity", "phase1_seen", "gaps", "losses_missing")
        if history and any(key not in state_dict for key in rebuilt):
            tracker = PhaseTracker(**self.settings(), wait_for_losses=self.wait_for_losses)
            replayed = replay_tracker(history, tracker)
            for key in rebuilt:
                if key not in state_dict:
                    setattr(self, key, getattr(replayed, key))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(margin={self.margin}, patience={self.patience}, "
            f"gap_rise={self.gap_rise}, phase={self.phase}, rise_epoch={self.rise_epoch}, "
            f"alert_epoch={self.alert_epoch}, onset_epoch={self.onset_epoch})"
        )


def alert_of(history: Sequence[Mapping[str, Any]]) -> tuple[int | None, int | None]:
    """``(alert_epoch, onset_epoch)`` of a saved history, as its phase tracker decided them.

    Records written by the monitor carry the tracker's ``alert_epoch`` and ``onset_epoch``: the
    last record's are the run's. Records without them (written by hand, or by 0.1.0.dev releases
    before the keys existed) are replayed through a :class:`PhaseTracker` with the rule of those
    releases, the complexity's rise alone (``gap_rise=None``). Either way the rule is the
    tracker's; nothing here re-derives it.

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
    # Histories without the keys predate the loss-gap confirmation: their rule was the rise alone.
    tracker = replay_tracker(history, PhaseTracker(gap_rise=None))
    return tracker.alert_epoch, tracker.onset_epoch


def replay_tracker(history: Sequence[Mapping[str, Any]], tracker: PhaseTracker | None = None) -> PhaseTracker:
    """Feed a saved history through ``tracker`` as the monitor did online.

    Each record's complexity first, then its ``train_loss`` and ``val_loss`` (None when it has
    none): the monitor learns an epoch's losses after that epoch's measurement. The default
    tracker is the monitor's (``wait_for_losses=True``) with the settings the records keep
    (``alert_settings``), or the default settings for records written without them.

    Example:
        >>> history = [{"epoch": e, "complexity": c} for e, c in enumerate([3.0, 2.4, 2.0, 2.2, 2.3])]
        >>> replay_tracker(history).alert_epoch
        4
    """
    if tracker is None:
        kept = next((r["alert_settings"] for r in history if r.get("alert_settings")), {})
        # Only the settings this release knows: a key from a later one is left out, not an error.
        tracker = PhaseTracker(**{k: v for k, v in kept.items() if k in _SETTINGS}, wait_for_losses=True)
    for record in history:
        epoch = int(record["epoch"])
        tracker.update(epoch, float(record["complexity"]))
        tracker.add_losses(epoch, record.get("train_loss"), record.get("val_loss"))
    return tracker


def phase1_of(history: Sequence[Mapping[str, Any]], phase1_drop: float = 0.10) -> dict[str, Any]:
    """Whether a saved run showed phase 1, and by how much its complexity fell from the first measurement.

    ``seen`` is the last record's ``phase1_seen`` (the tracker's verdict), or for records without it
    the verdict of a :class:`PhaseTracker` (``phase1_drop``) replayed over them. ``fall`` is
    ``(first - minimum) / first``; ``first_epoch``, ``min_epoch`` and the two complexities say where.

    Example:
        >>> info = phase1_of([{"epoch": e, "complexity": c} for e, c in enumerate([2.0, 1.2, 1.5])])
        >>> info["seen"], round(info["fall"], 2), info["min_epoch"]
        (True, 0.4, 1)
    """
    if not history:
        raise ValueError("the history is empty")
    values = [(int(r["epoch"]), float(r["complexity"])) for r in history]
    first_epoch, first = values[0]
    min_epoch, low = min(values, key=lambda item: item[1])
    seen = history[-1].get("phase1_seen")
    if seen is None:
        seen = replay_tracker(history, PhaseTracker(phase1_drop=phase1_drop)).phase1_seen
    return {
        "seen": bool(seen),
        "fall": (first - low) / abs(first) if first else 0.0,
        "first_epoch": first_epoch,
        "first_complexity": first,
        "min_epoch": min_epoch,
        "min_complexity": low,
    }
