"""Where a monitored fit's measurements go (rank 0): the history file, the reference file, the loggers.

The monitor decides when to measure; :class:`RunLog` writes each measurement down and publishes
it, and reports a failure to write or log through the fault policy, keeping the measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from torch import Tensor

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    append_record,
    save_reference,
)
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.replay import RunReplay, replay_errors, replay_run
from lightning_interactions.callbacks.faults import KEPT, FaultPolicy
from lightning_interactions.callbacks.history_file import continue_history_file
from lightning_interactions.callbacks.publishing import (
    FigurePlan,
    alert_text,
    publish_losses,
    publish_measurement,
    publish_run,
)
from lightning_interactions.loggers import LoggerBackend, backend_for, record_scalars

__all__ = ["RunLog"]

History = Sequence[Mapping[str, Any]]
# The parts of a measurement whose failures are reported (and repeated ones silenced) apart.
WRITING = "writing or logging the measurement"
WRITING_LOSSES = "writing the losses of the measurement"
RESUMING = "continuing the history file of the resumed run"
REPLAY = "the replay and summary of the run"


class RunLog:
    """The history file and the loggers of one fit, for a monitor with these logging settings."""

    def __init__(self, prefix: str, log_figures: bool, faults: FaultPolicy) -> None:
        self.prefix, self.log_figures, self.faults = prefix, log_figures, faults
        self.history_file: Path | None = None
        self.plan = FigurePlan.for_run(None, 1)
        self._started = False

    def setup(self, trainer: Any, every_n_epochs: int) -> None:
        """On every process at fit setup: ``trainer.log_dir`` is a collective call under DDP."""
        self.history_file = Path(trainer.log_dir or trainer.default_root_dir) / HISTORY_FILENAME
        self.plan = FigurePlan.for_run(trainer.max_epochs, every_n_epochs)
        self._started = False  # each fit's logger run gets its own layout

    def path(self, trainer: Any) -> Path:
        # Resolved in ``setup`` on every process; resolving it here, on rank 0 alone, would hang under DDP.
        if self.history_file is None:
            self.history_file = Path(trainer.log_dir or trainer.default_root_dir) / HISTORY_FILENAME
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

    def measurement(
        self,
        trainer: Any,
        record: Mapping[str, Any],
        history: History,
        I_and: Tensor,
        I_or: Tensor,
        tracker: PhaseTracker,
    ) -> None:
        """Append the record, save its interactions as the run's reference, and publish it."""

        def write() -> None:
            path = self.path(trainer)
            append_record(path, dict(record))
            save_reference(path.with_name(REFERENCE_FILENAME), record["epoch"], I_and, I_or)
            alert = (
                alert_text(record, history, tracker.margin, tracker.patience) if tracker.just_fired else None
            )
            publish_measurement(
                self._backends(trainer),
                record,
                history,
                record_scalars(record, self.prefix),
                self.prefix,
                first=not self._started,
                log_figures=self.log_figures,
                plan=self.plan,
                alert=alert,
            )
            self._started = True

        self._attempt(trainer, record["epoch"], WRITING, write)

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
            run = replay_run(history, reference["I_and"], reference["I_or"])
            publish_run(
                self._backends(trainer),
                history,
                run,
                tracker.alert_epoch,
                tracker.onset_epoch,
                self.prefix,
                log_figures=self.log_figures,
                plan=self.plan,
                hparams=(settings, self._outcome(history, run, tracker)),
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
        return {
            f"{self.prefix}/outcome/{key}": float(value)
            for key, value in outcome.items()
            if value is not None
        }
