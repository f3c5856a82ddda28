"""Matplotlib as an optional dependency (plot/_canvas.py): available here, and without it every
figure says how to install it while the figure-free functions still work.
"""

from __future__ import annotations

import re
import sys

import pytest

from lightning_interactions import plot
from lightning_interactions.analysis.losses import loss_gap_minimum


def test_matplotlib_available() -> None:
    assert plot.matplotlib_available() is True


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
