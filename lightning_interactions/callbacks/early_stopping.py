"""``EarlyStopping`` whose patience starts at the over-fitting alert.

Before the alert a plateau of the validation loss is not a reason to stop: the network is still in
phase 1, or early in phase 2, and the validation loss of a small, noisy set often stalls there for
a few epochs before it falls again. :class:`InteractionEarlyStopping` tracks the best value from the
start, as ``EarlyStopping`` does, but counts epochs without improvement only once the
:class:`~lightning_interactions.InteractionMonitor` in the same Trainer has raised its alert. The
same rule, replayed on saved runs, is
:class:`~lightning_interactions.analysis.stopping.PatienceRule` with ``armed_by="overfit_alert"``;
``examples/study_suite.py`` measures it against plain ``EarlyStopping``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

__all__ = ["InteractionEarlyStopping"]


class InteractionEarlyStopping(EarlyStopping):
    """Stop when ``monitor`` has not improved for ``patience`` validation ends after the alert.

    Takes every argument of Lightning's ``EarlyStopping``, by keyword after ``monitor``
    (``monitor`` defaults to ``"val_loss"``, ``patience`` to 5), and one more:

    Args:
        alert_metric: the monitor's alert metric in ``trainer.callback_metrics``
            (``"<log_prefix>/overfit_alert"``; ``"interactions/overfit_alert"`` by default). Until it
            has been 1 once (``alert``, saved in checkpoints), validation ends without improvement do
            not count. Missing when the monitored metric is there, it is warned about once.

    The order in ``callbacks=[...]`` does not matter: the monitor measures in
    ``on_validation_epoch_end``, which Lightning calls for every callback before any callback's
    ``on_validation_end``, where this one decides (``check_on_train_epoch_end=True`` decides later
    still).

    Example:
        >>> from lightning_interactions import InteractionEarlyStopping, InteractionMonitor, PatchMasker
        >>> callbacks = [InteractionMonitor(PatchMasker(patch_size=2, num_players=8)),
        ...              InteractionEarlyStopping(monitor="val_loss", patience=5)]
        >>> callbacks[1].alert_metric
        'interactions/overfit_alert'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        alert_metric: str = "interactions/overfit_alert",
        **kwargs: Any,
    ) -> None:
        if not isinstance(alert_metric, str) or not alert_metric:
            raise ValueError(
                f"alert_metric must be the name of the monitor's alert metric, e.g. "
                f"'interactions/overfit_alert', got {alert_metric!r}"
            )
        super().__init__(monitor, patience=patience, **kwargs)
        self.alert_metric = alert_metric
        self.alert = False
        self._warned_missing = False

    def _run_early_stopping_check(self, trainer: Any) -> None:
        value = trainer.callback_metrics.get(self.alert_metric)
        if (
            value is None
            and not self.alert
            and not self._warned_missing
            and self.monitor in trainer.callback_metrics
        ):
            self._warned_missing = True
            rank_zero_warn(
                f"InteractionEarlyStopping: no {self.alert_metric!r} in trainer.callback_metrics, so "
                "patience does not count yet. Add an InteractionMonitor to the Trainer's callbacks, and pass "
                "alert_metric='<its log_prefix>/overfit_alert' if it has another log_prefix."
            )
        # Latched: the alert fires once, and the metric may be absent between measurements.
        self.alert = self.alert or (value is not None and bool(float(value)))
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        before, reason_before = self.wait_count, self.stopping_reason
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if not self.alert and self.wait_count > before:
            # No improvement, but the alert has not fired: this validation end does not count.
            self.wait_count, self.stopping_reason = before, reason_before
            return False, None
        return should_stop, reason

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alert": self.alert}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.alert = bool(state_dict.get("alert", False))
