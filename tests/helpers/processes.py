"""Pieces shared by the Lightning tests: a guarded subprocess and its environment.

The tests' classifier is :class:`lightning_interactions.demos.Classifier` (``optimizer="sgd"``).

``pyproject.toml`` puts ``tests/`` on ``sys.path`` for pytest: ``from helpers.processes import ...``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest


def distributed_free_env(**extra: str) -> dict[str, str]:
    """This process's environment without the variables of an enclosing launcher, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "TORCHELASTIC_"))
        and key not in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "GROUP_RANK", "MASTER_PORT")
    }
    env.update(extra)
    return env


def run_in_own_group(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path, timeout: float
) -> tuple[int, str]:
    """Run ``command`` in its own process group, output to ``log``; on timeout kill the group and fail."""
    with open(log, "w") as handle:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"{' '.join(command[1:])} did not finish in {timeout} s:\n{log.read_text()[-4000:]}")
    return process.returncode, log.read_text()
