"""The replay figure (plot/replay.py): its panels, the epochs it marks, and a run without losses or
replay; artists, axes and data, not pixels. Fixtures in ``conftest.py``.
"""

from __future__ import annotations

import pytest
from helpers.figures import epoch_marks, quiet, saved_png, vertical_lines
from helpers.report_history import (
    make_history,
)

from lightning_interactions import plot


def test_replay_figure(history, replay_fits, predicted_shapes, tmp_path) -> None:
    figure = plot.figure_replay(history, replay_fits, predicted_shapes)
    assert len(figure.axes) == 5
    curves = figure.axes[0].lines
    chosen = [0, 1, 3, 4, 6, 7]  # six of eight, evenly spaced, first and last included
    solid = [line for line in curves if line.get_linestyle() == "-" and len(line.get_ydata())]
    dashed = [line for line in curves if line.get_linestyle() == "--" and len(line.get_ydata())]
    assert len(solid) == len(dashed) == len(chosen)
    for line, index in zip(solid, chosen):
        assert list(line.get_ydata()) == pytest.approx(history[index]["shape"])
    for line, index in zip(dashed, chosen):
        assert list(line.get_ydata()) == pytest.approx(predicted_shapes[index])
    noise = figure.axes[1]
    assert noise.get_yscale() == "log"
    # The reference (last) epoch fits itself and is left out of the noise-level curve.
    assert list(noise.lines[0].get_xdata()) == [f.epoch for f in replay_fits[:-1]]
    assert list(noise.lines[0].get_ydata()) == pytest.approx([f.s for f in replay_fits[:-1]])
    saved_png(figure, tmp_path / "replay.png")


def test_replay_marks_follow_the_arguments(history, epochs, replay_fits, predicted_shapes) -> None:
    alert, onset = epochs
    figure = plot.figure_replay(history, replay_fits, predicted_shapes, alert_epoch=alert, onset_epoch=onset)
    shapes, noise, complexity, losses, errors = figure.axes
    for ax in (noise, complexity, losses):
        assert epoch_marks(ax) == {"alert": alert, "onset": onset}
    assert not vertical_lines(shapes) and not vertical_lines(errors)  # orders, not epochs
    assert f"alert at epoch {alert} (onset: epoch {onset})" in figure.get_suptitle()
    # Other epochs, on a history none of whose records has the alert set.
    figure = plot.figure_replay(quiet(history), replay_fits, alert_epoch=6, onset_epoch=1)
    for ax in figure.axes[1:4]:
        assert epoch_marks(ax) == {"alert": 6, "onset": 1}
    assert "alert at epoch 6 (onset: epoch 1)" in figure.get_suptitle()
    figure = plot.figure_replay(history, alert_epoch=5)
    assert epoch_marks(figure.axes[2]) == {"alert": 5}
    assert figure.get_suptitle().endswith("over-fitting alert at epoch 5")


def test_replay_without_epochs_marks_nothing(history, replay_fits, predicted_shapes) -> None:
    # The records fire the alert; the figure does not work it out from them.
    figure = plot.figure_replay(history, replay_fits, predicted_shapes)
    for ax in figure.axes:
        assert not vertical_lines(ax)
    labels = [label for ax in figure.axes for label in ax.get_legend_handles_labels()[1]]
    assert not [label for label in labels if label.startswith(("onset", "alert"))]
    assert figure.get_suptitle().endswith("no over-fitting alert")


def test_replay_figure_without_losses_or_replay(tmp_path) -> None:
    figure = plot.figure_replay(make_history(losses=False))
    assert len(figure.axes) == 5
    assert "no train/val loss" in figure.axes[3].texts[0].get_text()
    saved_png(figure, tmp_path / "bare.png")
