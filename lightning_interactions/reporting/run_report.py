"""A run's report: its numbers, the report PNG, ``summary.md`` and ``summary.json``, from its history.

The demo, ``report`` and ``analyze`` all end in :func:`write_run_report`. The onset and the alert
are the phase tracker's, as the records store them (:func:`~lightning_interactions.analysis.phases.alert_of`);
the fit errors come from the reference replay (:func:`~lightning_interactions.analysis.replay.replay_run`)
when the last measurement's interactions are known, else from the records' online fits. The
emerging and discarded interactions (:func:`~lightning_interactions.analysis.emerging.compare_run`)
use the onset's full interactions saved beside the history (``interaction_onset.pt``) when there
are some, and the report PNG draws them on the samples saved there (``interaction_samples.pt``).

Example:
    >>> history = [{"epoch": e, "complexity": c, "shape": [0.5, 0.5], "num_players": 2}
    ...            for e, c in enumerate([1.6, 1.4, 1.5])]
    >>> run_numbers(history, None)["complexity_min_epoch"]
    1
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from torch import Tensor

from lightning_interactions.analysis.emerging import compare_run
from lightning_interactions.analysis.history import (
    ONSET_FILENAME,
    SAMPLES_FILENAME,
    beside_history,
    jsonable,
    load_reference,
)
from lightning_interactions.analysis.losses import loss_gap_minimum
from lightning_interactions.analysis.phases import alert_of, phase1_of
from lightning_interactions.analysis.replay import RunReplay, replay_errors, replay_run
from lightning_interactions.plot import matplotlib_available, write_report_png
from lightning_interactions.reporting.summary import summary_text

__all__ = [
    "REPORT_FILENAME",
    "OfflineError",
    "run_numbers",
    "saved_beside",
    "write_run_report",
    "write_summary_json",
]

REPORT_FILENAME = "interaction_report.png"
History = Sequence[Mapping[str, Any]]
Reference = Mapping[str, Tensor]


class OfflineError(Exception):
    """A problem with the files given to ``report`` or ``analyze``."""


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _first_min(history: History, key: Callable[[Mapping[str, Any]], float | None]) -> int | None:
    rows = [(int(r["epoch"]), key(r)) for r in history]
    rows = [(e, v) for e, v in rows if v is not None and math.isfinite(v)]
    return min(rows, key=lambda row: row[1])[0] if rows else None


def _val_loss(record: Mapping[str, Any]) -> float | None:
    value = record.get("val_loss")
    return None if value is None else float(value)


def _replay(history: History, reference: Reference | None) -> RunReplay | None:
    if reference is None or len(history) < 2:
        return None
    return replay_run(history, reference["I_and"], reference["I_or"])


def saved_beside(history_file: str | Path | None) -> tuple[Reference | None, Mapping[str, Any] | None]:
    """``(onset interactions, samples)`` saved beside a history file; None for what is not there."""
    if history_file is None:
        return None, None
    found = []
    for name in (ONSET_FILENAME, SAMPLES_FILENAME):
        path = beside_history(history_file, name)
        found.append(load_reference(path) if path.is_file() else None)
    return found[0], found[1]


def run_numbers(
    history: History,
    reference: Reference | None,
    onset_interactions: Reference | None = None,
    run: RunReplay | None = None,
) -> dict[str, Any]:
    """The measured numbers of a run: epochs of the alert, complexity and loss-gap minima, fit errors,
    and the emerging and discarded interactions (from ``onset_interactions``, the onset's full
    interactions, if given). ``run``: the reference replay, when already computed (it is the
    costly part)."""
    if not history:
        raise OfflineError("the history is empty: nothing to report")
    alert, onset = alert_of(history)
    gap_min = loss_gap_minimum(history)
    numbers: dict[str, Any] = {
        "num_measurements": len(history),
        "epochs": [int(r["epoch"]) for r in history],
        "num_players": history[-1].get("num_players"),
        "alert_epoch": alert,
        "onset_epoch": onset,
        "rise_epoch": history[-1].get("rise_epoch"),
        "complexity_min_epoch": _first_min(history, lambda r: float(r["complexity"])),
        "phase1": phase1_of(history),
        "loss_gap_min_epoch": gap_min,
        "val_loss_min_epoch": _first_min(history, _val_loss),
        "alert_minus_loss_gap_min": None if alert is None or gap_min is None else alert - gap_min,
        "onset_minus_loss_gap_min": None if onset is None or gap_min is None else onset - gap_min,
        "complexity": {int(r["epoch"]): float(r["complexity"]) for r in history},
        "high_order_share": {int(r["epoch"]): float(sum(r["shape"][2:])) for r in history},
        "shape": {int(r["epoch"]): list(r["shape"]) for r in history},
        "train_loss": {int(r["epoch"]): r.get("train_loss") for r in history},
        "val_loss": {int(r["epoch"]): r.get("val_loss") for r in history},
        "max_gap": max((float(r["max_gap"]) for r in history if r.get("max_gap") is not None), default=None),
    }
    numbers.update(_theory_numbers(history, run if run is not None else _replay(history, reference), onset))
    numbers.update(compare_run(history, onset_interactions).as_json())
    return numbers


def _theory_numbers(history: History, run: RunReplay | None, onset: int | None) -> dict[str, Any]:
    online = [
        (int(r["epoch"]), float(r["theory_error"])) for r in history if r.get("theory_error") is not None
    ]
    numbers: dict[str, Any] = {
        "online_prediction": history[-1].get("prediction"),
        "online_theory_error_mean": _mean([error for _, error in online]),
        "online_theory_error_phase2": _mean(
            [e for epoch, e in online if onset is not None and epoch >= onset]
        ),
        "online_noise_level": {int(r["epoch"]): r.get("noise_level") for r in history},
    }
    if run is None:
        numbers.update(theory_mode="online", theory_error_phase2=None, theory_error_all=None, replay=None)
        return numbers
    phase2, overall = replay_errors(run.fits, onset)
    numbers.update(
        theory_mode="reference",
        reference_epoch=run.reference_epoch,
        theory_error_phase2=phase2,
        theory_error_all=overall,
        replay={fit.epoch: {"s": fit.s, "error": fit.error} for fit in run.fits},
    )
    return numbers


def _drawn(samples: Mapping[str, Any] | None, emerging: Sequence[Any]) -> tuple[Any, ...] | None:
    if samples is None or not emerging:
        return None
    return samples["layout"], samples["inputs"], samples["players"], emerging


def write_summary_json(out: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (non-finite numbers as null) into ``out``."""
    path = Path(out) / "summary.json"
    path.write_text(json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n")
    return path


def write_run_report(
    history: History,
    reference: Reference | None,
    out: Path,
    extra: Mapping[str, Any] | None = None,
    history_file: str | Path | None = None,
    run: RunReplay | None = None,
) -> dict[str, Any]:
    """Replay, draw and summarise a run into ``out``; returns the summary (also in ``summary.json``).

    With ``reference`` (the last measurement's ``I_and``/``I_or``) the figures and the fit errors
    come from the reference replay; without it, from the records' own online fits, and the summary
    says so (``theory_mode`` is ``"online"`` and ``theory_error_phase2`` is None). The onset's
    interactions and the samples are read beside ``history_file`` (by default
    ``extra["history_file"]``, as ``report`` and ``analyze`` give it), see :func:`saved_beside`.
    ``run``: that replay, when already made against the same last epoch (the monitor makes it at
    fit end, :attr:`InteractionMonitor.replay`); otherwise it is made here.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    onset_interactions, samples = saved_beside(history_file or (extra or {}).get("history_file"))
    if run is None or run.reference_epoch != int(history[-1]["epoch"]):
        run = _replay(history, reference)  # once: the numbers and the figures share it
    numbers = run_numbers(history, reference, onset_interactions, run=run)
    fits, predicted = (run.fits, run.predicted_shapes) if run is not None else (None, None)
    alert, onset = numbers["alert_epoch"], numbers["onset_epoch"]
    text = summary_text(history, fits, alert, onset)
    if run is None:
        text += (
            "\nNo reference interactions of the last measurement were given, so there is no reference "
            "replay: the figures show the records' online fits (prediction mode "
            f"{numbers['online_prediction']!r}).\n"
        )
    (out / "summary.md").write_text(text)
    summary: dict[str, Any] = dict(extra or {})
    summary.update(numbers)
    summary["summary_md"] = str(out / "summary.md")
    summary["report_png"] = None
    if matplotlib_available():
        drawn = _drawn(samples, compare_run(history, onset_interactions).emerging)
        summary["report_png"] = write_report_png(
            history,
            fits,
            predicted,
            out / REPORT_FILENAME,
            alert_epoch=alert,
            onset_epoch=onset,
            interactions=drawn,
        )
    write_summary_json(out, summary)
    return summary
