"""lightning_interactions.extraction._gram: lattice-sum column products against the dense trigger matrix."""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.extraction._gram import TriggerColumns, interval_sums, trigger_gram


def dense_triggers(n: int, sets: torch.Tensor, is_or: torch.Tensor) -> torch.Tensor:
    """Column j: 1[S_j subset of T] (AND) or 1[S_j meets T] (OR), by literal loops over masks."""
    batch, k = sets.shape
    out = torch.zeros(batch, 2**n, k, dtype=torch.float64)
    for b in range(batch):
        for j in range(k):
            S = int(sets[b, j])
            for T in range(2**n):
                out[b, T, j] = float(T & S != 0) if bool(is_or[b, j]) else float(T & S == S)
    return out


def random_columns(n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sets = torch.randint(0, 2**n, (3, k), generator=generator)
    is_or = torch.rand(3, k, generator=generator) < 0.5
    sets[:, 0], is_or[:, 0] = 0, False  # the constant
    return sets, is_or & (sets != 0)


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_products_equal_dense_trigger_matrix(n: int) -> None:
    sets, is_or = random_columns(n, min(24, 2 ** (n + 1)), seed=n)
    dense = dense_triggers(n, sets, is_or)
    generator = torch.Generator().manual_seed(100 + n)
    weights = torch.rand(3, 2**n, generator=generator, dtype=torch.float64)
    x = torch.randn(3, sets.shape[1], generator=generator, dtype=torch.float64)
    columns = TriggerColumns(sets, is_or, n)
    expected_gram = torch.einsum("bti,bt,btj->bij", dense, weights, dense)
    torch.testing.assert_close(columns.gram(weights), expected_gram, rtol=0, atol=1e-12)
    torch.testing.assert_close(trigger_gram(weights, sets, is_or, n), expected_gram, rtol=0, atol=1e-12)
    torch.testing.assert_close(columns.matvec(x), torch.einsum("bti,bi->bt", dense, x), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        columns.rmatvec(weights), torch.einsum("bti,bt->bi", dense, weights), rtol=0, atol=1e-12
    )


def test_repeated_gram_products_reuse_buffers_correctly() -> None:
    # The plan keeps its table and scratch buffers between interior-point steps; every call must
    # still see only its own weights, also after a change of dtype.
    n = 5
    sets, is_or = random_columns(n, 20, seed=7)
    dense = dense_triggers(n, sets, is_or)
    columns = TriggerColumns(sets, is_or, n)
    generator = torch.Generator().manual_seed(8)
    for dtype in (torch.float64, torch.float64, torch.float32, torch.float64):
        weights = torch.rand(3, 2**n, generator=generator, dtype=torch.float64)
        expected = torch.einsum("bti,bt,btj->bij", dense, weights, dense)
        gram = columns.gram(weights.to(dtype))
        assert gram.dtype == dtype
        tolerance = 1e-12 if dtype == torch.float64 else 1e-4
        torch.testing.assert_close(gram.double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("n", [0, 1, 2, 4, 5])
@pytest.mark.parametrize("into_slice", [False, True])
def test_interval_sums_match_literal_intervals(n: int, into_slice: bool) -> None:
    weights = torch.randn(3, 2**n, dtype=torch.float64)
    if into_slice:  # as the Gram plan does: a column block of a wider table, rows not contiguous
        wider = torch.full((3, 3**n + 5), float("nan"), dtype=torch.float64)
        table = interval_sums(weights, n, out=wider[:, 2 : 2 + 3**n])
        assert table.data_ptr() == wider[:, 2:].data_ptr()
        assert wider[:, :2].isnan().all() and wider[:, 2 + 3**n :].isnan().all()
    else:
        table = interval_sums(weights, n)
    for pattern in range(3**n):
        digits = [(pattern // 3**b) % 3 for b in range(n)]
        lower = sum(1 << b for b, d in enumerate(digits) if d == 1)
        upper = sum(1 << b for b, d in enumerate(digits) if d != 0)
        members = [T for T in range(2**n) if T & lower == lower and T | upper == upper]
        torch.testing.assert_close(table[:, pattern], weights[:, members].sum(dim=1), rtol=0, atol=1e-12)
