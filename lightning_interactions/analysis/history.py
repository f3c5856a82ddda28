"""The monitor's history file: one JSON record per measurement, appended as it happens.

A crashed run keeps every measurement made before the crash: each line is written, flushed and
synced to disk before training goes on, and no line is ever removed. Losses become known only
at the end of a training epoch, after that epoch's measurement, so they follow as lines
``{"epoch": e, "record": "losses", "train_loss": ..., "val_loss": ...}`` that
:func:`read_history` merges back.

A run resumed from a checkpoint can find lines in the file that were written after that
checkpoint (the process was killed after measuring epoch ``e`` but before saving it). It
appends ``{"epoch": c, "record": "resume"}``, ``c`` the checkpoint's last measured epoch, and
measures the later epochs again. :func:`read_history` reads the file as the history of the run
as it finally went:

* a ``resume`` line drops the measurements read so far whose epoch is after ``c``;
* a measurement drops those read so far at its epoch or later (a resumed run without the
  monitor's state, or a new run in the same directory, measures an epoch again), so the
  latest measurement of an epoch wins and epochs increase;
* a ``failed`` line (written at fit end by a monitor none of whose measurements succeeded,
  with the first error) is no measurement; :func:`first_failure` reads it;
* a line cut short by a crash during a write is skipped with a warning; the next
  :func:`append_record` starts on a new line.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.jsonl"
    >>> append_record(path, {"epoch": 0, "complexity": 2.5})
    >>> read_history(path)
    [{'epoch': 0, 'complexity': 2.5}]
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lightning_interactions.analysis.schema import check_record_version

__all__ = [
    "HISTORY_FILENAME",
    "REFERENCE_FILENAME",
    "jsonable",
    "history_filename",
    "reference_path",
    "beside_history",
    "append_record",
    "read_history",
    "FAILED",
    "first_failure",
    "save_reference",
    "load_reference",
    "ONSET_FILENAME",
    "SAMPLES_FILENAME",
    "save_samples",
]

HISTORY_FILENAME = "interaction_history.jsonl"
# The kind of the line a monitor writes at fit end when none of its measurements succeeded.
FAILED = "failed"
# The latest measurement's interactions, which a reference replay of the run needs.
REFERENCE_FILENAME = "interaction_reference.pt"
# The interactions of the onset candidate (the smallest complexity so far), saved like the reference.
ONSET_FILENAME = "interaction_onset.pt"
# The measured samples, their players and how to draw them (plot.samples.sample_layout).
SAMPLES_FILENAME = "interaction_samples.pt"


def history_filename(prefix: str = "interactions") -> str:
    """The history file of a monitor with this metric prefix; two monitors in one run get two files.

    Example:
        >>> history_filename(), history_filename("interactions/train")
        ('interaction_history.jsonl', 'interaction_history_interactions_train.jsonl')
    """
    if prefix == "interactions":
        return HISTORY_FILENAME
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in prefix.strip("/"))
    return f"interaction_history_{slug}.jsonl"


def reference_path(history_path: str | os.PathLike[str]) -> Path:
    """Where the latest interactions are saved beside a history file (``interaction_reference*.pt``).

    Example:
        >>> reference_path("run/interaction_history_interactions_train.jsonl").name
        'interaction_reference_interactions_train.pt'
    """
    return beside_history(history_path, REFERENCE_FILENAME)


def beside_history(history_path: str | os.PathLike[str], filename: str) -> Path:
    """The file ``filename`` (``interaction_<what>.pt``) that belongs to a history file, beside it.

    Example:
        >>> beside_history("run/interaction_history_interactions_train.jsonl", ONSET_FILENAME).name
        'interaction_onset_interactions_train.pt'
        >>> beside_history("run/interaction_history.jsonl", SAMPLES_FILENAME).name
        'interaction_samples.pt'
    """
    path = Path(history_path)
    if path.name == HISTORY_FILENAME:
        return path.with_name(filename)
    stem = path.name.removesuffix(".jsonl").replace("interaction_history", filename.removesuffix(".pt"), 1)
    return path.with_name(stem + ".pt")


def jsonable(value: Any) -> Any:
    """``value`` ready for strict JSON: NaN and infinities become null, mapping keys strings.

    Example:
        >>> jsonable({1: [0.5, float("nan")]})
        {'1': [0.5, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and push it to disk.

    If the file does not end with a newline (a write cut short by a crash), the record starts on
    a new line, so that the cut line alone is lost.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(jsonable(record), allow_nan=False) + "\n"
    with open(path, "ab") as handle:
        if handle.tell() > 0 and not _ends_with_newline(path):
            line = "\n" + line
        # One write of the whole line: a kill leaves either nothing or a prefix of it.
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_history(path: str | os.PathLike[str], warn: bool = True) -> list[dict[str, Any]]:
    """Read the measurements of a history file, one per epoch in increasing order, losses merged in.

    The rules for a resumed run and for lines cut short by a crash are in the module's docstring:
    the latest measurement of an epoch wins, measurements after a resumed checkpoint's last one
    are dropped, and a line that is not a JSON record is skipped (with a warning if ``warn``).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.jsonl"
        >>> for epoch in (0, 1, 2):  # measured, then the process is killed before saving epoch 2
        ...     append_record(path, {"epoch": epoch, "complexity": 2.0})
        >>> append_record(path, {"epoch": 1, "record": "resume"})  # resumed from epoch 1
        >>> append_record(path, {"epoch": 2, "complexity": 1.5})  # epoch 2 measured again
        >>> [(r["epoch"], r["complexity"]) for r in read_history(path)]
        [(0, 2.0), (1, 2.0), (2, 1.5)]
    """
    records: list[dict[str, Any]] = []
    unreadable: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                unreadable.append(number)
                continue
            kind, epoch = entry.get("record"), entry.get("epoch")
            if kind == "losses":
                target = next((r for r in reversed(records) if r.get("epoch") == epoch), None)
                if target is not None:
                    target.update({k: v for k, v in entry.items() if k not in ("epoch", "record")})
            elif kind == FAILED:
                continue
            elif kind == "resume":
                records = [r for r in records if not _later(r.get("epoch"), epoch, or_equal=False)]
            else:
                check_record_version(entry, f"{path}, line {number}")
                records = [r for r in records if not _later(r.get("epoch"), epoch, or_equal=True)]
                records.append(entry)
    if unreadable and warn:
        warnings.warn(
            f"read_history: skipped {len(unreadable)} unreadable line{'s' if len(unreadable) > 1 else ''} "
            f"{unreadable} of {path} (a write cut short by a crash?)",
            RuntimeWarning,
            stacklevel=2,
        )
    return records


def first_failure(path: str | os.PathLike[str]) -> str | None:
    """The error of a run whose every measurement failed, as its monitor wrote it at fit end; else None.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.jsonl"
        >>> append_record(path, {"record": FAILED, "error": "TypeError: forward() missing ..."})
        >>> read_history(path), first_failure(path)
        ([], 'TypeError: forward() missing ...')
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("record") == FAILED:
                return str(entry.get("error"))
    return None


def _later(epoch: Any, than: Any, or_equal: bool) -> bool:
    """``epoch > than`` (or ``>=``); False unless both are numbers, so records without one are kept."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (epoch, than))
    return numbers and (epoch >= than if or_equal else epoch > than)


def save_reference(path: str | os.PathLike[str], epoch: int, I_and: torch.Tensor, I_or: torch.Tensor) -> None:
    """Replace the saved latest interactions atomically (a crash leaves the previous file whole)."""
    _save_atomic(path, {"epoch": epoch, "I_and": I_and.cpu(), "I_or": I_or.cpu()})


def _save_atomic(path: str | os.PathLike[str], value: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(value, partial)
    os.replace(partial, path)


def save_samples(
    path: str | os.PathLike[str],
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    players: Mapping[str, torch.Tensor],
    layout: Mapping[str, Any],
) -> None:
    """Save the measured samples, their players and how to draw them (read by :func:`load_reference`)."""
    players = {key: value.cpu() for key, value in players.items()}
    targets = None if targets is None else targets.cpu()
    saved = {"inputs": inputs.cpu(), "targets": targets, "players": players, "layout": dict(layout)}
    _save_atomic(path, saved)


def load_reference(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"epoch", "I_and", "I_or"}`` as :func:`save_reference` saved it (or :func:`save_samples`' dict)."""
    return torch.load(path, map_location="cpu", weights_only=True)
