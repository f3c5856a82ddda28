"""The monitor's history file: one JSON record per measurement, appended as it happens.

A crashed run keeps every measurement made before the crash: each line is written, flushed and
synced to disk before training goes on. Losses become known only at the end of a training
epoch, after that epoch's measurement, so they follow as lines ``{"epoch": e, "record":
"losses", "train_loss": ..., "val_loss": ...}`` that :func:`read_history` merges back.

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
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "HISTORY_FILENAME",
    "REFERENCE_FILENAME",
    "append_record",
    "read_history",
    "save_reference",
    "load_reference",
]

HISTORY_FILENAME = "interaction_history.jsonl"
# The latest measurement's interactions, which a reference replay of the run needs.
REFERENCE_FILENAME = "interaction_reference.pt"


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity; write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and push it to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_finite_or_none(record), allow_nan=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the measurements of a history file, with their losses merged in.

    A line cut short by a crash is ignored; a losses line updates the latest measurement of its
    epoch.
    """
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("record") != "losses":
                records.append(entry)
                continue
            target = next((r for r in reversed(records) if r.get("epoch") == entry.get("epoch")), None)
            if target is not None:
                target.update({k: v for k, v in entry.items() if k not in ("epoch", "record")})
    return records


def save_reference(path: str | os.PathLike[str], epoch: int, I_and: torch.Tensor, I_or: torch.Tensor) -> None:
    """Replace the saved latest interactions atomically (a crash leaves the previous file whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"epoch": epoch, "I_and": I_and.cpu(), "I_or": I_or.cpu()}, partial)
    os.replace(partial, path)


def load_reference(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"epoch", "I_and", "I_or"}`` as saved by :func:`save_reference`."""
    return torch.load(path, map_location="cpu", weights_only=True)
