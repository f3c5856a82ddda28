"""Tests for lightning_interactions.analysis.phases.PhaseTracker on synthetic complexity sequences."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from lightning_interactions.analysis.phases import (
    PhaseTracker,
    alert_of,
    gap_widening,
    phase1_of,
    replay_tracker,
)


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


# ---------------------------------------------------------------------------------------------
# The loss gap that confirms the alert, and phase 1
# ---------------------------------------------------------------------------------------------


def online(tracker: PhaseTracker, complexities: list[float], losses: list[tuple[float, float]]) -> list[int]:
    """As the monitor feeds it: epoch e's complexity, then epoch e's (train, val) losses."""
    phases = []
    for epoch, (value, (train, val)) in enumerate(zip(complexities, losses)):
        phases.append(tracker.update(epoch, value))
        tracker.add_losses(epoch, train, val)
    return phases


def test_gap_widening_by_hand() -> None:
    # Means over each 3 consecutive gaps of g = [0, -0.2, -0.4, -0.4, -0.4, -0.1, 0.2] (val loss 1):
    # m = [-0.2, -1/3, -0.4, -0.3, -0.1]. The last two (-0.3, -0.1) exceed the smallest before them
    # (-0.4) by 0.1 and 0.3, more than 0.05 * 1, and the last is above the one 3 before (-1/3).
    gaps = [(g, 1.0) for g in (0.0, -0.2, -0.4, -0.4, -0.4, -0.1, 0.2)]
    assert gap_widening(gaps, rise=0.05, patience=2, window=3)
    # With a margin of 0.15 the first of the two (0.1 above) is not enough.
    assert not gap_widening(gaps, rise=0.15, patience=2, window=3)
    assert gap_widening(gaps, rise=0.15, patience=1, window=3)
    # The margin scales with the validation loss of each epoch: at val loss 4, 0.05 * 4 = 0.2 > 0.1.
    scaled = gaps[:-2] + [(-0.1, 4.0), (0.2, 4.0)]
    assert not gap_widening(scaled, rise=0.05, patience=2, window=3)
    # A gap that rose and is shrinking again is not widening, though still above its low:
    # means [-0.4, -0.1, 0.2, 0.5, 0.433, 0.3, 0.133]; the last (0.133) is below the one 3 before (0.5).
    shrinking = [(g, 1.0) for g in (-0.4, -0.4, -0.4, 0.5, 0.5, 0.5, 0.3, 0.1, 0.0)]
    assert not gap_widening(shrinking, rise=0.05, patience=2, window=3)
    # 2 * window entries are needed before the rule can say yes.
    assert not gap_widening([(float(g), 1.0) for g in range(5)], 0.05, 2, 3)
    assert gap_widening([(float(g), 1.0) for g in range(6)], 0.05, 2, 3)


def test_before_any_losses_the_monitor_tracker_waits_unless_they_are_missing() -> None:
    # patience 1: the rise completes at epoch 1, before epoch 1's losses can be known.
    waiting = PhaseTracker(patience=1, wait_for_losses=True)
    assert run(waiting, [1.0, 2.0]) == [1, 1] and waiting.rise_epoch == 1 and not waiting.alert
    waiting.add_losses(0, None, None)  # the untrained model never has losses: not "missing"
    assert waiting.update(2, 2.0) == 1
    waiting.add_losses(2, None, 0.5)  # a trained epoch without a training loss: the module logs none
    assert waiting.losses_missing and waiting.update(3, 2.0) == 2 and waiting.alert_epoch == 3
    # A tracker fed complexities only (the default) lets the rise fire at once.
    assert run(PhaseTracker(patience=1), [1.0, 2.0]) == [1, 2]


def test_rise_waits_for_the_widening_gap_then_fires_and_names_the_minimum() -> None:
    # Complexity: minimum at epoch 2, above 1.05 * min on epochs 3 and 4: the rise at epoch 4.
    complexities = [2.0, 1.2, 1.0, 1.1, 1.2, 1.3, 1.3, 1.35, 1.4, 1.4]
    # Gap (val - train) flat at -0.3 through epoch 6, then widening; val loss 1.
    gaps = [-0.3] * 7 + [0.0, 0.3, 0.6]
    losses = [(1.0 - g, 1.0) for g in gaps]
    tracker = PhaseTracker()
    phases = online(tracker, complexities, losses)
    # Measurement e sees the losses of epochs < e. Trailing means: epochs 0..6 at -0.3, epoch 7
    # -0.2, epoch 8 0.0: the last two above -0.3 + 0.05 first at the measurement of epoch 9.
    assert tracker.rise_epoch == 4
    assert phases == [1] * 9 + [2]
    assert (tracker.alert_epoch, tracker.onset_epoch, tracker.phase1_seen) == (9, 2, True)
    # The same run with the gap ignored fires at the rise, as before the gap rule existed.
    rise_only = PhaseTracker(gap_rise=None)
    assert online(rise_only, complexities, losses) == [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert (rise_only.alert_epoch, rise_only.onset_epoch) == (4, 2)


def test_onset_stays_unset_until_the_alert_and_the_rise_is_final() -> None:
    tracker = PhaseTracker()
    flat = [(1.3, 1.0)] * 6
    online(tracker, [2.0, 1.0, 1.2, 1.3, 0.5, 0.4], flat)
    # Rose at epoch 3 (from 1.0 at epoch 1); later dips do not move it; the flat gap keeps the alert off.
    assert (tracker.rise_epoch, tracker.min_epoch, tracker.alert, tracker.onset_epoch) == (3, 1, False, None)


def test_phase1_seen_only_after_a_ten_percent_fall_from_the_first_measurement() -> None:
    low_start = PhaseTracker()
    run(low_start, [1.39, 1.31, 1.66, 1.60])  # the ResNet: a 5.8% dip, no phase 1
    assert not low_start.phase1_seen
    shedding = PhaseTracker()
    run(shedding, [2.0, 1.85, 1.81])
    assert not shedding.phase1_seen  # 9.5% below the first: not yet below 2.0 - 0.1 * 2.0 = 1.8
    assert run(shedding, [1.79], start=3) == [1] and shedding.phase1_seen
    assert PhaseTracker(phase1_drop=0.0).update(0, 1.0) == 1


def test_losses_are_ignored_unless_both_are_finite_and_replace_an_earlier_entry() -> None:
    tracker = PhaseTracker()
    tracker.add_losses(1, None, 0.5)
    tracker.add_losses(1, 0.4, math.nan)
    assert tracker.gaps == []
    tracker.add_losses(2, 0.4, 0.5)
    tracker.add_losses(1, 0.6, 0.5)
    tracker.add_losses(2, 0.3, 0.5)  # a re-measured epoch (resumed run): the latest losses count
    assert tracker.gaps == [[1, pytest.approx(-0.1), 0.5], [2, pytest.approx(0.2), 0.5]]


@pytest.mark.parametrize("cut", [2, 5, 8])
def test_resume_with_losses_mid_run(cut: int) -> None:
    complexities = [2.0, 1.2, 1.0, 1.1, 1.2, 1.3, 1.3, 1.35, 1.4, 1.4]
    losses = [(1.3, 1.0)] * 7 + [(1.0, 1.0), (0.7, 1.0), (0.4, 1.0)]
    reference = PhaseTracker()
    expected = online(reference, complexities, losses)
    first = PhaseTracker()
    head = online(first, complexities[:cut], losses[:cut])
    resumed = PhaseTracker()
    resumed.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))
    tail = []
    for epoch in range(cut, len(complexities)):
        tail.append(resumed.update(epoch, complexities[epoch]))
        resumed.add_losses(epoch, *losses[epoch])
    assert head + tail == expected
    assert resumed.state_dict() == reference.state_dict()


def test_state_saved_before_the_rise_existed_keeps_its_alert() -> None:
    old = {"margin": 0.05, "patience": 2, "phase": 2, "alert": True, "alert_epoch": 4, "onset_epoch": 2,
           "min_complexity": 1.0, "min_epoch": 2, "above_count": 2}  # fmt: skip
    tracker = PhaseTracker()
    tracker.load_state_dict(old)
    assert (tracker.rise_epoch, tracker.alert_epoch, tracker.gaps) == (4, 4, [])
    assert tracker.update(5, 0.1) == 2


def test_replay_tracker_matches_the_online_tracker() -> None:
    complexities = [2.0, 1.2, 1.0, 1.1, 1.2, 1.3, 1.3, 1.35, 1.4, 1.4]
    losses = [(1.3, 1.0)] * 7 + [(1.0, 1.0), (0.7, 1.0), (0.4, 1.0)]
    live = PhaseTracker(wait_for_losses=True)
    online(live, complexities, losses)
    history = [
        {"epoch": e, "complexity": c, "train_loss": t, "val_loss": v}
        for e, (c, (t, v)) in enumerate(zip(complexities, losses))
    ]
    assert replay_tracker(history).state_dict() == live.state_dict()
    # A history without the alert keys predates the gap rule: alert_of replays the rise alone.
    assert alert_of(history) == (4, 2)


def test_phase1_of_reads_the_record_or_replays_the_test() -> None:
    history = [{"epoch": e, "complexity": c} for e, c in enumerate([1.4, 1.35, 1.8])]
    info = phase1_of(history)
    assert not info["seen"] and info["fall"] == pytest.approx(0.05 / 1.4) and info["min_epoch"] == 1
    assert phase1_of([*history[:-1], {**history[-1], "phase1_seen": True}])["seen"]


@pytest.mark.parametrize(
    "settings",
    [
        {"gap_rise": -0.1},
        {"gap_rise": math.nan},
        {"gap_patience": 0},
        {"gap_window": 2.5},
        {"phase1_drop": "x"},
    ],
)
def test_invalid_gap_and_phase1_settings(settings: dict) -> None:
    with pytest.raises(ValueError):
        PhaseTracker(**settings)


def test_a_flag_of_the_wrong_type_is_a_type_error_as_in_the_monitor() -> None:
    with pytest.raises(TypeError, match="wait_for_losses must be True or False"):
        PhaseTracker(wait_for_losses=1)  # type: ignore[arg-type]


def test_a_state_saved_before_phase1_and_losses_existed_is_rebuilt_from_the_history() -> None:
    complexities = [2.0, 1.2, 1.0, 1.1, 1.2, 1.3]
    losses = [(None, None)] + [(1.3, 1.0)] * 5
    history = [
        {"epoch": e, "complexity": c, "train_loss": t, "val_loss": v}
        for e, (c, (t, v)) in enumerate(zip(complexities, losses))
    ]
    live = replay_tracker(history)
    old = {key: value for key, value in live.state_dict().items()
           if key not in ("first_complexity", "phase1_seen", "gaps", "losses_missing")}  # fmt: skip
    without_history = PhaseTracker(wait_for_losses=True)
    without_history.load_state_dict(old)
    assert without_history.first_complexity is None and without_history.gaps == []
    resumed = PhaseTracker(wait_for_losses=True)
    resumed.load_state_dict(old, history=history)
    assert resumed.state_dict() == live.state_dict()
    assert resumed.phase1_seen and resumed.first_complexity == 2.0 and len(resumed.gaps) == 5


def test_replay_tracker_uses_the_records_settings_and_ignores_keys_it_does_not_know() -> None:
    history = [{"epoch": e, "complexity": c} for e, c in enumerate([3.0, 2.0, 2.2, 2.3])]
    assert replay_tracker(history).alert_epoch == 3  # the defaults: two measurements above the minimum
    settings = {"margin": 0.05, "patience": 1, "gap_rise": None, "from_a_later_release": 1}
    kept = [{**record, "alert_settings": settings} for record in history]
    assert replay_tracker(kept).alert_epoch == 2
