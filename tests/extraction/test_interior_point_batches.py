"""The interior point on a batch (extraction/_interior_point.py): rows that converged keep their
factorisation, and the others must not notice.

Once some rows of a batch have converged, ``_interior_point.mehrotra`` calls
``problem.factor(d, rows)`` with the rows still moving only. On the restricted problems
(``_master._Problem.factor``) those rows are factored again through
``_cholesky.cholesky_factors(matrices, rows, previous)``; on the dual route
(``_row_space._DualProblem.factor``) in a per-sample loop through ``_cholesky.cholesky_into``.
Solving a batch of different problems together must give what solving each alone gives, on both
routes, and the partial factorisations must really happen.
"""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import every_interaction, mlp_vectors, planted_vectors, random_vectors

from lightning_interactions.extraction import _master, _row_space
from lightning_interactions.extraction._master import solve_master
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


# Each route's problem class and the players its batch-against-alone test uses (n = 8 with every
# interaction as a column spreads the master's convergence over 8 to 13 steps).
ROUTES = {"master": (_master._Problem, 8), "dual": (_row_space._DualProblem, 6)}


def objectives(kind: str, values: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Each row's L1 objective, solved by ``kind``'s route as one batch."""
    batch, n = values.shape[0], values.shape[1].bit_length() - 1
    if kind == "master":
        solution = solve_master(every_interaction(n, batch), values, tau, torch.full_like(tau, 16.0))
        return solution.x[:, 1:].abs().sum(dim=1)
    costs = torch.ones(batch, 2 ** (n + 1), dtype=torch.float64)
    return solve_full_dual(values, tau, costs).both.abs().sum(dim=1)


def make_problem(kind: str, values: torch.Tensor, tau: torch.Tensor) -> object:
    """A fresh ``kind`` problem (the class whose ``factor`` the route calls) for these rows."""
    batch, n = values.shape[0], values.shape[1].bit_length() - 1
    if kind == "master":
        costs = torch.ones(batch, 2 ** (n + 1) - 2, dtype=torch.float64)
        penalty = torch.full_like(tau, 16.0)
        return _master._Problem(every_interaction(n, batch), values, tau, penalty, costs)
    return _row_space._DualProblem(values, tau, torch.ones(batch, 2 ** (n + 1), dtype=torch.float64))


def box(values: torch.Tensor) -> torch.Tensor:
    return 0.04 * (values[:, -1] - values[:, 0]).abs()


@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_batch_solved_together_equals_each_row_alone(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The optimum is a face (tied optima), so rounding differences between a batched and a single
    # factorisation move the solution along it; the objective is what must agree.
    owner, n = ROUTES[kind]
    pending = pending_rows_per_factorisation(monkeypatch, owner)
    values = mixed_batch(n)
    tau = box(values)
    together = objectives(kind, values, tau)
    assert_partial_factorisations_happened(pending, values.shape[0])
    for row in range(values.shape[0]):
        alone = objectives(kind, values[row : row + 1], tau[row : row + 1])
        assert float(together[row]) == pytest.approx(float(alone[0]), rel=1e-7)


def _positive(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 + torch.rand(shape, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_partial_factorisation_refactors_exactly_the_given_rows(kind: str) -> None:
    # The contract of factor(d, rows): the given rows solve with the new d exactly as a problem
    # factored with that d alone would (the other rows' solves are not used by mehrotra).
    values = mixed_batch(5)[:4]
    partial, new = make_problem(kind, values, box(values)), make_problem(kind, values, box(values))
    size = partial.h.shape[1]
    first, second = _positive((4, size), seed=1), _positive((4, size), seed=2)
    rhs = torch.randn(4, partial.c.shape[1], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    partial.factor(first)
    partial.factor(second, torch.tensor([1, 3]))
    new.factor(second)
    solved, reference = partial.solve(rhs), new.solve(rhs)
    torch.testing.assert_close(solved[[1, 3]], reference[[1, 3]], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(solved[[0, 2]], reference[[0, 2]])  # those rows kept the first factor
