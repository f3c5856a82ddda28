"""Stopping rules: the offline replay equals Lightning's EarlyStopping on real runs, and
InteractionEarlyStopping counts patience only after the alert; the transition window by hand."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn

from lightning_interactions import FeatureMasker, InteractionEarlyStopping, InteractionMonitor
from lightning_interactions.analysis.stopping import AlertRule, PatienceRule, stopped_epoch
from lightning_interactions.analysis.transition import smooth_centred, transition_window

# Validation losses of a run (epochs 1..12): a stall at epochs 3-5, a new best at 6, then rising.
VAL = [2.0, 1.5, 1.4, 1.45, 1.42, 1.1, 1.2, 1.3, 1.25, 1.35, 1.4, 1.5]


class Scripted(pl.LightningModule):
    """Logs scripted ``val_loss`` (and an alert flag) per epoch; trains a dummy weight."""

    def __init__(self, val: list[float], alert_from: int | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.val, self.alert_from = val, alert_from

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.weight - 1).square().sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        epoch = self.current_epoch + 1  # completed epochs, the monitor's count
        self.log("val_loss", self.val[epoch - 1])
        if self.alert_from is not None:
            self.log("fake/overfit_alert", float(epoch >= self.alert_from))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module: pl.LightningModule, callbacks: list[Any], epochs: int = len(VAL)) -> pl.Trainer:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)), batch_size=2)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(module, data, data)
    return trainer


def records(alert_from: int | None = None) -> list[dict[str, Any]]:
    return [
        {"epoch": e, "val_loss": v, "overfit_alert": alert_from is not None and e >= alert_from}
        for e, v in enumerate(VAL, start=1)
    ]


@pytest.mark.parametrize(("patience", "min_delta"), [(1, 0.0), (2, 0.0), (3, 0.0), (3, 0.05), (4, 0.0)])
def test_patience_rule_stops_where_lightning_early_stopping_does(patience: int, min_delta: float) -> None:
    early = EarlyStopping("val_loss", patience=patience, min_delta=min_delta)
    trainer = fit(Scripted(VAL), [early])
    expected = stopped_epoch(PatienceRule("val_loss", patience=patience, min_delta=min_delta), records())
    # Lightning counts epochs from 0 (its stopped_epoch) and ran current_epoch epochs in all.
    assert trainer.current_epoch == expected
    if expected < len(VAL):
        assert early.stopped_epoch + 1 == expected


def test_patience_rule_by_hand() -> None:
    # Best 1.4 at epoch 3; 1.45, 1.42 do not improve: patience 2 stops at epoch 5.
    assert stopped_epoch(PatienceRule("val_loss", patience=2), records()) == 5
    # min_delta 0.3: 1.5 beats 2.0 - 0.3; 1.4 and 1.45 do not beat 1.5 - 0.3: stop at epoch 4.
    assert stopped_epoch(PatienceRule("val_loss", patience=2, min_delta=0.3), records()) == 4
    maximum = [{"epoch": e, "acc": a} for e, a in enumerate([0.5, 0.6, 0.55, 0.58], start=1)]
    assert stopped_epoch(PatienceRule("acc", mode="max", patience=2), maximum) == 4
    assert stopped_epoch(PatienceRule("val_loss"), [{"epoch": 1, "val_loss": math.nan}]) == 1
    # Epoch 0 (the untrained model) is never a decision; records without the key are skipped.
    assert stopped_epoch(PatienceRule("val_loss", patience=1), [{"epoch": 0, "val_loss": 0.0}]) is None
    assert stopped_epoch(PatienceRule("x", patience=1), [{"epoch": 1}, {"epoch": 2}]) == 2


def test_armed_patience_counts_only_after_the_alert() -> None:
    # Alert from epoch 7: the stall at epochs 4-5 does not count; after 6 (best), 7 and 8 do.
    rule = PatienceRule("val_loss", patience=2, armed_by="overfit_alert")
    assert stopped_epoch(rule, records(alert_from=7)) == 8
    assert stopped_epoch(AlertRule(), records(alert_from=7)) == 7
    never_armed = PatienceRule("val_loss", patience=2, armed_by="overfit_alert")
    assert stopped_epoch(never_armed, records()) == len(VAL)


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


@pytest.mark.parametrize(
    ("mode", "patience", "min_delta"), [("mid", 3, 0.0), ("min", 0, 0.0), ("min", 2.0, 0.0), ("min", 3, -0.1)]
)
def test_patience_rule_rejects_bad_arguments(mode: str, patience: Any, min_delta: float) -> None:
    with pytest.raises(ValueError):
        PatienceRule("val_loss", mode=mode, patience=patience, min_delta=min_delta)


def test_transition_window_by_hand() -> None:
    assert smooth_centred([0.0, 3.0, 0.0, 3.0]) == [1.5, 1.0, 2.0, 1.5]
    # Smoothed: [.35, .2333, .0667, 0, 0, .2, .5, .8333, .95]; minimum 0 at epoch 3 (the first of
    # two); range 0.95, threshold 0.095; from epoch 5 on every value is above it.
    gap = [0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.6, 0.9, 1.0]
    assert transition_window(range(10, 19), gap) == (13, 15)
    # A gap that rises, falls back, then rises for good: smoothed [0, 0, .3, .3, .3, 0, .3, .6, .9, .9],
    # threshold 0 + 0.1 * 0.9; the end is where it stays above for good, epoch 6.
    assert transition_window(range(10), [0, 0, 0, 0.9, 0, 0, 0, 0.9, 0.9, 0.9]) == (0, 6)
    # Rising from the start: smoothed [.05, .1, .2, .25], threshold .05 + 0.1 * .2 = .07, so the
    # window ends at once (epoch 1). Fewer than 3 epochs: no window.
    assert transition_window(range(4), [0.0, 0.1, 0.2, 0.3]) == (0, 1)
    assert transition_window(range(2), [0.0, 1.0]) is None
    with pytest.raises(ValueError):
        transition_window(range(3), [0.0, 1.0])
    with pytest.raises(ValueError):
        smooth_centred([1.0], width=2)


def test_interaction_early_stopping_overrides_no_private_method_of_early_stopping() -> None:
    from lightning.pytorch.callbacks import EarlyStopping

    overridden = [
        name
        for name in vars(InteractionEarlyStopping)
        if name.startswith("_") and not name.startswith("__") and hasattr(EarlyStopping, name)
    ]
    assert overridden == []  # only public hooks: a Lightning release may change its private ones
