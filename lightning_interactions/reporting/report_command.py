"""``lightning-interactions report LOGDIR``: re-render a monitored run's report from its history file.

The report goes into LOGDIR itself (or ``--out``), not into the folder deep inside it where the
logger put the history, so that ``report runs/demo`` is found in ``runs/demo``.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / HISTORY_FILENAME).touch()
    >>> report_folder(root, None) == root, report_folder(root / HISTORY_FILENAME, None) == root
    (True, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    first_failure,
    load_reference,
    read_history,
    reference_path,
)
from lightning_interactions.reporting.run_report import OfflineError, write_run_report

__all__ = ["find_history", "reference_beside", "report_folder", "report_run"]


def reference_beside(history_path: Path, last_epoch: int) -> tuple[dict[str, Tensor] | None, str]:
    """The interactions saved next to a history file if they are the last measurement's; and why not.

    Returns ``(reference or None, note)``.
    """
    path = reference_path(history_path)
    if not path.is_file():
        return None, f"no {REFERENCE_FILENAME} next to the history"
    saved = load_reference(path)
    if int(saved.get("epoch", -1)) != int(last_epoch):
        return None, f"{path.name} holds epoch {saved.get('epoch')}, not the last measured epoch {last_epoch}"
    return {"I_and": saved["I_and"], "I_or": saved["I_or"]}, f"reference interactions from {path}"


def find_history(logdir: Path) -> Path:
    """The ``interaction_history.jsonl`` under ``logdir`` (searched recursively; the newest if several)."""
    logdir = Path(logdir)
    if logdir.is_file() and logdir.name == HISTORY_FILENAME:
        return logdir
    if not logdir.is_dir():
        raise OfflineError(f"{logdir} is not a directory")
    found = sorted(logdir.rglob(HISTORY_FILENAME), key=lambda p: (p.stat().st_mtime, str(p)))
    if not found:
        raise OfflineError(
            f"no {HISTORY_FILENAME} under {logdir}: was the run trained with InteractionMonitor?"
        )
    return found[-1]


def report_folder(logdir: Path, out: Path | None) -> Path:
    """Where ``report`` writes: ``out`` if given, else ``logdir`` (the folder of a history file given)."""
    if out is not None:
        return Path(out)
    logdir = Path(logdir)
    return logdir.parent if logdir.is_file() else logdir


def report_run(logdir: Path, out: Path | None = None) -> dict[str, Any]:
    """Re-render the figures and summary of a monitored run from its history file, into :func:`report_folder`.

    Beside them goes ``report.html``, the run's dashboard as one self-contained page
    (:func:`lightning_interactions.dashboard.write_page`).

    The reference replay uses the ``interaction_reference.pt`` next to the history when there is
    one (the monitor writes it); otherwise the report shows the online fits and says so.
    """
    path = find_history(Path(logdir))
    history = read_history(path)
    if not history:
        failure = first_failure(path)
        if failure is not None:
            raise OfflineError(
                f"{path} holds no measurement: every measurement of the run failed. The first "
                f"error: {failure}"
            )
        raise OfflineError(f"{path} holds no measurement")
    reference, note = reference_beside(path, int(history[-1]["epoch"]))
    folder = report_folder(logdir, out)
    # The interactive page of the run (every monitor of its folder), beside the report.
    from lightning_interactions.dashboard import write_page  # the dashboard reads this module

    page = write_page(path.parent, folder / "report.html")
    extra = {"command": "report", "history_file": str(path), "reference_note": note, "report_html": str(page)}
    return write_run_report(history, reference, folder, extra=extra)
