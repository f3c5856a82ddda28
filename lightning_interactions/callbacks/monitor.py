"""``InteractionMonitor``: the Lightning callback that measures interactions while a model trains.

Example:
    >>> from lightning_interactions import InteractionMonitor, PatchMasker
    >>> monitor = InteractionMonitor(PatchMasker(patch_size=2, num_players=8), num_samples=8)
    >>> monitor.state_key
    "InteractionMonitor{'log_prefix': 'interactions'}"

Add it to ``Trainer(callbacks=[monitor])``; with the default prefix the metrics are
``interactions/order_k``, ``interactions/complexity``, ``interactions/noise_level``,
``interactions/theory_error``, ``interactions/phase`` and ``interactions/overfit_alert``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Union

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_interactions._arguments import (
    check_flag,
    check_int,
    check_masked_field,
    check_optional_callable,
    check_positive_int,
    check_prefix,
)
from lightning_interactions.analysis.phases import ALERT_GAP_RISE, ALERT_MARGIN, ALERT_PATIENCE, PhaseTracker
from lightning_interactions.analysis.record import PREDICTIONS
from lightning_interactions.analysis.replay import RunReplay
from lightning_interactions.callbacks import sampling
from lightning_interactions.callbacks._losses import find_losses
from lightning_interactions.callbacks._rng import preserved_rng_state
from lightning_interactions.callbacks.faults import FaultPolicy, MeasurementError, MeasurementWarning
from lightning_interactions.callbacks.fit_start import check_measurable, choose_players
from lightning_interactions.callbacks.measurement import (
    EngineSettings,
    LastInteractions,
    MeasuredSamples,
    measure_everywhere,
    record_of,
)
from lightning_interactions.callbacks.progress import slow_measurement_note
from lightning_interactions.callbacks.run_log import RunLog, monitor_settings
from lightning_interactions.callbacks.state import MonitorState
from lightning_interactions.engine._setup import check_batch_size, validate_groups
from lightning_interactions.engine.outputs import resolve_output
from lightning_interactions.extraction.and_or import check_extraction_settings
from lightning_interactions.masking import Masker, as_masker
from lightning_interactions.masking.base import check_num_players
from lightning_interactions.reporting.alert_note import alert_message

__all__ = [
    "InteractionMonitor",
    "MeasuredSamples",
    "LastInteractions",
    "MeasurementError",
    "MeasurementWarning",
]


class InteractionMonitor(Callback):
    """Measure AND-OR interactions at validation-epoch ends and flag the onset of over-fitting.

    At the start of training the monitor draws a fixed, seeded set of validation samples (or takes
    ``samples``), chooses their players, and measures the untrained model (epoch 0). After every
    ``every_n_epochs`` training epochs it measures again at the end of validation: all ``2^n``
    masked forward passes per sample, the certified AND-OR extraction, strength by order, the
    noise level that the two-phase theory fits to it, and the phase. Epochs count completed
    training epochs (1 is after the first). Scalars go to every logger at the step of Lightning's
    epoch-level metrics and into ``trainer.callback_metrics`` for
    ``EarlyStopping``/``ModelCheckpoint``; TensorBoard also gets a custom-scalars layout, texts
    and the outcome in HPARAMS, and its Interactions tab draws the figures from the history file;
    MLflow, W&B and CSV get the figures as PNGs (drawn on a background thread) and at fit end the
    run's dashboard page. Every measurement is appended to ``interaction_history.jsonl`` in the
    run's log directory.

    Faults: the monitor must never be why a run crashes. Every argument is checked here, at
    construction. Errors in the configuration that only the run reveals (no validation data, a
    masker that does not fit the samples) are raised when fitting starts, before any training
    step. An error during a measurement (the model raises or returns the wrong shape, every sample
    gives a non-finite output, the masker fails, memory runs out) follows ``on_error``: with
    ``"warn"`` (the default) that measurement is skipped with one warning and training goes on;
    the history, the phase tracker and the history file stay as they were, and
    ``trainer.callback_metrics`` keep the last successful measurement's values. If only writing or
    logging a finished measurement fails, the measurement is kept in the history (and in
    checkpoints) and the warning says so. With ``"raise"`` a :class:`MeasurementError` naming the
    epoch is raised from the original exception.

    Resuming: the monitor's state (samples, players, history, phase) is in every checkpoint. A run
    resumed from a checkpoint older than the last line of its history file measures those epochs
    again; it marks the file with a ``resume`` line, and
    :func:`~lightning_interactions.analysis.history.read_history` keeps the history of the
    checkpoint followed by the new measurements. A run resumed into a new log directory first
    copies the checkpoint's history into that directory's history file.

    Args:
        masker: how inputs are masked (a :class:`~lightning_interactions.masking.Masker`).

    Sampling:
        num_samples: samples to measure (split across processes under DDP).
        split: ``"val"`` (default) draws them from the first validation dataloader; ``"train"``
            from the training data (in data order, with their training labels), to see what the
            network memorises. Two monitors, one per split, work in one Trainer: the training
            one's metrics are under ``interactions/train`` and its history file is its own.
        samples: inputs, or ``(inputs, targets)``, to measure instead of drawing them; inputs are a
            tensor or a dict of tensors (one field masked, see ``masked_field``).
        seed: seed of the sample and player choice.
        batch_split: ``fn(batch) -> (inputs, targets)`` for unusual batches; inputs may be a tensor
            or a dict of tensors. By default a dict batch gives its targets under ``labels``,
            ``label``, ``targets``, ``target`` or ``y``; with a Hugging Face input name its other
            tensor fields are the inputs, with a plain name (``x``, ``image``, ...) that tensor.
        masked_field: the key of the inputs' field that the masker masks (a tuple's position);
            by default the one of ``input_ids``, ``pixel_values``, ``input_values``, ... the
            batches hold. Every other field travels with each masked copy, and the model is
            called with the fields as keyword arguments (a dict) or positionally (a tuple).
        forward_fn: ``fn(model, inputs) -> output`` for a model called in another way.

    Measurement:
        every_n_epochs: measure after every this many training epochs.
        output: ``"log_odds"`` (default), ``"logit"``, ``"regression"`` or a callable
            ``fn(model_output, targets) -> (N,)``.
        q_ratio: error box of the extraction, ``q_ratio * |v(N) - v(empty)|``.
        tol: certified relative gap at which each extraction stops.
        batch_size: masked inputs per forward pass.
        check_memory: estimate each measurement's memory against what the device has: the
            extraction takes as many samples at a time as fit, and a measurement that cannot fit
            is refused (a failed measurement, see ``on_error``); ``False`` tries anyway.

    Theory:
        prediction: ``"prior"`` fits each epoch's shape with the independent-reference prior;
            ``"reference"`` fits the previous measurement's shape against the current one.

    Alert:
        alert_margin, alert_patience: the complexity's rise in the phase-2 rule of
            :class:`~lightning_interactions.analysis.phases.PhaseTracker`.
        alert_gap_rise: how much the validation-minus-training loss gap must then widen to confirm
            the alert, as a fraction of the validation loss (None: the rise alone fires it). The
            losses are those the LightningModule logs (names with ``train``/``val`` and ``loss``);
            without them the rise alone fires the alert.
        stop_on_alert: stop training when the over-fitting alert fires.

    Logging:
        log_prefix: prefix of every metric name (default ``"interactions"``, or
            ``"interactions/train"`` with ``split="train"``); it also names the monitor's state in
            checkpoints and its history file.
        log_figures: draw figures for the loggers that show PNGs (MLflow, W&B, CSV; needs
            matplotlib). TensorBoard's Interactions tab draws its own from the history file.

    Faults:
        on_error: ``"warn"`` (default) skips a failing measurement with a warning; ``"raise"``
            stops training with a :class:`MeasurementError`.
    """

    def __init__(
        self,
        masker: Masker,
        *,
        # Sampling
        num_samples: int = 16,
        split: str = "val",
        samples: Optional[Any] = None,
        seed: int = 0,
        batch_split: Optional[Callable[[Any], tuple[Any, Optional[Tensor]]]] = None,
        masked_field: Optional[Union[str, int]] = None,
        forward_fn: Optional[Callable[[Any, Any], Any]] = None,
        # Measurement
        every_n_epochs: int = 1,
        output: Union[str, Callable[..., Tensor]] = "log_odds",
        q_ratio: float = 0.04,
        tol: float = 0.01,
        batch_size: int = 1024,
        check_memory: bool = True,
        # Theory
        prediction: str = "prior",
        # Alert
        alert_margin: float = ALERT_MARGIN,
        alert_patience: int = ALERT_PATIENCE,
        alert_gap_rise: Optional[float] = ALERT_GAP_RISE,
        stop_on_alert: bool = False,
        # Logging
        log_prefix: Optional[str] = None,
        log_figures: bool = True,
        # Faults
        on_error: str = "warn",
    ) -> None:
        super().__init__()
        self.masker = as_masker(masker)
        check_num_players(int(self.masker.num_players), "InteractionMonitor")
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs)
        resolve_output(output)  # an unknown name fails here, not at every measurement
        self.output = output
        check_extraction_settings(q_ratio, tol)
        self.q_ratio, self.tol = q_ratio, tol
        self.batch_size = check_batch_size(batch_size)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.prediction = prediction
        tracker = PhaseTracker(
            margin=alert_margin, patience=alert_patience, gap_rise=alert_gap_rise, wait_for_losses=True
        )
        # What the fit has measured, and what checkpoints keep.
        self.state = MonitorState(tracker)
        if split not in sampling.SPLITS:
            raise ValueError(f"split must be one of {sampling.SPLITS}, got {split!r}")
        self.split = split
        default_prefix = "interactions" if split == "val" else "interactions/train"
        self.log_prefix = check_prefix(default_prefix if log_prefix is None else log_prefix)
        self.seed = check_int("seed", seed)
        self.stop_on_alert = check_flag("stop_on_alert", stop_on_alert)
        self.log_figures = check_flag("log_figures", log_figures)
        self.check_memory = check_flag("check_memory", check_memory)
        split = check_optional_callable("batch_split", batch_split, "fn(batch) -> (inputs, targets)")
        self.batch_split = split or sampling.default_batch_split
        self.forward_fn = check_optional_callable("forward_fn", forward_fn, "fn(model, inputs) -> output")
        self.masked_field = check_masked_field(masked_field)
        self.faults = FaultPolicy(on_error)
        self._given_samples = None if samples is None else sampling.split_given(samples, masked_field)
        if self._given_samples is not None:
            validate_groups(self.masker, self._given_samples[0])
        self._log = RunLog(self.log_prefix, self.log_figures, self.faults, self.masker)

    @property
    def on_error(self) -> str:
        return self.faults.on_error

    # --- What the monitor measures and measured ---

    @property
    def tracker(self) -> PhaseTracker:
        """The phase tracker: the alert rule, and where the run stands in it."""
        return self.state.tracker

    @property
    def history(self) -> list[dict[str, Any]]:
        """The records of the measurements so far, one per measured epoch."""
        return self.state.history

    @property
    def samples(self) -> Optional[MeasuredSamples]:
        """The measured samples and their players, once fitting has started (None before)."""
        return self.state.samples

    @property
    def last_interactions(self) -> Optional[LastInteractions]:
        """The interactions of the latest measurement (None before the first)."""
        return self.state.last_interactions

    @property
    def replay(self) -> Optional[RunReplay]:
        """The reference replay of the run, made at the end of fit on rank 0 (None before, or elsewhere)."""
        return self._log.replayed

    # --- Lightning hooks, the state in checkpoints, and measuring ---

    @property
    def state_key(self) -> str:
        return self._generate_state_key(log_prefix=self.log_prefix)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the history file on every process: ``trainer.log_dir`` is a collective call under DDP."""
        if stage == TrainerFn.FITTING:
            self._log.setup(trainer, self.every_n_epochs)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Choose the samples and measure the untrained model; when resuming, continue the history file.

        Configuration errors are raised here whatever ``on_error`` says: no step has run yet.
        """
        if self.state.sample_set is None:
            with preserved_rng_state():
                self._choose_samples(trainer, pl_module)
                check_measurable(trainer, pl_module, self.samples, self._engine_settings())
        if self.history:
            if trainer.is_global_zero:
                self._log.resumed(trainer, self.history, self.state.reference)
        else:
            self.measure(trainer, pl_module, epoch=trainer.current_epoch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Neither the sanity check nor a trainer.validate() call outside fitting is a measurement.
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or self.state.sample_set is None:
            return
        # With val_check_interval < 1 validation also runs mid-epoch; only the run after the
        # epoch's last batch measures a completed epoch.
        progress = getattr(trainer.fit_loop.epoch_loop, "batch_progress", None)
        if not getattr(progress, "is_last_batch", True):
            return
        epoch = trainer.current_epoch + 1
        already = any(record["epoch"] == epoch for record in self.history)
        if epoch % self.every_n_epochs == 0 and not already:
            self.measure(trainer, pl_module, epoch)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Attach this epoch's training and validation losses to its record, once both exist."""
        epoch = trainer.current_epoch + 1
        record = next((r for r in reversed(self.history) if r["epoch"] == epoch), None)
        if record is None:
            return
        losses = find_losses(trainer.callback_metrics, self.log_prefix)
        # Unsynced losses differ between DDP processes; the alert (and stop_on_alert) must not.
        losses = trainer.strategy.broadcast(losses, src=0)
        record.update(losses)
        self.tracker.add_losses(epoch, losses["train_loss"], losses["val_loss"])
        if trainer.is_global_zero and any(value is not None for value in losses.values()):
            self._log.losses(trainer, record, losses)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Replay the whole run against its last measurement, log the summary, and finish the figures."""
        if not self.history and self.faults.first_failure is not None:
            self._log.nothing_measured(trainer, self.faults.first_failure)
        if len(self.history) >= 2 and self.state.reference is not None and trainer.is_global_zero:
            self._log.run(trainer, self.history, self.state.reference, self.tracker, monitor_settings(self))
        self._log.close_figures(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Training stopped with an error (or an interrupt): log the figures that finish in a few seconds."""
        self._log.close_figures(trainer, crashed=True)

    def state_dict(self) -> dict[str, Any]:
        return self.state.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.state.load_state_dict(state_dict)

    def _choose_samples(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fix the samples (the same on every process) and their players."""
        if self._given_samples is not None:
            (inputs, targets), indices = self._given_samples, None
        else:
            inputs, targets, indices = sampling.draw_fixed_samples(
                trainer, self.split, self.batch_split, self.num_samples, self.seed, self.masked_field
            )
        players = choose_players(self.masker, inputs, self.seed, pl_module, self.forward_fn)
        self.state.choose(inputs, targets, indices, players)

    def _engine_settings(self) -> EngineSettings:
        settings = (self.masker, self.output, self.batch_size, self.q_ratio, self.tol, self.check_memory)
        return EngineSettings(*settings, self.forward_fn)

    def measure(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Measure, record, write and log ``epoch`` now, as the hooks do; a failure follows ``on_error``.

        Three stages, so a failure never leaves half a measurement behind: the forward passes and
        extraction change nothing of the monitor; the record (which advances the phase tracker) is
        built against a snapshot of the tracker and committed to the history in one step; only then
        is it written to the history file and logged, where a failure keeps the committed record.
        Needs the samples, which are chosen when fitting starts.
        """
        if self.samples is None:
            raise RuntimeError(
                "InteractionMonitor.measure: no samples yet; they are chosen when fitting starts"
            )
        begin = time.perf_counter()
        measured = measure_everywhere(
            trainer, pl_module, epoch, self.samples, self._engine_settings(), self.faults
        )
        if measured is None:
            return
        I_and, I_or, _ = measured
        previous = self.history[-1] if self.history else None
        built = record_of(trainer, epoch, measured, time.perf_counter() - begin, self.tracker, previous, self)
        if built is None:
            return
        # Stage 2's commit, in one step: the history, the reference and the callbacks' metrics.
        record, values = built
        self.state.commit(record, I_and, I_or)
        trainer.callback_metrics.update(values)
        self.faults.succeeded()
        if len(self.history) == 1:
            note = slow_measurement_note(
                record["seconds"],
                len(self.state.sample_set),
                int(self.masker.num_players),
                self.every_n_epochs,
            )
            if note is not None:
                rank_zero_info(note)
        if trainer.is_global_zero:
            self._log.measurement(trainer, record, self.history, I_and, I_or, self.tracker, self.samples)
        if self.tracker.just_fired:
            rank_zero_warn(alert_message(self.tracker, epoch))
            if self.stop_on_alert:
                trainer.should_stop = True
