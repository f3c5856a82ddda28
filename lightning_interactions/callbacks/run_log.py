"""Where a monitored fit's measurements go (rank 0): the history file, the reference file, the loggers.

The monitor decides when to measure; :class:`RunLog` writes each measurement down and publishes
it, and reports a failure to write or log through the fault policy, keeping the measurement.
Its figures are drawn by a background :class:`FigureWorker`; :meth:`RunLog.close_figures` finishes
them at fit end, or after a crash finishes what it can in a few seconds and says what it dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_interactions.analysis.history import (
    FAILED,
    ONSET_FILENAME,
    SAMPLES_FILENAME,
    append_record,
    beside_history,
    history_filename,
    reference_path,
    save_reference,
    save_samples,
)
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.replay import RunReplay, replay_errors, replay_run
from lightning_interactions.analysis.transition import onset_and_turn
from lightning_interactions.callbacks.faults import KEPT, FaultPolicy, MeasurementWarning
from lightning_interactions.callbacks.figure_worker import FigureWorker
from lightning_interactions.callbacks.history_file import continue_history_file
from lightning_interactions.callbacks.publishing import (
    Drawing,
    DrawnSamples,
    FigurePlan,
    publish_losses,
    publish_measurement,
    publish_run,
)
from lightning_interactions.dashboard import page_html
from lightning_interactions.loggers import LoggerBackend, backend_for, record_scalars
from lightning_interactions.plot.samples import sample_layout
from lightning_interactions.reporting.alert_note import alert_text

__all__ = ["RunLog", "monitor_settings"]

History = Sequence[Mapping[str, Any]]
# The parts of a measurement whose failures are reported (and repeated ones silenced) apart.
WRITING = "writing or logging the measurement"
WRITING_LOSSES = "writing the losses of the measurement"
RESUMING = "continuing the history file of the resumed run"
REPLAY = "the replay and summary of the run"
DRAWING = "drawing or logging the figures of the measurement"
# How long the end of a fit waits for figures still being drawn (a few seconds each, at most
# about ten pending): generous, since dropping them loses them; after a crash the run is
# already lost, and the user should not wait for pictures of it.
FIT_END_WAIT_S = 300.0
CRASH_WAIT_S = 10.0


class RunLog:
    """The history file and the loggers of one fit, for a monitor with these logging settings.

    Beside the history it keeps the measured samples, their players and how the ``masker``
    draws them (``interaction_samples.pt``, once per fit; a masker's ``feature_names`` and
    ``decode`` attributes, if set, label features and decode token ids), and the full
    interactions of the onset candidate, the measurement of the smallest complexity so far
    (``interaction_onset.pt``), from which the emerging interactions are ranked.
    """

    def __init__(self, prefix: str, log_figures: bool, faults: FaultPolicy, masker: Any = None) -> None:
        self.prefix, self.log_figures, self.faults = prefix, log_figures, faults
        self.masker = masker
        self.drawn: DrawnSamples | None = None
        self.onset: dict[str, Any] | None = None
        # The reference replay of the last fit, once made at its end.
        self.replayed: RunReplay | None = None
        self.history_file: Path | None = None
        self.plan = FigurePlan.for_run(None, 1)
        self.figures = FigureWorker()
        self._started = False

    def setup(self, trainer: Any, every_n_epochs: int) -> None:
        """On every process at fit setup: ``trainer.log_dir`` is a collective call under DDP."""
        self.history_file = self._default_path(trainer)
        self.plan = FigurePlan.for_run(trainer.max_epochs, every_n_epochs)
        self._started = False  # each fit's logger run gets its own layout

    def _default_path(self, trainer: Any) -> Path:
        return Path(trainer.log_dir or trainer.default_root_dir) / history_filename(self.prefix)

    def path(self, trainer: Any) -> Path:
        # Resolved in ``setup`` on every process; resolving it here, on rank 0 alone, would hang under DDP.
        if self.history_file is None:
            self.history_file = self._default_path(trainer)
        return self.history_file

    def _attempt(
        self, trainer: Any, epoch: int, what: str, action: Callable[[], None], outcome: str = KEPT
    ) -> None:
        try:
            action()
            self.faults.succeeded(what)
        except Exception as error:
            self.faults.report(trainer, epoch, error=error, what=what, outcome=outcome)

    @staticmethod
    def _backends(trainer: Any) -> list[LoggerBackend]:
        return [backend_for(logger) for logger in trainer.loggers]

    def _drawing(self, trainer: Any) -> Drawing:
        return Drawing.of(self._backends(trainer), self.log_figures, self.figures)

    def _figure_failed(self, trainer: Any, crashed: bool = False) -> Callable[[int, BaseException], None]:
        """How a figure's failure is reported: through the fault policy, or, while training is already
        stopping with the user's error, as a warning only (``on_error="raise"`` must not hide it)."""

        def report(epoch: int, error: BaseException) -> None:
            if not crashed:
                self.faults.report(trainer, epoch, error=error, what=DRAWING, outcome=KEPT)
                return
            rank_zero_warn(
                f"InteractionMonitor: {DRAWING} at epoch {epoch} failed with {type(error).__name__}: "
                f"{error} (training had stopped with an error; the measurement is kept)",
                category=MeasurementWarning,
            )

        return report

    def deliver_figures(self, trainer: Any) -> None:
        """Log the figures drawn since the last call (on this, the training thread)."""
        self.figures.deliver(self._figure_failed(trainer))

    def close_figures(self, trainer: Any, crashed: bool = False) -> None:
        """Finish the figures still being drawn and log them; say so if some had to be dropped."""
        if not self.figures.pending:
            return
        wait = CRASH_WAIT_S if crashed else FIT_END_WAIT_S
        finished = self.figures.finish(wait, self._figure_failed(trainer, crashed))
        if finished.dropped:
            epochs = ", ".join(str(epoch) for epoch in finished.dropped_epochs)
            why = "training stopped with an error" if crashed else "the fit ended"
            rank_zero_warn(
                f"InteractionMonitor: {why} while figures were being drawn; {finished.logged} "
                f"figure job(s) were finished and logged, {finished.dropped} (of epoch(s) {epochs}) "
                f"were still drawing after {wait:g} s and were dropped. Every measurement is in the "
                "history file; `lightning-interactions report LOGDIR` draws the run's report from it.",
                category=MeasurementWarning,
            )

    def measurement(
        self,
        trainer: Any,
        record: Mapping[str, Any],
        history: History,
        I_and: Tensor,
        I_or: Tensor,
        tracker: PhaseTracker,
        samples: Any = None,
    ) -> None:
        """Append the record, save its interactions as the run's reference, and publish it.

        ``samples`` (the monitor's ``MeasuredSamples``) are saved with the first measurement of a fit.
        """

        def write() -> None:
            path = self.path(trainer)
            append_record(path, dict(record))
            save_reference(reference_path(path), record["epoch"], I_and, I_or)
            self._keep(path, record, I_and, I_or, tracker, samples)
            alert = alert_text(record, history, tracker) if tracker.just_fired else None
            self.deliver_figures(trainer)
            publish_measurement(
                self._backends(trainer),
                record,
                history,
                record_scalars(record, self.prefix),
                self.prefix,
                first=not self._started,
                drawing=self._drawing(trainer),
                plan=self.plan,
                alert=alert,
                onset=self.onset,
                samples=self.drawn,
            )
            self._started = True

        self._attempt(trainer, record["epoch"], WRITING, write)

    def _keep(
        self,
        path: Path,
        record: Mapping[str, Any],
        I_and: Tensor,
        I_or: Tensor,
        tracker: PhaseTracker,
        samples: Any,
    ) -> None:
        """Save the samples (first measurement of the fit) and the onset candidate's interactions."""
        if samples is not None and (not self._started or self.drawn is None):
            names, decode = getattr(self.masker, "feature_names", None), getattr(self.masker, "decode", None)
            # Pictures need one tensor; samples of different lengths are padded for them only.
            inputs = samples.sample_set.main_padded(getattr(self.masker, "pad_token_id", None) or 0)
            layout = sample_layout(self.masker, inputs, feature_names=names, decode=decode)
            target = beside_history(path, SAMPLES_FILENAME)
            save_samples(target, inputs, samples.targets, samples.players, layout)
            self.drawn = DrawnSamples(layout, inputs, samples.players)
        if tracker.min_epoch == record["epoch"]:
            self.onset = {"epoch": record["epoch"], "I_and": I_and, "I_or": I_or}
            save_reference(beside_history(path, ONSET_FILENAME), record["epoch"], I_and, I_or)

    def nothing_measured(self, trainer: Any, failure: str) -> None:
        """At fit end, when nothing was measured: say so, and write the first error to the history file."""
        rank_zero_warn(
            "InteractionMonitor: no measurement succeeded in this run, so nothing was logged or "
            f"recorded. The first failure: {failure}",
            category=MeasurementWarning,
        )
        if trainer.is_global_zero:
            line = {"record": FAILED, "error": failure}
            self._attempt(
                trainer, trainer.current_epoch, WRITING, lambda: append_record(self.path(trainer), line)
            )

    def losses(self, trainer: Any, record: Mapping[str, Any], losses: Mapping[str, float | None]) -> None:
        """Append the epoch's losses to the history file and log the loss gap."""
        epoch = record["epoch"]
        line = {"epoch": epoch, "record": "losses", **losses}
        self._attempt(trainer, epoch, WRITING_LOSSES, lambda: append_record(self.path(trainer), line))
        self._attempt(
            trainer, epoch, WRITING, lambda: publish_losses(self._backends(trainer), record, self.prefix)
        )

    def resumed(self, trainer: Any, history: History, reference: Mapping[str, Tensor] | None) -> None:
        """A run resumed from a checkpoint continues its history in this fit's history file."""
        action = lambda: continue_history_file(self.path(trainer), history, reference)  # noqa: E731
        self._attempt(trainer, history[-1]["epoch"], RESUMING, action)

    def run(
        self,
        trainer: Any,
        history: History,
        reference: Mapping[str, Tensor],
        tracker: PhaseTracker,
        settings: Mapping[str, Any],
    ) -> None:
        """At fit end: the reference replay, the summary, the last figures and the hyperparameters."""

        def publish() -> None:
            run = self.replayed = replay_run(history, reference["I_and"], reference["I_or"])
            publish_run(
                self._backends(trainer),
                history,
                run,
                tracker.alert_epoch,
                tracker.onset_epoch,
                self.prefix,
                drawing=self._drawing(trainer),
                plan=self.plan,
                hparams=(settings, self._outcome(history, run, tracker)),
                onset=self.onset,
                samples=self.drawn,
                page=lambda: page_html(self.path(trainer), replay=run),
            )

        self._attempt(
            trainer, history[-1]["epoch"], REPLAY, publish, outcome="the history is complete without them"
        )

    def _outcome(self, history: History, run: RunReplay, tracker: PhaseTracker) -> dict[str, float]:
        """The run's outcome for the loggers' hyperparameter tables (epochs that do not exist left out)."""
        outcome = {
            "onset_epoch": tracker.onset_epoch,
            "alert_epoch": tracker.alert_epoch,
            "min_complexity": min(record["complexity"] for record in history),
            "final_complexity": history[-1]["complexity"],
            "phase2_fit_error": replay_errors(run.fits, tracker.onset_epoch)[0],
        }
        # The paper's claim on this run: where phase 2 began against where the loss gap turned.
        turn = onset_and_turn(history)
        outcome.update(gap_turn_epoch=turn["turn"], onset_minus_gap_turn=turn["onset_minus_turn"])
        return {
            f"{self.prefix}/outcome/{key}": float(value)
            for key, value in outcome.items()
            if value is not None
        }


def monitor_settings(monitor: Any) -> dict[str, Any]:
    """A monitor's settings under its prefix, for the loggers' hyperparameter tables."""
    tracker = monitor.tracker
    return {
        f"{monitor.log_prefix}/{name}": value
        for name, value in (
            ("masker", type(monitor.masker).__name__),
            ("num_players", int(monitor.masker.num_players)),
            ("num_samples", monitor.num_samples),
            ("q_ratio", monitor.q_ratio),
            ("tol", monitor.tol),
            ("prediction", monitor.prediction),
            ("output", monitor.output if isinstance(monitor.output, str) else "callable"),
            ("alert_margin", tracker.margin),
            ("alert_patience", tracker.patience),
            ("alert_gap_rise", "none" if tracker.gap_rise is None else tracker.gap_rise),
        )
    }
