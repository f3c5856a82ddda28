"""No measurement is lost when a training process is killed and resumed from its last checkpoint.

A real training process (``tests/integration/_kill_resume_job.py``) is killed with SIGKILL right after the
monitor has measured epoch ``HANG_AT`` and before that epoch's checkpoint exists, so ``last.ckpt``
is one measurement older than the history file; a second process resumes from ``last.ckpt`` into
the same log directory. Expected values come from the lines read before the kill and from the
same job run without interruption. The history-file rules (a line cut by a crash, resume lines,
re-measured epochs) are also checked on hand-written files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    append_record,
    read_history,
)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
JOB = Path(__file__).resolve().parent / "_kill_resume_job.py"
HANG_AT = 2  # killed after measuring epoch 2; last.ckpt then holds epochs 0 and 1
FINAL_EPOCHS = 4
TIMEOUT_S = 180  # a few seconds normally; generous for a loaded machine


def load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_kill_resume_job", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def jobs() -> Iterator[list[subprocess.Popen]]:
    """The test's subprocesses; any still running at the end (a failed test) is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_job(root: Path, *args: str) -> subprocess.Popen:
    """The job in a subprocess, its output in files (a full pipe would stall it)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    name = "resume" if "--resume" in args else "first"
    # The child keeps its own copy of the file descriptor; this process closes its copy at once.
    with open(root / f"{name}.out", "w") as out:
        return subprocess.Popen(
            [sys.executable, str(JOB), str(root), *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def output_of(root: Path, name: str) -> str:
    path = root / f"{name}.out"
    return path.read_text()[-4000:] if path.exists() else ""


def wait_for(path: Path, process: subprocess.Popen, root: Path) -> None:
    """Poll until ``path`` exists; fail at once if the process ends first, or after ``TIMEOUT_S``."""
    deadline = time.monotonic() + TIMEOUT_S
    while not path.exists():
        ended = process.poll() is not None
        if ended or time.monotonic() > deadline:
            why = f"the job ended (code {process.returncode})" if ended else f"{TIMEOUT_S} s passed"
            pytest.fail(f"{why} before {path.name}:\n{output_of(root, 'first')}")
        time.sleep(0.05)


def without_timing(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in record.items() if key != "seconds"} for record in records]


@pytest.mark.filterwarnings("ignore:.*over-fitting alert")
def test_killed_run_resumed_from_last_checkpoint_keeps_every_measurement_once(
    tmp_path: Path, jobs: list[subprocess.Popen]
) -> None:
    root = tmp_path / "job"
    root.mkdir()
    go = tmp_path / "go"
    first = start_job(root, "10", "--hang-at", str(HANG_AT))
    # The resumed run starts now too, but waits for `go` after its imports (they take seconds).
    resumed = start_job(root, str(FINAL_EPOCHS), "--resume", "--wait-for", str(go))
    jobs.extend([first, resumed])
    # While the job starts, the same job without interruption, here, gives the expected history.
    job = load_job()
    reference_root = tmp_path / "reference"
    job.run(reference_root, FINAL_EPOCHS)
    expected = read_history(reference_root / job.LOG_NAME / "version_0" / HISTORY_FILENAME)
    assert [r["epoch"] for r in expected] == list(range(FINAL_EPOCHS + 1))

    wait_for(root / job.HANG_MARKER, first, root)
    log_dir = root / job.LOG_NAME / "version_0"
    history_path = log_dir / HISTORY_FILENAME
    before = history_path.read_text()
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=TIMEOUT_S) == -signal.SIGKILL

    lines_before = before.splitlines(keepends=True)
    measured = [json.loads(line)["epoch"] for line in lines_before if "record" not in json.loads(line)]
    assert measured == list(range(HANG_AT + 1))
    # The premise: the checkpoint is older than the last measurement in the file.
    saved = torch.load(root / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    (monitor_state,) = [v for k, v in saved["callbacks"].items() if k.startswith("InteractionMonitor")]
    assert [r["epoch"] for r in monitor_state["history"]] == list(range(HANG_AT))
    # As if the kill had also cut a write short: half of a line, with no newline.
    fragment = lines_before[-1][: len(lines_before[-1]) // 2]
    with open(history_path, "a", encoding="utf-8") as handle:
        handle.write(fragment)

    go.touch()
    assert resumed.wait(timeout=TIMEOUT_S) == 0, output_of(root, "resume")

    after = history_path.read_text()
    # Nothing before the kill was changed, and nothing of it was written twice.
    assert after.startswith(before + fragment + "\n")
    lines_after = after.splitlines(keepends=True)
    for line in lines_before:
        assert lines_after.count(line) == 1, line
    appended = [json.loads(line) for line in lines_after[len(lines_before) + 1 :]]
    assert appended[0] == {"epoch": HANG_AT - 1, "record": "resume"}
    remeasured = [r for r in appended[1:] if "record" not in r]
    assert [r["epoch"] for r in remeasured] == list(range(HANG_AT, FINAL_EPOCHS + 1))

    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable line \[" + str(len(lines_before) + 1)):
        final = read_history(history_path)
    # One record per epoch, in order: the measurements the checkpoint knew, then the resumed run's.
    assert [r["epoch"] for r in final] == list(range(FINAL_EPOCHS + 1))
    first_run = [json.loads(line) for line in lines_before if "record" not in json.loads(line)]
    for epoch in range(HANG_AT):
        assert final[epoch]["seconds"] == first_run[epoch]["seconds"]  # the very same line
    # Epoch HANG_AT was measured by both processes: the resumed run's measurement wins.
    assert final[HANG_AT]["seconds"] == remeasured[0]["seconds"] != first_run[HANG_AT]["seconds"]
    # And the numbers are those of the run that was never interrupted.
    assert without_timing(final) == without_timing(expected)
    assert torch.load(log_dir / REFERENCE_FILENAME, weights_only=True)["epoch"] == FINAL_EPOCHS


@pytest.mark.filterwarnings("ignore:.*over-fitting alert")
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_a_run_resumed_into_a_new_log_directory_starts_its_file_with_the_checkpoints_history(
    tmp_path: Path,
) -> None:
    job = load_job()
    job.run(tmp_path, 2)  # logs/version_0, last.ckpt after epoch 2
    old_path = tmp_path / job.LOG_NAME / "version_0" / HISTORY_FILENAME
    old_text = old_path.read_text()
    job.run(tmp_path, 4, resume=True, version=1)
    new_path = tmp_path / job.LOG_NAME / "version_1" / HISTORY_FILENAME
    old, new = read_history(old_path), read_history(new_path)
    assert old_path.read_text() == old_text  # the first run's file is left alone
    assert [r["epoch"] for r in new] == [0, 1, 2, 3, 4]
    assert new[:3] == old  # copied from the checkpoint: the same records, losses included
    assert all(r["train_loss"] is not None for r in new[1:])
    assert all("record" not in json.loads(line) for line in new_path.read_text().splitlines()[:3])


# ---------------------------------------------------------------------------------------------
# The history file's rules, on hand-written files
# ---------------------------------------------------------------------------------------------


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0})
    path.write_text(path.read_text() + '{"epoch": 1, "compl')
    with pytest.warns(RuntimeWarning, match=r"read_history: skipped 1 unreadable line \[2\]"):
        assert read_history(path) == [{"epoch": 0, "complexity": 2.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_history(path, warn=False) == [{"epoch": 0, "complexity": 2.0}]


def test_append_starts_a_new_line_after_a_truncated_one(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 1, "compl')
    append_record(path, {"epoch": 1, "complexity": 1.5})
    assert path.read_text() == (
        '{"epoch": 0, "complexity": 2.0}\n{"epoch": 1, "compl\n{"epoch": 1, "complexity": 1.5}\n'
    )
    with pytest.warns(RuntimeWarning, match=r"line \[2\]"):
        assert read_history(path) == [{"epoch": 0, "complexity": 2.0}, {"epoch": 1, "complexity": 1.5}]
    # A whole file needs nothing: no empty line is added.
    append_record(path, {"epoch": 2, "complexity": 1.0})
    assert path.read_text().endswith('1.5}\n{"epoch": 2, "complexity": 1.0}\n')


def test_a_file_of_only_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"epo')
    append_record(path, {"epoch": 0, "complexity": 2.0})
    assert path.read_text() == '{"epo\n{"epoch": 0, "complexity": 2.0}\n'
    with pytest.warns(RuntimeWarning, match=r"line \[1\]"):
        assert read_history(path) == [{"epoch": 0, "complexity": 2.0}]


def test_resume_line_drops_measurements_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for epoch in range(5):  # measured 0..4, with losses; the last checkpoint held epochs 0..2
        append_record(path, {"epoch": epoch, "run": "first"})
        append_record(
            path, {"epoch": epoch, "record": "losses", "train_loss": float(epoch), "val_loss": None}
        )
    append_record(path, {"epoch": 2, "record": "resume"})
    # Before the resumed run measures anything, the history is the checkpoint's.
    assert [(r["epoch"], r["train_loss"]) for r in read_history(path)] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    # The resumed run is killed again after re-measuring epoch 3 only: epoch 4 of the first run is gone.
    append_record(path, {"epoch": 3, "run": "second"})
    assert read_history(path) == [
        {"epoch": 0, "run": "first", "train_loss": 0.0, "val_loss": None},
        {"epoch": 1, "run": "first", "train_loss": 1.0, "val_loss": None},
        {"epoch": 2, "run": "first", "train_loss": 2.0, "val_loss": None},
        {"epoch": 3, "run": "second"},
    ]
    # Its losses join the resumed run's record, not the dropped one.
    append_record(path, {"epoch": 3, "record": "losses", "train_loss": 30.0, "val_loss": 31.0})
    assert read_history(path)[-1] == {"epoch": 3, "run": "second", "train_loss": 30.0, "val_loss": 31.0}


def test_a_measurement_of_an_earlier_epoch_starts_over_from_there(tmp_path: Path) -> None:
    """Without a resume line (no monitor state in the checkpoint, or a new run in the same directory)."""
    path = tmp_path / "history.jsonl"
    for epoch, run in [(0, "a"), (1, "a"), (2, "a"), (3, "a"), (1, "b"), (2, "b"), (0, "c")]:
        append_record(path, {"epoch": epoch, "run": run})
    assert read_history(path) == [{"epoch": 0, "run": "c"}]
    append_record(path, {"epoch": 1, "run": "c"})
    assert [(r["epoch"], r["run"]) for r in read_history(path)] == [(0, "c"), (1, "c")]


def test_records_without_an_epoch_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, {"note": "no epoch"})
    append_record(path, {"epoch": 0, "complexity": 1.0})
    append_record(path, {"epoch": 0, "record": "resume"})
    assert read_history(path) == [{"note": "no epoch"}, {"epoch": 0, "complexity": 1.0}]
