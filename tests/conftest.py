"""Fixtures every test folder may use: the torch thread count, set for one test and restored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


def _threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The test runs with one torch thread (its timings and results do not depend on the machine)."""
    yield from _threads(1)


@pytest.fixture
def two_threads() -> Iterator[None]:
    """The test runs with two torch threads (as the machine's defaults would, on two cores)."""
    yield from _threads(2)
