"""The measured-vs-predicted figure (plot/measured_vs_predicted.py): its artists and data, not pixels."""

from __future__ import annotations

import pytest
from helpers.figures import saved_png

from lightning_interactions import plot


def test_measured_vs_predicted(history, tmp_path) -> None:
    record = history[4]
    figure = plot.figure_measured_vs_predicted(record)
    (ax,) = figure.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(record["shape"])
    assert list(ax.lines[0].get_ydata()) == pytest.approx(record["predicted_shape"])
    assert "epoch 4" in ax.get_title() and f"{record['noise_level']:.3g}" in ax.get_title()
    saved_png(figure, tmp_path / "one.png")
    # Without a prediction (the untrained record): bars only.
    assert not plot.figure_measured_vs_predicted(history[0]).axes[0].lines
