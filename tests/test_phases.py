"""Tests for lightning_interactions.analysis.phases.PhaseTracker on synthetic complexity sequences."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from lightning_interactions.analysis.phases import PhaseTracker


def run(tracker: PhaseTracker, values: list[float], start: int = 0) -> list[int]:
    return [tracker.update(epoch, value) for epoch, value in enumerate(values, start=start)]


def test_phase_zero_before_any_measurement() -> None:
    tracker = PhaseTracker()
    assert (tracker.margin, tracker.patience) == (0.05, 2)
    assert tracker.phase == 0
    assert not tracker.alert and tracker.alert_epoch is None and tracker.onset_epoch is None
    assert tracker.threshold() is None


def test_steady_fall_stays_in_phase_one() -> None:
    tracker = PhaseTracker()
    phases = run(tracker, [4.0, 3.5, 3.1, 2.8, 2.6, 2.5, 2.45])
    assert phases == [1] * 7
    assert not tracker.alert and tracker.onset_epoch is None
    assert tracker.min_epoch == 6 and tracker.min_complexity == 2.45


def test_fall_then_rise_fires_once_and_names_the_minimum() -> None:
    tracker = PhaseTracker(margin=0.05, patience=2)
    # Minimum 2.0 at epoch 3; threshold 2.1. Epoch 4 (2.05) is within the margin, epochs 5 and 6
    # are above it: the alert fires at epoch 6.
    values = [3.0, 2.6, 2.2, 2.0, 2.05, 2.15, 2.3, 2.5, 1.5, 2.8]
    fired_at = []
    phases = []
    for epoch, value in enumerate(values):
        phases.append(tracker.update(epoch, value))
        if tracker.just_fired:
            fired_at.append(epoch)
    assert phases == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    assert fired_at == [6]
    assert tracker.alert and tracker.alert_epoch == 6 and tracker.onset_epoch == 3
    # Phase 2 is final: a later dip below the old minimum neither moves the onset nor re-fires.
    assert tracker.min_complexity == 2.0 and tracker.min_epoch == 3


def test_noisy_plateau_within_the_margin_never_fires_then_a_sustained_rise_does() -> None:
    generator = torch.Generator().manual_seed(0)
    # Fall to 2.0, then a plateau with +-2% noise: max/min <= 1.02/0.98 < 1.05.
    fall = [3.0, 2.6, 2.3, 2.1]
    plateau = (2.0 * (1 + 0.02 * (2 * torch.rand(30, generator=generator, dtype=torch.float64) - 1))).tolist()
    tracker = PhaseTracker(margin=0.05, patience=2)
    assert run(tracker, fall + plateau) == [1] * (len(fall) + len(plateau))
    assert not tracker.alert
    minimum_epoch = tracker.min_epoch
    assert minimum_epoch == len(fall) + plateau.index(min(plateau))
    # A second, higher plateau well above the margin: fires at its second measurement.
    start = len(fall) + len(plateau)
    rise = run(tracker, [2.3, 2.31, 2.29], start=start)
    assert rise == [1, 2, 2]
    assert tracker.alert_epoch == start + 1 and tracker.onset_epoch == minimum_epoch


def test_single_spikes_do_not_fire() -> None:
    tracker = PhaseTracker(margin=0.05, patience=2)
    # Each spike is far above the threshold, but it is followed by a value within the margin.
    phases = run(tracker, [3.0, 2.0, 2.6, 2.05, 2.7, 2.0, 1.9, 2.5, 1.95])
    assert phases == [1] * 9
    assert not tracker.alert and tracker.alert_epoch is None
    # With patience 1 the same first spike fires.
    eager = PhaseTracker(margin=0.05, patience=1)
    assert run(eager, [3.0, 2.0, 2.6]) == [1, 1, 2]
    assert eager.alert_epoch == 2 and eager.onset_epoch == 1


def test_new_minimum_restarts_the_count() -> None:
    tracker = PhaseTracker(margin=0.1, patience=2)
    # 2.5 is above 2.0 * 1.1, then 1.0 is a new minimum: the count restarts, and 1.2 counts once.
    assert run(tracker, [2.0, 2.5, 1.0, 1.2]) == [1, 1, 1, 1]
    assert tracker.above_count == 1 and tracker.min_epoch == 2
    assert tracker.update(4, 1.3) == 2
    assert tracker.onset_epoch == 2


def test_threshold_is_strict_and_relative() -> None:
    tracker = PhaseTracker(margin=0.25, patience=2)
    run(tracker, [4.0, 2.0])
    assert tracker.threshold() == 2.5
    assert run(tracker, [2.5, 2.5, 2.5], start=2) == [1, 1, 1]  # equal to the threshold: not above
    assert run(tracker, [2.5001, 2.6], start=5) == [1, 2]
    zero_margin = PhaseTracker(margin=0.0, patience=1)
    assert run(zero_margin, [2.0, 2.0, 2.0 + 1e-9]) == [1, 1, 2]


@pytest.mark.parametrize("cut", [1, 3, 5, 6, 8])
def test_resume_from_state_dict_mid_sequence(cut: int) -> None:
    values = [3.0, 2.5, 2.1, 2.0, 2.3, 2.05, 2.2, 2.4, 2.6, 1.0]
    reference = PhaseTracker(margin=0.05, patience=2)
    expected = run(reference, values)

    first = PhaseTracker(margin=0.05, patience=2)
    head = run(first, values[:cut])
    # Round trip through pickle, as a checkpoint would.
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = PhaseTracker()
    resumed.load_state_dict(state)
    tail = run(resumed, values[cut:], start=cut)
    assert head + tail == expected
    assert resumed.state_dict() == reference.state_dict()
    assert (resumed.alert, resumed.alert_epoch, resumed.onset_epoch) == (True, 7, 3)


def test_state_dict_restores_settings_and_is_a_copy() -> None:
    tracker = PhaseTracker(margin=0.2, patience=3)
    run(tracker, [2.0, 1.5])
    state = tracker.state_dict()
    tracker.update(2, 1.0)
    assert state["min_complexity"] == 1.5  # the saved state did not follow the tracker
    fresh = PhaseTracker()
    fresh.load_state_dict(state)
    assert (fresh.margin, fresh.patience, fresh.phase, fresh.min_epoch) == (0.2, 3, 1, 1)


@pytest.mark.parametrize(
    ("margin", "patience"), [(-0.01, 2), (math.inf, 2), ("x", 2), (0.05, 0), (0.05, 1.5), (0.05, True)]
)
def test_invalid_arguments(margin: object, patience: object) -> None:
    with pytest.raises(ValueError):
        PhaseTracker(margin=margin, patience=patience)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_complexity_is_rejected_without_changing_state(bad: float) -> None:
    tracker = PhaseTracker()
    tracker.update(0, 2.0)
    before = tracker.state_dict()
    with pytest.raises(ValueError, match="finite"):
        tracker.update(1, bad)
    assert tracker.state_dict() == before


def test_accepts_tensor_complexity() -> None:
    tracker = PhaseTracker(patience=1)
    tracker.update(0, torch.tensor(2.0, dtype=torch.float64))
    assert tracker.update(1, torch.tensor(3.0)) == 2
