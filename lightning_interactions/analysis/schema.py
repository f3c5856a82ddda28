"""The measurement record's schema: its keys, their types, and the version of the format.

A history file is read by later versions of the package (``report``, the dashboard), so every
record says which format it was written in (``version``). Records written before the key
existed are version 1: the same keys but ``version`` and ``alert_settings``, which readers take
as the defaults. A record from a newer format is refused with a
message that says to upgrade, instead of being misread. :class:`MeasurementRecord` names every
key once; a test checks that :func:`~lightning_interactions.analysis.record.build_record` makes
exactly these keys, so a key renamed in one place fails there rather than silently elsewhere.

Example:
    >>> check_record_version({"epoch": 0}, "history.jsonl")  # written before the version key: 1
    1
    >>> check_record_version({"epoch": 0, "version": 99}, "history.jsonl")
    Traceback (most recent call last):
    ...
    ValueError: history.jsonl: a record of format version 99 (epoch 0), written by a newer lightning-interactions; this one reads versions up to 2: upgrade the package to read it
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

__all__ = ["RECORD_VERSION", "MeasurementRecord", "check_record_version"]

# 1: the records before the version key; 2: the same keys, and ``version``.
RECORD_VERSION = 2


class MeasurementRecord(TypedDict):
    """One measurement of a run, as :func:`~lightning_interactions.analysis.record.build_record`
    makes it and the history file stores it (one JSON line). Epochs count completed training
    epochs; values are plain Python numbers and lists, so the record is JSON as it is."""

    version: int
    epoch: int
    step: int | None  # the logging step of Lightning's epoch-level metrics of that epoch
    global_step: int | None
    num_samples: int
    num_players: int
    strength: list[float]  # A(k) for k = 1..n, the mean over the samples
    shape: list[float]  # A(k) / sum_j A(j)
    complexity: float  # sum_k k * shape(k)
    prediction: str  # the online noise fit's mode, "prior" or "reference"
    noise_level: float | None
    theory_error: float | None
    predicted_shape: list[float] | None
    fitted_epoch: int | None
    fitted_shape: list[float] | None
    phase: int
    overfit_alert: int
    alert_epoch: int | None
    onset_epoch: int | None
    rise_epoch: int | None
    phase1_seen: bool
    alert_settings: dict[str, float | int | None]  # the PhaseTracker's: margin, patience, gap_rise, ...
    max_gap: float  # the largest certified relative gap of the extractions
    signed: dict[str, list[float]]
    salient: list[list[list[Any]]]  # per sample: [kind, players, order, value], strongest first
    salient_top_k: int
    output_span: list[float]  # per sample: sum_S |I_and(S)| + |I_or(S)|
    tol: float
    train_loss: float | None  # filled in at the end of the training epoch
    val_loss: float | None
    seconds: float | None


def check_record_version(record: Mapping[str, Any], source: str) -> int:
    """The record's format version (1 when it has none); a version newer than this package reads
    raises ``ValueError`` naming ``source``."""
    version = record.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > RECORD_VERSION:
        raise ValueError(
            f"{source}: a record of format version {version!r} (epoch {record.get('epoch')}), written by a "
            f"newer lightning-interactions; this one reads versions up to {RECORD_VERSION}: upgrade the "
            "package to read it"
        )
    return version
