"""Batched Cholesky factors for the interior point's Newton matrices, through LAPACK on the CPU.

On the CPU ``torch.linalg.cholesky`` copies the lower triangle of its input into a column-major
buffer before LAPACK's ``potrf`` runs on it, with a loop that walks that buffer against its
memory order, which can cost half of the factorisation (docs/extraction.md, "Cost", has the
measurement).
Where SciPy is installed, CPU float64 matrices therefore go to SciPy's ``dpotrf`` instead,
in place in a buffer this module keeps, with no clean-up of the other triangle: the factors are
only ever used by triangular solves, which read one triangle. Elsewhere (no SciPy, another
device or dtype) this is ``torch.linalg.cholesky``. Both give the same factor up to rounding.

SciPy's LAPACK runs on its own BLAS threads, not on torch's; the extraction sets both
(:mod:`._threads`).

Example:
    >>> import torch
    >>> a = torch.randn(3, 5, 8, dtype=torch.float64)
    >>> matrices = a @ a.mT
    >>> factors = cholesky_factors(matrices)
    >>> lower = factors.tril()  # only the lower triangles are the factors
    >>> torch.allclose(lower @ lower.mT, matrices)
    True
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_interactions.extraction._buffers import kept

try:  # an optional accelerator: the package does not depend on SciPy
    from scipy.linalg.lapack import dpotrf as _dpotrf
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _dpotrf = None

__all__ = ["cholesky_factors", "cholesky_into"]


def _through_lapack(matrices: torch.Tensor) -> bool:
    return _dpotrf is not None and matrices.device.type == "cpu" and matrices.dtype == torch.float64


def cholesky_into(buffer: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Factor one symmetric positive definite ``k x k`` ``matrix`` into the C-contiguous ``k x k``
    ``buffer`` and return the factor, ``buffer.mT`` (column-major; only its lower triangle is the
    factor)."""
    factor_view = buffer.mT
    if not _through_lapack(matrix):
        torch.linalg.cholesky(matrix, out=factor_view)
        return factor_view
    buffer.copy_(matrix)
    column_major = buffer.numpy().T  # the same memory in Fortran order: what LAPACK works in
    factor, info = _dpotrf(column_major, lower=1, clean=0, overwrite_a=1)
    if info > 0:
        raise torch.linalg.LinAlgError(
            f"cholesky_into: the leading minor of order {info} is not positive-definite"
        )
    if info < 0:
        raise RuntimeError(f"LAPACK dpotrf rejected argument {-info}")
    if not np.shares_memory(factor, column_major):  # SciPy copied after all: take its result
        column_major[...] = factor
    return factor_view


def cholesky_factors(
    matrices: torch.Tensor, rows: torch.Tensor | None = None, previous: torch.Tensor | None = None
) -> torch.Tensor:
    """Lower Cholesky factors of a batch of symmetric positive definite ``(batch, k, k)`` matrices.

    Only the lower triangle of each returned ``k x k`` factor is defined (pass it to triangular
    solves, or take ``.tril()``). With ``rows`` (batch indices) and the ``previous`` result of
    this function for matrices of the same shape, only those rows are factored again, in
    ``previous``'s memory, and the others keep their factors; without ``rows``, every row is
    factored into ``previous``'s memory where it has the shape (the earlier factors are then
    gone).
    """
    # Each factor lives transposed in a C-contiguous (batch, k, k) buffer: the returned view
    # (buffer.mT) is then column-major, the layout LAPACK and torch both factor in. The buffer
    # is kept from step to step, rather than allocated (and faulted in) afresh at every step.
    buffer = kept(None if previous is None else previous.mT, matrices.shape, matrices)
    again = rows is not None and previous is not None and buffer.data_ptr() == previous.data_ptr()
    if _through_lapack(matrices):
        for row in rows.tolist() if again else range(matrices.shape[0]):
            cholesky_into(buffer[row], matrices[row])
    elif again:
        buffer[rows] = torch.linalg.cholesky(matrices[rows]).mT
    else:
        torch.linalg.cholesky(matrices, out=buffer.mT)
    return buffer.mT
