"""Mehrotra's predictor-corrector interior-point method for batches of LPs in inequality form.

Each batch row is ``min c'y s.t. G y <= h``, with slacks ``s = h - G y >= 0`` and multipliers
``z >= 0``. ``G`` is known only through a :class:`Problem` (products with ``G`` and ``G'``, and
solves with ``G' diag(z/s) G``), so each caller brings its own structure: the restricted
extraction problems (:mod:`._master`) and the full problem's dual (:mod:`._row_space`).

Sources, cited by number below:

[1] S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM Journal on
    Optimization 2(4), 575-601, 1992: the affine-scaling predictor, the centring parameter
    ``sigma = (mu_aff / mu)^3`` and the second-order correction in the centring step.
[2] J. Gondzio, "Multiple centrality corrections in a primal-dual method for linear
    programming", Computational Optimization and Applications 6, 137-156, 1996: correctors that
    push the products ``s_i z_i`` of a trial point back into a band around ``sigma mu``.
[3] S. J. Wright, *Primal-Dual Interior-Point Methods*, SIAM, 1997, chapters 6 and 10: the
    Newton system of an infeasible step and the step length as a fraction of the way to the
    boundary.
[4] L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010: the inequality
    form ``G y + s = h`` and the starting point, least-squares primal and dual points shifted into
    the interior.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["Problem", "cholesky_solve", "newton_step", "mehrotra"]

# [3]: each step goes this fraction of the way to the boundary of the positive orthant, so that
# the iterates stay interior.
STEP_TO_BOUNDARY = 0.99
# [1]: the centring parameter is the cube of the ratio of the affine step's complementarity to
# the current one: close to 0 when the predictor makes good progress, close to 1 when it does not.
CENTRING_POWER = 3
# [2]'s mechanism: a corrector aims further than the step the direction allows, pulls the
# products of that trial point into CORRECTOR_BAND times sigma mu (the band is [2]'s), and is kept
# by a row whose primal plus dual step lengths grow by the factor CORRECTOR_GAIN. The reach and
# the gain are this project's choices, not measured against others (docs/extraction.md, "Cost").
CORRECTOR_REACH = 0.2
CORRECTOR_BAND = (0.1, 10.0)
CORRECTOR_GAIN = 1.01
# A starting point with a negative entry is shifted so that its smallest entry becomes 1, as in
# [4]; one without is moved START_MARGIN off the boundary (this project's choice: [4] keeps a
# strictly positive point as it is, and a zero entry would stop the first step).
START_MARGIN = 1e-3
# The step's largest allowed length when nothing limits it (a ratio test with no blocking entry).
UNBLOCKED_STEP = 1e30


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


def cholesky_solve(factor: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``L L' x = rhs`` for a batch of lower Cholesky factors ``L`` and vectors ``rhs``.

    Two triangular solves rather than ``torch.cholesky_solve``, which is several times slower
    for one right-hand side on the CPU (docs/extraction.md, "Cost").
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

    Solves the Newton system of the optimality conditions ([3] chapter 6, in [4]'s inequality
    form): ``G' dz = -r_dual``,
    ``G dy + ds = -r_primal``, ``S dz + Z ds = -r_center``, given
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
    return torch.where(ratio < 0, -1.0 / ratio, UNBLOCKED_STEP)


def _starting_point(problem: Problem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares primal and dual points shifted into the interior ([4])."""
    problem.factor(torch.ones_like(problem.h), None)
    y, G_y = problem.newton_solve(torch.zeros_like(problem.c), -problem.h)  # (G'G)^-1 G'h
    s = problem.h - G_y
    z = problem.newton_solve(-problem.c, torch.zeros_like(problem.h))[1].neg_()  # -G (G'G)^-1 c

    def shift(values: torch.Tensor) -> torch.Tensor:
        lowest = values.amin(dim=1, keepdim=True)
        return torch.where(lowest >= 0, values + START_MARGIN, values + 1.0 - lowest)

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
    """Gondzio's multiple centrality correctors ([2]) on top of Mehrotra's direction.

    Each corrector aims the step ``CORRECTOR_REACH`` further than the direction allows and pulls
    the products ``s_i z_i`` of that trial point back into ``CORRECTOR_BAND`` times the centring
    target ``sigma mu``, with one more solve of the factored Newton system; a batch row keeps it
    when its primal plus dual step lengths grow by ``CORRECTOR_GAIN``. Solves are cheap next to
    factorisations, so this trades a few solves for fewer steps. ``scaling`` is ``(z/s, 1/s)``.
    """
    d, inverse_s = scaling
    dy, ds, dz = direction
    alpha_p = _max_step(s, ds).clamp(max=1.0)
    alpha_d = _max_step(z, dz).clamp(max=1.0)
    target = target[:, None]
    for _ in range(count):
        trial_p = (alpha_p + CORRECTOR_REACH).clamp(max=1.0)[:, None]
        trial_d = (alpha_d + CORRECTOR_REACH).clamp(max=1.0)[:, None]
        products = torch.addcmul(s, trial_p, ds).mul_(torch.addcmul(z, trial_d, dz))
        low, high = CORRECTOR_BAND[0] * target, CORRECTOR_BAND[1] * target
        push = torch.minimum(torch.maximum(products, low), high).sub_(products).clamp_(min=-high)
        dy2, ds2, dz2 = newton_step(problem, d, r_primal, r_dual, (centring - push).mul_(inverse_s))
        alpha_p2 = _max_step(s, ds2).clamp(max=1.0)
        alpha_d2 = _max_step(z, dz2).clamp(max=1.0)
        # Rows that converged do not move, whatever their direction.
        better = (alpha_p2 + alpha_d2 >= CORRECTOR_GAIN * (alpha_p + alpha_d)) & ~converged
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
    """Mehrotra's predictor-corrector method ([1], as in [3] chapter 10) on a batch of LPs
    ``min c'y s.t. G y <= h``.

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
        sigma = (mu_aff / mu).clamp(0.0, 1.0) ** CENTRING_POWER  # [1]
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
        alpha_p = (STEP_TO_BOUNDARY * _max_step(s, ds)).clamp(max=1.0)[:, None]
        alpha_d = (STEP_TO_BOUNDARY * _max_step(z, dz)).clamp(max=1.0)[:, None]
        stepped = torch.addcmul(y, alpha_p, dy), torch.addcmul(s, alpha_p, ds), torch.addcmul(z, alpha_d, dz)
        if some_stopped:
            # Converged rows stay where they are while the others finish (a where, not a zero
            # step: their directions come from an old factorisation and need not even be finite).
            moving = ~converged[:, None]
            stepped = tuple(torch.where(moving, new, old) for new, old in zip(stepped, (y, s, z)))
        y, s, z = stepped
    return y, s, z, iterations
