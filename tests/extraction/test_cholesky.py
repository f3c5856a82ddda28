"""The interior point's Cholesky factors, through SciPy's LAPACK and through torch alike.

``_cholesky`` leaves the other triangle of each factor as it finds it (the input's entries on
the LAPACK path), so what matters is that the lower triangles are the factors and that the
triangular solves the interior point makes read nothing else.
"""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.extraction import _cholesky
from lightning_interactions.extraction._cholesky import cholesky_factors, cholesky_into
from lightning_interactions.extraction._interior_point import cholesky_solve

pytest.importorskip("scipy")


@pytest.fixture(params=["lapack", "torch"])
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once through SciPy's dpotrf and once without SciPy."""
    if request.param == "torch":
        monkeypatch.setattr(_cholesky, "_dpotrf", None)
    return request.param


def spd_batch(batch: int, k: int, seed: int) -> torch.Tensor:
    a = torch.randn(batch, k, 2 * k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.mT / k


@pytest.mark.parametrize("k", [1, 7, 130])
def test_factors_and_solves_equal_dense_algebra(route: str, k: int) -> None:
    matrices = spd_batch(3, k, seed=k)
    factors = cholesky_factors(matrices)
    lower = factors.tril()
    torch.testing.assert_close(lower @ lower.mT, matrices, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lower, torch.linalg.cholesky(matrices), rtol=1e-10, atol=1e-12)
    if route == "lapack" and k > 1:  # the other triangle was left holding the input's entries
        assert not torch.equal(factors, lower)
    rhs = torch.randn(3, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.linalg.solve(matrices, rhs.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(cholesky_solve(factors, rhs), expected, rtol=1e-9, atol=1e-10)


def test_refactoring_some_rows_keeps_the_others(route: str) -> None:
    first, second = spd_batch(4, 20, seed=1), spd_batch(4, 20, seed=2)
    previous = cholesky_factors(first)
    kept_rows = previous[[0, 2]].tril().clone()
    factors = cholesky_factors(second, torch.tensor([1, 3]), previous)
    lower = factors.tril()
    torch.testing.assert_close(lower[[1, 3]] @ lower[[1, 3]].mT, second[[1, 3]], rtol=1e-12, atol=1e-12)
    assert torch.equal(lower[[0, 2]], kept_rows)


def test_single_factor_into_a_kept_buffer(route: str) -> None:
    matrix = spd_batch(1, 33, seed=4)[0]
    buffer = torch.full((33, 33), float("nan"), dtype=torch.float64)
    factor = cholesky_into(buffer, matrix)
    assert factor.data_ptr() == buffer.data_ptr()  # written in place, no new factor tensor
    torch.testing.assert_close(factor.tril() @ factor.tril().mT, matrix, rtol=1e-12, atol=1e-12)


def test_a_matrix_that_is_not_positive_definite_raises(route: str) -> None:
    matrix = torch.eye(5, dtype=torch.float64)
    matrix[3, 3] = -1.0
    with pytest.raises(torch.linalg.LinAlgError):
        cholesky_factors(matrix[None])


def test_factoring_every_row_again_reuses_the_buffer(route: str) -> None:
    first, second = spd_batch(2, 12, seed=5), spd_batch(2, 12, seed=6)
    previous = cholesky_factors(first)
    factors = cholesky_factors(second, None, previous)
    assert factors.data_ptr() == previous.data_ptr()
    torch.testing.assert_close(factors.tril() @ factors.tril().mT, second, rtol=1e-12, atol=1e-12)
    # A previous result of another shape is not reused, and every row is factored.
    third = spd_batch(3, 12, seed=7)
    other = cholesky_factors(third, torch.tensor([1]), previous)
    torch.testing.assert_close(other.tril() @ other.tril().mT, third, rtol=1e-12, atol=1e-12)
