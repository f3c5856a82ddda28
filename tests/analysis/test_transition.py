"""The transition window of the loss gap (analysis/transition.py), by hand."""

from __future__ import annotations

import pytest

from lightning_interactions.analysis.transition import smooth_centred, transition_window


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
