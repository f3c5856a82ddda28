"""Which runs a log directory holds, and a run's files, never leaving that directory.

A *run* is a folder under the log directory that holds at least one monitor history file
(``interaction_history*.jsonl``, :func:`~lightning_interactions.analysis.history.history_filename`);
its name is its path relative to the log directory, with ``/`` separators (``"."`` for the log
directory itself). The dashboard's web server answers requests that name a run, so everything
here stays inside the log directory: symbolic links are not followed out of it, a name with
``..`` or an absolute path is refused (:class:`UnsafeRunName`), and a name that is not one of the
runs found is unknown (:class:`UnknownRun`).

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "a" / "b").mkdir(parents=True)
    >>> (root / "a" / "b" / "interaction_history.jsonl").touch()
    >>> list(find_runs(root))
    ['a/b']
    >>> resolve_run(root, "a/b") == (root / "a" / "b").resolve()
    True
    >>> resolve_run(root, "../etc")
    Traceback (most recent call last):
    ...
    lightning_interactions.dashboard.runs.UnsafeRunName: run name '../etc' leaves the log directory
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from lightning_interactions.analysis.history import HISTORY_FILENAME

__all__ = ["UnsafeRunName", "UnknownRun", "find_runs", "history_files", "resolve_run", "inside"]

_PREFIX = HISTORY_FILENAME.removesuffix(".jsonl")
# A log directory of many thousands of folders is walked no further than this.
MAX_FOLDERS = 20000


class UnsafeRunName(ValueError):
    """A run name that could leave the log directory (``..``, an absolute path, a NUL byte)."""


class UnknownRun(LookupError):
    """A run name that is not a run of the log directory."""


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path``, its symbolic links resolved, lies in ``root`` (itself resolved).

    Example:
        >>> inside("/tmp/x/../y", "/tmp"), inside("/etc/passwd", "/tmp")
        (True, False)
    """
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def _is_history(name: str) -> bool:
    return name == HISTORY_FILENAME or (name.startswith(_PREFIX + "_") and name.endswith(".jsonl"))


def history_files(run_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The monitor history files in ``run_dir`` (not below it), the default monitor's first.

    Files whose real path is outside ``root`` (default: ``run_dir``) are left out.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> for name in ("interaction_history_interactions_train.jsonl", "interaction_history.jsonl"):
        ...     (run / name).touch()
        >>> [path.name for path in history_files(run)]
        ['interaction_history.jsonl', 'interaction_history_interactions_train.jsonl']
    """
    run_dir = Path(run_dir)
    root = run_dir if root is None else Path(root)
    try:
        names = sorted(
            entry.name for entry in os.scandir(run_dir) if entry.is_file() and _is_history(entry.name)
        )
    except OSError:
        return []
    names.sort(key=lambda name: name != HISTORY_FILENAME)
    return [run_dir / name for name in names if inside(run_dir / name, root)]


def find_runs(logdir: str | os.PathLike[str]) -> dict[str, Path]:
    """``{run name: folder}`` of every run under ``logdir``, sorted by name (see the module).

    Symbolic links to folders are not followed, so a run is always inside ``logdir``.
    """
    root = Path(logdir)
    if not root.is_dir():
        return {}
    runs: dict[str, Path] = {}
    for count, (folder, subfolders, _) in enumerate(os.walk(root, followlinks=False)):
        subfolders.sort()
        if count >= MAX_FOLDERS:
            break
        if history_files(folder, root):
            name = Path(folder).relative_to(root).as_posix()
            runs[name] = Path(folder)
    return dict(sorted(runs.items()))


def _check_name(name: str) -> PurePosixPath:
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeRunName(f"run name {name!r} is not a run name")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("~"):
        raise UnsafeRunName(f"run name {name!r} leaves the log directory")
    return path


def resolve_run(logdir: str | os.PathLike[str], name: str) -> Path:
    """The folder of run ``name`` of ``logdir``, resolved; refuses names that could leave ``logdir``.

    Raises:
        UnsafeRunName: ``name`` is absolute or has ``..``, a backslash or a NUL byte.
        UnknownRun: ``name`` is no run of ``logdir``, or its folder is outside ``logdir``.
    """
    relative = _check_name(name)
    folder = Path(logdir) / relative
    if not inside(folder, logdir) or not folder.is_dir() or not history_files(folder, logdir):
        raise UnknownRun(f"no run {name!r} in the log directory")
    return folder.resolve()
