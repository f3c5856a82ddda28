"""Tests for lightning_interactions.analysis.record: the one builder of the measurement record."""

from __future__ import annotations

import json

import pytest
import torch

from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record, noise_fit_fields
from lightning_interactions.analysis.theory import fit_noise_level, shape_predictor

N = 3


def interactions(seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    I_and = scale * torch.randn(4, 2**N, dtype=torch.float64, generator=generator)
    I_or = scale * torch.randn(4, 2**N, dtype=torch.float64, generator=generator)
    return I_and, I_or


def literal_strength(I_and: torch.Tensor, I_or: torch.Tensor, tol: float = 0.01) -> list[float]:
    """A(k): the mean over samples of sum over masks of order k of |I_and| + |I_or| (k = 1..n),
    leaving out the terms at or below ``tol * objective / (2 (2^n - 1))`` of their sample (residue)."""
    totals = [0.0] * N
    for sample in range(I_and.shape[0]):
        terms = [(mask, float(values[sample, mask])) for mask in range(1, 2**N) for values in (I_and, I_or)]
        floor = tol * sum(abs(value) for _, value in terms) / (2 * (2**N - 1))
        for mask, value in terms:
            if abs(value) > floor:
                totals[bin(mask).count("1") - 1] += abs(value)
    return [total / I_and.shape[0] for total in totals]


def test_record_matches_the_definitions_and_is_json() -> None:
    I_and, I_or = interactions(0)
    I_and[0, 3], I_or[1, 6] = 1e-7, -2e-9  # residue: far below what a 1% certificate resolves
    tracker = PhaseTracker()
    record = build_record(4, I_and, I_or, torch.tensor([0.001, 0.004]), tracker, global_step=40, seconds=1.5)
    assert record["strength"] == pytest.approx(literal_strength(I_and, I_or), rel=1e-12)
    assert literal_strength(I_and, I_or) != literal_strength(I_and, I_or, tol=0.0)  # something was dropped
    shape = [a / sum(record["strength"]) for a in record["strength"]]
    assert record["shape"] == pytest.approx(shape, rel=1e-12)
    assert record["complexity"] == pytest.approx(sum(k * a for k, a in enumerate(shape, start=1)), rel=1e-12)
    fit = fit_noise_level(torch.tensor(shape, dtype=torch.float64), shape_predictor("prior", n=N))
    assert record["noise_level"] == pytest.approx(fit.s) and record["theory_error"] == pytest.approx(
        fit.error
    )
    assert (record["epoch"], record["global_step"], record["seconds"], record["num_players"]) == (
        4,
        40,
        1.5,
        N,
    )
    assert record["num_samples"] == 4 and record["max_gap"] == pytest.approx(0.004)
    assert record["phase"] == 1 and tracker.min_epoch == 4  # the tracker was advanced
    json.dumps(record, allow_nan=False)


def test_record_stores_the_trackers_alert_and_onset() -> None:
    tracker = PhaseTracker(margin=0.05, patience=2)
    records = []
    # The strength moves from order 1 to order 3 after epoch 1: the complexity falls, then rises.
    for epoch, high in enumerate([0.5, 0.1, 0.6, 0.9]):
        I_and = torch.zeros(1, 2**N, dtype=torch.float64)
        I_and[0, 1], I_and[0, 7] = 1.0, high
        records.append(build_record(epoch, I_and, torch.zeros_like(I_and), torch.zeros(1), tracker))
    assert [r["overfit_alert"] for r in records] == [0, 0, 0, 1]
    assert [(r["alert_epoch"], r["onset_epoch"]) for r in records] == [(None, None)] * 3 + [(3, 1)]
    assert (tracker.alert_epoch, tracker.onset_epoch) == (3, 1)


def test_reference_mode_fits_the_previous_shape_against_this_measurement() -> None:
    I_and, I_or = interactions(1)
    first = build_record(0, I_and, I_or, torch.zeros(1), PhaseTracker(), prediction="reference")
    assert first["noise_level"] is None and first["predicted_shape"] is None  # nothing to fit yet
    later_and, later_or = interactions(2, scale=2.0)
    second = build_record(
        1, later_and, later_or, torch.zeros(1), PhaseTracker(), prediction="reference", previous=first
    )
    predictor = shape_predictor("reference", reference=(later_and, later_or))
    fit = fit_noise_level(torch.tensor(first["shape"], dtype=torch.float64), predictor)
    assert second["noise_level"] == pytest.approx(fit.s) and second["fitted_epoch"] == 0
    assert second["fitted_shape"] == first["shape"]


def test_unknown_prediction_mode() -> None:
    I_and, I_or = interactions(3)
    with pytest.raises(ValueError, match="prediction must be one of"):
        noise_fit_fields(0, torch.ones(N) / N, I_and, I_or, prediction="posterior")
