"""What the monitor logs and when: each measurement's scalars and figures, and the run at fit end.

Where it goes is up to the :class:`~lightning_interactions.loggers.LoggerBackend` of each of the
Trainer's loggers; figures are drawn only when some backend shows them (and matplotlib is there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_interactions.analysis.replay import RunReplay
from lightning_interactions.loggers import LoggerBackend
from lightning_interactions.plot import (
    figure_measured_vs_predicted,
    figure_replay,
    figure_shape_heatmap,
    matplotlib_available,
)
from lightning_interactions.reporting.summary import summary_text

__all__ = ["publish_measurement", "publish_run"]

History = Sequence[Mapping[str, Any]]


def _drawing(backends: Sequence[LoggerBackend], log_figures: bool) -> list[LoggerBackend]:
    """The backends that get figures: none unless figures are wanted and can be drawn."""
    if not log_figures or not matplotlib_available():
        return []
    return [backend for backend in backends if backend.supports_figures]


def publish_measurement(
    backends: Sequence[LoggerBackend],
    record: Mapping[str, Any],
    history: History,
    scalars: Mapping[str, float],
    prefix: str,
    *,
    first: bool,
    log_figures: bool,
) -> None:
    """Log one measurement: its scalars everywhere; its figures where they are shown.

    ``first``: the first measurement logged in this fit, before which each backend starts.
    """
    step = record["epoch"]
    for backend in backends:
        backend.log_scalars(scalars, step)
        if first:
            backend.start(record["num_players"], prefix)
    drawing = _drawing(backends, log_figures)
    if drawing:
        figures = {}
        if record["predicted_shape"] is not None:
            figures[f"{prefix}/measured_vs_predicted"] = figure_measured_vs_predicted(record)
        alert = {"alert_epoch": record.get("alert_epoch"), "onset_epoch": record.get("onset_epoch")}
        figures[f"{prefix}/shape_heatmap"] = figure_shape_heatmap(history, **alert)
        for backend in drawing:
            for tag, figure in figures.items():
                backend.log_figure(tag, figure, step)
    for backend in backends:
        backend.flush()


def publish_run(
    backends: Sequence[LoggerBackend],
    history: History,
    run: RunReplay,
    alert_epoch: int | None,
    onset_epoch: int | None,
    prefix: str,
    *,
    log_figures: bool,
) -> None:
    """Log the run at fit end: the summary text and the figure of the reference replay."""
    step = history[-1]["epoch"]
    text = summary_text(history, run.fits, alert_epoch, onset_epoch)
    drawing = _drawing(backends, log_figures)
    figure = None
    if drawing:
        figure = figure_replay(
            history, run.fits, run.predicted_shapes, alert_epoch=alert_epoch, onset_epoch=onset_epoch
        )
    for backend in backends:
        backend.log_text(f"{prefix}/summary", text, step)
        if figure is not None and backend in drawing:
            backend.log_figure(f"{prefix}/replay", figure, step)
        backend.flush()
