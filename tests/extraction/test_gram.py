"""lightning_interactions.extraction._gram: lattice-sum column products against the dense trigger matrix."""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import dense_triggers

from lightning_interactions.extraction import _gram
from lightning_interactions.extraction._gram import TriggerColumns, interval_sums, trigger_gram
from lightning_interactions.extraction._interval_terms import IntervalTerms, count_terms


@pytest.fixture(params=["interval_table", "inclusion_exclusion"])
def mixed_route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with each way of getting the mixed entries' interval sums."""
    share = 0.0 if request.param == "interval_table" else float("inf")
    monkeypatch.setattr(_gram, "TERMS_PER_TABLE_ENTRY", share)
    return request.param


def random_columns(n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sets = torch.randint(0, 2**n, (3, k), generator=generator)
    is_or = torch.rand(3, k, generator=generator) < 0.5
    sets[:, 0], is_or[:, 0] = 0, False  # the constant
    return sets, is_or & (sets != 0)


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_products_equal_dense_trigger_matrix(n: int, mixed_route: str) -> None:
    sets, is_or = random_columns(n, min(24, 2 ** (n + 1)), seed=n)
    dense = dense_triggers(n, sets, is_or)
    generator = torch.Generator().manual_seed(100 + n)
    weights = torch.rand(3, 2**n, generator=generator, dtype=torch.float64)
    x = torch.randn(3, sets.shape[1], generator=generator, dtype=torch.float64)
    columns = TriggerColumns(sets, is_or, n)
    expected_gram = torch.einsum("bti,bt,btj->bij", dense, weights, dense)
    assert (columns._plan._terms is None) == (mixed_route == "interval_table")
    torch.testing.assert_close(columns.gram(weights), expected_gram, rtol=0, atol=1e-12)
    torch.testing.assert_close(trigger_gram(weights, sets, is_or, n), expected_gram, rtol=0, atol=1e-12)
    torch.testing.assert_close(columns.matvec(x), torch.einsum("bti,bi->bt", dense, x), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        columns.rmatvec(weights), torch.einsum("bti,bt->bi", dense, weights), rtol=0, atol=1e-12
    )


def test_repeated_gram_products_reuse_buffers_correctly(mixed_route: str) -> None:
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


@pytest.mark.parametrize("n", [1, 3, 6])
def test_inclusion_exclusion_interval_sums_match_literal_intervals(n: int) -> None:
    # Every (A, B) pair of disjoint sets with B nonempty, on two batch rows with different weights.
    generator = torch.Generator().manual_seed(30 + n)
    weights = torch.rand(2, 2**n, generator=generator, dtype=torch.float64)
    pairs = [(b, a, o) for b in range(2) for a in range(2**n) for o in range(1, 2**n) if a & o == 0]
    rows, and_sets, or_sets = (torch.tensor(column) for column in zip(*pairs))
    stride = 2 * 2**n + 3
    table = torch.zeros(2, stride, dtype=torch.float64)
    for T in range(2**n):  # U and L by their definitions
        for S in range(2**n):
            if S & T == S:
                table[:, S] += weights[:, T]  # T is a superset of S
                table[:, 2**n + T] += weights[:, S]  # S is a subset of T
    terms = IntervalTerms(rows, and_sets, or_sets, n, stride)
    sums = torch.empty(len(pairs), dtype=torch.float64)
    sums[terms.order] = terms.sums(table)
    expected = torch.tensor(
        [sum(float(weights[b, T]) for T in range(2**n) if T & a == a and T & o == 0) for b, a, o in pairs],
        dtype=torch.float64,
    )
    torch.testing.assert_close(sums, expected, rtol=0, atol=1e-12)
    literal = sum(2 ** min(bin(a).count("1"), bin(o).count("1")) for _, a, o in pairs)
    assert count_terms(and_sets, or_sets, n) == literal == terms.index.numel()
