"""A synthetic monitored run shared by the report, plot and loss tests: eight records, a made-up replay.

The history is in the callback's record format with phases from a real PhaseTracker; it fires the
over-fitting alert. ``pyproject.toml`` puts ``tests/`` on ``sys.path`` for pytest:
``from helpers.report_history import ...``.
"""

from __future__ import annotations

import torch

from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.replay import EpochFit
from lightning_interactions.analysis.theory import prior_shape

N = 6
# Prior-mode noise level: rises through phase 1 (the complexity falls), then falls (it rises).
LEVELS = [0.05, 0.3, 1.0, 2.0, 1.2, 0.6, 0.3, 0.15]
TRAIN = [2.3, 1.2, 0.8, 0.55, 0.4, 0.3, 0.22, 0.16]
VAL = [2.31, 1.25, 0.84, 0.62, 0.5, 0.47, 0.5, 0.55]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_history(losses: bool = True) -> list[dict]:
    """Eight records in the callback's format, phases from a real PhaseTracker."""
    tracker = PhaseTracker()
    history = []
    for epoch, level in enumerate(LEVELS):
        shape = prior_shape(N, level)
        total = 10.0 + epoch
        complexity = float((shape * torch.arange(1, N + 1, dtype=torch.float64)).sum())
        phase = tracker.update(epoch, complexity)
        history.append(
            {
                "epoch": epoch,
                "global_step": 10 * epoch,
                "num_samples": 16,
                "num_players": N,
                "strength": (shape * total).tolist(),
                "shape": shape.tolist(),
                "complexity": complexity,
                "prediction": "prior",
                "noise_level": None if epoch == 0 else level,
                "theory_error": None if epoch == 0 else 0.01 * epoch,
                "predicted_shape": None if epoch == 0 else prior_shape(N, level).tolist(),
                "phase": phase,
                "overfit_alert": int(tracker.alert),
                "phase1_seen": tracker.phase1_seen,
                "max_gap": 1e-7 * (epoch + 1),
                "signed": {"positive": [0.0] * N, "negative": [0.0] * N, "count": [0.0] * N},
                "train_loss": TRAIN[epoch] if losses else None,
                "val_loss": VAL[epoch] if losses else None,
                "seconds": 0.1,
            }
        )
    return history


def tracker_epochs() -> tuple[int, int]:
    """``(alert_epoch, onset_epoch)`` of a PhaseTracker fed :func:`make_history`."""
    tracker = PhaseTracker()
    for record in make_history():
        tracker.update(record["epoch"], record["complexity"])
    assert tracker.alert, "the synthetic history must fire the alert"
    return tracker.alert_epoch, tracker.onset_epoch


def make_replay_fits() -> list[EpochFit]:
    """A made-up replay: s falls to the reference (last) epoch, which fits itself."""
    levels = [3.0, 2.0, 1.0, 0.6, 0.4, 0.2, 0.1, 1e-4]
    errors = [0.5, 0.3, 0.2, 0.05, 0.07, 0.04, 0.06, 1e-9]
    return [EpochFit(epoch=e, s=s, error=err) for e, (s, err) in enumerate(zip(levels, errors))]


def make_predicted_shapes(fits: list[EpochFit]) -> dict[int, list[float]]:
    """The prior shape of each fit's noise level, by epoch."""
    return {fit.epoch: prior_shape(N, fit.s).tolist() for fit in fits}
