"""The row-space (dual) route of the extraction against dense literal matrices and HiGHS."""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import (
    VECTOR_KINDS,
    dense_triggers,
    exact_optimum,
    planted_vectors,
    random_vectors,
    subset_sum_values,
)

from lightning_interactions.extraction import _column_generation as column_generation
from lightning_interactions.extraction import and_or
from lightning_interactions.extraction._row_space import _DualProblem
from lightning_interactions.extraction.and_or import and_or_interactions

pytest.importorskip("scipy")


def every_column(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All AND columns by mask, then all OR columns by mask (the layout of the dual's prices)."""
    sets = torch.arange(2**n).repeat(2)[None]
    is_or = (torch.arange(2 ** (n + 1)) >= 2**n)[None]
    return sets, is_or


@pytest.mark.parametrize("n", [1, 3, 5])
def test_dual_operators_and_newton_solve_equal_dense_matrices(n: int) -> None:
    m = 2**n
    generator = torch.Generator().manual_seed(n)
    v = torch.randn(2, m, generator=generator, dtype=torch.float64)
    costs = 1 + torch.rand(2, 2 * m, generator=generator, dtype=torch.float64)
    problem = _DualProblem(v, torch.full((2,), 0.1, dtype=torch.float64), costs)
    sets, is_or = every_column(n)
    C = dense_triggers(n, sets, is_or)[0]  # m x 2m, literal loops
    # G of the inequality form, acting on y = (mu, w).
    eye, zero = torch.eye(m, dtype=torch.float64), torch.zeros(2 * m, m, dtype=torch.float64)
    blocks = ((C.T, zero), (-C.T, zero), (eye, -eye), (-eye, -eye))
    G = torch.cat([torch.cat(pair, 1) for pair in blocks])
    mu = torch.randn(2, m, generator=generator, dtype=torch.float64)
    w = torch.rand(2, m, generator=generator, dtype=torch.float64)
    y = torch.cat((mu - mu.mean(1, keepdim=True), w), 1)
    z = torch.rand(2, G.shape[0], generator=generator, dtype=torch.float64)
    torch.testing.assert_close(problem.apply(y), y @ G.T, rtol=0, atol=1e-12)
    projector = torch.block_diag(eye - 1.0 / m, eye)  # sum mu = 0 holds on every direction
    torch.testing.assert_close(problem.apply_transpose(z), z @ G @ projector, rtol=0, atol=1e-12)
    # The Newton step solves G' D G dy = r on the subspace sum(d mu) = 0 (a bordered dense solve).
    d = torch.rand(2, G.shape[0], generator=generator, dtype=torch.float64) + 0.1
    r = torch.randn(2, 2 * m, generator=generator, dtype=torch.float64)
    problem.factor(d.clone())
    dy = problem.solve(r)
    # mehrotra's form of the same solve: right-hand side -r_dual - G' q, and G dy returned too.
    r_dual, q = -r, torch.randn(2, G.shape[0], generator=generator, dtype=torch.float64)
    newton_dy, G_dy = problem.newton_solve(r_dual, q)
    border = torch.cat((torch.ones(m), torch.zeros(m))).double()
    for b in range(2):
        H = G.T @ torch.diag(d[b]) @ G
        system = torch.zeros(2 * m + 1, 2 * m + 1, dtype=torch.float64)
        system[: 2 * m, : 2 * m], system[: 2 * m, -1], system[-1, : 2 * m] = H, border, border
        for rhs, solved in ((r[b], dy[b]), (-r_dual[b] - projector @ G.T @ q[b], newton_dy[b])):
            expected = torch.linalg.solve(system, torch.cat((rhs, torch.zeros(1, dtype=torch.float64))))
            torch.testing.assert_close(solved, expected[: 2 * m], rtol=1e-8, atol=1e-9)
        torch.testing.assert_close(G_dy[b], G @ newton_dy[b], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(VECTOR_KINDS))
@pytest.mark.parametrize("n", [4, 6, 8])
@pytest.mark.parametrize("row_space", [True, False])
def test_each_route_is_within_one_percent_of_exact_lp(kind: str, n: int, row_space: bool) -> None:
    values = VECTOR_KINDS[kind](n, seed=n)
    result = and_or_interactions(values, row_space=row_space)
    for i in range(values.shape[0]):
        optimum = exact_optimum(values[i].numpy(), float(result.tau[i]))
        assert float(result.lower_bound[i]) <= optimum * (1 + 1e-7) + 1e-9
        assert optimum * (1 - 1e-7) - 1e-9 <= float(result.objective[i]) <= 1.01 * optimum + 1e-9
        assert float(result.gap[i]) <= 0.01


def test_row_space_route_resolves_ties_to_the_lowest_orders() -> None:
    n = 6
    weights = {1 << i: w for i, w in enumerate([1.0, 0.8, -0.6, 1.2, 0.5, 0.9])}
    values = subset_sum_values(n, weights, {})
    result = and_or_interactions(values, row_space=True)
    higher = sum(
        abs(float(result.I_and[S])) + abs(float(result.I_or[S])) for S in range(2**n) if bin(S).count("1") > 1
    )
    assert higher <= 1e-3 * float(result.objective)


def test_default_route_sends_only_persistently_dense_samples_to_the_dual(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A random vector's optimum is dense (its pricings find more violated interactions than masks
    # round after round); a planted one with a little noise looks dense in its first two rounds
    # only (412 and 344 of 510 violated, then 137), like a trained network's sample at
    # n = 11 or 12. The dual route is chosen after DENSE_ROUNDS rounds of column generation, for
    # the dense sample only, and both results stay certified.
    n = 8  # at n = 6 column generation certifies a random vector in two rounds
    values = torch.cat((random_vectors(n, 1, seed=4), planted_vectors(n, 1, seed=2, noise=0.1)))
    dense_in_master, duals = [], []
    real_master, real_dual = column_generation.solve_master, and_or.solve_full_dual

    def master_spy(columns, v, *rest, **options):  # type: ignore[no-untyped-def]
        dense_in_master.append(any(torch.equal(row, values[0]) for row in v))
        return real_master(columns, v, *rest, **options)

    def dual_spy(v, *rest):  # type: ignore[no-untyped-def]
        duals.append(v.clone())
        return real_dual(v, *rest)

    monkeypatch.setattr(column_generation, "solve_master", master_spy)
    monkeypatch.setattr(and_or, "solve_full_dual", dual_spy)
    result = and_or.and_or_interactions(values)
    assert len(duals) == 1
    torch.testing.assert_close(duals[0], values[:1])
    rounds = and_or.DENSE_ROUNDS
    assert all(dense_in_master[:rounds]) and len(dense_in_master) >= rounds
    assert not any(dense_in_master[rounds:])
    assert bool((result.gap <= 0.01).all())
