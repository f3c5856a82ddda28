"""Tests for lightning_interactions.reporting.summary and analysis.phases.alert_of on a synthetic run."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.report_history import TRAIN, VAL, make_history, make_replay_fits, tracker_epochs

from lightning_interactions.analysis.phases import alert_of
from lightning_interactions.reporting.summary import summary_text


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


@pytest.fixture(scope="module", name="tracker_epochs")
def tracker_epochs_fixture() -> tuple[int, int]:
    return tracker_epochs()


@pytest.fixture(scope="module")
def replay_fits():
    return make_replay_fits()


# --- numbers off the history -------------------------------------------------------------------


def test_alert_of_replays_the_tracker_or_reads_what_it_stored(history, tracker_epochs) -> None:
    # These records carry no alert_epoch/onset_epoch: the default tracker is replayed on them.
    assert "alert_epoch" not in history[-1]
    assert alert_of(history) == tracker_epochs
    # What the tracker stored wins over a replay (here: a tracker that never fired).
    stored = [dict(record, alert_epoch=None, onset_epoch=None) for record in history]
    assert alert_of(stored) == (None, None)
    assert alert_of([dict(history[0], alert_epoch=7, onset_epoch=3)]) == (7, 3)
    assert alert_of([]) == (None, None)


def test_summary_text_names_the_epochs(history, replay_fits, tracker_epochs) -> None:
    alert, onset = tracker_epochs
    text = summary_text(history, replay_fits, alert, onset)
    complexities = [r["complexity"] for r in history]
    low = int(np.argmin(complexities))
    assert f"fired at epoch {alert}" in text
    assert f"phase 2 began at epoch {onset}" in text
    assert f"minimum {complexities[low]:.4g} at epoch {low}" in text
    assert f"final {complexities[-1]:.4g} at epoch {len(history) - 1}" in text
    gap_epoch = int(np.argmin([v - t for t, v in zip(TRAIN, VAL)]))
    assert f"smallest at epoch {gap_epoch}" in text
    # Replay means leave out the reference (last) epoch.
    others = replay_fits[:-1]
    phase2 = [f.error for f in others if f.epoch >= onset]
    assert f"over phase 2 (epochs >= {onset}) {sum(phase2) / len(phase2):.3g}" in text
    assert f"over all other epochs {sum(f.error for f in others) / len(others):.3g}" in text
    assert "not the best epoch to stop" in text


def test_summary_text_without_alert_or_losses() -> None:
    history = make_history(losses=False)
    text = summary_text(history, None, None, None)
    assert "no alert" in text
    assert "Loss gap" not in text and "replay" not in text
    with pytest.raises(ValueError):
        summary_text([], None, None, None)


def test_the_summary_puts_the_onset_beside_the_loss_gaps_turn() -> None:
    from lightning_interactions.reporting.summary import summary_text

    # The gap val - train: 0.0, 0.2, 0.3, 0.4, 0.7, 1.1, rising from the first epoch on.
    losses = [(1.0, 1.0), (0.8, 1.0), (0.6, 0.9), (0.5, 0.9), (0.3, 1.0), (0.1, 1.2)]
    history = [
        {"epoch": e, "complexity": c, "train_loss": t, "val_loss": v}
        for e, c, (t, v) in zip(range(6), [2.0, 1.5, 1.6, 1.8, 1.9, 2.0], losses)
    ]
    text = summary_text(history, None, None, None)
    assert (
        "**Onset and the loss gap's turn:** the complexity minimum (epoch 1) came 1 epoch(s) later than "
        "the start of the loss gap's transition window (epochs 0 to 2)."
    ) in text
    no_losses = [{"epoch": r["epoch"], "complexity": r["complexity"]} for r in history]
    assert "loss gap's turn" not in summary_text(no_losses, None, None, None)


def test_a_diverged_epoch_is_neither_the_best_validation_nor_the_gaps_turn() -> None:
    from lightning_interactions.reporting.summary import summary_text

    nan = float("nan")
    losses = [(nan, nan), (1.0, 1.0), (0.8, 1.0), (0.6, 0.9), (0.5, 0.9), (0.3, 1.0), (0.1, 1.2)]
    history = [
        {"epoch": e, "complexity": c, "train_loss": t, "val_loss": v}
        for e, c, (t, v) in zip(range(7), [2.0, 1.9, 1.5, 1.6, 1.8, 1.9, 2.0], losses)
    ]
    text = summary_text(history, None, None, None)
    assert "nan" not in text.lower()
    assert "lowest at epoch 3 (0.9)" in text
    assert "(epochs 1 to 3)" in text  # the window of the finite gaps, as without the diverged epoch
