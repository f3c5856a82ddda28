"""The alert candidates and memorisation scores against hand-computed cases (docs/theory.md, section 7)."""

from __future__ import annotations

import math

import pytest

from lightning_interactions.analysis.candidates import (
    false_alarm,
    gap_rule_epoch,
    high_order_share,
    high_order_strength,
    noise_fall_series,
    outlier_share,
    precision_recall,
    roc_auc,
    series,
    specific_share,
    widening_epoch,
)
from lightning_interactions.analysis.transition import onset_and_turn


def test_widening_epoch_fires_where_the_window_averages_first_clear_the_margin() -> None:
    # Averages over 3: [0, 0, 0, 0.1, 0.3, 0.6] for values [0,0,0,0,0.3,0.6,0.9,...].
    values = [0.0, 0.0, 0.0, 0.0, 0.3, 0.6, 0.9, 0.9]
    # With 6 values: averages [0, 0, 0.1, 0.3]; the last two (0.1, 0.3) must exceed 0 + theta.
    assert widening_epoch(range(8), values, theta=0.05) == 5
    # theta 0.2: 0.1 fails at 6 values; with 7: averages [0, 0, 0.1, 0.3, 0.6], last two clear 0.2.
    assert widening_epoch(range(8), values, theta=0.2) == 6
    # theta 0.7: the largest average, 0.8 (0.6, 0.9, 0.9), clears it once only.
    assert widening_epoch(range(8), values, theta=0.7) is None


def test_widening_epoch_needs_the_last_average_above_the_one_a_window_earlier() -> None:
    # A step up then flat: the averages stay above the early low, but are no longer rising.
    values = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # 6 values: averages [0, 1/3, 2/3, 1]; last two > 0.1 and 1 > avg[0] = 0: fires at 5.
    assert widening_epoch(range(9), values, theta=0.1) == 5
    # Flat from the start: never.
    assert widening_epoch(range(9), [1.0] * 9, theta=0.0) is None


def test_widening_epoch_skips_missing_values_and_keeps_their_epochs() -> None:
    values = [0.0, None, 0.0, 0.0, float("nan"), 0.0, 0.0, 0.0, 0.5, 1.0]
    # The 8 finite values are [0,0,0,0,0,0,0.5,1.0] at epochs 0,2,3,5,6,7,8,9: as in the doctest
    # of 8 values, it fires at the 8th value, epoch 9.
    assert widening_epoch(range(10), values, theta=0.1) == 9


def test_gap_rule_epoch_uses_the_validation_loss_as_the_margin_scale() -> None:
    # gap = val - train: [0]*6 then 0.2, 0.4; val = 10, so the margin is 0.05 * 10 = 0.5.
    train = [10.0] * 6 + [9.8, 9.6, 9.0, 8.0]
    val = [10.0] * 10
    # Averages of the gap: [0,0,0,0, 0.0667, 0.2, 0.5333, 1.1333]; the last two above 0.5: epoch 9.
    assert gap_rule_epoch(range(10), train, val) == 9
    # With val = 1 the margin is 0.05: fires at epoch 7 (averages 0.0667 and 0.2).
    assert gap_rule_epoch(range(10), [t - 9.0 for t in train], [1.0] * 10) == 7
    # Epochs without losses are skipped, as the tracker skips them.
    assert gap_rule_epoch(range(3), [None, 1.0, 1.0], [1.0, None, 1.0]) is None


def test_noise_fall_series_is_minus_log_s() -> None:
    assert noise_fall_series([1.0, 0.5, None, 0.0]) == [0.0, pytest.approx(math.log(2.0)), None, None]


def test_high_order_strength_and_share_sum_orders_from_three() -> None:
    assert high_order_strength([1.0, 2.0, 3.0, 4.0]) == 7.0
    assert high_order_strength([1.0, 2.0, 3.0, 4.0], min_order=2) == 9.0
    assert high_order_share([1.0, 2.0, 3.0, 4.0]) == 0.7
    assert high_order_share([0.0, 0.0, 0.0]) == 0.0


def test_outlier_share_is_the_top_quarter_over_the_total() -> None:
    # 8 samples: the top 2 hold 5 + 3 of 10.
    assert outlier_share([5.0, 1.0, 0.5, 0.5, 3.0, 0.0, 0.0, 0.0]) == 0.8
    # 16 equal samples: 4 of 16.
    assert outlier_share([2.0] * 16) == 0.25
    assert outlier_share([0.0, 0.0]) == 0.0


def test_specific_share_counts_interactions_no_other_sample_of_the_label_lists() -> None:
    a = [["and", [0, 1], 2, 3.0], ["and", [0], 1, 9.0]]  # order 1: left out
    b = [["and", [0, 1], 2, -1.0], ["or", [0, 1], 2, 2.0]]  # the OR of {0, 1} is b's alone
    c = [["and", [0, 1], 2, 4.0]]  # label 1: its AND {0, 1} is specific (no other label-1 sample)
    spans = [1.0, 2.0, 4.0]  # values are divided by the span: a 3, b 0.5 and 1, c 1
    # total 3 + 0.5 + 1 + 1 = 5.5; specific: b's OR (1) and c's AND (1)
    assert specific_share([a, b, c], spans, [0, 0, 1]) == pytest.approx(2.0 / 5.5)
    # All one label: only b's OR is specific.
    assert specific_share([a, b, c], spans, [0, 0, 0]) == pytest.approx(1.0 / 5.5)
    # A span of 0 counts as 1; nothing of order >= 2: 0.
    assert specific_share([[["and", [2, 3], 2, 2.0]]], [0.0], [0]) == 1.0
    assert specific_share([[["and", [1], 1, 2.0]]], [1.0], [0]) == 0.0


def test_false_alarm_compares_with_the_lowest_validation_loss_still_to_come() -> None:
    epochs, val = [0, 1, 2, 3, 4], [3.0, 2.0, 1.04, 1.0, 1.5]
    assert false_alarm(1, epochs, val)  # 2.0 > 1.05 * 1.0
    assert not false_alarm(2, epochs, val)  # 1.04 <= 1.05 * 1.0
    assert not false_alarm(4, epochs, val)  # the last epoch: nothing better to come
    assert not false_alarm(None, epochs, val)
    assert not false_alarm(7, epochs, val)  # an epoch without a validation loss


def test_roc_auc_counts_pairs_and_ties_by_hand() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.2, 0.9: pairs won 0.8>0.4, 0.8>0.2, 0.4>0.2, tie 0.4=0.4
    assert roc_auc([0.8, 0.4, 0.4, 0.2, 0.9], [True, True, False, False, False]) == pytest.approx(3.5 / 6)
    assert roc_auc([1.0, 2.0], [True, True]) is None


def test_precision_recall_of_flagging_above_a_threshold() -> None:
    scores = [0.9, 0.8, 0.3, 0.7, 0.1]
    flipped = [True, False, True, False, False]
    # flagged above 0.5: 0.9 (T), 0.8 (F), 0.7 (F): precision 1/3, recall 1/2
    assert precision_recall(scores, flipped, 0.5) == (pytest.approx(1 / 3), 0.5)
    assert precision_recall(scores, flipped, 0.95) == (None, 0.0)
    assert precision_recall(scores, [False] * 5, 0.5) == (0.0, None)


def test_series_reads_one_key_per_record() -> None:
    history = [{"epoch": 0, "noise_level": 0.5}, {"epoch": 2}]
    assert series(history, "noise_level") == ([0, 2], [0.5, None])


def test_onset_and_turn_puts_the_complexity_minimum_beside_the_gap_window_start() -> None:
    complexities = [2.0, 1.2, 1.3, 1.5, 1.6, 1.8, 1.9]
    gaps = [None, 0.4, 0.2, 0.1, 0.1, 0.5, 0.9]  # epoch 0 has no losses
    history = [
        {
            "epoch": e,
            "complexity": c,
            "train_loss": None if g is None else 1.0,
            "val_loss": None if g is None else 1.0 + g,
        }
        for e, c, g in zip(range(7), complexities, gaps)
    ]
    # Smoothed gap over epochs 1..6: [0.3, 0.2333, 0.1333, 0.2333, 0.5, 0.7]; smallest at epoch 3;
    # threshold 0.1333 + 0.1 * (0.7 - 0.1333) = 0.19, exceeded for good from epoch 4: window (3, 4).
    result = onset_and_turn(history)
    assert result["onset"] == 1 and result["turn"] == 3 and result["onset_minus_turn"] == -2
    assert result["window"] == (3, 4)
    # The tracker's onset, where the last record has one, wins over the smallest complexity.
    history[-1]["onset_epoch"] = 2
    assert onset_and_turn(history)["onset_minus_turn"] == -1
    assert onset_and_turn([])["turn"] is None
