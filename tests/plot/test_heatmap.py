"""The shape heat map (plot/heatmap.py): its image data and the epochs it marks, not pixels."""

from __future__ import annotations

import numpy as np
from helpers.figures import epoch_marks, quiet, saved_png
from helpers.report_history import (
    N,
)

from lightning_interactions import plot


def test_shape_heatmap(history, epochs, tmp_path) -> None:
    alert, onset = epochs
    figure = plot.figure_shape_heatmap(history, alert_epoch=alert, onset_epoch=onset)
    assert len(figure.axes) == 2  # the map and its colour bar
    data = np.asarray(figure.axes[0].images[0].get_array())
    expected = np.array([[record["shape"][k] for record in history] for k in range(N)])
    np.testing.assert_array_equal(data, expected)
    marked = sorted(line.get_xdata()[0] for line in figure.axes[0].lines)
    assert marked == sorted([alert, onset])  # epochs 0..7 are the columns 0..7 here
    assert epoch_marks(figure.axes[0]) == {"alert": alert, "onset": onset}
    saved_png(figure, tmp_path / "heat.png")


def test_shape_heatmap_marks_only_the_epochs_given(history) -> None:
    # The records fire the alert, but without the tracker's epochs nothing is marked.
    (ax, _) = plot.figure_shape_heatmap(history).axes
    assert not ax.lines and ax.get_legend() is None
    # Given epochs are marked though no record has its alert set.
    (ax, _) = plot.figure_shape_heatmap(quiet(history), alert_epoch=6, onset_epoch=1).axes
    assert epoch_marks(ax) == {"alert": 6, "onset": 1}
    assert ax.get_legend() is not None
    (ax, _) = plot.figure_shape_heatmap(history, alert_epoch=3).axes
    assert epoch_marks(ax) == {"alert": 3}


def test_shape_heatmap_marks_the_first_column_of_an_epoch(history) -> None:
    # Two measurements an epoch, epochs 0..3: epoch e is columns 2e and 2e + 1.
    doubled = [dict(record, epoch=index // 2) for index, record in enumerate(history)]
    (ax, _) = plot.figure_shape_heatmap(doubled, alert_epoch=3, onset_epoch=1).axes
    assert epoch_marks(ax) == {"alert": 6, "onset": 2}
    labels = ax.get_legend_handles_labels()[1]
    assert any("epoch 1" in label for label in labels) and any("epoch 3" in label for label in labels)
    # An epoch that has no measurement has no column and no mark.
    (ax, _) = plot.figure_shape_heatmap(doubled, alert_epoch=9, onset_epoch=1).axes
    assert epoch_marks(ax) == {"onset": 2}
