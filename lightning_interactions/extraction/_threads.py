"""How many threads the extraction computes with, whatever the process's defaults are.

The extraction runs long chains of small operations: elementwise passes over vectors of a few
thousand entries, and products and Cholesky factorisations of matrices of tens to a few thousand
columns, one after the other. Two thread pools serve them: torch's (OpenMP, for torch's own
kernels) and the BLAS of SciPy and NumPy (OpenBLAS, for SciPy's Cholesky route). At their
defaults each pool takes every core, and a pool's idle threads keep spinning for a while after
each parallel region, waiting for the next, so two pools on the same cores slow each other
down, and the splitting of small operations costs more than it gains. The extraction therefore
runs with :data:`EXTRACTION_THREADS` threads in both pools and gives the caller's settings back
when it returns: training keeps its own (docs/extraction.md, "Threads", has the measurements).

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with extraction_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import torch

__all__ = ["EXTRACTION_THREADS", "extraction_threads", "with_extraction_threads"]

# Threads of each pool while the extraction runs; None leaves the process's settings as they are.
# One: the extraction's operations are too small to gain from splitting (docs/extraction.md).
EXTRACTION_THREADS: int | None = 1

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _blas_limits(count: int) -> contextlib.AbstractContextManager[Any]:
    """Limit the BLAS libraries loaded in the process (SciPy's, NumPy's) to ``count`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; kept optional for vendored installs
        return contextlib.nullcontext()
    return threadpool_limits(limits=count, user_api="blas")


@contextlib.contextmanager
def extraction_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads and ``count`` BLAS threads, then restore both.

    ``None`` changes nothing.
    """
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with _blas_limits(count):
            yield
    finally:
        torch.set_num_threads(before)


def with_extraction_threads(function: _Function) -> _Function:
    """Decorate ``function`` to run under :func:`extraction_threads` of :data:`EXTRACTION_THREADS`.

    The module's value is read at each call, so a benchmark can set it to compare settings.
    """

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        with extraction_threads(EXTRACTION_THREADS):
            return function(*args, **kwargs)

    return limited  # type: ignore[return-value]
