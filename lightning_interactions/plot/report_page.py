"""The whole report on one page: the replay's four panels with the shape heat map below, and below
that, when the samples are known, the interactions that grew most since the onset drawn on them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lightning_interactions.plot._canvas import History, check_history, new_figure
from lightning_interactions.plot.heatmap import draw_heatmap
from lightning_interactions.plot.replay import draw_replay
from lightning_interactions.plot.samples import DrawnChanges, draw_interactions

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.figure import Figure

    from lightning_interactions.analysis.replay import EpochFit

__all__ = ["figure_report", "write_report_png"]


def figure_report(
    history: History,
    replay_fits: Sequence[EpochFit] | None = None,
    predicted_shapes: Mapping[int, Sequence[float]] | None = None,
    *,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
    interactions: DrawnChanges | None = None,
) -> Figure:
    """:func:`~lightning_interactions.plot.figure_replay` with the shape heat map below it (seven axes).

    ``alert_epoch`` and ``onset_epoch`` (the phase tracker's; None: not marked) are marked on both.
    ``interactions``: emerging interactions and their samples, drawn in a last row
    (:func:`~lightning_interactions.plot.samples.draw_interactions`).
    """
    check_history(history)
    rows = 3 if interactions is None else 4
    ratios = (1, 1, 0.8, 0.9)[:rows]
    figure = new_figure(figsize=(13, 13 + 4 * (rows - 3)), layout="constrained")
    grid = figure.add_gridspec(rows, 2, height_ratios=ratios)
    axes = [figure.add_subplot(grid[row, col]) for row in range(2) for col in range(2)]
    draw_replay(figure, axes, history, replay_fits, predicted_shapes, alert_epoch, onset_epoch)
    draw_heatmap(figure, figure.add_subplot(grid[2, :]), history, alert_epoch, onset_epoch)
    if interactions is not None:
        draw_interactions(figure, grid[3, :], *interactions)
    return figure


def write_report_png(
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    predicted_shapes: Mapping[int, Sequence[float]] | None,
    path: str | os.PathLike[str],
    dpi: int = 100,
    *,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
    interactions: DrawnChanges | None = None,
) -> str:
    """Draw :func:`figure_report` and save it as a PNG at ``path``; returns the path as a string."""
    figure = figure_report(
        history,
        replay_fits,
        predicted_shapes,
        alert_epoch=alert_epoch,
        onset_epoch=onset_epoch,
        interactions=interactions,
    )
    target = os.fspath(path)
    figure.savefig(target, format="png", dpi=dpi)
    return target
