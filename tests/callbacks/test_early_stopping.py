"""InteractionEarlyStopping (callbacks/early_stopping.py) on real runs: patience counts only after
the alert, as its offline replay (analysis.stopping) says; the alert is latched; bad arguments.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from helpers.scripted_run import VAL, Scripted, fit, records
from helpers.trainers import quiet_trainer
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn

from lightning_interactions import FeatureMasker, InteractionEarlyStopping, InteractionMonitor
from lightning_interactions.analysis.stopping import PatienceRule, stopped_epoch


@pytest.mark.parametrize(("alert_from", "patience"), [(7, 2), (3, 2), (2, 1), (11, 1), (None, 2)])
def test_interaction_early_stopping_matches_its_replay_on_a_real_run(alert_from: int | None, patience: int):
    callback = InteractionEarlyStopping(patience=patience, alert_metric="fake/overfit_alert")
    trainer = fit(Scripted(VAL, alert_from=alert_from), [callback])
    rule = PatienceRule("val_loss", patience=patience, armed_by="overfit_alert")
    assert trainer.current_epoch == stopped_epoch(rule, records(alert_from))


def test_interaction_early_stopping_reads_the_monitor_alert_by_default(tmp_path) -> None:
    # A real monitor whose alert fires early (the rise alone, margin 0, patience 1): from its alert
    # on, patience counts on the scripted validation loss, exactly as the replay says.
    torch.manual_seed(0)

    class Tiny(Scripted):
        def __init__(self) -> None:
            super().__init__(VAL)
            self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", self.val[self.current_epoch])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.5)

    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long()), 8)
    monitor = InteractionMonitor(
        FeatureMasker(num_features=4), num_samples=4, log_figures=False, alert_margin=0.0, alert_patience=1,
        alert_gap_rise=None,
    )  # fmt: skip
    callback = InteractionEarlyStopping(patience=2)
    trainer = pl.Trainer(
        max_epochs=len(VAL), accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[callback, monitor], default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(Tiny(), data, data)
    alert = monitor.tracker.alert_epoch
    assert alert is not None and callback.alert
    expected = stopped_epoch(PatienceRule("val_loss", patience=2, armed_by="overfit_alert"), records(alert))
    assert trainer.current_epoch == expected


class AlertOnce(Scripted):
    """Logs the fake alert as 1 at one epoch only, 0 before and after (as between measurements)."""

    def __init__(self, val: list[float], at: int) -> None:
        super().__init__(val)
        self.at = at

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        epoch = self.current_epoch + 1
        self.log("val_loss", self.val[epoch - 1])
        self.log("fake/overfit_alert", float(epoch == self.at))


def test_the_alert_is_latched_and_a_pre_alert_stall_leaves_no_stopping_reason() -> None:
    from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

    latched = InteractionEarlyStopping(patience=2, alert_metric="fake/overfit_alert")
    trainer = fit(AlertOnce(VAL, at=7), [latched])
    assert latched.alert and trainer.current_epoch == 8  # 7 and 8 count, as with the alert from 7 on
    assert latched.state_dict()["alert"] is True
    restored = InteractionEarlyStopping(alert_metric="fake/overfit_alert")
    restored.load_state_dict(latched.state_dict())
    assert restored.alert and restored.wait_count == latched.wait_count
    # patience 1 and no alert: the stall at epochs 4 and 5 neither stops nor leaves a reason behind.
    waiting = InteractionEarlyStopping(patience=1, alert_metric="fake/overfit_alert")
    trainer = fit(Scripted(VAL, alert_from=None), [waiting])
    assert trainer.current_epoch == len(VAL) and waiting.stopping_reason == EarlyStoppingReason.NOT_STOPPED


def test_a_missing_alert_metric_is_warned_about_once() -> None:
    callback = InteractionEarlyStopping(patience=1)  # no monitor in this Trainer
    with pytest.warns(
        UserWarning, match="no 'interactions/overfit_alert' in trainer.callback_metrics"
    ) as caught:
        fit(Scripted(VAL), [callback], epochs=4)
    assert sum("InteractionEarlyStopping" in str(w.message) for w in caught) == 1


@pytest.mark.parametrize("alert_metric", ["", None, 3])
def test_interaction_early_stopping_rejects_a_bad_alert_metric(alert_metric: Any) -> None:
    with pytest.raises(ValueError, match="alert_metric must be the name of the monitor's alert metric"):
        InteractionEarlyStopping(alert_metric=alert_metric)


def test_interaction_early_stopping_overrides_no_private_method_of_early_stopping() -> None:

    overridden = [
        name
        for name in vars(InteractionEarlyStopping)
        if name.startswith("_") and not name.startswith("__") and hasattr(EarlyStopping, name)
    ]
    assert overridden == []  # only public hooks: a Lightning release may change its private ones


def test_the_sanity_check_before_the_monitors_first_measurement_raises_no_missing_alert_warning(
    tmp_path,
) -> None:
    import warnings

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long()), 8)
    monitor = InteractionMonitor(FeatureMasker(num_features=4), num_samples=4, log_figures=False)
    stopping = InteractionEarlyStopping(patience=2)
    # The default sanity check runs validation before the monitor's first measurement.
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor, stopping])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Tiny(), data, data)
    assert not [w for w in caught if "InteractionEarlyStopping" in str(w.message)]
    assert not stopping._warned_missing
