"""Tests for lightning_interactions.plot: the figures' artists, axes and data (not their pixels)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from helpers.report_history import (
    PNG_MAGIC,
    N,
    make_history,
    make_predicted_shapes,
    make_replay_fits,
    tracker_epochs,
)

from lightning_interactions import plot
from lightning_interactions.analysis.losses import loss_gap_minimum

ONSET = "tab:orange"
ALERT = "tab:red"


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


@pytest.fixture(scope="module")
def epochs() -> tuple[int, int]:
    return tracker_epochs()


@pytest.fixture(scope="module")
def replay_fits():
    return make_replay_fits()


@pytest.fixture(scope="module")
def predicted_shapes(replay_fits) -> dict[int, list[float]]:
    return make_predicted_shapes(replay_fits)


def _saved_png(figure, path) -> None:
    figure.savefig(path, format="png", dpi=50)
    data = path.read_bytes()
    assert len(data) > len(PNG_MAGIC) and data[:8] == PNG_MAGIC


def _vertical_lines(ax) -> list:
    """The lines of ``ax`` drawn by ``axvline``: two points, one x, y from 0 to 1 (axes units)."""
    return [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2
        and line.get_xdata()[0] == line.get_xdata()[1]
        and list(line.get_ydata()) == [0, 1]
    ]


def _marks(ax) -> dict[str, float]:
    """``{"onset": x, "alert": x}`` of the epoch marks on ``ax``, by colour and line style."""
    kinds = {(ONSET, "--"): "onset", (ALERT, ":"): "alert"}
    marks = {}
    for line in _vertical_lines(ax):
        kind = kinds[(line.get_color(), line.get_linestyle())]
        assert kind not in marks, f"two {kind} marks"
        marks[kind] = float(line.get_xdata()[0])
    return marks


def _quiet(history: list[dict]) -> list[dict]:
    """The history with no record's alert set: the figures must not need it to mark the epochs."""
    return [dict(record, overfit_alert=0, phase=1) for record in history]


def test_matplotlib_available() -> None:
    assert plot.matplotlib_available() is True


def test_measured_vs_predicted(history, tmp_path) -> None:
    record = history[4]
    figure = plot.figure_measured_vs_predicted(record)
    (ax,) = figure.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(record["shape"])
    assert list(ax.lines[0].get_ydata()) == pytest.approx(record["predicted_shape"])
    assert "epoch 4" in ax.get_title() and f"{record['noise_level']:.3g}" in ax.get_title()
    _saved_png(figure, tmp_path / "one.png")
    # Without a prediction (the untrained record): bars only.
    assert not plot.figure_measured_vs_predicted(history[0]).axes[0].lines


# --- heat map ----------------------------------------------------------------------------------


def test_shape_heatmap(history, epochs, tmp_path) -> None:
    alert, onset = epochs
    figure = plot.figure_shape_heatmap(history, alert_epoch=alert, onset_epoch=onset)
    assert len(figure.axes) == 2  # the map and its colour bar
    data = np.asarray(figure.axes[0].images[0].get_array())
    expected = np.array([[record["shape"][k] for record in history] for k in range(N)])
    np.testing.assert_array_equal(data, expected)
    marked = sorted(line.get_xdata()[0] for line in figure.axes[0].lines)
    assert marked == sorted([alert, onset])  # epochs 0..7 are the columns 0..7 here
    assert _marks(figure.axes[0]) == {"alert": alert, "onset": onset}
    _saved_png(figure, tmp_path / "heat.png")


def test_shape_heatmap_marks_only_the_epochs_given(history) -> None:
    # The records fire the alert, but without the tracker's epochs nothing is marked.
    (ax, _) = plot.figure_shape_heatmap(history).axes
    assert not ax.lines and ax.get_legend() is None
    # Given epochs are marked though no record has its alert set.
    (ax, _) = plot.figure_shape_heatmap(_quiet(history), alert_epoch=6, onset_epoch=1).axes
    assert _marks(ax) == {"alert": 6, "onset": 1}
    assert ax.get_legend() is not None
    (ax, _) = plot.figure_shape_heatmap(history, alert_epoch=3).axes
    assert _marks(ax) == {"alert": 3}


def test_shape_heatmap_marks_the_first_column_of_an_epoch(history) -> None:
    # Two measurements an epoch, epochs 0..3: epoch e is columns 2e and 2e + 1.
    doubled = [dict(record, epoch=index // 2) for index, record in enumerate(history)]
    (ax, _) = plot.figure_shape_heatmap(doubled, alert_epoch=3, onset_epoch=1).axes
    assert _marks(ax) == {"alert": 6, "onset": 2}
    labels = ax.get_legend_handles_labels()[1]
    assert any("epoch 1" in label for label in labels) and any("epoch 3" in label for label in labels)
    # An epoch that has no measurement has no column and no mark.
    (ax, _) = plot.figure_shape_heatmap(doubled, alert_epoch=9, onset_epoch=1).axes
    assert _marks(ax) == {"onset": 2}


# --- replay and report page --------------------------------------------------------------------


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
    _saved_png(figure, tmp_path / "replay.png")


def test_replay_marks_follow_the_arguments(history, epochs, replay_fits, predicted_shapes) -> None:
    alert, onset = epochs
    figure = plot.figure_replay(history, replay_fits, predicted_shapes, alert_epoch=alert, onset_epoch=onset)
    shapes, noise, complexity, losses, errors = figure.axes
    for ax in (noise, complexity, losses):
        assert _marks(ax) == {"alert": alert, "onset": onset}
    assert not _vertical_lines(shapes) and not _vertical_lines(errors)  # orders, not epochs
    assert f"alert at epoch {alert} (onset: epoch {onset})" in figure.get_suptitle()
    # Other epochs, on a history none of whose records has the alert set.
    figure = plot.figure_replay(_quiet(history), replay_fits, alert_epoch=6, onset_epoch=1)
    for ax in figure.axes[1:4]:
        assert _marks(ax) == {"alert": 6, "onset": 1}
    assert "alert at epoch 6 (onset: epoch 1)" in figure.get_suptitle()
    figure = plot.figure_replay(history, alert_epoch=5)
    assert _marks(figure.axes[2]) == {"alert": 5}
    assert figure.get_suptitle().endswith("over-fitting alert at epoch 5")


def test_replay_without_epochs_marks_nothing(history, replay_fits, predicted_shapes) -> None:
    # The records fire the alert; the figure does not work it out from them.
    figure = plot.figure_replay(history, replay_fits, predicted_shapes)
    for ax in figure.axes:
        assert not _vertical_lines(ax)
    labels = [label for ax in figure.axes for label in ax.get_legend_handles_labels()[1]]
    assert not [label for label in labels if label.startswith(("onset", "alert"))]
    assert figure.get_suptitle().endswith("no over-fitting alert")


def test_replay_figure_without_losses_or_replay(tmp_path) -> None:
    figure = plot.figure_replay(make_history(losses=False))
    assert len(figure.axes) == 5
    assert "no train/val loss" in figure.axes[3].texts[0].get_text()
    _saved_png(figure, tmp_path / "bare.png")


def test_figure_report_marks_both_parts(history, epochs, replay_fits, predicted_shapes) -> None:
    alert, onset = epochs
    figure = plot.figure_report(history, replay_fits, predicted_shapes, alert_epoch=alert, onset_epoch=onset)
    assert len(figure.axes) == 7  # four panels, the heat map, the right axis of panel 2, the colour bar
    heatmap = next(ax for ax in figure.axes if ax.images)
    assert np.asarray(heatmap.images[0].get_array()).shape == (N, len(history))
    for ax in (*figure.axes[1:4], heatmap):
        assert _marks(ax) == {"alert": alert, "onset": onset}
    assert not any(_vertical_lines(ax) for ax in plot.figure_report(history).axes)


def test_write_report_png(history, epochs, replay_fits, predicted_shapes, tmp_path) -> None:
    path = tmp_path / "report.png"
    assert plot.write_report_png(history, replay_fits, predicted_shapes, path, dpi=40) == str(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    alert, onset = epochs
    marked = tmp_path / "marked.png"
    written = plot.write_report_png(history, None, None, marked, 40, alert_epoch=alert, onset_epoch=onset)
    assert written == str(marked) and marked.read_bytes()[:8] == PNG_MAGIC


def test_figures_need_matplotlib(history, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert plot.matplotlib_available() is False
    hint = re.escape("pip install lightning-interactions[plots]")
    for draw in (plot.figure_shape_heatmap, plot.figure_replay, plot.figure_report):
        with pytest.raises(ImportError, match=hint):
            draw(history)
    with pytest.raises(ImportError, match=hint):
        plot.figure_measured_vs_predicted(history[-1])
    # The figure-free functions still work.
    assert loss_gap_minimum(history) is not None
