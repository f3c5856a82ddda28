"""Stopping rules replayed on a recorded run: where each would have stopped training.

Lightning's ``EarlyStopping`` decides at every validation end from one metric. :class:`PatienceRule`
makes the same decision from a run's records (one mapping of metric values per epoch), so a study
can ask, after the fact, where a rule would have stopped and how good the model it kept was
(``examples/study_suite.py``). With ``armed_by`` it is the rule of
:class:`~lightning_interactions.callbacks.InteractionEarlyStopping`: patience counts only once the
over-fitting alert has fired (docs/theory.md, "Stopping on interactions").

Example:
    >>> records = [{"epoch": e, "val_loss": v} for e, v in enumerate([2.0, 1.0, 0.8, 0.9, 0.85, 0.95], 1)]
    >>> stopped_epoch(PatienceRule("val_loss", patience=3), records)  # best at epoch 3, then 3 without
    6
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PatienceRule", "AlertRule", "stopped_epoch"]


class PatienceRule:
    """``EarlyStopping(monitor=key, mode=mode, patience=patience, min_delta=min_delta)``, offline.

    An improvement is a value better than the best so far by more than ``min_delta``; the rule
    stops once ``patience`` records in a row brought none, as Lightning's does. A record without
    the key (or with None) is skipped, as Lightning skips a validation end without the metric; a
    non-finite value stops at once.

    Args:
        key: the metric.
        mode: ``"min"`` or ``"max"``.
        patience: records without improvement that stop the run.
        min_delta: smallest change that counts as an improvement.
        armed_by: a record key (e.g. ``"overfit_alert"``); while its value is falsy, records without
            improvement do not count (the best value is still tracked). None: always armed.
    """

    def __init__(
        self,
        key: str,
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        armed_by: str | None = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.key, self.mode, self.patience = key, mode, patience
        self.min_delta, self.armed_by = float(min_delta), armed_by
        self.best: float | None = None
        self.wait = 0

    @property
    def name(self) -> str:
        armed = f", after {self.armed_by}" if self.armed_by else ""
        return f"{self.key} {self.mode} patience {self.patience}{armed}"

    def update(self, record: Mapping[str, Any]) -> bool:
        """Take one record; True means: stop after this epoch."""
        value = record.get(self.key)
        if value is None:
            return False
        value = float(value)
        if not math.isfinite(value):
            return True
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (value - self.best) < -self.min_delta:
            self.best, self.wait = value, 0
            return False
        if self.armed_by is not None and not record.get(self.armed_by):
            return False
        self.wait += 1
        return self.wait >= self.patience


class AlertRule:
    """Stop at the measurement where the over-fitting alert fired (``stop_on_alert=True``)."""

    name = "at the alert"

    def __init__(self, key: str = "overfit_alert") -> None:
        self.key = key

    def update(self, record: Mapping[str, Any]) -> bool:
        return bool(record.get(self.key))


def stopped_epoch(rule: PatienceRule | AlertRule, records: Sequence[Mapping[str, Any]]) -> int | None:
    """The epoch after which ``rule`` stops, reading ``records`` in order; the last epoch if it never does.

    Records of epoch 0 (the untrained model) are skipped: Lightning's callbacks first decide at the
    end of the first epoch. None for no records after epoch 0.
    """
    last = None
    for record in records:
        if int(record["epoch"]) < 1:
            continue
        last = int(record["epoch"])
        if rule.update(record):
            return last
    return last
