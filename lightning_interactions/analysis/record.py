"""The measurement record: what one measurement of a run keeps, built in one place.

The monitor, ``analyze`` and everything that reads a history file share this record: a plain,
JSON-serialisable dict, one per measured epoch. :func:`build_record` makes it from the
interactions of the measured samples; it advances the phase tracker, which is the one place the
alert rule lives, and stores the tracker's verdict (``phase``, ``overfit_alert``, and once the
alert has fired ``alert_epoch`` and ``onset_epoch``), so a saved history never has to re-derive it.

Its keys and their types are :class:`~lightning_interactions.analysis.schema.MeasurementRecord`
(``version`` is the format's, :data:`~lightning_interactions.analysis.schema.RECORD_VERSION`);
``rise_epoch`` is the complexity's rise, which the loss gap then confirms.

``salient`` keeps each measured sample's top ``salient_top_k`` interactions after residue
removal, one list per sample (in the order of the measured samples), strongest first, each entry
``[kind, players, order, value]``: ``"and"`` or ``"or"``, the sorted player indices, ``|S|`` and
the signed value; ``output_span`` is each sample's whole interaction strength
``sum_S |I_and(S)| + |I_or(S)|``, the scale of its growth
(:mod:`lightning_interactions.analysis.salient` has the exact rules). ``tol`` is the residue
tolerance the record was built with.

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.phases import PhaseTracker
    >>> I_and = torch.tensor([[0.0, 1.0, 0.5, 0.25]], dtype=torch.float64)  # n = 2
    >>> record = build_record(0, I_and, torch.zeros_like(I_and), torch.zeros(1), PhaseTracker())
    >>> record["strength"], round(record["complexity"], 4), record["phase"]
    ([1.5, 0.25], 1.1429, 1)
    >>> record["salient"], record["output_span"]
    ([[['and', [0], 1, 1.0], ['and', [1], 1, 0.5], ['and', [0, 1], 2, 0.25]]], [1.75])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.salient import SALIENT_TOP_K, output_span, top_salient
from lightning_interactions.analysis.schema import RECORD_VERSION, MeasurementRecord
from lightning_interactions.analysis.strength import (
    complexity,
    drop_residue,
    per_sample_strength,
    signed_strength,
    strength_shape,
)
from lightning_interactions.analysis.theory import fit_noise_level, shape_predictor

__all__ = ["PREDICTIONS", "build_record", "noise_fit_fields"]

# How the online noise fit predicts a shape; see noise_fit_fields.
PREDICTIONS = ("prior", "reference")
_NOISE_KEYS = ("noise_level", "theory_error", "predicted_shape", "fitted_epoch", "fitted_shape")


def noise_fit_fields(
    epoch: int,
    shape: Tensor,
    I_and: Tensor,
    I_or: Tensor,
    prediction: str = "prior",
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The online noise fit of one measurement: level, error, and which shape was fitted to what.

    ``"prior"`` fits this measurement's ``shape`` with the independent-reference prior.
    ``"reference"`` asks how much noise separates the ``previous`` record's shape from now, with
    this measurement's interactions as the reference the noise is added to; without a previous
    record every field is None.
    """
    if prediction == "prior":
        predictor = shape_predictor("prior", n=shape.shape[0])
        fitted_epoch, target = epoch, shape
    elif prediction == "reference":
        if previous is None:
            return dict.fromkeys(_NOISE_KEYS)
        fitted_epoch = previous["epoch"]
        target = torch.tensor(previous["shape"], dtype=torch.float64)
        predictor = shape_predictor("reference", reference=(I_and, I_or))
    else:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    fit = fit_noise_level(target, predictor)
    return {
        "noise_level": fit.s,
        "theory_error": fit.error,
        "predicted_shape": predictor(fit.s).tolist(),
        "fitted_epoch": fitted_epoch,
        "fitted_shape": target.tolist(),
    }


def build_record(
    epoch: int,
    I_and: Tensor,
    I_or: Tensor,
    gap: Tensor,
    tracker: PhaseTracker,
    *,
    prediction: str = "prior",
    previous: Mapping[str, Any] | None = None,
    tol: float = 0.01,
    step: int | None = None,
    global_step: int | None = None,
    seconds: float | None = None,
    salient_top_k: int = SALIENT_TOP_K,
) -> MeasurementRecord:
    """The record of one measurement; advances ``tracker`` by this epoch's complexity.

    Args:
        epoch: completed training epochs at the measurement.
        I_and, I_or: ``(samples, 2^n)`` interactions of the measured samples, on the CPU.
        gap: ``(samples,)`` certified relative gaps of their extractions.
        tracker: the run's phase tracker (the alert rule).
        prediction: the online noise fit's mode, see :func:`noise_fit_fields`.
        previous: the run's previous record (reference mode fits its shape).
        tol: the extraction's certified relative gap; interactions it does not resolve are left
            out of the strength (:func:`~lightning_interactions.analysis.strength.drop_residue`).
        step: the logging step of the measurement (the step of Lightning's own epoch-level
            metrics of that epoch), if any.
        global_step: the trainer's optimizer steps at the measurement, if any.
        seconds: how long the measurement took (forward passes, extraction, gather).
        salient_top_k: how many interactions of each sample the record keeps (``salient``).
    """
    I_and, I_or = drop_residue(I_and, I_or, tol)
    strength = per_sample_strength(I_and, I_or).mean(dim=0)
    shape = strength_shape(strength)
    value = float(complexity(shape))
    noise = noise_fit_fields(epoch, shape, I_and, I_or, prediction, previous)
    phase = tracker.update(epoch, value)
    return {
        "version": RECORD_VERSION,
        "epoch": epoch,
        "step": step,
        "global_step": global_step,
        "num_samples": I_and.shape[0],
        "num_players": I_and.shape[1].bit_length() - 1,
        "strength": strength.tolist(),
        "shape": shape.tolist(),
        "complexity": value,
        "prediction": prediction,
        **noise,
        "phase": phase,
        "overfit_alert": int(tracker.alert),
        "alert_epoch": tracker.alert_epoch,
        "onset_epoch": tracker.onset_epoch,
        "rise_epoch": tracker.rise_epoch,
        "phase1_seen": tracker.phase1_seen,
        "alert_settings": tracker.settings(),
        "max_gap": float(gap.max()),
        "signed": {key: values.tolist() for key, values in signed_strength(I_and, I_or).items()},
        "salient": top_salient(I_and, I_or, salient_top_k),
        "salient_top_k": salient_top_k,
        "output_span": output_span(I_and, I_or),
        "tol": tol,
        "train_loss": None,
        "val_loss": None,
        "seconds": seconds,
    }
