"""Strength and shape of every order over the epochs: one line per order, in distinct colours.

TensorBoard's own charts colour lines by run, so the orders of one run are told apart here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_interactions.plot._canvas import History, check_history, mark_epochs, new_figure

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_orders_over_epochs"]


def _colours(count: int) -> list:
    from matplotlib import colormaps

    # tab10 for up to ten orders (distinct hues); a continuous map beyond, so none repeats.
    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]


def _draw(ax: Axes, history: History, key: str, ylabel: str, alert: int | None, onset: int | None) -> None:
    epochs = [int(record["epoch"]) for record in history]
    n = len(history[-1][key])
    for k, colour in zip(range(1, n + 1), _colours(n)):
        values = [record[key][k - 1] for record in history]
        ax.plot(epochs, values, color=colour, marker="o", markersize=2.5, linewidth=1.4, label=f"order {k}")
    mark_epochs(ax, alert, onset)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def figure_orders_over_epochs(
    history: History, *, alert_epoch: int | None = None, onset_epoch: int | None = None
) -> Figure:
    """Two panels over the epochs: strength ``A(k)`` (top) and its share (bottom), a line per order.

    The onset and alert epochs given (the phase tracker's) are marked on both; the legend, one
    entry per order and mark, sits above them.

    Example:
        >>> history = [{"epoch": e, "strength": [1.0, 0.5 * e], "shape": [1 / (1 + 0.5 * e), 0.5 * e / (1 + 0.5 * e)]}
        ...            for e in range(3)]
        >>> figure = figure_orders_over_epochs(history, alert_epoch=2)
        >>> [len(ax.get_lines()) for ax in figure.axes]  # two orders and the alert mark on each
        [3, 3]
    """  # noqa: E501
    check_history(history)
    # Stacked, not side by side: a dashboard card is narrow.
    figure = new_figure(figsize=(6.4, 6.4), layout="constrained")
    strength_ax, shape_ax = figure.subplots(2, 1, sharex=True)
    _draw(strength_ax, history, "strength", "strength A(k)", alert_epoch, onset_epoch)
    _draw(shape_ax, history, "shape", "share A(k) / sum A", alert_epoch, onset_epoch)
    strength_ax.set_xlabel("")
    strength_ax.set_title("strength by order")
    shape_ax.set_title("shape by order")
    handles, labels = shape_ax.get_legend_handles_labels()
    # Above the panels, in rows: the lines keep the card's whole width.
    figure.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 5), fontsize="small")
    return figure
