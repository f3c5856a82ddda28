"""A batched primal-dual interior-point method for the small LPs of the AND-OR extraction.

Each batch row is one problem of the form (theory.md section 3, restricted to a few columns)

    minimise   sum_{j >= 1} c_j |x_j|
    subject to |M x - v| <= tau   (elementwise over the m rows of M)

where column 0 of ``M`` is the constant (free, unpenalised). It is written in inequality form
``min c'y s.t. G y <= h`` with ``y = (x, t, e)``, ``|x_j| <= t_j`` and elastic slacks ``e``, and
solved by Mehrotra's predictor-corrector method. The Newton systems reduce to one
``(k+1) x (k+1)`` Cholesky solve per problem. ``M`` is only touched through a
:class:`Columns` operator (products with ``M``, ``M'`` and ``M' diag(w) M``), so the extraction
can supply fast lattice-sum versions of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

# Centrality correctors per step of a restricted problem with at least this many columns (below
# it the factorisation is cheap and the extra solves cost more than the steps they save).
MASTER_CORRECTORS = 2
CORRECTORS_FROM_COLUMNS = 400
# Relative duality gap and residuals at which a restricted problem counts as solved.
MASTER_TOL = 1e-7


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


class Problem(Protocol):
    """An LP ``min c'y s.t. G y <= h`` in inequality form, batched, with its Newton systems."""

    h: torch.Tensor
    c: torch.Tensor

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        """``G y``."""
        ...

    def apply_transpose(self, z: torch.Tensor) -> torch.Tensor:
        """``G' z``."""
        ...

    def factor(self, d: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Factor ``G' diag(d) G`` for the following :meth:`solve` calls.

        With ``rows`` (batch row indices), only those rows are factored again; the others keep
        the factorisation of the previous call (their solves are then not used).
        """
        ...

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        """Solve ``G' diag(d) G dy = r``."""
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
        Mx = self.M.matvec(x)
        return torch.cat((x[:, 1:] - t, -x[:, 1:] - t, Mx - e, -Mx - e, -e), dim=1)

    def apply_transpose(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2, z3, z4, z5 = self.split(z)
        x_part = self.M.rmatvec(z3 - z4)
        x_part[:, 1:] += z1 - z2
        return torch.cat((x_part, -z1 - z2, -z3 - z4 - z5), dim=1)

    def factor(self, d: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Factor ``G' diag(d) G`` with ``t`` and ``e`` eliminated (both enter diagonally)."""
        d1, d2, d3, d4, d5 = self.split(d)
        self._d = (d1, d2, d3, d4, d5)
        self._e_diag = d3 + d4 + d5
        # d3 + d4 - (d4 - d3)^2 / (d3 + d4 + d5), written without the cancellation.
        row_weight = (4 * d3 * d4 + (d3 + d4) * d5) / self._e_diag
        H = self.M.gram(row_weight)
        diag = H.diagonal(dim1=1, dim2=2)
        diag[:, 1:] += 4 * d1 * d2 / (d1 + d2)
        # A relative jitter keeps the factorisation alive when the active set is degenerate.
        diag += 1e-13 * diag.abs().amax(dim=1, keepdim=True)
        self._chol = refactor(self._chol, H, rows)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        """Solve ``G' diag(d) G dy = r`` for the ``d`` given to :meth:`factor`."""
        d1, d2, d3, d4, _ = self._d
        r_x, r_t, r_e = self.split_y(r)
        r_x = r_x.clone()
        e_coupling = (d4 - d3) / self._e_diag
        r_x -= self.M.rmatvec(e_coupling * r_e)
        r_x[:, 1:] -= (d2 - d1) / (d1 + d2) * r_t
        dx = cholesky_solve(self._chol, r_x)
        dt = (r_t - (d2 - d1) * dx[:, 1:]) / (d1 + d2)
        Mdx = self.M.matvec(dx)
        de = (r_e - (d4 - d3) * Mdx) / self._e_diag
        return torch.cat((dx, dt, de), dim=1)


def refactor(
    previous: torch.Tensor | None, matrices: torch.Tensor, rows: torch.Tensor | None
) -> torch.Tensor:
    """Cholesky factors of ``matrices``; with ``rows`` and a ``previous`` batch of factors, only
    those rows are factored and the others keep their previous factor."""
    if rows is None or previous is None:
        return torch.linalg.cholesky(matrices)
    previous[rows] = torch.linalg.cholesky(matrices[rows])
    return previous


def cholesky_solve(factor: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``L L' x = rhs`` for a batch of lower Cholesky factors ``L`` and vectors ``rhs``.

    Two triangular solves: on one CPU thread they took a tenth of the time of
    ``torch.cholesky_solve`` for one right-hand side of size 1024 (MKL, torch 2.13).
    """
    half = torch.linalg.solve_triangular(factor, rhs.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(factor.mT, half, upper=True).squeeze(-1)


def newton_step(
    problem: Problem,
    s: torch.Tensor,
    z: torch.Tensor,
    r_primal: torch.Tensor,
    r_dual: torch.Tensor,
    r_center: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton direction ``(dy, ds, dz)`` for the last ``problem.factor`` (made with ``d = z/s``).

    Solves ``G' dz = -r_dual``, ``G dy + ds = -r_primal``, ``S dz + Z ds = -r_center``.
    """
    d = z / s
    dy = problem.solve(-r_dual - problem.apply_transpose(d * r_primal - r_center / s))
    G_dy = problem.apply(dy)
    dz = d * (G_dy + r_primal) - r_center / s
    ds = -r_primal - G_dy
    return dy, ds, dz


def _max_step(values: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Largest ``alpha`` (at most 1e30) with ``values + alpha * steps >= 0``, per batch row."""
    ratios = torch.where(steps < 0, -values / steps, torch.full_like(values, 1e30))
    return ratios.amin(dim=1)


def _starting_point(problem: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares primal and dual points shifted into the interior (as CVXOPT starts LPs)."""
    problem.factor(torch.ones_like(problem.h), None)
    y = problem.solve(problem.apply_transpose(problem.h))
    s = problem.h - problem.apply(y)
    z = -problem.apply(problem.solve(problem.c))

    def shift(values: torch.Tensor) -> torch.Tensor:
        lowest = values.amin(dim=1, keepdim=True)
        return torch.where(lowest >= 0, values + 1e-3, values + 1.0 - lowest)

    return y, shift(s), shift(z)


def _centrality_correctors(
    problem: Problem,
    s: torch.Tensor,
    z: torch.Tensor,
    r_primal: torch.Tensor,
    r_dual: torch.Tensor,
    centring: torch.Tensor,
    direction: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    target: torch.Tensor,
    count: int,
    converged: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gondzio's multiple centrality correctors on top of Mehrotra's direction.

    Each corrector aims the step a little further than the direction allows (step length + 0.2)
    and pulls the products ``s_i z_i`` of that trial point back into ``[0.1, 10]`` times the
    centring target ``sigma mu``, with one more solve of the factored Newton system; a batch row
    keeps it when its primal plus dual step lengths grow by at least 1%. Solves are cheap next to
    factorisations, so this trades a few solves for fewer steps.
    """
    dy, ds, dz = direction
    alpha_p = _max_step(s, ds).clamp(max=1.0)
    alpha_d = _max_step(z, dz).clamp(max=1.0)
    target = target[:, None]
    for _ in range(count):
        trial_p = (alpha_p + 0.2).clamp(max=1.0)[:, None]
        trial_d = (alpha_d + 0.2).clamp(max=1.0)[:, None]
        products = (s + trial_p * ds) * (z + trial_d * dz)
        push = torch.minimum(torch.maximum(products, 0.1 * target), 10.0 * target) - products
        push = push.clamp(min=-10.0 * target)
        dy2, ds2, dz2 = newton_step(problem, s, z, r_primal, r_dual, centring - push)
        alpha_p2 = _max_step(s, ds2).clamp(max=1.0)
        alpha_d2 = _max_step(z, dz2).clamp(max=1.0)
        # Rows that converged do not move, whatever their direction.
        better = (alpha_p2 + alpha_d2 >= 1.01 * (alpha_p + alpha_d)) & ~converged
        if not bool(better.any()):
            break
        keep = better[:, None]
        dy, ds, dz = torch.where(keep, dy2, dy), torch.where(keep, ds2, ds), torch.where(keep, dz2, dz)
        alpha_p, alpha_d = torch.where(better, alpha_p2, alpha_p), torch.where(better, alpha_d2, alpha_d)
        centring = torch.where(keep, centring - push, centring)
    return dy, ds, dz


def mehrotra(
    problem: Problem,
    tol: float = 1e-7,
    max_iter: int = 60,
    correctors: int = 0,
    gap_tol: torch.Tensor | None = None,
    start: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Mehrotra's predictor-corrector method on a batch of LPs ``min c'y s.t. G y <= h``.

    Returns the primal point ``y``, slacks ``s``, inequality multipliers ``z`` and the number of
    iterations. A batch row stops moving once its duality gap and primal residual are below
    ``tol`` (relative) and its dual residual below ``sqrt(tol)``. ``correctors`` adds up to that
    many of Gondzio's centrality correctors per step (:func:`_centrality_correctors`), worth it
    where factorising the Newton matrix costs far more than solving with it.

    ``gap_tol`` (per batch row, at least ``tol``) also accepts a duality gap within ``gap_tol``
    times the objective (the residual tests stay at ``tol``).
    ``start``, a point ``(y, s, z)`` this method returned for the same problems, replaces the
    least-squares starting point: the method goes on from there.
    """
    rows = problem.h.shape[1]
    gap_tol = problem.h.new_full(problem.h.shape[:1], tol) if gap_tol is None else gap_tol
    y, s, z = _starting_point(problem) if start is None else start
    scale = 1.0 + problem.h.abs().amax(dim=1)
    dual_scale = 1.0 + problem.c.abs().amax(dim=1)
    iterations = 0
    while iterations < max_iter:
        r_dual = problem.c + problem.apply_transpose(z)
        r_primal = problem.apply(y) + s - problem.h
        gap = (s * z).sum(dim=1)
        primal_obj = (problem.c * y).sum(dim=1)
        # The dual residual stalls near 1e-7 when columns outnumber rows (the Newton matrix is
        # then nearly singular); the caller re-derives a valid bound from mu, so a looser dual
        # tolerance costs no correctness.
        # gap_tol is relative to the objective itself: against 1 + |objective| a loose tolerance
        # would accept any point of a problem whose optimum is far below 1.
        converged = (
            ((gap <= tol * (1.0 + primal_obj.abs())) | (gap <= gap_tol * primal_obj.abs()))
            & (r_primal.abs().amax(dim=1) <= tol * scale)
            & (r_dual.abs().amax(dim=1) <= tol**0.5 * dual_scale)
        )
        if bool(converged.all()):
            break
        iterations += 1
        # Rows that converged keep their last factorisation: their steps are not taken. (One
        # host synchronisation, like the test above.)
        pending = (~converged).nonzero().flatten() if iterations > 1 else None
        problem.factor(z / s, pending if pending is not None and len(pending) < len(converged) else None)
        # Predictor (affine scaling), then Mehrotra's centring-corrector.
        _, ds_aff, dz_aff = newton_step(problem, s, z, r_primal, r_dual, s * z)
        alpha_p = _max_step(s, ds_aff).clamp(max=1.0)
        alpha_d = _max_step(z, dz_aff).clamp(max=1.0)
        mu = gap / rows
        mu_aff = ((s + alpha_p[:, None] * ds_aff) * (z + alpha_d[:, None] * dz_aff)).sum(dim=1) / rows
        sigma = (mu_aff / mu).clamp(0.0, 1.0) ** 3
        centring = s * z + ds_aff * dz_aff - (sigma * mu)[:, None]
        dy, ds, dz = newton_step(problem, s, z, r_primal, r_dual, centring)
        if correctors:
            dy, ds, dz = _centrality_correctors(
                problem, s, z, r_primal, r_dual, centring, (dy, ds, dz), sigma * mu, correctors, converged
            )
        # Converged rows stay where they are while the others finish (a where, not a zero step:
        # their directions come from an old factorisation and need not even be finite).
        alpha_p = (0.99 * _max_step(s, ds)).clamp(max=1.0)[:, None]
        alpha_d = (0.99 * _max_step(z, dz)).clamp(max=1.0)[:, None]
        moving = ~converged[:, None]
        y = torch.where(moving, y + alpha_p * dy, y)
        s = torch.where(moving, s + alpha_p * ds, s)
        z = torch.where(moving, z + alpha_d * dz, z)
    return y, s, z, iterations


def solve_master(
    M: Columns,
    v: torch.Tensor,
    tau: torch.Tensor,
    penalty: torch.Tensor,
    costs: torch.Tensor | None = None,
    tol: float = MASTER_TOL,
    max_iter: int = 60,
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
