"""The demo's training samples: what the network memorises, flipped labels against clean ones.

A second monitor (``split="train"``) measures training digits with their (partly flipped)
training labels. Memorised labels are fitted through high-order interactions, so the share of
orders >= 3 of the flipped-label samples should stand out against the clean-label ones.

Example:
    >>> print(format_training_split({"epoch": 50, "flipped": 4, "clean": 12, "share_flipped": 0.27,
    ...                              "share_clean": 0.11, "report_png": None, "summary_json": "s.json"}))
    training samples (epoch 50): share of orders >= 3 0.270 on the 4 with flipped labels, 0.110 on the 12 with clean ones; report: s.json
"""  # noqa: E501

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lightning_interactions.analysis.history import history_filename
from lightning_interactions.analysis.strength import drop_residue, per_sample_strength, strength_shape

__all__ = ["high_order_share", "training_split_report", "format_training_split"]


def high_order_share(I_and: Tensor, I_or: Tensor, tol: float = 0.01) -> float | None:
    """Share of orders ``k >= 3`` in the mean strength of these samples (None for no sample).

    Example:
        >>> I_and = torch.zeros(1, 8, dtype=torch.float64)
        >>> I_and[0, 1], I_and[0, 7] = 3.0, 1.0  # order 1 and order 3
        >>> high_order_share(I_and, torch.zeros_like(I_and))
        0.25
    """
    if I_and.shape[0] == 0:
        return None
    strength = per_sample_strength(*drop_residue(I_and, I_or, tol)).mean(dim=0)
    return float(strength_shape(strength)[2:].sum())


def training_split_report(
    monitor: Any, data: dict[str, Tensor], out: Path, trainer_log_dir: str
) -> dict[str, Any]:
    """The training monitor's report in ``out``, and its last epoch split by flipped or clean labels."""
    from lightning_interactions.reporting.run_report import write_run_report

    last = monitor.last_interactions
    reference = None if last is None else {"I_and": last.I_and, "I_or": last.I_or}
    history_file = Path(trainer_log_dir) / history_filename(monitor.log_prefix)
    extra = {"command": "demo", "split": "train", "history_file": str(history_file)}
    report = write_run_report(monitor.history, reference, out, extra=extra, run=monitor.replay)
    flipped = (data["y_train"] != data["y_train_clean"])[monitor.samples.indices]
    numbers: dict[str, Any] = {
        "epoch": None if last is None else last.epoch,
        "flipped": int(flipped.sum()),
        "clean": int((~flipped).sum()),
        "flipped_samples": torch.nonzero(flipped).flatten().tolist(),
        "report_png": report.get("report_png"),
        "summary_json": str(Path(out) / "summary.json"),
        "share_flipped": None,
        "share_clean": None,
    }
    if last is not None:
        numbers["share_flipped"] = high_order_share(last.I_and[flipped], last.I_or[flipped], monitor.tol)
        numbers["share_clean"] = high_order_share(last.I_and[~flipped], last.I_or[~flipped], monitor.tol)
    return numbers


def format_training_split(numbers: dict[str, Any]) -> str:
    """One printed line of :func:`training_split_report`."""

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    where = numbers["report_png"] or numbers["summary_json"]
    shares = (
        f"share of orders >= 3 {share(numbers['share_flipped'])} on the {numbers['flipped']} with flipped"
    )
    clean = f"labels, {share(numbers['share_clean'])} on the {numbers['clean']} with clean ones"
    return f"training samples (epoch {numbers['epoch']}): {shares} {clean}; report: {where}"
