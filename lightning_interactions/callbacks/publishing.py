"""What the monitor logs and when: each measurement's scalars and figures, the alert, the run at fit end.

Where it goes is up to the :class:`~lightning_interactions.loggers.LoggerBackend` of each of the
Trainer's loggers; figures are drawn only when some backend shows them (and matplotlib is there).
Everything is logged at the record's ``step``, the step of Lightning's own epoch-level metrics of
that epoch, so ``val_loss`` and ``interactions/complexity`` share one x-axis.

Figures are drawn on a background thread (a
:class:`~lightning_interactions.callbacks.figure_worker.FigureWorker`) from copies of the
history, and logged at the step of the measurement they belong to. They are drawn at the epochs
that matter, under tags that each keep few images (TensorBoard keeps 10 per tag by default):
``key_epochs/...`` holds one figure each of the untrained model, the onset, the alert and the
last epoch; ``figures/...`` the measured and predicted shape, the orders over epochs and the heat
map every :attr:`FigurePlan.every` epochs (at most about ten).
At the alert and at fit end, the interactions that grew most since the onset
(:func:`~lightning_interactions.analysis.emerging.compare_run`) go out as a markdown table
(``<prefix>/emerging_interactions``) and, drawn on their samples, as a figure
(``key_epochs/emerging_at_alert``, ``key_epochs/emerging_at_end``).

Example:
    >>> FigurePlan.for_run(max_epochs=50, every_n_epochs=1).every
    7
    >>> FigurePlan.for_run(max_epochs=-1, every_n_epochs=2).every  # no end known: every tenth epoch
    10
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from lightning_interactions.analysis.emerging import compare_run
from lightning_interactions.analysis.replay import RunReplay
from lightning_interactions.callbacks.figure_worker import FigureWorker
from lightning_interactions.loggers import LoggerBackend
from lightning_interactions.plot import (
    figure_measured_vs_predicted,
    figure_orders_over_epochs,
    figure_shape_heatmap,
    matplotlib_available,
    replay_panel_figures,
)
from lightning_interactions.plot.samples import figure_interactions_on_samples
from lightning_interactions.reporting.summary import summary_text

__all__ = [
    "Drawing",
    "DrawnSamples",
    "FigurePlan",
    "logging_step",
    "publish_measurement",
    "publish_losses",
    "publish_run",
    "publish_interactions",
]

History = Sequence[Mapping[str, Any]]
Figures = Mapping[str, tuple[Any, int]]  # tag -> (figure, step)
Record = Mapping[str, Any]
# Periodic figures per tag: TensorBoard keeps 10 images per tag unless told otherwise.
_PERIODIC_FIGURES = 8


@dataclass(frozen=True)
class DrawnSamples:
    """The measured samples, their players and how to draw them (``plot.samples.sample_layout``)."""

    layout: Mapping[str, Any]
    inputs: Any
    players: Mapping[str, Any]


@dataclass(frozen=True)
class Drawing:
    """The backends that get figures (none: no figure is drawn) and the worker that draws them."""

    backends: Sequence[LoggerBackend]
    worker: FigureWorker

    @classmethod
    def of(cls, backends: Sequence[LoggerBackend], log_figures: bool, worker: FigureWorker) -> Drawing:
        """Figures only if wanted, drawable (matplotlib) and shown by some backend."""
        if not log_figures or not matplotlib_available():
            return cls([], worker)
        return cls([backend for backend in backends if backend.supports_figures], worker)

    def submit(self, job: Callable[[list[dict[str, Any]]], Figures], history: History, epoch: int) -> None:
        """Draw ``job(records)`` in the background; the records are copies, made here and only when
        some backend gets figures (the training thread adds the losses to the originals later)."""
        if self.backends:
            frozen = [dict(record) for record in history]
            self.worker.submit(lambda: job(frozen), self.backends, epoch)


def publish_interactions(
    backends: Sequence[LoggerBackend],
    drawing: Drawing,
    history: History,
    prefix: str,
    when: str,
    onset: Mapping[str, Any] | None = None,
    samples: DrawnSamples | None = None,
) -> None:
    """Log the emerging and discarded interactions as markdown and, drawn on their samples, as a figure."""
    comparison = compare_run(history, onset)
    end_epoch, step = int(history[-1]["epoch"]), _step(history[-1])
    for backend in backends:
        backend.log_text(f"{prefix}/emerging_interactions", comparison.markdown(), step)
    if samples is None or not comparison.emerging:
        return
    title = f"grew most from the onset (epoch {comparison.epochs['onset_epoch']}) to epoch {end_epoch}"

    def draw(_: list[dict[str, Any]]) -> Figures:
        figure = figure_interactions_on_samples(
            samples.layout, samples.inputs, samples.players, comparison.emerging, title=title
        )
        return {f"{prefix}/key_epochs/emerging_{when}": (figure, step)}

    drawing.submit(draw, [], end_epoch)


def logging_step(trainer: Any, epoch: int) -> int:
    """The step at which Lightning logs the epoch-level metrics of the epoch just completed (0 before).

    That is its count of batches that stepped, as its logger connector uses for epoch-end metrics.
    """
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    stepped = getattr(loop, "_batches_that_stepped", None)
    if isinstance(stepped, int):
        return stepped
    return max(int(trainer.global_step) - (1 if epoch > 0 else 0), 0)


def _step(record: Record) -> int:
    return int(record["step"]) if record.get("step") is not None else int(record["epoch"])


@dataclass(frozen=True)
class FigurePlan:
    """Which epochs get the periodic figures: every ``every`` epochs."""

    every: int

    @classmethod
    def for_run(cls, max_epochs: int | None, every_n_epochs: int) -> FigurePlan:
        if not max_epochs or max_epochs < 0:
            return cls(every=10)
        every = max(1, math.ceil(max_epochs / _PERIODIC_FIGURES))
        # A multiple of the measurement interval, so that the figure epochs are measured ones.
        return cls(every=every_n_epochs * math.ceil(every / every_n_epochs))

    def periodic(self, epoch: int) -> bool:
        return epoch % self.every == 0


def publish_measurement(
    backends: Sequence[LoggerBackend],
    record: Record,
    history: History,
    scalars: Mapping[str, float],
    prefix: str,
    *,
    first: bool,
    drawing: Drawing,
    plan: FigurePlan,
    alert: str | None = None,
    onset: Mapping[str, Any] | None = None,
    samples: DrawnSamples | None = None,
) -> None:
    """Log one measurement: its scalars everywhere; the alert's note; its figures where they are shown.

    ``first``: the first measurement logged in this fit, before which each backend starts.
    ``drawing``: the backends that get figures, and the worker that draws them.
    ``alert``: the note of an alert that this measurement fired; with it go the emerging
    interactions (:func:`publish_interactions`), from the ``onset``'s full interactions if given
    and drawn on ``samples`` if given.
    """
    step = _step(record)
    # Lightning's own "epoch" column: the epoch (0-based) whose end this step is; 0 before training.
    scalars = {**scalars, "epoch": max(int(record["epoch"]) - 1, 0)}
    for backend in backends:
        if first:
            backend.start(record["num_players"], prefix)
        backend.log_scalars(scalars, step)
        if alert is not None:
            backend.log_text(f"{prefix}/alert", alert, step)
    fired = alert is not None
    # The record is the history's last: the monitor publishes each measurement as it commits it.
    draw = lambda frozen: _measurement_figures(frozen[-1], frozen, prefix, plan, fired)  # noqa: E731
    drawing.submit(draw, history, int(record["epoch"]))
    if alert is not None:
        publish_interactions(backends, drawing, history, prefix, "at_alert", onset, samples)
    for backend in backends:
        backend.flush()


def _measured_vs_predicted(record: Record) -> Any:
    """The record's measured-vs-predicted figure, drawn once however many tags show it."""
    return figure_measured_vs_predicted(record) if record["predicted_shape"] is not None else None


def _measurement_figures(
    record: Record, history: History, prefix: str, plan: FigurePlan, fired: bool
) -> dict[str, tuple[Any, int]]:
    epoch, step = int(record["epoch"]), _step(record)
    marks = {"alert_epoch": record.get("alert_epoch"), "onset_epoch": record.get("onset_epoch")}
    own = _measured_vs_predicted(record) if epoch == 0 or fired or plan.periodic(epoch) else None
    figures: dict[str, tuple[Any, int]] = {}
    if epoch == 0 and own is not None:
        figures[f"{prefix}/key_epochs/untrained"] = (own, step)
    if fired:
        onset = next(r for r in history if r["epoch"] == record["onset_epoch"])
        onset_figure = own if onset is record else _measured_vs_predicted(onset)
        if onset_figure is not None:
            figures[f"{prefix}/key_epochs/onset"] = (onset_figure, _step(onset))
        if own is not None:
            figures[f"{prefix}/key_epochs/alert"] = (own, step)
    if plan.periodic(epoch) or fired:
        figures.update(_current_figures(record, history, prefix, marks, own))
    return figures


def _current_figures(
    record: Record, history: History, prefix: str, marks: Mapping[str, Any], own: Any
) -> dict[str, tuple[Any, int]]:
    """The periodic figures of the run so far (``own``: the record's measured-vs-predicted figure)."""
    step = _step(record)
    figures: dict[str, tuple[Any, int]] = {}
    if own is not None:
        figures[f"{prefix}/figures/measured_vs_predicted"] = (own, step)
    figures[f"{prefix}/figures/orders_over_epochs"] = (figure_orders_over_epochs(history, **marks), step)
    figures[f"{prefix}/figures/shape_heatmap"] = (figure_shape_heatmap(history, **marks), step)
    return figures


def publish_losses(backends: Sequence[LoggerBackend], record: Record, prefix: str) -> None:
    """Log the epoch's losses as the monitor read them and their gap (val - train), at its measurement's step.

    Under the monitor's prefix, so that the losses that the alert compares share a chart with it.
    """
    train, val = record.get("train_loss"), record.get("val_loss")
    if train is None or val is None:
        return
    scalars = {f"{prefix}/train_loss": float(train), f"{prefix}/val_loss": float(val)}
    scalars[f"{prefix}/loss_gap"] = float(val) - float(train)
    for backend in backends:
        backend.log_scalars(scalars, _step(record))
        backend.flush()


def publish_run(
    backends: Sequence[LoggerBackend],
    history: History,
    run: RunReplay,
    alert_epoch: int | None,
    onset_epoch: int | None,
    prefix: str,
    *,
    drawing: Drawing,
    plan: FigurePlan,
    hparams: tuple[Mapping[str, Any], Mapping[str, float]] | None = None,
    onset: Mapping[str, Any] | None = None,
    samples: DrawnSamples | None = None,
    page: Callable[[], str] | None = None,
) -> None:
    """Log the run at fit end: the summary, the replay's panels, the last epoch's figures, the hparams,
    the emerging interactions (:func:`publish_interactions`), and ``page()``, the run's dashboard as
    one HTML page, to the backends that show pages."""
    last = history[-1]
    step = _step(last)
    text = summary_text(history, run.fits, alert_epoch, onset_epoch)
    marks = {"alert_epoch": alert_epoch, "onset_epoch": onset_epoch}

    def draw(frozen: list[dict[str, Any]]) -> Figures:
        panels = replay_panel_figures(frozen, run.fits, run.predicted_shapes, **marks)
        figures = {f"{prefix}/replay/{name}": (figure, step) for name, figure in panels.items()}
        own = _measured_vs_predicted(frozen[-1])
        if own is not None:
            figures[f"{prefix}/key_epochs/last"] = (own, step)
        if not plan.periodic(int(last["epoch"])):
            figures.update(_current_figures(frozen[-1], frozen, prefix, marks, own))
        return figures

    drawing.submit(draw, history, int(last["epoch"]))
    publish_interactions(backends, drawing, history, prefix, "at_end", onset, samples)
    for backend in backends:
        backend.log_text(f"{prefix}/summary", text, step)
        if hparams is not None:
            backend.log_hparams(*hparams, step=step)
        backend.flush()
    showing = [backend for backend in backends if backend.supports_pages]
    if page is not None and showing:
        html = page()
        for backend in showing:
            backend.log_page(f"{prefix}/dashboard", html, step)
            backend.flush()
