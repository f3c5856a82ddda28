"""The extraction computes on its own thread counts and gives the caller's back, also when it fails."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

import lightning_interactions.extraction._threads as threads
from lightning_interactions.extraction.and_or import and_or_interactions


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def values(n: int = 4) -> torch.Tensor:
    return torch.randn(3, 2**n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_the_extraction_runs_on_one_thread_and_restores_the_callers(two_threads) -> None:
    pytest.importorskip("scipy")  # loads SciPy's BLAS, so that there is a BLAS pool to watch
    import scipy.linalg  # noqa: F401

    blas_before = blas_threads()
    seen: list[tuple[int, list[int]]] = []
    and_or_interactions(values(), progress=lambda *_: seen.append((torch.get_num_threads(), blas_threads())))
    assert seen and all(count == 1 and set(blas) == {1} for count, blas in seen)
    assert torch.get_num_threads() == 2 and blas_threads() == blas_before


def test_the_callers_threads_come_back_after_a_failure(two_threads) -> None:
    with pytest.raises(ValueError):
        and_or_interactions(torch.randn(3, 7, dtype=torch.float64))  # not 2^n values
    assert torch.get_num_threads() == 2


def test_none_leaves_the_process_settings(two_threads, monkeypatch) -> None:
    monkeypatch.setattr(threads, "EXTRACTION_THREADS", None)
    seen: list[int] = []
    and_or_interactions(values(), progress=lambda *_: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {2}
