"""The report page (plot/report_page.py): both parts marked at the alert and the onset; the PNG file."""

from __future__ import annotations

import numpy as np
from helpers.figures import epoch_marks, vertical_lines
from helpers.report_history import (
    PNG_MAGIC,
    N,
)

from lightning_interactions import plot


def test_figure_report_marks_both_parts(history, epochs, replay_fits, predicted_shapes) -> None:
    alert, onset = epochs
    figure = plot.figure_report(history, replay_fits, predicted_shapes, alert_epoch=alert, onset_epoch=onset)
    assert len(figure.axes) == 7  # four panels, the heat map, the right axis of panel 2, the colour bar
    heatmap = next(ax for ax in figure.axes if ax.images)
    assert np.asarray(heatmap.images[0].get_array()).shape == (N, len(history))
    for ax in (*figure.axes[1:4], heatmap):
        assert epoch_marks(ax) == {"alert": alert, "onset": onset}
    assert not any(vertical_lines(ax) for ax in plot.figure_report(history).axes)


def test_write_report_png(history, epochs, replay_fits, predicted_shapes, tmp_path) -> None:
    path = tmp_path / "report.png"
    assert plot.write_report_png(history, replay_fits, predicted_shapes, path, dpi=40) == str(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    alert, onset = epochs
    marked = tmp_path / "marked.png"
    written = plot.write_report_png(history, None, None, marked, 40, alert_epoch=alert, onset_epoch=onset)
    assert written == str(marked) and marked.read_bytes()[:8] == PNG_MAGIC
