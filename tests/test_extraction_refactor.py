"""Rows of a batch that converged keep their factorisation; the others must not notice.

``mehrotra`` factors only the rows still moving once some have converged
(``_interior_point.refactor``). Solving a batch of different problems together must give what
solving each alone gives, on both routes, and the partial refactorisation must really happen.
"""

from __future__ import annotations

import pytest
import torch
from test_extraction import mlp_vectors, planted_vectors, random_vectors

from lightning_interactions.extraction import _interior_point, _row_space
from lightning_interactions.extraction._gram import TriggerColumns
from lightning_interactions.extraction._interior_point import solve_master
from lightning_interactions.extraction._row_space import solve_full_dual

N = 6


def mixed_batch() -> torch.Tensor:
    """Problems of different difficulty, so that they converge after different numbers of steps."""
    return torch.cat(
        (random_vectors(N, 1, seed=1), planted_vectors(N, 1, seed=2, noise=0.0), mlp_vectors(N, 1, seed=3))
    )


def count_partial_refactors(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = _interior_point.refactor

    def spy(previous, matrices, rows):  # type: ignore[no-untyped-def]
        calls[0] += int(rows is not None and previous is not None and len(rows) < matrices.shape[0])
        return real(previous, matrices, rows)

    monkeypatch.setattr(_interior_point, "refactor", spy)
    monkeypatch.setattr(_row_space, "refactor", spy)
    return calls


def first_columns(batch: int) -> TriggerColumns:
    """The constant and the first 20 AND and OR sets, the same for every row."""
    sets = torch.cat((torch.zeros(1, dtype=torch.long), torch.arange(1, 21), torch.arange(1, 21)))
    is_or = torch.cat((torch.zeros(21, dtype=torch.bool), torch.ones(20, dtype=torch.bool)))
    return TriggerColumns(sets.expand(batch, -1).contiguous(), is_or.expand(batch, -1).contiguous(), N)


def test_restricted_problems_solved_together_equal_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = count_partial_refactors(monkeypatch)
    values = mixed_batch()
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    penalty = torch.full_like(tau, 16.0)
    together = solve_master(first_columns(3), values, tau, penalty)
    assert partial[0] > 0
    for row in range(3):
        alone = solve_master(
            first_columns(1), values[row : row + 1], tau[row : row + 1], penalty[row : row + 1]
        )
        torch.testing.assert_close(together.x[row], alone.x[0], rtol=0, atol=1e-9)
        torch.testing.assert_close(together.mu[row], alone.mu[0], rtol=0, atol=1e-9)


def test_full_duals_solved_together_equal_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = count_partial_refactors(monkeypatch)
    values = mixed_batch()
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    costs = torch.ones(3, 2 ** (N + 1), dtype=torch.float64)
    together = solve_full_dual(values, tau, costs)
    assert partial[0] > 0
    for row in range(3):
        alone = solve_full_dual(values[row : row + 1], tau[row : row + 1], costs[row : row + 1])
        torch.testing.assert_close(together.both[row], alone.both[0], rtol=0, atol=1e-9)
