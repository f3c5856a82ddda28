"""The restricted problem's operators and Newton solves against its dense literal matrix ``G``.

``_Problem`` never builds ``G``: its products go through the lattice transforms and its Newton
solve eliminates ``t`` and ``e`` and shares one product with ``M'`` and one with ``M`` between
the right-hand side and ``G dy``. Here ``G`` is built from its definition (rows ``x - t``,
``-x - t``, ``M x - e``, ``-M x - e``, ``-e``) and every shortcut is checked against dense algebra.
"""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import dense_triggers

from lightning_interactions.extraction._gram import TriggerColumns
from lightning_interactions.extraction._interior_point import _max_step, newton_step
from lightning_interactions.extraction._master import _Problem


def restricted_problem(n: int, k: int, seed: int) -> tuple[_Problem, torch.Tensor]:
    """A batch of two restricted problems with ``k`` random columns and their dense ``G``s."""
    generator = torch.Generator().manual_seed(seed)
    m, batch = 2**n, 2
    sets = torch.randint(1, m, (batch, k), generator=generator)
    is_or = torch.rand(batch, k, generator=generator) < 0.5
    sets = torch.cat((torch.zeros(batch, 1, dtype=torch.long), sets), dim=1)  # the constant first
    is_or = torch.cat((torch.zeros(batch, 1, dtype=torch.bool), is_or), dim=1)
    v = torch.randn(batch, m, generator=generator, dtype=torch.float64)
    tau = torch.full((batch,), 0.1, dtype=torch.float64)
    penalty = torch.full((batch,), 16.0, dtype=torch.float64)
    costs = 1 + torch.rand(batch, k, generator=generator, dtype=torch.float64)
    problem = _Problem(TriggerColumns(sets, is_or, n), v, tau, penalty, costs)
    M = dense_triggers(n, sets, is_or)  # (batch, m, k + 1), literal loops
    eye_k, eye_m = torch.eye(k, dtype=torch.float64), torch.eye(m, dtype=torch.float64)
    zero_km, zero_mk = torch.zeros(k, m, dtype=torch.float64), torch.zeros(m, k, dtype=torch.float64)
    zero_k1, zero_m1 = torch.zeros(k, 1, dtype=torch.float64), torch.zeros(m, 1, dtype=torch.float64)
    dense = []
    for b in range(batch):
        rows = (
            (zero_k1, eye_k, -eye_k, zero_km),  # x_j - t_j <= 0 (the constant has no t)
            (zero_k1, -eye_k, -eye_k, zero_km),
            (M[b][:, :1], M[b][:, 1:], zero_mk, -eye_m),  # M x - e <= v + tau
            (-M[b][:, :1], -M[b][:, 1:], zero_mk, -eye_m),
            (zero_m1, zero_mk, zero_mk, -eye_m),  # -e <= 0
        )
        dense.append(torch.cat([torch.cat(row, dim=1) for row in rows]))
    return problem, torch.stack(dense)


@pytest.mark.parametrize(("n", "k"), [(3, 5), (4, 12)])
def test_products_and_newton_solves_equal_dense_algebra(n: int, k: int) -> None:
    problem, G = restricted_problem(n, k, seed=n + k)
    generator = torch.Generator().manual_seed(7)
    rows, columns = G.shape[1], G.shape[2]
    assert problem.h.shape[1] == rows and problem.c.shape[1] == columns

    def draw(size: int, positive: bool = False) -> torch.Tensor:
        if positive:
            return 0.1 + torch.rand(2, size, generator=generator, dtype=torch.float64)
        return torch.randn(2, size, generator=generator, dtype=torch.float64)

    y, z = draw(columns), draw(rows)
    torch.testing.assert_close(problem.apply(y), torch.einsum("bij,bj->bi", G, y), rtol=0, atol=1e-12)
    transposed = torch.einsum("bij,bi->bj", G, z)
    torch.testing.assert_close(problem.apply_transpose(z), transposed, rtol=0, atol=1e-12)

    d, r_dual, q, r = draw(rows, positive=True), draw(columns), draw(rows), draw(columns)
    problem.factor(d)
    dy, G_dy = problem.newton_solve(r_dual, q)
    solved = problem.solve(r)
    for b in range(2):
        H = G[b].T @ torch.diag(d[b]) @ G[b]
        expected = torch.linalg.solve(H, -r_dual[b] - G[b].T @ q[b])
        torch.testing.assert_close(dy[b], expected, rtol=1e-8, atol=1e-9)
        torch.testing.assert_close(G_dy[b], G[b] @ dy[b], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(solved[b], torch.linalg.solve(H, r[b]), rtol=1e-8, atol=1e-9)


def test_max_step_is_the_largest_step_that_keeps_values_nonnegative() -> None:
    generator = torch.Generator().manual_seed(3)
    values = 0.01 + torch.rand(4, 50, generator=generator, dtype=torch.float64)
    steps = torch.randn(4, 50, generator=generator, dtype=torch.float64)
    steps[3] = steps[3].abs()  # nothing decreases: no limit (1e30)
    alpha = _max_step(values, steps)
    for b in range(3):
        ratios = [-float(v) / float(s) for v, s in zip(values[b], steps[b]) if s < 0]
        assert float(alpha[b]) == pytest.approx(min(ratios), rel=1e-14)
    assert float(alpha[3]) == 1e30
    # The largest step really lands one value on zero and keeps every other one nonnegative.
    landed = values[:2] + alpha[:2, None] * steps[:2]
    assert bool((landed >= -1e-12).all()) and bool((landed.amin(dim=1).abs() <= 1e-12).all())


def test_newton_step_satisfies_the_three_newton_equations() -> None:
    # G' dz = -r_dual, G dy + ds = -r_primal, S dz + Z ds = -r_center, for the factorisation made
    # with d = z / s; the predictor passes z itself as r_center / s (r_center = s z).
    problem, G = restricted_problem(4, 9, seed=5)
    generator = torch.Generator().manual_seed(11)
    rows, columns = G.shape[1], G.shape[2]
    s = 0.1 + torch.rand(2, rows, generator=generator, dtype=torch.float64)
    z = 0.1 + torch.rand(2, rows, generator=generator, dtype=torch.float64)
    r_primal = torch.randn(2, rows, generator=generator, dtype=torch.float64)
    r_dual = torch.randn(2, columns, generator=generator, dtype=torch.float64)
    problem.factor(z / s)
    for r_center in (s * z, torch.randn(2, rows, generator=generator, dtype=torch.float64)):
        dy, ds, dz = newton_step(problem, z / s, r_primal, r_dual, r_center / s)
        for b in range(2):
            torch.testing.assert_close(G[b].T @ dz[b], -r_dual[b], rtol=1e-8, atol=1e-8)
            torch.testing.assert_close(G[b] @ dy[b] + ds[b], -r_primal[b], rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(s * dz + z * ds, -r_center, rtol=1e-10, atol=1e-10)
