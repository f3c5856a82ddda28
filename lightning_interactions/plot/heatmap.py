"""The shape of every measurement as a heat map: orders (y) by measurements (x)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lightning_interactions.plot._canvas import History, check_history, mark_epochs, new_figure

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_shape_heatmap"]


def draw_heatmap(
    figure: Figure,
    ax: Axes,
    history: History,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
) -> None:
    """Draw the heat map of :func:`figure_shape_heatmap` on ``ax``, its colour bar beside it."""
    import numpy as np

    shapes = np.array([record["shape"] for record in history], dtype=float).T  # (orders, records)
    epochs = [int(record["epoch"]) for record in history]
    n = shapes.shape[0]
    image = ax.imshow(
        shapes,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(-0.5, len(epochs) - 0.5, 0.5, n + 0.5),
    )
    figure.colorbar(image, ax=ax, label="share of strength A(k) / sum A")
    step = max(1, math.ceil(len(epochs) / 15))
    ax.set_xticks(range(0, len(epochs), step))
    ax.set_xticklabels([str(epochs[i]) for i in range(0, len(epochs), step)])
    ax.set_yticks(range(1, n + 1, max(1, math.ceil(n / 12))))
    ax.set_xlabel("epoch")
    ax.set_ylabel("order k")
    ax.set_title("strength by order over training (shape)")

    def first_column(epoch: int) -> int | None:
        # The columns are measurements: mark the first column of the epoch (none if not measured).
        return epochs.index(epoch) if epoch in epochs else None

    mark_epochs(ax, alert_epoch, onset_epoch, position=first_column)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small")


def figure_shape_heatmap(
    history: History, *, alert_epoch: int | None = None, onset_epoch: int | None = None
) -> Figure:
    """Heat map of the shape: orders ``1..n`` (y) by measurements (x, labelled with epochs).

    ``alert_epoch`` and ``onset_epoch`` (the phase tracker's; None: not marked) are marked at the
    first column of their epoch. Two axes: the map and its colour bar; ``axes[0].images[0]`` holds
    the ``(n, len(history))`` array of shapes.
    """
    check_history(history)
    figure = new_figure(figsize=(7.5, 4.2), layout="constrained")
    draw_heatmap(figure, figure.add_subplot(), history, alert_epoch, onset_epoch)
    return figure
