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

import sys
from typing import Any, Callable

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_warn

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

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._check_armed(
            trainer, lambda: super(InteractionEarlyStopping, self).on_validation_end(trainer, pl_module)
        )

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._check_armed(
            trainer, lambda: super(InteractionEarlyStopping, self).on_train_epoch_end(trainer, pl_module)
        )

    def _check_armed(self, trainer: Any, check: Callable[[], None]) -> None:
        """Run ``EarlyStopping``'s own check; before the alert, with a patience that cannot run out.

        So a validation end without improvement neither stops nor counts before the alert, while a
        new best value, a non-finite metric or a threshold count as they always do. The patience is
        set before the check, so every DDP process votes on the same rule. Only public hooks and
        attributes of ``EarlyStopping`` are used.
        """
        if trainer.sanity_checking:  # the monitor has not measured yet, and EarlyStopping skips it too
            return
        self._read_alert(trainer)
        if self.alert:
            check()
            return
        patience, waited = self.patience, self.wait_count
        self.patience = sys.maxsize
        try:
            check()
        finally:
            self.patience = patience
            # Validation ends before the alert do not count towards the patience.
            self.wait_count = min(self.wait_count, waited)

    def _read_alert(self, trainer: Any) -> None:
        """Latch the alert from ``trainer.callback_metrics``; warn once if the metric never shows up."""
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

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alert": self.alert}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.alert = bool(state_dict.get("alert", False))
