"""The history file of a resumed run: where the checkpoint's history ends, or a copy of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from lightning_interactions.analysis.history import (
    append_record,
    read_history,
    reference_path,
    save_reference,
)

__all__ = ["continue_history_file"]


def continue_history_file(
    path: Path, history: Sequence[Mapping[str, Any]], reference: Mapping[str, Tensor] | None
) -> None:
    """Mark where a checkpoint's ``history`` ends in the file at ``path``, or copy it into a new file.

    Lines after the checkpoint's last measurement come from the killed or stopped run that went on
    past the checkpoint; the ``resume`` line tells :func:`read_history` to drop them (they stay in
    the file). The saved reference interactions become the checkpoint's again.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "interaction_history.jsonl"
        >>> continue_history_file(path, [{"epoch": 0, "complexity": 2.0}], None)  # a new directory
        >>> continue_history_file(path, [{"epoch": 0, "complexity": 2.0}], None)  # the same one again
        >>> path.read_text().splitlines()[-1]
        '{"epoch": 0, "record": "resume"}'
    """
    last = history[-1]["epoch"]
    if path.is_file() and read_history(path, warn=False):
        append_record(path, {"epoch": last, "record": "resume"})
    else:
        for record in history:
            append_record(path, dict(record))
    if reference is not None:
        save_reference(reference_path(path), last, reference["I_and"], reference["I_or"])
