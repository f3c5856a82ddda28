"""Replaying a run: every measured shape fitted against one epoch's interactions (reference mode).

The monitor at fit end, ``report`` and ``analyze`` all replay a history the same way, through
:func:`replay_run`: the last measurement's interactions are the reference that the noise of every
earlier epoch is added to (``docs/theory.md``, "Reference mode").

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.theory import reference_shape
    >>> final_and, final_or = torch.tensor([[0.0, 1.0, 1.0, 1.0]]), torch.zeros(1, 4)
    >>> history = [{"epoch": 0, "shape": reference_shape(final_and, final_or, 0.5).tolist()},
    ...            {"epoch": 1, "shape": [0.5, 0.5]}]
    >>> run = replay_run(history, final_and, final_or)
    >>> [(fit.epoch, round(fit.s, 4)) for fit in run.fits]
    [(0, 0.5), (1, 0.0001)]
    >>> len(run.predicted_shapes[0])
    2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lightning_interactions.analysis.strength import per_sample_strength, strength_shape
from lightning_interactions.analysis.theory import (
    _as_interaction_batch,
    _measured_shape,
    fit_noise_level,
    shape_predictor,
)

__all__ = ["EpochFit", "RunReplay", "replay", "replay_run", "replay_errors"]


@dataclass(frozen=True)
class EpochFit:
    """One epoch of a :func:`replay`: the fitted noise level and the fit error (L1 between shapes)."""

    epoch: int
    s: float
    error: float


@dataclass(frozen=True)
class RunReplay:
    """A replayed run: one fit per record (the reference epoch last) and each epoch's predicted shape."""

    fits: list[EpochFit]
    predicted_shapes: dict[int, list[float]]

    @property
    def reference_epoch(self) -> int:
        return self.fits[-1].epoch


def _record_shape(record: Mapping[str, Any]) -> torch.Tensor:
    if "shape" in record:
        return _measured_shape(record["shape"])
    if "I_and" in record and "I_or" in record:
        flat_and, flat_or = _as_interaction_batch(record["I_and"], record["I_or"])
        return strength_shape(per_sample_strength(flat_and, flat_or).mean(dim=0))
    raise ValueError(f'record of epoch {record.get("epoch")} needs "shape" or both "I_and" and "I_or"')


def _remembered(predictor: Callable[[float], torch.Tensor]) -> Callable[[float], torch.Tensor]:
    """``predictor`` computing each level once: every record's fit starts on the same grid of levels."""
    shapes: dict[float, torch.Tensor] = {}

    def predict(s: float) -> torch.Tensor:
        if s not in shapes:
            shapes[s] = predictor(s)
        return shapes[s]

    return predict


def _find_reference(history: Sequence[Mapping[str, Any]], reference: str | int) -> Mapping[str, Any]:
    if reference == "last":
        chosen = history[-1]
    elif isinstance(reference, int) and not isinstance(reference, bool):
        matches = [record for record in history if record["epoch"] == reference]
        if not matches:
            raise ValueError(f"no record of epoch {reference} in the history")
        chosen = matches[-1]
    else:
        raise ValueError(f'reference must be "last" or an epoch number, got {reference!r}')
    if "I_and" not in chosen or "I_or" not in chosen:
        raise ValueError(f'the reference record (epoch {chosen["epoch"]}) needs "I_and" and "I_or"')
    return chosen


def replay(
    history: Sequence[Mapping[str, Any]],
    reference: str | int = "last",
    bounds: tuple[float, float] = (1e-4, 1e2),
) -> list[EpochFit]:
    """Fit every recorded epoch against the interactions of a reference epoch (reference mode).

    ``history`` is a sequence of records (mappings), each with ``"epoch"`` (int) and either
    ``"I_and"`` and ``"I_or"`` (``(batch, 2^n)`` interactions of the monitored samples) or
    ``"shape"`` (the measured strength by order over ``1..n``, raw or normalised). The reference
    record, the last one or the one whose epoch is ``reference``, must carry ``"I_and"`` and
    ``"I_or"``. Returns one :class:`EpochFit` per record, in order; the reference epoch itself
    fits at the lower bound, with an error as small as that bound allows.

    Example:
        >>> import torch
        >>> from lightning_interactions.analysis.theory import reference_shape
        >>> final = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
        >>> history = [
        ...     {"epoch": 0, "shape": reference_shape(final, torch.zeros(1, 4), 0.5)},
        ...     {"epoch": 1, "I_and": final, "I_or": torch.zeros(1, 4)},
        ... ]
        >>> [(fit.epoch, round(fit.s, 4)) for fit in replay(history)]
        [(0, 0.5), (1, 0.0001)]
    """
    if not history:
        raise ValueError("the history is empty")
    chosen = _find_reference(history, reference)
    predictor = _remembered(shape_predictor("reference", reference=(chosen["I_and"], chosen["I_or"])))
    fits = []
    for record in history:
        fit = fit_noise_level(_record_shape(record), predictor, bounds=bounds)
        fits.append(EpochFit(epoch=int(record["epoch"]), s=fit.s, error=fit.error))
    return fits


def replay_run(history: Sequence[Mapping[str, Any]], I_and: torch.Tensor, I_or: torch.Tensor) -> RunReplay:
    """Replay ``history`` against the interactions ``(I_and, I_or)`` of its last measurement.

    Returns every record's :class:`EpochFit` and the shape predicted for it at its fitted level.
    """
    records = [dict(record) for record in history]
    records[-1].update({"I_and": I_and, "I_or": I_or})
    fits = replay(records, reference="last")
    predictor = shape_predictor("reference", reference=(I_and, I_or))
    return RunReplay(fits=fits, predicted_shapes={fit.epoch: predictor(fit.s).tolist() for fit in fits})


def replay_errors(fits: Sequence[EpochFit], onset_epoch: int | None) -> tuple[float | None, float | None]:
    """Mean fit error over phase 2 (epochs >= ``onset_epoch``) and over all epochs.

    The reference epoch (the last fit) is left out: it fits itself trivially. The phase-2 mean
    is None without an onset or without a phase-2 epoch before the reference.

    Example:
        >>> fits = [EpochFit(0, 1.0, 0.3), EpochFit(1, 0.5, 0.1), EpochFit(2, 1e-4, 0.0)]
        >>> replay_errors(fits, onset_epoch=1)
        (0.1, 0.2)
    """
    others = [fit.error for fit in fits[:-1]]
    phase2 = [fit.error for fit in fits[:-1] if onset_epoch is not None and fit.epoch >= onset_epoch]
    return _mean(phase2) if onset_epoch is not None else None, _mean(others)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
