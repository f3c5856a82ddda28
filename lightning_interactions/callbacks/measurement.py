"""One measurement across every process: this process's share through the engine, then the gather.

A failure of the user's model or data on any process is reported once through the
:class:`~lightning_interactions.callbacks.faults.FaultPolicy` and leaves nothing behind; every
process learns which rank failed, so none waits for the others forever.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record
from lightning_interactions.callbacks import distributed
from lightning_interactions.callbacks._rng import preserved_rng_state
from lightning_interactions.callbacks.faults import FaultPolicy, MeasurementError
from lightning_interactions.callbacks.progress import LazyProgress
from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.engine.structured import SampleSet
from lightning_interactions.masking import Masker

__all__ = [
    "MeasuredSamples",
    "LastInteractions",
    "EngineSettings",
    "measure_everywhere",
    "record_of",
]

# The engine's warnings about samples with non-finite outputs; the monitor words its own.
ENGINE_SKIP_NOTES = ("compute_interactions: skipped sample", "compute_interactions: no sample was kept")


@dataclass(frozen=True)
class MeasuredSamples:
    """The samples the monitor measures every epoch and their players (on the CPU)."""

    sample_set: SampleSet
    targets: Tensor | None
    players: dict[str, Tensor]
    # Positions of the samples in the data they were drawn from (None for given samples).
    indices: Tensor | None = None

    @property
    def inputs(self) -> Any:
        """The samples as their batches held them: a tensor, or a dict or tuple of tensors.

        Samples of different shapes (batches padded each to its own length) stay a
        :class:`~lightning_interactions.engine.structured.SampleSet`.
        """
        groups = self.sample_set.groups
        return groups[0].fields if len(groups) == 1 else self.sample_set


@dataclass(frozen=True)
class LastInteractions:
    """The AND and OR interactions ``(samples, 2^n)`` of the monitor's latest measurement."""

    epoch: int
    I_and: Tensor
    I_or: Tensor


@dataclass(frozen=True)
class EngineSettings:
    """What :func:`~lightning_interactions.engine.compute_interactions` gets besides model and samples."""

    masker: Masker
    output: str | Callable[..., Tensor]
    batch_size: int
    q_ratio: float
    tol: float
    check_memory: bool
    forward_fn: Callable[[Any, Any], Any] | None = None


def _measure_shard(
    trainer: Any, pl_module: Any, epoch: int, samples: MeasuredSamples, settings: EngineSettings
) -> tuple[Tensor, ...]:
    """Measure this process's share of the samples: padded ``(I_and, I_or, gap, kept, owner)``."""
    indices, own = distributed.shard_indices(len(samples.sample_set), trainer.world_size, trainer.global_rank)
    index = torch.tensor(indices)
    # Trainer(enable_progress_bar=False) means no bars, the monitor's included.
    enabled = trainer.is_global_zero and trainer.progress_bar_callback is not None
    bar = LazyProgress(f"interactions (epoch {epoch})", enabled=enabled)
    try:
        result = compute_interactions(
            pl_module,
            samples.sample_set.take(index),
            None if samples.targets is None else samples.targets[index],
            masker=settings.masker,
            output=settings.output,
            batch_size=settings.batch_size,
            q_ratio=settings.q_ratio,
            players={key: value[index] for key, value in samples.players.items()},
            tol=settings.tol,
            progress=bar.forward,
            extraction_progress=bar.extraction,
            check_memory=settings.check_memory,
            forward_fn=settings.forward_fn,
        )
    finally:
        bar.close()
    return distributed.pad_shard(result, indices, own, pl_module.device)


def measure_everywhere(
    trainer: Any,
    pl_module: Any,
    epoch: int,
    samples: MeasuredSamples,
    settings: EngineSettings,
    faults: FaultPolicy,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """Every process's kept ``(I_and, I_or, gap)`` in sample order, on the CPU; None after a failure."""
    error: Exception | None = None
    local: tuple[Tensor, ...] | None = None
    with warnings.catch_warnings():
        # The engine's notes on skipped samples are replaced by one (below) that knows every
        # process's samples; the model's own warnings pass as they are.
        for note in ENGINE_SKIP_NOTES:
            warnings.filterwarnings("ignore", message=note)
        try:
            with preserved_rng_state():
                local = _measure_shard(trainer, pl_module, epoch, samples, settings)
        except Exception as raised:  # any failure of the user's model or data is the measurement's
            error = raised
    failing_rank = distributed.first_failing_rank(trainer, pl_module.device, failed=error is not None)
    if failing_rank is not None:
        if error is not None and failing_rank == trainer.global_rank:
            faults.report(trainer, epoch, error=error, this_rank_only=True)
        elif faults.raises:
            # Every process stops, not only the failing one.
            raise MeasurementError(
                f"InteractionMonitor: the measurement at epoch {epoch} failed on rank {failing_rank} "
                "(that process reports the cause); every process stops"
            )
        return None
    total = len(samples.sample_set)
    try:
        I_and, I_or, gap, skipped = distributed.gather_shards(trainer, local, total)
    except Exception as raised:
        faults.report(trainer, epoch, error=raised)
        return None
    if I_and.shape[0] == 0:
        problem = f"no sample gave finite outputs (each of the {total} had a non-finite output on some mask)"
        faults.report(trainer, epoch, problem=problem)
        return None
    if skipped:
        rank_zero_warn(
            f"InteractionMonitor: skipped sample{'s' if len(skipped) > 1 else ''} {skipped} at epoch "
            f"{epoch}: the model output was not finite on a masked input; {I_and.shape[0]} of {total} "
            "samples kept",
            category=RuntimeWarning,
        )
    return I_and, I_or, gap


def record_of(
    trainer: Any,
    epoch: int,
    measured: tuple[Tensor, Tensor, Tensor],
    seconds: float,
    tracker: PhaseTracker,
    previous: dict[str, Any] | None,
    monitor: Any,
) -> tuple[dict[str, Any], dict[str, Tensor]] | None:
    """Stage 2 of a measurement: its record and the metrics for ``trainer.callback_metrics``.

    Building the record advances ``tracker``; if anything fails, the tracker is put back as it
    was, the failure goes to the ``monitor``'s fault policy, and None comes back. ``monitor``
    gives the settings (``prediction``, ``tol``, ``log_prefix``) and ``faults``.
    """
    from lightning_interactions.callbacks.publishing import logging_step
    from lightning_interactions.loggers import record_scalars

    I_and, I_or, gap = measured
    tracker_state = tracker.state_dict()
    try:
        record = build_record(
            epoch,
            I_and,
            I_or,
            gap,
            tracker,
            prediction=monitor.prediction,
            previous=previous,
            tol=monitor.tol,
            step=logging_step(trainer, epoch),
            global_step=trainer.global_step,
            seconds=seconds,
        )
        values = {k: torch.tensor(v) for k, v in record_scalars(record, monitor.log_prefix).items()}
    except Exception as raised:
        tracker.load_state_dict(tracker_state)
        monitor.faults.report(trainer, epoch, error=raised)
        return None
    return record, values
