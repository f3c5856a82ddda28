"""The restricted extraction LP ("master problem") of column generation, in the interior point's form.

Each batch row is one problem of the form (docs/extraction.md, "The problem", restricted to a few columns)

    minimise   sum_{j >= 1} c_j |x_j|
    subject to |M x - v| <= tau   (elementwise over the m rows of M)

where column 0 of ``M`` is the constant (free, unpenalised). It is written in inequality form
``min c'y s.t. G y <= h`` with ``y = (x, t, e)``, ``|x_j| <= t_j`` and elastic slacks ``e``
(:class:`_Problem`), and solved by :func:`._interior_point.mehrotra`. The Newton systems reduce to
one ``(k+1) x (k+1)`` Cholesky solve per problem. ``M`` is only touched through a
:class:`Columns` operator (products with ``M``, ``M'`` and ``M' diag(w) M``), so the extraction
can supply fast lattice-sum versions of them (:mod:`._gram`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from lightning_interactions.extraction._cholesky import cholesky_factors
from lightning_interactions.extraction._interior_point import cholesky_solve, mehrotra

__all__ = ["MASTER_TOL", "Columns", "MasterSolution", "solve_master", "polish_master"]

# Centrality correctors per step of a restricted problem with at least this many columns (below
# it the factorisation is cheap and the extra solves cost more than the steps they save).
MASTER_CORRECTORS = 2
CORRECTORS_FROM_COLUMNS = 400
# Relative duality gap and residuals at which a restricted problem counts as solved: far below the
# extraction's certified gap (1e-2 by default), so that the restricted optima are exact for it.
MASTER_TOL = 1e-7
# A cap on the steps of one solve, well above what a restricted problem takes (24 to 26 in the
# hardest rounds measured, docs/extraction.md); a row still moving at the cap keeps its point.
MASTER_MAX_STEPS = 60


class Columns(Protocol):
    """A batch of ``m x (k + 1)`` column matrices ``M``, known only through products."""

    num_rows: int
    num_columns: int  # k + 1, the constant included

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``M x``: ``(batch, k + 1)`` to ``(batch, m)``."""
        ...

    def rmatvec(self, z: torch.Tensor) -> torch.Tensor:
        """``M' z``: ``(batch, m)`` to ``(batch, k + 1)``."""
        ...

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        """``M' diag(weights) M``: ``(batch, m)`` to ``(batch, k + 1, k + 1)``."""
        ...

    def select(self, rows: torch.Tensor) -> Columns:
        """The same columns for the batch rows ``rows`` (indices) only."""
        ...


@dataclass
class MasterSolution:
    """Solution of a batch of restricted LPs: coefficients ``x`` and row multipliers ``mu``."""

    x: torch.Tensor  # (batch, k + 1), column 0 is the constant
    mu: torch.Tensor  # (batch, m): z_upper - z_lower, the dual of the box rows
    iterations: int
    resumable: _Resumable | None = None  # for polish_master


class _Problem:
    """The constraint operator ``G`` of the inequality form and its Newton systems.

    Variables ``y = (x, t, e)``: coefficients (column 0 the constant), epigraph ``|x_j| <= t_j``,
    and elastic slacks ``e >= 0`` that widen the box at cost ``penalty`` each, so that a
    restricted problem whose few columns cannot fit ``v`` is still feasible. Rows of ``G``:
    ``x - t <= 0``, ``-x - t <= 0``, ``M x - e <= v + tau``, ``-M x - e <= tau - v``, ``-e <= 0``.
    """

    def __init__(
        self, M: Columns, v: torch.Tensor, tau: torch.Tensor, penalty: torch.Tensor, costs: torch.Tensor
    ) -> None:
        self.M = M
        self._chol: torch.Tensor | None = None
        self.k = M.num_columns - 1
        self.m = M.num_rows
        batch = v.shape[0]
        zeros_k, zeros_m = v.new_zeros(batch, self.k), v.new_zeros(batch, self.m)
        tau = tau[:, None]
        self.h = torch.cat((zeros_k, zeros_k, v + tau, tau - v, zeros_m), dim=1)
        self.c = torch.cat(
            (
                v.new_zeros(batch, self.k + 1),
                costs,
                penalty[:, None].expand(batch, self.m),
            ),
            dim=1,
        )

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(z.split([self.k, self.k, self.m, self.m, self.m], dim=1))

    def split_y(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(y.split([self.k + 1, self.k, self.m], dim=1))

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        x, t, e = self.split_y(y)
        return self._stack_rows(x[:, 1:], t, self.M.matvec(x), e)

    def _stack_rows(
        self, x: torch.Tensor, t: torch.Tensor, Mx: torch.Tensor, e: torch.Tensor
    ) -> torch.Tensor:
        """``G y`` from its parts (``x`` without the constant): written into one tensor, since
        these vectors are the interior point's largest and a concatenation copies them again."""
        out = e.new_empty(e.shape[0], 2 * self.k + 3 * self.m)
        upper, lower, box_upper, box_lower, elastic = self.split(out)
        torch.sub(x, t, out=upper)
        torch.add(x, t, out=lower).neg_()
        torch.sub(Mx, e, out=box_upper)
        torch.add(Mx, e, out=box_lower).neg_()
        torch.neg(e, out=elastic)
        return out

    def apply_transpose(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2, z3, z4, z5 = self.split(z)
        x_part = self.M.rmatvec(z3 - z4)
        x_part[:, 1:] += z1 - z2
        e_part = torch.add(z3, z4).add_(z5).neg_()
        return torch.cat((x_part, -z1 - z2, e_part), dim=1)

    def factor(self, d: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Factor ``G' diag(d) G`` with ``t`` and ``e`` eliminated (both enter diagonally)."""
        d1, d2, d3, d4, d5 = self.split(d)
        # What the solves need of d: the inverse diagonals of t and e and their couplings to x.
        self._t_inverse = 1.0 / (d1 + d2)
        self._t_coupling = (d2 - d1) * self._t_inverse
        self._e_inverse = 1.0 / (d3 + d4 + d5)
        self._e_coupling = (d4 - d3) * self._e_inverse
        # d3 + d4 - (d4 - d3)^2 / (d3 + d4 + d5), written without the cancellation.
        row_weight = (4 * d3 * d4 + (d3 + d4) * d5) * self._e_inverse
        H = self.M.gram(row_weight)
        diag = H.diagonal(dim1=1, dim2=2)
        diag[:, 1:] += 4 * d1 * d2 * self._t_inverse
        # A relative jitter keeps the factorisation alive when the active set is degenerate.
        diag += 1e-13 * diag.abs().amax(dim=1, keepdim=True)
        self._chol = cholesky_factors(H, rows, self._chol)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        """Solve ``G' diag(d) G dy = r`` for the ``d`` given to :meth:`factor`."""
        r_x, r_t, r_e = self.split_y(r)
        x_rhs = r_x - self.M.rmatvec(self._e_coupling * r_e)
        x_rhs[:, 1:] -= self._t_coupling * r_t
        return self._back_substitute(x_rhs, r_t, r_e)[0]

    def newton_solve(self, r_dual: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`solve` of ``-r_dual - G' q``, then ``G dy``, with one product by ``M'`` and one
        by ``M`` (the right-hand side's ``G' q`` and the elimination of ``e`` share the first,
        ``de`` and ``G dy`` the second)."""
        q1, q2, q3, q4, q5 = self.split(q)
        rd_x, rd_t, rd_e = self.split_y(r_dual)
        r_t = (q1 + q2).sub_(rd_t)
        r_e = torch.add(q3, q4).add_(q5).sub_(rd_e)
        x_rhs = self.M.rmatvec(torch.addcmul(q3 - q4, self._e_coupling, r_e)).add_(rd_x).neg_()
        x_rhs[:, 1:] -= torch.addcmul(q1 - q2, self._t_coupling, r_t)
        return self._back_substitute(x_rhs, r_t, r_e)

    def _back_substitute(
        self, x_rhs: torch.Tensor, r_t: torch.Tensor, r_e: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``dy`` from the reduced system's right-hand side ``x_rhs`` and the eliminated rows'
        ``r_t``, ``r_e``; and ``G dy``."""
        dx = cholesky_solve(self._chol, x_rhs)
        dt = torch.mul(r_t, self._t_inverse).addcmul_(self._t_coupling, dx[:, 1:], value=-1.0)
        Mdx = self.M.matvec(dx)
        de = torch.mul(r_e, self._e_inverse).addcmul_(self._e_coupling, Mdx, value=-1.0)
        return torch.cat((dx, dt, de), dim=1), self._stack_rows(dx[:, 1:], dt, Mdx, de)


def solve_master(
    M: Columns,
    v: torch.Tensor,
    tau: torch.Tensor,
    penalty: torch.Tensor,
    costs: torch.Tensor | None = None,
    tol: float = MASTER_TOL,
    max_iter: int = MASTER_MAX_STEPS,
    gap_tol: torch.Tensor | None = None,
) -> MasterSolution:
    """Solve ``min sum_{j>=1} c_j |x_j| + penalty * sum_T e_T s.t. |M x - v| <= tau + e, e >= 0``.

    ``M`` holds ``(batch, m, k + 1)`` columns, the constant first, ``v`` is ``(batch, m)``, ``tau``
    and ``penalty`` are ``(batch,)`` and positive. With ``penalty`` above the largest optimal row
    multiplier the elastic slacks vanish and this is the restricted extraction LP. ``costs``
    ``c_j`` is ``(batch, k)``, all ones by default. ``gap_tol`` (``(batch,)``, default ``tol``)
    stops a row at that relative duality gap while still asking ``tol`` of its residuals: a
    loosely solved row's ``x`` is feasible and its ``mu`` a valid dual point, and
    :func:`polish_master` takes chosen rows on to ``tol``. Works in the dtype and on the device
    of ``v``.
    """
    if costs is None:
        costs = v.new_ones(v.shape[0], M.num_columns - 1)
    problem = _Problem(M, v, tau, penalty, costs)
    # Correctors pay for their extra solves once the (k+1) x (k+1) factorisation dominates.
    correctors = MASTER_CORRECTORS if M.num_columns >= CORRECTORS_FROM_COLUMNS else 0
    y, s, z, iterations = mehrotra(problem, tol, max_iter, correctors, gap_tol)
    x, mu = _coefficients_and_multipliers(problem, y, z)
    resumable = _Resumable(M, v, tau, penalty, costs, tol, max_iter, correctors, (y, s, z))
    return MasterSolution(x=x, mu=mu, iterations=iterations, resumable=resumable)


def _coefficients_and_multipliers(
    problem: _Problem, y: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (the constant first) and the box rows' multipliers ``mu = z_upper - z_lower``."""
    _, _, z3, z4, _ = problem.split(z)
    return y[:, : problem.k + 1], z3 - z4


@dataclass
class _Resumable:
    """A batch of restricted problems and the point :func:`solve_master` left them at."""

    M: Columns
    v: torch.Tensor
    tau: torch.Tensor
    penalty: torch.Tensor
    costs: torch.Tensor
    tol: float
    max_iter: int
    correctors: int
    point: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def polish_master(solution: MasterSolution, rows: torch.Tensor) -> MasterSolution:
    """Take the batch rows in the mask ``rows`` on from where :func:`solve_master` stopped them
    until their duality gap is within its ``tol`` (after a looser ``gap_tol``).

    Only those rows are solved (the sub-batch's Gram matrices and factors are all that is
    built); the returned solution holds the whole batch, the other rows as they were, and
    ``iterations`` counts the extra steps.
    """
    state = solution.resumable
    if state is None:
        raise ValueError("polish_master needs a MasterSolution returned by solve_master")
    index = rows.nonzero().flatten()
    problem = _Problem(
        state.M.select(index), state.v[index], state.tau[index], state.penalty[index], state.costs[index]
    )
    start = tuple(part[index] for part in state.point)
    y, _, z, iterations = mehrotra(problem, state.tol, state.max_iter, state.correctors, start=start)
    x, mu = solution.x.clone(), solution.mu.clone()
    x[index], mu[index] = _coefficients_and_multipliers(problem, y, z)
    return MasterSolution(x=x, mu=mu, iterations=iterations)
