"""Rows of a batch that converged keep their factorisation; the others must not notice.

``mehrotra`` factors only the rows still moving once some have converged
(``_interior_point.refactor`` on restricted problems, the per-sample loop of the dual route).
Solving a batch of different problems together must give what solving each alone gives, on both
routes, and the partial factorisations must really happen.
"""

from __future__ import annotations

import pytest
import torch
from test_extraction import mlp_vectors, planted_vectors, random_vectors
from test_extraction_correctors import every_interaction

from lightning_interactions.extraction import _interior_point, _row_space
from lightning_interactions.extraction._interior_point import solve_master
from lightning_interactions.extraction._row_space import solve_full_dual


def mixed_batch(n: int) -> torch.Tensor:
    """Problems of different difficulty, so that they converge after different numbers of steps
    (at n = 8 with every interaction as a column, alone: 8, 11, 12, 13 and 13 steps)."""
    return torch.cat(
        (
            planted_vectors(n, 1, seed=2, noise=0.0),
            mlp_vectors(n, 1, seed=4),
            random_vectors(n, 1, seed=2),
            random_vectors(n, 1, seed=1),
            planted_vectors(n, 1, seed=2, noise=0.05),
        )
    )


def pending_rows_per_factorisation(monkeypatch: pytest.MonkeyPatch, owner: type) -> list[int]:
    """How many rows each partial factorisation of ``owner`` (a problem class) refactored."""
    pending: list[int] = []
    real = owner.factor

    def spy(self, d, rows=None):  # type: ignore[no-untyped-def]
        if rows is not None:
            pending.append(len(rows))
        return real(self, d, rows)

    monkeypatch.setattr(owner, "factor", spy)
    return pending


def assert_partial_factorisations_happened(pending: list[int], batch: int) -> None:
    # Several steps with some rows converged and more than one still moving: a row left with a
    # stale factor would then change the result.
    assert len(pending) >= 3 and max(pending) >= 2 and max(pending) < batch


def test_restricted_problems_solved_together_equal_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # The optimum is a face (tied optima), so rounding differences between a batched and a single
    # factorisation move x along it; the objective is what must agree.
    pending = pending_rows_per_factorisation(monkeypatch, _interior_point._Problem)
    n = 8
    values = mixed_batch(n)
    batch = values.shape[0]
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    penalty = torch.full_like(tau, 16.0)
    together = solve_master(every_interaction(n, batch), values, tau, penalty)
    assert_partial_factorisations_happened(pending, batch)
    for row in range(batch):
        one = slice(row, row + 1)
        alone = solve_master(every_interaction(n, 1), values[one], tau[one], penalty[one])
        objective = float(alone.x[0, 1:].abs().sum())
        assert float(together.x[row, 1:].abs().sum()) == pytest.approx(objective, rel=1e-7)


def test_full_duals_solved_together_equal_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    pending = pending_rows_per_factorisation(monkeypatch, _row_space._DualProblem)
    n = 6
    values = mixed_batch(n)
    batch = values.shape[0]
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    costs = torch.ones(batch, 2 ** (n + 1), dtype=torch.float64)
    together = solve_full_dual(values, tau, costs)
    assert_partial_factorisations_happened(pending, batch)
    for row in range(batch):
        alone = solve_full_dual(values[row : row + 1], tau[row : row + 1], costs[row : row + 1])
        objective = float(alone.both[0].abs().sum())
        assert float(together.both[row].abs().sum()) == pytest.approx(objective, rel=1e-7)


def _positive(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 + torch.rand(shape, generator=generator, dtype=torch.float64)


def _problems(n: int, batch: int) -> dict[str, tuple]:
    values = mixed_batch(n)[:batch]
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    master = lambda: _interior_point._Problem(  # noqa: E731
        every_interaction(n, batch),
        values,
        tau,
        torch.full_like(tau, 16.0),
        torch.ones(batch, 2 ** (n + 1) - 2, dtype=torch.float64),
    )
    dual = lambda: _row_space._DualProblem(values, tau, torch.ones(batch, 2 ** (n + 1), dtype=torch.float64))  # noqa: E731
    return {"master": master, "dual": dual}


@pytest.mark.parametrize("kind", ["master", "dual"])
def test_partial_factorisation_refactors_exactly_the_given_rows(kind: str) -> None:
    # The contract of factor(d, rows): the given rows solve with the new d exactly as a problem
    # factored with that d alone would (the other rows' solves are not used by mehrotra).
    make = _problems(5, 4)[kind]
    partial, new = make(), make()
    size = partial.h.shape[1]
    first, second = _positive((4, size), seed=1), _positive((4, size), seed=2)
    rhs = torch.randn(4, partial.c.shape[1], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    partial.factor(first)
    partial.factor(second, torch.tensor([1, 3]))
    new.factor(second)
    solved, reference = partial.solve(rhs), new.solve(rhs)
    torch.testing.assert_close(solved[[1, 3]], reference[[1, 3]], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(solved[[0, 2]], reference[[0, 2]])  # those rows kept the first factor
