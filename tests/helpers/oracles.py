"""Reference solvers for validation and benchmarks: the extraction LP solved exactly by HiGHS.

Needs scipy (in the ``dev`` extras). This builds the ``2^n x 2^n`` transform matrices, which is
what the fast engine avoids; it is meant for checking results up to ``n`` of about 10.

Example:
    >>> import torch
    >>> v = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)  # an AND of two players
    >>> round(exact_extraction_optimum(v, tau=0.0), 6)
    1.0
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_interactions.extraction.transforms import and_interactions, num_players_of, or_interactions

__all__ = ["transform_matrix", "exact_extraction_optimum"]


def transform_matrix(transform, n: int) -> np.ndarray:
    """The dense ``2^n x 2^n`` matrix of a linear transform on values over masks."""
    identity = torch.eye(2**n, dtype=torch.float64)
    return transform(identity).T.numpy()


def exact_extraction_optimum(
    v: torch.Tensor | np.ndarray,
    tau: float,
    and_matrix: np.ndarray | None = None,
    or_matrix: np.ndarray | None = None,
) -> float:
    """Optimum of theory.md's extraction LP for one vector ``v`` of ``2^n`` values, by HiGHS.

    Variables ``g`` (free), ``q`` (``|q| <= tau``), ``t_and, t_or >= 0``; minimise the sum of ``t``
    over nonempty sets subject to ``-t <= I(g, q) <= t`` for both families, where
    ``I_and = A (v/2 + q/2 + g)`` and ``I_or = B (v/2 + q/2 - g)``. ``and_matrix`` and
    ``or_matrix`` default to the matrices of this package's transforms; tests pass matrices
    built from the literal definitions instead.
    """
    from scipy import optimize, sparse

    values = torch.as_tensor(v, dtype=torch.float64).numpy()
    n = num_players_of(torch.as_tensor(values))
    size = 2**n
    A = sparse.csr_matrix(and_matrix if and_matrix is not None else transform_matrix(and_interactions, n))[1:]
    B = sparse.csr_matrix(or_matrix if or_matrix is not None else transform_matrix(or_interactions, n))[1:]
    const_and, const_or = A @ (values / 2), B @ (values / 2)
    eye = sparse.identity(size - 1)
    zero = sparse.csr_matrix((size - 1, size - 1))
    rows = sparse.vstack(
        [
            sparse.hstack([A, A / 2, -eye, zero]),
            sparse.hstack([-A, -A / 2, -eye, zero]),
            sparse.hstack([-B, B / 2, zero, -eye]),
            sparse.hstack([B, -B / 2, zero, -eye]),
        ]
    ).tocsc()
    rhs = np.concatenate([-const_and, const_and, -const_or, const_or])
    cost = np.concatenate([np.zeros(2 * size), np.ones(2 * (size - 1))])
    bounds = [(None, None)] * size + [(-tau, tau)] * size + [(0, None)] * (2 * (size - 1))
    solved = optimize.linprog(cost, A_ub=rows, b_ub=rhs, bounds=bounds, method="highs")
    if solved.status != 0:
        raise RuntimeError(f"HiGHS did not solve the extraction LP: {solved.message}")
    return float(solved.fun)
