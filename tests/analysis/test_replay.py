"""Tests for lightning_interactions.analysis.replay: every epoch fitted against a reference epoch."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.oracles import literal_noise_matrix, literal_strength_by_order

from lightning_interactions.analysis.replay import EpochFit, replay, replay_run
from lightning_interactions.analysis.theory import fit_noise_level, shape_predictor

F64 = torch.float64


def _history(levels: list[float]) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    n = 5
    generator = torch.Generator().manual_seed(8)
    final_and = torch.randn(8, 2**n, dtype=F64, generator=generator)
    final_or = torch.randn(8, 2**n, dtype=F64, generator=generator)
    history = []
    for epoch, s in enumerate(levels):
        matrix = literal_noise_matrix(n, s)
        history.append({"epoch": epoch, "I_and": final_and @ matrix.T, "I_or": final_or @ matrix.T})
    history.append({"epoch": len(levels), "I_and": final_and, "I_or": final_or})
    return history, final_and, final_or


def test_replay_recovers_the_noise_of_every_epoch() -> None:
    levels = [3.0, 0.6, 0.15, 0.02]
    history, final_and, final_or = _history(levels)
    # One record carries only its measured shape.
    matrix = literal_noise_matrix(5, 0.6)
    strength = literal_strength_by_order(final_and @ matrix.T, final_or @ matrix.T)
    history[1] = {"epoch": 1, "shape": strength}
    fits = replay(history)
    assert [fit.epoch for fit in fits] == list(range(len(levels) + 1))
    assert all(isinstance(fit, EpochFit) for fit in fits)
    for fit, s0 in zip(fits, levels):
        assert abs(math.log(fit.s) - math.log(s0)) < 1e-3
        assert fit.error < 1e-6
    # The reference against itself: no noise, down to the lower bound (s = 1e-4 is not quite 0).
    assert fits[-1].s == pytest.approx(1e-4, rel=1e-6) and fits[-1].error < 1e-3


def test_replay_against_a_chosen_epoch_and_errors() -> None:
    history, _, _ = _history([3.0, 0.6])
    # Against epoch 1 (s = 0.6 from the final one): epoch 0 is M(3) = M(t) M(0.6) with
    # t = (3 - 0.6) / (1 + 1.2) by the semigroup law.
    fits = replay(history, reference=1)
    assert abs(math.log(fits[0].s) - math.log(2.4 / 2.2)) < 1e-3 and fits[0].error < 1e-6
    with pytest.raises(ValueError, match="empty"):
        replay([])
    with pytest.raises(ValueError, match="epoch 17"):
        replay(history, reference=17)
    with pytest.raises(ValueError, match="needs"):
        replay([{"epoch": 0, "shape": torch.ones(5)}])
    with pytest.raises(ValueError, match="reference"):
        replay(history, reference="best")


def test_replay_run_fits_and_predicts_each_epoch_against_the_last_interactions() -> None:
    history, final_and, final_or = _history([3.0, 0.6, 0.15])
    records = [
        {"epoch": r["epoch"], "shape": literal_strength_by_order(r["I_and"], r["I_or"])} for r in history
    ]
    run = replay_run(records, final_and, final_or)
    predictor = shape_predictor("reference", reference=(final_and, final_or))
    assert run.reference_epoch == records[-1]["epoch"]
    for record, fit in zip(records, run.fits):
        expected = fit_noise_level(torch.as_tensor(record["shape"]), predictor)
        assert fit.epoch == record["epoch"]
        assert fit.s == pytest.approx(expected.s, rel=1e-9) and fit.error == pytest.approx(
            expected.error, abs=1e-12
        )
        assert run.predicted_shapes[fit.epoch] == pytest.approx(predictor(fit.s).tolist(), abs=1e-12)
