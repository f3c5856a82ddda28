"""What the dashboard draws, from a run's history files: one JSON-able payload.

:func:`dashboard_payload` reads every run under a log directory (or the one run a folder is)
and gives ``{"runs": [run, ...]}``; :func:`run_payload` one run, ``{"run": name, "monitors":
[monitor, ...]}``, the default monitor first; :func:`monitor_payload` one history file:

* ``monitor`` (the file's prefix, ``"interactions"`` or e.g. ``"interactions_train"``), ``label``,
  ``file``, ``num_players``, ``num_samples``;
* per measured epoch, in the order of ``epochs``: ``share`` (the strength of each order
  ``1..n`` normalised to sum 1), ``complexity``, ``train_loss``, ``val_loss``, ``gap``
  (validation minus training), ``phase``, ``predicted`` (the shape the theory predicts) and
  ``measured`` (the shape it was fitted to; None where that is the epoch's own ``share``), and
  ``emerging`` (the interactions that grew most from the onset to that epoch, strongest
  first, each ``[sample, kind, players, order, value at the onset, value then, growth]``), and
  ``emerging_onset``, the onset epoch each list starts from (before the alert: the complexity
  minimum so far, :func:`~lightning_interactions.analysis.emerging.onset_of`);
* ``prediction``: where the predicted shapes come from, in words;
* ``onset_epoch``, ``alert_epoch``, ``rise_epoch``, ``best_val_epoch``, ``complexity_min_epoch``;
* ``alert_note`` (the note logged when the alert fired, or None) and ``summary`` (markdown);
* ``samples``: the samples the emerging interactions are drawn on
  (:func:`~lightning_interactions.dashboard.drawings.sample_drawings`).

Numbers are rounded to 4 significant digits to keep the payload small.

Example:
    >>> import tempfile
    >>> from lightning_interactions.analysis.history import append_record
    >>> run = Path(tempfile.mkdtemp())
    >>> for epoch, shape in enumerate([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.6, 0.2, 0.2]]):
    ...     append_record(run / "interaction_history.jsonl", {"epoch": epoch, "shape": shape,
    ...                   "complexity": 1 + shape[1] + 2 * shape[2], "num_players": 3})
    >>> monitor = dashboard_payload(run)["runs"][0]["monitors"][0]
    >>> monitor["epochs"], monitor["share"][1], monitor["complexity"]
    ([0, 1, 2], [0.7, 0.2, 0.1], [1.7, 1.4, 1.6])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_interactions.analysis.emerging import compare_run
from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    ONSET_FILENAME,
    REFERENCE_FILENAME,
    SAMPLES_FILENAME,
    beside_history,
    jsonable,
    load_reference,
    read_history,
)
from lightning_interactions.analysis.phases import alert_of, replay_tracker
from lightning_interactions.analysis.replay import RunReplay, replay_run
from lightning_interactions.dashboard.drawings import rounded, sample_drawings
from lightning_interactions.dashboard.runs import find_runs, history_files, inside
from lightning_interactions.reporting.alert_note import alert_text
from lightning_interactions.reporting.report_command import reference_beside
from lightning_interactions.reporting.summary import summary_text

__all__ = ["EMERGING_LIMIT", "dashboard_payload", "run_payload", "monitor_payload", "monitor_name"]

History = Sequence[Mapping[str, Any]]
# Interactions listed per epoch; the page draws them on their samples.
EMERGING_LIMIT = 6


def monitor_name(history_path: str | os.PathLike[str]) -> str:
    """The monitor's prefix as its history file spells it.

    Example:
        >>> monitor_name("run/interaction_history.jsonl")
        'interactions'
        >>> monitor_name("run/interaction_history_interactions_train.jsonl")
        'interactions_train'
    """
    name = Path(history_path).name
    if name == HISTORY_FILENAME:
        return "interactions"
    return name.removesuffix(".jsonl").removeprefix("interaction_history_")


def _label(monitor: str) -> str:
    if monitor == "interactions":
        return "validation samples"
    if "train" in monitor:
        return f"training samples ({monitor})"
    return monitor


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _gap(record: Mapping[str, Any]) -> float | None:
    train, val = _number(record.get("train_loss")), _number(record.get("val_loss"))
    return None if train is None or val is None else val - train


def _share(record: Mapping[str, Any]) -> list[float]:
    shape = [float(x) for x in record.get("shape") or record.get("strength") or []]
    total = sum(abs(x) for x in shape)
    return [abs(x) / total if total else 0.0 for x in shape]


def _first_min(epochs: Sequence[int], values: Sequence[float | None]) -> int | None:
    rows = [(value, epoch) for epoch, value in zip(epochs, values) if value is not None]
    return min(rows)[1] if rows else None


def _load_beside(history_path: Path, filename: str, root: Path) -> Any:
    path = beside_history(history_path, filename)
    if not path.is_file() or not inside(path, root):
        return None
    try:
        return load_reference(path)
    except Exception:  # a file cut short or of another version: draw without it
        return None


def _replay(history: History, history_path: Path, root: Path) -> RunReplay | None:
    if len(history) < 2 or not inside(beside_history(history_path, REFERENCE_FILENAME), root):
        return None
    try:
        reference, _ = reference_beside(history_path, int(history[-1]["epoch"]))
        return None if reference is None else replay_run(history, reference["I_and"], reference["I_or"])
    except Exception:  # a reference that does not fit the history: the online fits are shown
        return None


def _shapes(history: History, run: RunReplay | None) -> tuple[list[Any], list[Any], str]:
    """Predicted shapes per epoch, the measured shapes they were fitted to (None: the epoch's own)."""
    if run is not None:
        predicted = [run.predicted_shapes.get(int(r["epoch"])) for r in history]
        source = f"reference replay: noise added to the interactions of epoch {run.reference_epoch}"
        return predicted, [None] * len(history), source
    predicted, measured = [], []
    for record in history:
        predicted.append(record.get("predicted_shape"))
        fitted = record.get("fitted_epoch")
        own = fitted is None or int(fitted) == int(record["epoch"])
        measured.append(
            None if own or not record.get("fitted_shape") else _share({"shape": record["fitted_shape"]})
        )
    mode = history[-1].get("prediction") or "prior"
    return predicted, measured, f"online fit of each measurement ({mode} mode)"


def _emerging(history: History, onset: Any) -> tuple[list[list[list[Any]]], list[int | None]]:
    """Each epoch's emerging interactions and the onset they grew from: :func:`compare_run` on the
    history up to that epoch."""
    per_epoch, onsets = [], []
    for end in range(1, len(history) + 1):
        comparison = compare_run(history[:end], onset, limit=EMERGING_LIMIT)
        rows = [
            [c.sample, c.kind, list(c.players), c.order, *rounded([c.value_from, c.value_to, c.change])]
            for c in comparison.emerging
        ]
        per_epoch.append(rows)
        onsets.append(comparison.epochs["onset_epoch"])
    return per_epoch, onsets


def _alert_note(history: History) -> str | None:
    """The note the monitor logged when the alert fired, made again by the monitor's own function.

    The tracker is replayed over the records before the alert with the settings they keep (the
    defaults for records written without them); if it does not fire where the monitor's did, a
    short note says when it fired instead. None without an alert.
    """
    alert, onset = alert_of(history)
    index = next((i for i, r in enumerate(history) if r["epoch"] == alert), None)
    if index is None:
        return None
    tracker = replay_tracker(history[:index])
    tracker.update(int(history[index]["epoch"]), float(history[index]["complexity"]))
    if tracker.alert_epoch == alert and tracker.onset_epoch == onset:
        try:
            return alert_text(history[index], history[: index + 1], tracker)
        except (StopIteration, KeyError, TypeError, ValueError):
            pass
    return (
        f"**Over-fitting alert at epoch {alert}.** Phase 2 began at epoch {onset}, the complexity "
        "minimum. (This history does not keep the monitor's alert settings, so its full note is not "
        "made again here; it is in the run's logs.)"
    )


def _summary(history: History, run: RunReplay | None) -> str:
    alert, onset = alert_of(history)
    return summary_text(history, None if run is None else run.fits, alert, onset)


def monitor_payload(
    history_path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    replay: RunReplay | None = None,
) -> dict:
    """The dashboard's data of one history file (see the module).

    Files beside it whose real path is outside ``root`` (default: its folder) are not read.
    ``replay``: the history's reference replay when already made (the monitor's at fit end); it
    is used if its reference is the last measured epoch, else the replay is made here.

    Returns ``{"monitor", "label", "file", "epochs": []}`` for a history without measurements.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "interaction_history_interactions_train.jsonl"
        >>> path.touch()
        >>> monitor_payload(path)
        {'monitor': 'interactions_train', 'label': 'training samples (interactions_train)', \
'file': 'interaction_history_interactions_train.jsonl', 'epochs': []}
    """
    path = Path(history_path)
    root = path.parent if root is None else Path(root)
    name = monitor_name(path)
    payload: dict[str, Any] = {"monitor": name, "label": _label(name), "file": path.name, "epochs": []}
    history = [r for r in read_history(path, warn=False) if "complexity" in r and "epoch" in r]
    if not history:
        return payload
    last = int(history[-1]["epoch"])
    run = replay if replay is not None and replay.reference_epoch == last else _replay(history, path, root)
    predicted, measured, source = _shapes(history, run)
    epochs = [int(r["epoch"]) for r in history]
    alert, onset = alert_of(history)
    emerging, emerging_onset = _emerging(history, _load_beside(path, ONSET_FILENAME, root))
    drawn = {change[0] for changes in emerging for change in changes}
    val_loss = [_number(r.get("val_loss")) for r in history]
    payload.update(
        num_players=history[-1].get("num_players"),
        num_samples=history[-1].get("num_samples"),
        epochs=epochs,
        share=[rounded(_share(r)) for r in history],
        complexity=rounded([float(r["complexity"]) for r in history]),
        train_loss=rounded([_number(r.get("train_loss")) for r in history]),
        val_loss=rounded(val_loss),
        gap=rounded([_gap(r) for r in history]),
        phase=[r.get("phase") for r in history],
        predicted=rounded(predicted),
        measured=rounded(measured),
        prediction=source,
        emerging=emerging,
        emerging_onset=emerging_onset,
        onset_epoch=onset,
        alert_epoch=alert,
        rise_epoch=history[-1].get("rise_epoch"),
        best_val_epoch=_first_min(epochs, val_loss),
        complexity_min_epoch=_first_min(epochs, [float(r["complexity"]) for r in history]),
        alert_note=_alert_note(history),
        summary=_summary(history, run),
        samples=sample_drawings(_load_beside(path, SAMPLES_FILENAME, root), drawn),
    )
    return jsonable(payload)


def run_payload(
    run_dir: str | os.PathLike[str], name: str = ".", root: str | os.PathLike[str] | None = None
) -> dict:
    """``{"run": name, "monitors": [...]}``: :func:`monitor_payload` of each history file in ``run_dir``.

    Files whose real path is outside ``root`` (default: ``run_dir``) are not read.

    Example:
        >>> import tempfile
        >>> run_payload(tempfile.mkdtemp(), "empty")
        {'run': 'empty', 'monitors': []}
    """
    root = Path(run_dir) if root is None else Path(root)
    return {"run": name, "monitors": [monitor_payload(path, root) for path in history_files(run_dir, root)]}


def dashboard_payload(source: str | os.PathLike[str], replay: RunReplay | None = None) -> dict:
    """``{"runs": [...]}`` of every run under ``source`` (a log directory, a run's folder or a history file).

    ``replay``: for a history file, its reference replay if already made (see :func:`monitor_payload`).

    Example:
        >>> import tempfile
        >>> dashboard_payload(tempfile.mkdtemp())
        {'runs': []}
    """
    source = Path(source)
    if source.is_file():
        return {"runs": [{"run": source.parent.name, "monitors": [monitor_payload(source, replay=replay)]}]}
    runs = find_runs(source).items()
    return {
        "runs": [
            run_payload(folder, source.resolve().name if name == "." else name, source)
            for name, folder in runs
        ]
    }
