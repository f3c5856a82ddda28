"""Tests for lightning_interactions.analysis.losses: the loss rows and the smallest loss gap."""

from __future__ import annotations

import math

import numpy as np
from helpers.report_history import TRAIN, VAL, make_history

from lightning_interactions.analysis.losses import loss_gap_minimum, loss_rows


def test_loss_rows() -> None:
    history = make_history()
    assert loss_rows(history) == list(zip(range(len(TRAIN)), TRAIN, VAL))
    # Records without both losses, or with one not finite, are left out.
    history[2] = dict(history[2], train_loss=None)
    history[5] = dict(history[5], val_loss=math.nan)
    history[6] = dict(history[6], train_loss=-math.inf)
    assert [row[0] for row in loss_rows(history)] == [0, 1, 3, 4, 7]
    assert loss_rows(make_history(losses=False)) == []
    assert all(isinstance(value, float) for row in loss_rows(history) for value in row[1:])


def test_loss_gap_minimum() -> None:
    history = make_history()
    gaps = [v - t for t, v in zip(TRAIN, VAL)]
    assert loss_gap_minimum(history) == int(np.argmin(gaps))
    # Records without both losses are left out.
    partial = [dict(r, val_loss=None) if r["epoch"] == int(np.argmin(gaps)) else r for r in history]
    rest = [g if e != int(np.argmin(gaps)) else math.inf for e, g in enumerate(gaps)]
    assert loss_gap_minimum(partial) == int(np.argmin(rest))
    assert loss_gap_minimum(make_history(losses=False)) is None


def test_loss_gap_minimum_takes_the_first_of_ties() -> None:
    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.5} for e in (3, 4, 5)]
    assert loss_gap_minimum(history) == 3
