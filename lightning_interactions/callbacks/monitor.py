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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from lightning_interactions.reporting import report
from lightning_interactions.callbacks._rng import preserved_rng_state
from lightning_interactions.engine.compute import MAX_PLAYERS, compute_interactions
from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    append_record,
    read_history,
    save_reference,
)
from lightning_interactions.masking import Masker, as_masker
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.strength import complexity, per_sample_strength, signed_strength, strength_shape
from lightning_interactions.analysis.theory import fit_noise_level, replay, shape_predictor

__all__ = ["InteractionMonitor", "MeasurementError", "MeasurementWarning"]

PREDICTIONS = ("prior", "reference")
ON_ERROR = ("warn", "raise")
# The engine's warnings about samples with non-finite outputs; the monitor words its own.
ENGINE_SKIP_NOTES = ("compute_interactions: skipped sample", "compute_interactions: no sample was kept")
# Samples are drawn (seeded) from the first POOL_FACTOR * num_samples validation samples.
POOL_FACTOR = 4
# A measurement that has run longer than this shows a progress bar.
PROGRESS_AFTER_S = 2.0


class MeasurementError(RuntimeError):
    """A measurement of :class:`InteractionMonitor` failed and ``on_error="raise"`` was set.

    The exception that made it fail, if any, is its ``__cause__``.
    """


class MeasurementWarning(UserWarning):
    """A measurement of :class:`InteractionMonitor` failed and was skipped (``on_error="warn"``)."""


def default_batch_split(batch: Any) -> tuple[Tensor, Optional[Tensor]]:
    """``(inputs, targets)`` from a batch: ``(x, y, ...)``, a tensor ``x``, or a dict with common keys."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        targets = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        return batch[0], targets
    if isinstance(batch, Mapping):
        input_keys = ("input", "inputs", "x", "input_ids", "image", "points")
        inputs = next((batch[k] for k in input_keys if k in batch), None)
        targets = next((batch[k] for k in ("target", "targets", "y", "label", "labels") if k in batch), None)
        if isinstance(inputs, Tensor):
            return inputs, targets
    raise ValueError(
        "InteractionMonitor could not find the inputs in a validation batch of type "
        f"{type(batch).__name__}; pass batch_split=fn(batch) -> (inputs, targets)"
    )


class InteractionMonitor(Callback):
    """Measure AND-OR interactions at validation-epoch ends and flag the onset of over-fitting.

    At the start of training the monitor draws a fixed, seeded set of validation samples (or takes
    ``samples``), chooses their players, and measures the untrained model (epoch 0). After every
    ``every_n_epochs`` training epochs it measures again at the end of validation: all ``2^n``
    masked forward passes per sample, the certified AND-OR extraction, strength by order, the
    noise level that the two-phase theory fits to it, and the phase. Epochs count completed
    training epochs (1 is after the first). Scalars go to every logger with the epoch as step and
    into ``trainer.callback_metrics`` for ``EarlyStopping``/``ModelCheckpoint``; TensorBoard also
    gets a multi-line chart of strength by order, figures, and at fit end the reference replay.
    Every measurement is appended to ``interaction_history.jsonl`` in the run's log directory.

    Faults: the monitor must never be why a run crashes. Errors in its configuration (no
    validation data, a masker that does not fit the samples, too many players) are raised when
    fitting starts, before any training step. An error during a measurement (the model raises or
    returns the wrong shape, every sample gives a non-finite output, the masker fails, memory runs
    out) follows ``on_error``: with ``"warn"`` (the default) that measurement is skipped with one
    warning and training goes on; the history, the phase tracker and the history file stay as they
    were, and ``trainer.callback_metrics`` keep the last successful measurement's values. If only
    writing or logging a finished measurement fails, the measurement is kept in the history (and
    in checkpoints) and the warning says so. With ``"raise"`` a :class:`MeasurementError` naming
    the epoch is raised from the original exception.

    Resuming: the monitor's state (samples, players, history, phase) is in every checkpoint. A run
    resumed from a checkpoint older than the last line of its history file (the process was killed
    after a measurement but before the next checkpoint) measures those epochs again; it marks the
    file with a ``resume`` line, and :func:`~lightning_interactions.analysis.history.read_history` keeps
    the history of the checkpoint the run resumed from followed by the new measurements: the
    resumed run's measurement of an epoch wins. No line is ever removed from the file. A run
    resumed into a new log directory first copies the checkpoint's history into that directory's
    (empty) history file.

    Args:
        masker: how inputs are masked (a :class:`~lightning_interactions.masking.Masker`).
        num_samples: validation samples to measure (split across processes under DDP).
        every_n_epochs: measure after every this many training epochs.
        output: ``"log_odds"`` (default), ``"logit"``, ``"regression"`` or a callable.
        q_ratio: error box of the extraction, ``q_ratio * |v(N) - v(empty)|``.
        batch_size: masked inputs per forward pass.
        prediction: ``"prior"`` fits each epoch's shape with the independent-reference prior;
            ``"reference"`` fits the previous measurement's shape against the current one.
        alert_margin, alert_patience: the phase-2 rule of
            :class:`~lightning_interactions.analysis.phases.PhaseTracker`.
        log_prefix: prefix of every metric name.
        samples: inputs, or ``(inputs, targets)``, to measure instead of validation samples.
        seed: seed of the sample and player choice.
        stop_on_alert: stop training when the over-fitting alert fires.
        tol: certified relative gap at which each extraction stops.
        batch_split: ``fn(batch) -> (inputs, targets)`` for unusual validation batches.
        log_figures: log matplotlib figures to TensorBoard (needs matplotlib).
        on_error: ``"warn"`` (default) skips a failing measurement with a warning; ``"raise"``
            stops training with a :class:`MeasurementError`.
        check_memory: estimate each measurement's memory against what the device has: the
            extraction takes as many samples at a time as fit, and a measurement that cannot fit
            is refused (a failed measurement, see ``on_error``); ``False`` tries anyway.
    """

    def __init__(
        self,
        masker: Masker,
        num_samples: int = 16,
        every_n_epochs: int = 1,
        output: Union[str, Callable[..., Tensor]] = "log_odds",
        q_ratio: float = 0.04,
        batch_size: int = 1024,
        prediction: str = "prior",
        alert_margin: float = 0.05,
        alert_patience: int = 2,
        log_prefix: str = "interactions",
        samples: Optional[Any] = None,
        seed: int = 0,
        stop_on_alert: bool = False,
        tol: float = 0.01,
        batch_split: Optional[Callable[[Any], tuple[Tensor, Optional[Tensor]]]] = None,
        log_figures: bool = True,
        on_error: str = "warn",
        check_memory: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if q_ratio < 0:
            raise ValueError(f"q_ratio must be >= 0, got {q_ratio}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.masker = as_masker(masker)
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.output = output
        self.q_ratio = q_ratio
        self.batch_size = batch_size
        self.prediction = prediction
        self.log_prefix = log_prefix
        self.seed = seed
        self.stop_on_alert = stop_on_alert
        self.tol = tol
        self.batch_split = batch_split or default_batch_split
        self.log_figures = log_figures
        self.on_error = on_error
        self.check_memory = check_memory
        self.tracker = PhaseTracker(margin=alert_margin, patience=alert_patience)
        self._given_samples = samples
        self._inputs: Optional[Tensor] = None
        self._targets: Optional[Tensor] = None
        self._players: Optional[dict[str, Tensor]] = None
        self.history: list[dict[str, Any]] = []
        self._reference: Optional[dict[str, Tensor]] = None
        self._history_file: Optional[Path] = None
        self._layout_written = False

    # ---------------------------------------------------------------------------------------
    # Lightning hooks
    # ---------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        return self._generate_state_key(log_prefix=self.log_prefix)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the history file on every process: ``trainer.log_dir`` is a collective call under DDP."""
        if stage == TrainerFn.FITTING:
            self._history_file = Path(trainer.log_dir or trainer.default_root_dir) / HISTORY_FILENAME
            self._layout_written = False  # each fit's TensorBoard run gets its own layout

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Choose the samples and measure the untrained model; when resuming, continue the history file.

        Configuration errors are raised here whatever ``on_error`` says: no step has run yet.
        """
        self._check_num_players()
        if self._inputs is None:
            with preserved_rng_state():
                self._choose_samples(trainer)
        if self.history:
            self._continue_history_file(trainer)
        else:
            self._measure(trainer, pl_module, epoch=trainer.current_epoch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Neither the sanity check nor a trainer.validate() call outside fitting is a measurement.
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or self._inputs is None:
            return
        # With val_check_interval < 1 validation also runs mid-epoch; only the run after the
        # epoch's last batch measures a completed epoch.
        progress = getattr(trainer.fit_loop.epoch_loop, "batch_progress", None)
        if not getattr(progress, "is_last_batch", True):
            return
        epoch = trainer.current_epoch + 1
        already = any(record["epoch"] == epoch for record in self.history)
        if epoch % self.every_n_epochs == 0 and not already:
            self._measure(trainer, pl_module, epoch)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Attach this epoch's training and validation losses to its record, once both exist."""
        epoch = trainer.current_epoch + 1
        record = next((r for r in reversed(self.history) if r["epoch"] == epoch), None)
        if record is None:
            return
        losses = _find_losses(trainer.callback_metrics, self.log_prefix)
        record.update(losses)
        if trainer.is_global_zero and any(value is not None for value in losses.values()):
            try:
                append_record(self._history_path(trainer), {"epoch": epoch, "record": "losses", **losses})
            except Exception as error:
                what = "writing the losses of the measurement"
                self._fault(trainer, epoch, error=error, what=what, kept=True)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Replay the whole run against its last measurement and log the summary."""
        if len(self.history) < 2 or self._reference is None or not trainer.is_global_zero:
            return
        try:
            self._log_replay(trainer)
        except Exception as error:
            what, outcome = "the replay and summary of the run", "the history is complete without them"
            self._fault(trainer, self.history[-1]["epoch"], error=error, what=what, outcome=outcome)

    def _log_replay(self, trainer: Trainer) -> None:
        history = [dict(record) for record in self.history]
        history[-1].update(self._reference)
        fits = replay(history, reference="last")
        reference = (self._reference["I_and"], self._reference["I_or"])
        predictor = shape_predictor("reference", reference=reference)
        predicted = {fit.epoch: predictor(fit.s).tolist() for fit in fits}
        text = report.summary_text(self.history, fits, self.tracker.alert_epoch, self.tracker.onset_epoch)
        for experiment in self._tensorboard_writers(trainer):
            experiment.add_text(f"{self.log_prefix}/summary", text, global_step=self.history[-1]["epoch"])
            if self.log_figures and report.matplotlib_available():
                figure = report.figure_replay(self.history, fits, predicted)
                last = self.history[-1]["epoch"]
                experiment.add_figure(f"{self.log_prefix}/replay", figure, global_step=last)
            experiment.flush()

    def state_dict(self) -> dict[str, Any]:
        return {
            "inputs": self._inputs,
            "targets": self._targets,
            "players": self._players,
            "history": self.history,
            "tracker": self.tracker.state_dict(),
            "reference": self._reference,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._inputs = state_dict["inputs"]
        self._targets = state_dict["targets"]
        self._players = state_dict["players"]
        self.history = list(state_dict["history"])
        self.tracker.load_state_dict(state_dict["tracker"])
        self._reference = state_dict["reference"]

    # ---------------------------------------------------------------------------------------
    # Samples, and the history file of a resumed run
    # ---------------------------------------------------------------------------------------

    def _check_num_players(self) -> None:
        """Refuse more players than the engine measures when fitting starts, not at the first measurement."""
        n = int(self.masker.num_players)
        if n > MAX_PLAYERS:
            raise ValueError(
                f"InteractionMonitor: {n} players need 2^{n} = {2**n:,} masked forward passes per sample, "
                f"above the engine's limit of {MAX_PLAYERS} players: lower num_players of the masker "
                "(8 to 12 is usual)"
            )

    def _continue_history_file(self, trainer: Trainer) -> None:
        """Resuming from a checkpoint: mark where its history ends in the file, or copy it to a new file.

        Lines after the checkpoint's last measurement come from the killed or stopped run that went on
        past the checkpoint; the ``resume`` line tells :func:`read_history` to drop them (they stay in
        the file). The saved reference becomes the checkpoint's again.
        """
        if not trainer.is_global_zero:
            return
        last = self.history[-1]["epoch"]
        try:
            path = self._history_path(trainer)
            if path.is_file() and read_history(path, warn=False):
                append_record(path, {"epoch": last, "record": "resume"})
            else:
                for record in self.history:
                    append_record(path, record)
            if self._reference is not None:
                reference_path = path.with_name(REFERENCE_FILENAME)
                save_reference(reference_path, last, self._reference["I_and"], self._reference["I_or"])
        except Exception as error:
            what = "continuing the history file of the resumed run"
            self._fault(trainer, last, error=error, what=what, kept=True)

    def _choose_samples(self, trainer: Trainer) -> None:
        """Fix the samples (the same on every process) and their players."""
        if self._given_samples is not None:
            inputs, targets = _split_given(self._given_samples)
        else:
            # Every process finds (or fails to find) the loader; only rank 0 draws, then broadcasts.
            loader = self._validation_loader(trainer)
            inputs, targets = (None, None)
            if trainer.is_global_zero:
                inputs, targets = self._draw_validation_samples(loader)
            inputs, targets = trainer.strategy.broadcast((inputs, targets), src=0)
        self.masker.validate(inputs)
        self._inputs, self._targets = inputs, targets
        self._players = {k: v.cpu() for k, v in self.masker.select_players(inputs, seed=self.seed).items()}

    def _validation_loader(self, trainer: Trainer) -> Any:
        """The first validation dataloader, unsharded; called on every process (it may synchronise)."""
        if trainer.val_dataloaders is None and trainer.enable_validation:
            # Without a sanity check, and with no validation after the first epoch, Lightning builds the
            # validation loaders only at the first validation; build them now, as its fit loop does.
            trainer.validating = True
            trainer.fit_loop.epoch_loop.val_loop.setup_data()
            trainer.training = True
        loader = _first_loader(trainer.val_dataloaders)
        if loader is None:
            raise ValueError(
                "InteractionMonitor needs validation data to draw samples from: give the Trainer a "
                "val_dataloader, or pass samples=(inputs, targets) to the monitor"
            )
        return _unsharded(loader)

    def _draw_validation_samples(self, loader: Any) -> tuple[Tensor, Optional[Tensor]]:
        pool_size = POOL_FACTOR * self.num_samples
        inputs, targets, count = [], [], 0
        for batch in loader:
            x, y = self.batch_split(batch)
            inputs.append(x.detach().cpu())
            targets.append(None if y is None else y.detach().cpu())
            count += x.shape[0]
            if count >= pool_size:
                break
        if count == 0:
            raise ValueError("InteractionMonitor: the validation dataloader gave no samples")
        pool_x = torch.cat(inputs)[:pool_size]
        pool_y = None if any(y is None for y in targets) else torch.cat(targets)[:pool_size]
        if count < self.num_samples:
            rank_zero_warn(f"InteractionMonitor: only {count} validation samples, fewer than num_samples")
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(pool_x.shape[0], generator=generator)[: self.num_samples].sort().values
        return pool_x[chosen], None if pool_y is None else pool_y[chosen]

    # ---------------------------------------------------------------------------------------
    # Measurement
    # ---------------------------------------------------------------------------------------

    def _measure(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Measure, record, write and log one epoch; a failure follows ``on_error`` (see the class doc).

        Three stages, so a failure never leaves half a measurement behind: the forward passes and
        extraction change nothing of the monitor; the record (which advances the phase tracker) is
        built against a snapshot of the tracker and committed to the history in one step; only then
        is it written to the history file and logged, where a failure keeps the committed record.
        """
        begin = time.perf_counter()
        assert self._inputs is not None and self._players is not None
        # Stage 1: this process's forward passes and extraction, then every process's results.
        error: Optional[Exception] = None
        local: Optional[tuple[Tensor, ...]] = None
        with warnings.catch_warnings():
            # The engine's notes on skipped samples are replaced by one from the monitor (below),
            # which knows every process's samples; the model's own warnings pass as they are.
            for note in ENGINE_SKIP_NOTES:
                warnings.filterwarnings("ignore", message=note)
            try:
                with preserved_rng_state():
                    local = self._measure_shard(trainer, pl_module, epoch)
            except Exception as raised:  # any failure of the user's model or data is the measurement's
                error = raised
        failing_rank = self._first_failing_rank(trainer, pl_module, failed=error is not None)
        if failing_rank is not None:
            if error is not None and failing_rank == trainer.global_rank:
                self._fault(trainer, epoch, error=error, this_rank_only=True)
            elif self.on_error == "raise":
                # Every process stops, not only the failing one, so none waits for the others forever.
                raise MeasurementError(
                    f"InteractionMonitor: the measurement at epoch {epoch} failed on rank {failing_rank} "
                    "(that process reports the cause); every process stops"
                )
            return
        assert local is not None
        total = self._inputs.shape[0]
        try:
            I_and, I_or, gap, skipped = self._gather(trainer, local, total)
        except Exception as raised:
            self._fault(trainer, epoch, error=raised)
            return
        if I_and.shape[0] == 0:
            problem = (
                f"no sample gave finite outputs (each of the {total} had a non-finite output on some mask)"
            )
            self._fault(trainer, epoch, problem=problem)
            return
        if skipped:
            rank_zero_warn(
                f"InteractionMonitor: skipped sample{'s' if len(skipped) > 1 else ''} {skipped} at epoch "
                f"{epoch}: the model output was not finite on a masked input; {I_and.shape[0]} of {total} "
                "samples kept",
                category=RuntimeWarning,
            )

        # Stage 2: the record, which updates the phase tracker; undone entirely if anything fails.
        tracker_state = self.tracker.state_dict()
        try:
            record = self._record(trainer, epoch, I_and, I_or, gap, time.perf_counter() - begin)
            metrics = report.record_scalars(record, self.log_prefix)
            values = {k: torch.tensor(v) for k, v in metrics.items()}
        except Exception as raised:
            self.tracker.load_state_dict(tracker_state)
            self._fault(trainer, epoch, error=raised)
            return
        self.history.append(record)
        self._reference = {"I_and": I_and, "I_or": I_or}
        trainer.callback_metrics.update(values)

        # Stage 3: the history file, the reference file and the loggers; the record stays if these fail.
        if trainer.is_global_zero:
            try:
                history_path = self._history_path(trainer)
                append_record(history_path, record)
                save_reference(history_path.with_name(REFERENCE_FILENAME), epoch, I_and, I_or)
                self._log(trainer, record, metrics)
            except Exception as raised:
                self._fault(
                    trainer, epoch, error=raised, what="writing or logging the measurement", kept=True
                )
        if self.tracker.just_fired:
            rank_zero_warn(
                f"InteractionMonitor: over-fitting alert at epoch {epoch}: the complexity has risen above "
                f"its minimum (epoch {self.tracker.onset_epoch}); phase 2, the learning of over-fitted "
                "higher-order interactions, began there"
            )
            if self.stop_on_alert:
                trainer.should_stop = True

    def _fault(
        self,
        trainer: Trainer,
        epoch: int,
        error: Optional[BaseException] = None,
        problem: str = "",
        what: str = "the measurement",
        kept: bool = False,
        this_rank_only: bool = False,
        outcome: Optional[str] = None,
    ) -> None:
        """Warn about (``on_error="warn"``) or raise (``"raise"``) a failure of ``what`` at ``epoch``."""
        cause = f" with {type(error).__name__}: {error}" if error is not None else f": {problem}"
        # Only this process knows the cause when it alone failed; under DDP it may not be rank 0.
        where = f" on rank {trainer.global_rank}" if this_rank_only and trainer.world_size > 1 else ""
        text = f"InteractionMonitor: {what} at epoch {epoch} failed{where}{cause}"
        if self.on_error == "raise":
            raise MeasurementError(text) from error
        if outcome is None:
            outcome = (
                "the measurement is kept in the monitor's history and checkpoints and training goes on"
                if kept
                else "the measurement was skipped and training goes on"
            )
        text = (
            f'{text}; {outcome} (pass on_error="raise" to InteractionMonitor to stop with the full traceback)'
        )
        if this_rank_only:
            warnings.warn(text, MeasurementWarning, stacklevel=2)
        else:
            rank_zero_warn(text, category=MeasurementWarning)

    @staticmethod
    def _first_failing_rank(trainer: Trainer, pl_module: LightningModule, failed: bool) -> Optional[int]:
        """The lowest rank whose measurement failed, or None; every process learns the same answer."""
        if trainer.world_size == 1:
            return trainer.global_rank if failed else None
        flag = torch.tensor([float(failed)], device=pl_module.device)
        flags = trainer.strategy.all_gather(flag).reshape(-1)
        failing = flags.nonzero().flatten()
        return int(failing[0]) if failing.numel() else None

    def _measure_shard(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> tuple[Tensor, ...]:
        """Measure this process's share of the samples: padded ``(I_and, I_or, gap, kept, owner)``."""
        total = self._inputs.shape[0]
        world, rank = trainer.world_size, trainer.global_rank
        share = -(-total // world)
        # Every process measures `share` samples (padding repeats its last one) so shapes agree.
        mine = [min(i, total - 1) for i in range(rank * share, (rank + 1) * share)]
        index = torch.tensor(mine)
        players = {key: value[index] for key, value in self._players.items()}
        # Trainer(enable_progress_bar=False) means no bars, the monitor's included.
        enabled = trainer.is_global_zero and trainer.progress_bar_callback is not None
        bar = _LazyProgress(f"interactions (epoch {epoch})", enabled=enabled)
        try:
            result = compute_interactions(
                pl_module,
                self._inputs[index],
                None if self._targets is None else self._targets[index],
                masker=self.masker,
                output=self.output,
                batch_size=self.batch_size,
                q_ratio=self.q_ratio,
                players=players,
                tol=self.tol,
                progress=bar.update,
                check_memory=self.check_memory,
            )
        finally:
            bar.close()
        size = 2**result.num_players
        I_and = torch.zeros(share, size, dtype=torch.float64, device=pl_module.device)
        I_or, gap = torch.zeros_like(I_and), torch.zeros(share, dtype=torch.float64, device=pl_module.device)
        kept = torch.zeros(share, dtype=torch.float64, device=pl_module.device)
        rows = result.sample_indices.to(pl_module.device)
        I_and[rows], I_or[rows], gap[rows], kept[rows] = result.I_and, result.I_or, result.gap, 1.0
        owner = torch.tensor(mine, device=pl_module.device)
        # Padding rows repeat a sample that its owner measures too; they are dropped here.
        valid = torch.arange(rank * share, (rank + 1) * share, device=pl_module.device) < total
        return I_and, I_or, gap, kept * valid, owner

    @staticmethod
    def _gather(
        trainer: Trainer, local: tuple[Tensor, ...], total: int
    ) -> tuple[Tensor, Tensor, Tensor, list[int]]:
        """Everyone's kept interactions and gaps in sample order, on the CPU; and the skipped samples."""
        world = trainer.world_size
        gathered = [trainer.strategy.all_gather(t) for t in local]
        I_and, I_or, gap, kept, owner = (t.reshape(-1, *t.shape[2:]) if world > 1 else t for t in gathered)
        keep = kept > 0
        order = owner[keep].argsort()
        skipped = sorted(set(range(total)) - set(owner[keep].tolist()))
        return I_and[keep][order].cpu(), I_or[keep][order].cpu(), gap[keep][order].cpu(), skipped

    def _record(
        self, trainer: Trainer, epoch: int, I_and: Tensor, I_or: Tensor, gap: Tensor, seconds: float
    ) -> dict[str, Any]:
        n = I_and.shape[1].bit_length() - 1
        strength = per_sample_strength(I_and, I_or).mean(dim=0)
        shape = strength_shape(strength)
        noise = self._fit_noise(epoch, shape, I_and, I_or)
        phase = self.tracker.update(epoch, float(complexity(shape)))
        signed = signed_strength(I_and, I_or)
        return {
            "epoch": epoch,
            "global_step": trainer.global_step,
            "num_samples": I_and.shape[0],
            "num_players": n,
            "strength": strength.tolist(),
            "shape": shape.tolist(),
            "complexity": float(complexity(shape)),
            "prediction": self.prediction,
            **noise,
            "phase": phase,
            "overfit_alert": int(self.tracker.alert),
            "max_gap": float(gap.max()),
            "signed": {key: value.tolist() for key, value in signed.items()},
            "train_loss": None,
            "val_loss": None,
            # Forward passes, extraction and gather; the fits and logging of this record come after.
            "seconds": seconds,
        }

    def _fit_noise(self, epoch: int, shape: Tensor, I_and: Tensor, I_or: Tensor) -> dict[str, Any]:
        """The noise fit of this measurement's record: level, error, and what was fitted to what."""
        n = shape.shape[0]
        if self.prediction == "prior":
            predictor = shape_predictor("prior", n=n)
            fitted_epoch, target = epoch, shape
        else:
            # Reference mode online: how much noise separates the previous measurement from now, with
            # the current measurement (I_and, I_or) as the reference that the noise is added to.
            if not self.history:
                keys = ("noise_level", "theory_error", "predicted_shape", "fitted_epoch", "fitted_shape")
                return dict.fromkeys(keys)
            fitted_epoch = self.history[-1]["epoch"]
            target = torch.tensor(self.history[-1]["shape"], dtype=torch.float64)
            predictor = shape_predictor("reference", reference=(I_and, I_or))
        fit = fit_noise_level(target, predictor)
        return {
            "noise_level": fit.s,
            "theory_error": fit.error,
            "predicted_shape": predictor(fit.s).tolist(),
            "fitted_epoch": fitted_epoch,
            "fitted_shape": target.tolist(),
        }

    # ---------------------------------------------------------------------------------------
    # Logging
    # ---------------------------------------------------------------------------------------

    def _history_path(self, trainer: Trainer) -> Path:
        # Resolved in ``setup`` on every process; resolving it here, on rank 0 alone, would hang under DDP.
        if self._history_file is None:
            self._history_file = Path(trainer.log_dir or trainer.default_root_dir) / HISTORY_FILENAME
        return self._history_file

    def _tensorboard_writers(self, trainer: Trainer) -> list[Any]:
        return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]

    @rank_zero_only
    def _log(self, trainer: Trainer, record: dict[str, Any], metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=record["epoch"])
        for experiment in self._tensorboard_writers(trainer):
            if not self._layout_written:
                experiment.add_custom_scalars(report.scalar_layout(record["num_players"], self.log_prefix))
            if self.log_figures and report.matplotlib_available():
                step = record["epoch"]
                if record["predicted_shape"] is not None:
                    figure = report.figure_measured_vs_predicted(record)
                    tag = f"{self.log_prefix}/measured_vs_predicted"
                    experiment.add_figure(tag, figure, global_step=step)
                experiment.add_figure(
                    f"{self.log_prefix}/shape_heatmap",
                    report.figure_shape_heatmap(self.history),
                    global_step=step,
                )
            experiment.flush()
        self._layout_written = True


class _LazyProgress:
    """A tqdm bar that appears only once a measurement has run for ``PROGRESS_AFTER_S``."""

    def __init__(self, description: str, enabled: bool) -> None:
        self.description, self.enabled = description, enabled
        self.start = time.perf_counter()
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None and time.perf_counter() - self.start > PROGRESS_AFTER_S:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.description, unit="input", leave=False)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _first_loader(loaders: Any) -> Any:
    """The first dataloader of Lightning's ``val_dataloaders`` (one, a sequence or a mapping)."""
    if loaders is None:
        return None
    if isinstance(loaders, Mapping):
        return next(iter(loaders.values()), None)
    if isinstance(loaders, Sequence) and not isinstance(loaders, (str, bytes)):
        return loaders[0] if len(loaders) else None
    return loaders


def _unsharded(loader: Any) -> Any:
    """``loader``; under a distributed sampler, a loader over its whole dataset, as one process sees it."""
    if isinstance(getattr(loader, "sampler", None), DistributedSampler) and loader.batch_size is not None:
        return DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn)
    return loader


def _split_given(samples: Any) -> tuple[Tensor, Optional[Tensor]]:
    if isinstance(samples, Tensor):
        return samples.detach().cpu(), None
    if isinstance(samples, (list, tuple)) and len(samples) == 2 and isinstance(samples[0], Tensor):
        targets = samples[1]
        return samples[0].detach().cpu(), None if targets is None else torch.as_tensor(targets).cpu()
    raise ValueError("samples must be an inputs tensor or a pair (inputs, targets)")


def _find_losses(metrics: Mapping[str, Any], prefix: str) -> dict[str, Optional[float]]:
    """The epoch's training and validation losses from ``callback_metrics``, if logged."""

    def pick(stage: str) -> Optional[float]:
        names = [
            name
            for name in metrics
            if stage in name.lower() and "loss" in name.lower() and not name.startswith(prefix)
        ]
        # Prefer epoch aggregates ("train_loss_epoch") over the last step's value.
        names.sort(key=lambda name: (not name.endswith("_epoch"), name.endswith("_step"), len(name)))
        return float(metrics[names[0]]) if names else None

    return {"train_loss": pick("train"), "val_loss": pick("val")}
