"""Fixtures of the figure tests: a synthetic monitored run (``helpers.report_history``)."""

from __future__ import annotations

import pytest
from helpers.report_history import make_history, make_predicted_shapes, make_replay_fits, tracker_epochs


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


@pytest.fixture(scope="module")
def epochs() -> tuple[int, int]:
    return tracker_epochs()


@pytest.fixture(scope="module")
def replay_fits():
    return make_replay_fits()


@pytest.fixture(scope="module")
def predicted_shapes(replay_fits) -> dict[int, list[float]]:
    return make_predicted_shapes(replay_fits)
