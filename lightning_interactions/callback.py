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

from lightning_interactions import report
from lightning_interactions._rng import preserved_rng_state
from lightning_interactions.engine import compute_interactions
from lightning_interactions.history import HISTORY_FILENAME, REFERENCE_FILENAME, append_record, save_reference
from lightning_interactions.masking import Masker, as_masker
from lightning_interactions.phases import PhaseTracker
from lightning_interactions.strength import complexity, per_sample_strength, signed_strength, strength_shape
from lightning_interactions.theory import fit_noise_level, replay, shape_predictor

__all__ = ["InteractionMonitor"]

PREDICTIONS = ("prior", "reference")
# Samples are drawn (seeded) from the first POOL_FACTOR * num_samples validation samples.
POOL_FACTOR = 4
# A measurement that has run longer than this shows a progress bar.
PROGRESS_AFTER_S = 2.0


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
            :class:`~lightning_interactions.phases.PhaseTracker`.
        log_prefix: prefix of every metric name.
        samples: inputs, or ``(inputs, targets)``, to measure instead of validation samples.
        seed: seed of the sample and player choice.
        stop_on_alert: stop training when the over-fitting alert fires.
        tol: certified relative gap at which each extraction stops.
        batch_split: ``fn(batch) -> (inputs, targets)`` for unusual validation batches.
        log_figures: log matplotlib figures to TensorBoard (needs matplotlib).
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
        """Choose the samples and measure the untrained model (skipped when resuming)."""
        if self._inputs is None:
            with preserved_rng_state():
                self._choose_samples(trainer)
        if not self.history:
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
            append_record(self._history_path(trainer), {"epoch": epoch, "record": "losses", **losses})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Replay the whole run against its last measurement and log the summary."""
        if len(self.history) < 2 or self._reference is None or not trainer.is_global_zero:
            return
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
    # Samples
    # ---------------------------------------------------------------------------------------

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
        begin = time.perf_counter()
        assert self._inputs is not None and self._players is not None
        with preserved_rng_state():
            I_and, I_or, gap = self._measure_shard_and_gather(trainer, pl_module, epoch)
        if I_and.shape[0] == 0:
            rank_zero_warn(f"InteractionMonitor: no sample gave finite outputs at epoch {epoch}; skipped")
            return
        record = self._record(trainer, epoch, I_and, I_or, gap, time.perf_counter() - begin)
        self.history.append(record)
        self._reference = {"I_and": I_and, "I_or": I_or}
        metrics = report.record_scalars(record, self.log_prefix)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        if trainer.is_global_zero:
            history_path = self._history_path(trainer)
            append_record(history_path, record)
            save_reference(history_path.with_name(REFERENCE_FILENAME), epoch, I_and, I_or)
            self._log(trainer, record, metrics)
        if self.tracker.just_fired:
            rank_zero_warn(
                f"InteractionMonitor: over-fitting alert at epoch {epoch}: the complexity has risen above "
                f"its minimum (epoch {self.tracker.onset_epoch}); phase 2, the learning of over-fitted "
                "higher-order interactions, began there"
            )
            if self.stop_on_alert:
                trainer.should_stop = True

    def _measure_shard_and_gather(
        self, trainer: Trainer, pl_module: LightningModule, epoch: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Measure this process's share of the samples; return everyone's kept interactions, in order."""
        total = self._inputs.shape[0]
        world, rank = trainer.world_size, trainer.global_rank
        share = -(-total // world)
        # Every process measures `share` samples (padding repeats its last one) so shapes agree.
        mine = [min(i, total - 1) for i in range(rank * share, (rank + 1) * share)]
        index = torch.tensor(mine)
        players = {key: value[index] for key, value in self._players.items()}
        bar = _LazyProgress(f"interactions (epoch {epoch})", enabled=trainer.is_global_zero)
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
        )
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
        kept = kept * valid
        gathered = [trainer.strategy.all_gather(t) for t in (I_and, I_or, gap, kept, owner)]
        I_and, I_or, gap, kept, owner = (t.reshape(-1, *t.shape[2:]) if world > 1 else t for t in gathered)
        keep = kept > 0
        order = owner[keep].argsort()
        return I_and[keep][order].cpu(), I_or[keep][order].cpu(), gap[keep][order].cpu()

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
            name for name in metrics
            if stage in name.lower() and "loss" in name.lower() and not name.startswith(prefix)
        ]
        # Prefer epoch aggregates ("train_loss_epoch") over the last step's value.
        names.sort(key=lambda name: (not name.endswith("_epoch"), name.endswith("_step"), len(name)))
        return float(metrics[names[0]]) if names else None

    return {"train_loss": pick("train"), "val_loss": pick("val")}
