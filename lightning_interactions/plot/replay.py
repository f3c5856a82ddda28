"""The replay of a whole run, in the style of the paper: four panels on a 2 x 2 grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lightning_interactions.plot._canvas import History, check_history, new_figure
from lightning_interactions.plot.replay_panels import (
    draw_complexity,
    draw_losses,
    draw_noise,
    draw_shape_curves,
)

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lightning_interactions.analysis.replay import EpochFit

__all__ = ["figure_replay", "replay_panel_figures"]


def draw_replay(
    figure: Figure,
    axes: Sequence[Axes],
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    predicted_shapes: Mapping[int, Sequence[float]] | None,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
) -> None:
    """Draw the four panels of :func:`figure_replay` on ``axes`` and title ``figure``."""
    draw_shape_curves(axes[0], history, predicted_shapes)
    draw_noise(axes[1], history, replay_fits, alert_epoch, onset_epoch)
    draw_complexity(axes[2], history, alert_epoch, onset_epoch)
    draw_losses(axes[3], history, alert_epoch, onset_epoch)
    if alert_epoch is None:
        status = "no over-fitting alert"
    elif onset_epoch is None:
        status = f"over-fitting alert at epoch {alert_epoch}"
    else:
        status = f"over-fitting alert at epoch {alert_epoch} (onset: epoch {onset_epoch})"
    figure.suptitle(f"Interaction dynamics over training: {status}", fontsize="large")


def figure_replay(
    history: History,
    replay_fits: Sequence[EpochFit] | None = None,
    predicted_shapes: Mapping[int, Sequence[float]] | None = None,
    *,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
) -> Figure:
    """The replay of a whole run, in the style of the paper, on a 2 x 2 grid.

    1. strength by order (shapes) at up to six evenly spaced epochs, first and last included:
       measured solid, predicted dashed, from ``predicted_shapes`` (epoch -> shape, the reference
       replay) when given, else each record's online ``predicted_shape``;
    2. the fitted noise level ``s`` over epochs (log scale) and the fit error (right axis), from
       ``replay_fits`` (its last entry, the reference epoch, which fits itself, is left out) and
       from the records' online fits;
    3. the complexity (mean order);
    4. training and validation loss and their gap, when recorded.

    ``alert_epoch`` and ``onset_epoch`` (the phase tracker's; None: not marked) are marked on
    panels 2 to 4 and named in the title. Five axes: the four panels, then the right-hand axis of
    panel 2.
    """
    check_history(history)
    figure = new_figure(figsize=(13, 9), layout="constrained")
    axes = figure.subplots(2, 2).ravel()
    draw_replay(figure, axes, history, replay_fits, predicted_shapes, alert_epoch, onset_epoch)
    return figure


def replay_panel_figures(
    history: History,
    replay_fits: Sequence[EpochFit] | None = None,
    predicted_shapes: Mapping[int, Sequence[float]] | None = None,
    *,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
) -> dict[str, Figure]:
    """The four panels of :func:`figure_replay`, each a figure of its own (legible on a dashboard card).

    Keys: ``"shapes"``, ``"noise_level"``, ``"complexity"``, ``"losses"``.
    """
    check_history(history)
    figures = {name: new_figure(figsize=(6.4, 4.2), layout="constrained") for name in _PANELS}
    draw_shape_curves(figures["shapes"].add_subplot(), history, predicted_shapes)
    draw_noise(figures["noise_level"].add_subplot(), history, replay_fits, alert_epoch, onset_epoch)
    draw_complexity(figures["complexity"].add_subplot(), history, alert_epoch, onset_epoch)
    draw_losses(figures["losses"].add_subplot(), history, alert_epoch, onset_epoch)
    return figures


_PANELS = ("shapes", "noise_level", "complexity", "losses")
