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

from lightning_interactions.extraction._cholesky import cholesky_factors

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
        """Factor ``G' diag(d) G`` for the following :meth:`newton_solve` calls.

        With ``rows`` (batch row indices), only those rows are factored again; the others keep
        the factorisation of the previous call (their solves are then not used).
        """
        ...

    def newton_solve(self, r_dual: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``dy`` solving ``G' diag(d) G dy = -r_dual - G' q``, and ``G dy``.

        Every Newton direction of :func:`mehrotra` is such a solve followed by a product with
        ``G``; one method for both lets a problem share the work between them.
        """
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


def cholesky_solve(factor: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``L L' x = rhs`` for a batch of lower Cholesky factors ``L`` and vectors ``rhs``.

    Two triangular solves: on one CPU thread they took a tenth of the time of
    ``torch.cholesky_solve`` for one right-hand side of size 1024 (MKL, torch 2.13).
    """
    half = torch.linalg.solve_triangular(factor, rhs.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(factor.mT, half, upper=True).squeeze(-1)


def newton_step(
    problem: Problem,
    d: torch.Tensor,
    r_primal: torch.Tensor,
    r_dual: torch.Tensor,
    scaled_center: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Newton direction ``(dy, ds, dz)`` for the last ``problem.factor`` (made with ``d = z/s``).

    Solves ``G' dz = -r_dual``, ``G dy + ds = -r_primal``, ``S dz + Z ds = -r_center``, given
    ``scaled_center = r_center / s`` (the caller has ``1/s`` for the whole step).
    """
    dy, G_dy = problem.newton_solve(r_dual, torch.addcmul(-scaled_center, d, r_primal))
    ds = torch.add(r_primal, G_dy).neg_()
    dz = torch.addcmul(scaled_center, d, ds).neg_()
    return dy, ds, dz


def _max_step(values: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Largest ``alpha`` (at most 1e30) with ``values + alpha * steps >= 0``, per batch row, for
    positive ``values``: ``-1 / min(steps / values)`` where that minimum is negative."""
    ratio = (steps / values).amin(dim=1)
    return torch.where(ratio < 0, -1.0 / ratio, 1e30)


def _starting_point(problem: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares primal and dual points shifted into the interior (as CVXOPT starts LPs)."""
    problem.factor(torch.ones_like(problem.h), None)
    y, G_y = problem.newton_solve(torch.zeros_like(problem.c), -problem.h)  # (G'G)^-1 G'h
    s = problem.h - G_y
    z = problem.newton_solve(-problem.c, torch.zeros_like(problem.h))[1].neg_()  # -G (G'G)^-1 c

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
    scaling: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gondzio's multiple centrality correctors on top of Mehrotra's direction.

    Each corrector aims the step a little further than the direction allows (step length + 0.2)
    and pulls the products ``s_i z_i`` of that trial point back into ``[0.1, 10]`` times the
    centring target ``sigma mu``, with one more solve of the factored Newton system; a batch row
    keeps it when its primal plus dual step lengths grow by at least 1%. Solves are cheap next to
    factorisations, so this trades a few solves for fewer steps. ``scaling`` is ``(z/s, 1/s)``.
    """
    d, inverse_s = scaling
    dy, ds, dz = direction
    alpha_p = _max_step(s, ds).clamp(max=1.0)
    alpha_d = _max_step(z, dz).clamp(max=1.0)
    target = target[:, None]
    for _ in range(count):
        trial_p = (alpha_p + 0.2).clamp(max=1.0)[:, None]
        trial_d = (alpha_d + 0.2).clamp(max=1.0)[:, None]
        products = torch.addcmul(s, trial_p, ds).mul_(torch.addcmul(z, trial_d, dz))
        push = torch.minimum(torch.maximum(products, 0.1 * target), 10.0 * target).sub_(products)
        push = push.clamp_(min=-10.0 * target)
        dy2, ds2, dz2 = newton_step(problem, d, r_primal, r_dual, (centring - push).mul_(inverse_s))
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
    batch, rows = problem.h.shape
    gap_tol = problem.h.new_full((batch,), tol) if gap_tol is None else gap_tol
    y, s, z = _starting_point(problem) if start is None else start
    scale = 1.0 + problem.h.abs().amax(dim=1)
    dual_scale = 1.0 + problem.c.abs().amax(dim=1)
    iterations = 0
    # The vectors s, z and the directions are (batch, 2k + 3m) at their largest, and each
    # elementwise pass over them costs about as much as a factorisation of a few hundred
    # columns: the step reuses 1/s, z/s and s*z and fuses what it can.
    while iterations < max_iter:
        r_dual = problem.apply_transpose(z).add_(problem.c)
        r_primal = problem.apply(y).add_(s).sub_(problem.h)
        sz = s * z
        gap = sz.sum(dim=1)
        primal_obj = torch.linalg.vecdot(problem.c, y)
        # The dual residual stalls near 1e-7 when columns outnumber rows (the Newton matrix is
        # then nearly singular); the caller re-derives a valid bound from mu, so a looser dual
        # tolerance costs no correctness.
        # gap_tol is relative to the objective itself: against 1 + |objective| a loose tolerance
        # would accept any point of a problem whose optimum is far below 1.
        converged = (
            ((gap <= tol * (1.0 + primal_obj.abs())) | (gap <= gap_tol * primal_obj.abs()))
            & (torch.linalg.vector_norm(r_primal, float("inf"), dim=1) <= tol * scale)
            & (torch.linalg.vector_norm(r_dual, float("inf"), dim=1) <= tol**0.5 * dual_scale)
        )
        moving_rows = int(batch - converged.sum())  # the step's one host synchronisation
        if moving_rows == 0:
            break
        iterations += 1
        # Rows that converged keep their last factorisation: their steps are not taken.
        some_stopped = moving_rows < batch
        pending = (~converged).nonzero().flatten() if some_stopped and iterations > 1 else None
        inverse_s = s.reciprocal()
        d = z * inverse_s
        problem.factor(d, pending)
        # Predictor (affine scaling: r_center = s z, so r_center / s = z), then Mehrotra's
        # centring-corrector.
        _, ds_aff, dz_aff = newton_step(problem, d, r_primal, r_dual, z)
        alpha_p = _max_step(s, ds_aff).clamp(max=1.0)
        alpha_d = _max_step(z, dz_aff).clamp(max=1.0)
        mu = gap / rows
        affine = torch.addcmul(s, alpha_p[:, None], ds_aff)
        mu_aff = torch.linalg.vecdot(affine, torch.addcmul(z, alpha_d[:, None], dz_aff)) / rows
        sigma = (mu_aff / mu).clamp(0.0, 1.0) ** 3
        centring = torch.addcmul(sz, ds_aff, dz_aff).sub_((sigma * mu)[:, None])
        dy, ds, dz = newton_step(problem, d, r_primal, r_dual, centring * inverse_s)
        if correctors:
            dy, ds, dz = _centrality_correctors(
                problem,
                s,
                z,
                r_primal,
                r_dual,
                centring,
                (dy, ds, dz),
                sigma * mu,
                correctors,
                converged,
                (d, inverse_s),
            )
        alpha_p = (0.99 * _max_step(s, ds)).clamp(max=1.0)[:, None]
        alpha_d = (0.99 * _max_step(z, dz)).clamp(max=1.0)[:, None]
        stepped = torch.addcmul(y, alpha_p, dy), torch.addcmul(s, alpha_p, ds), torch.addcmul(z, alpha_d, dz)
        if some_stopped:
            # Converged rows stay where they are while the others finish (a where, not a zero
            # step: their directions come from an old factorisation and need not even be finite).
            moving = ~converged[:, None]
            stepped = tuple(torch.where(moving, new, old) for new, old in zip(stepped, (y, s, z)))
        y, s, z = stepped
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
