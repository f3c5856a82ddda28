"""The offline stopping rules (analysis/stopping.py): where Lightning's EarlyStopping stops on a
real run, by hand, armed by the alert, and their argument checks.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers.scripted_run import VAL, Scripted, fit, records
from lightning.pytorch.callbacks import EarlyStopping

from lightning_interactions.analysis.stopping import AlertRule, PatienceRule, stopped_epoch


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


@pytest.mark.parametrize(
    ("mode", "patience", "min_delta"), [("mid", 3, 0.0), ("min", 0, 0.0), ("min", 2.0, 0.0), ("min", 3, -0.1)]
)
def test_patience_rule_rejects_bad_arguments(mode: str, patience: Any, min_delta: float) -> None:
    with pytest.raises(ValueError):
        PatienceRule("val_loss", mode=mode, patience=patience, min_delta=min_delta)
