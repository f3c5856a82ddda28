"""A tighter certificate from a restricted problem's row multipliers.

Any row multipliers ``mu`` give the lower bound ``-<mu, v> - tau ||mu||_1`` once they are scaled
down to dual feasibility (``|Z' mu| <= 1`` and ``|W' mu| <= 1`` on every nonempty set, see
:func:`dual_lower_bound`). A restricted problem's multipliers price some missing
interactions above their cost, and a single such interaction scales the whole bound down: on a
trained digits MLP at n = 14 the objective was optimal three rounds before the scaled bound
came within 1% of it.

This module moves ``mu`` toward feasibility before scaling: L-BFGS on the dual objective minus a
quadratic penalty on every violation, ``D(mu) - rho/2 sum (|a_S' mu| - 1)_+^2``, where all
``2^(n+1)`` prices and the penalty's gradient cost two butterflies per step. (On ten such
problems plain gradient ascent stalled with 0.5% to 19% left, where L-BFGS reached 0.3% to 1.0%:
the transforms are badly conditioned, docs/extraction.md, "The problem".) Every point of the path is rescaled
into a valid bound and the best one is kept, so the certificate stays exact whatever the path
does; only its tightness depends on the steps taken.

Example:
    >>> import torch
    >>> v = torch.tensor([[0.0, 1.0, 1.0, 3.0]], dtype=torch.float64)
    >>> mu = torch.tensor([[0.9, -1.1, -1.1, 1.3]], dtype=torch.float64)
    >>> tau = torch.tensor([0.0], dtype=torch.float64)
    >>> bool(repaired_bound(v, tau, mu, torch.tensor([3.0])) >= dual_lower_bound(v, tau, mu))
    True
"""

from __future__ import annotations

import torch

from lightning_interactions.extraction.transforms import inverse_and_interactions, inverse_and_transpose

__all__ = ["dual_lower_bound", "repaired_bound", "rescaled_dual_value", "signed_prices"]

# Steps, and how often the batch checks whether every row is certified or given up (a host
# synchronisation). The gap left falls roughly in half per doubling of the steps, so a row whose
# gap, so extrapolated, would still be above GIVE_UP times tol at the last step is given up.
# L-BFGS keeps CURVATURE_PAIRS curvature pairs (Nocedal and Wright, Numerical Optimization, 2nd
# ed., 2006, section 7.2: a few to twenty usually suffice). The measurements that set the others:
# docs/extraction.md, "The constants".
REPAIR_STEPS = 500
CHECK_EVERY = 25
GIVE_UP = 1.5
CURVATURE_PAIRS = 8
# The penalty weight relative to the objective: the bound scales with ``v``, the violations do
# not. The best of the weights tried (docs/extraction.md, "The constants").
PENALTY_PER_OBJECTIVE = 20.0


def dual_lower_bound(v: torch.Tensor, tau: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Lower bound on the LP optimum from any row multipliers ``mu`` (weak duality).

    ``mu`` is centred (the constant is free, so dual feasibility needs ``sum mu = 0``) and scaled
    down until ``|Z' mu| <= 1`` and ``|W' mu| <= 1`` on every nonempty set; the dual objective
    ``-<mu, v> - tau ||mu||_1`` of that feasible point bounds the optimum from below.

    Example:
        >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
        >>> mu = torch.tensor([[-1.0, 1.0, 1.0, -1.0]], dtype=torch.float64)
        >>> float(dual_lower_bound(v, torch.zeros(1, dtype=torch.float64), mu))
        1.0
    """
    mu = mu - mu.mean(dim=-1, keepdim=True)
    return rescaled_dual_value(v, tau, mu, signed_prices(mu).abs().amax(dim=(-2, -1)))


def rescaled_dual_value(
    v: torch.Tensor, tau: torch.Tensor, mu: torch.Tensor, largest_price: torch.Tensor
) -> torch.Tensor:
    """The dual objective of centred ``mu`` scaled down by ``largest_price`` (its largest
    ``|Z' mu|`` or ``|W' mu|`` over nonempty sets) where that exceeds 1: the bound of
    :func:`dual_lower_bound`, for a caller that has the prices already."""
    value = -(mu * v).sum(dim=-1) - tau * mu.abs().sum(dim=-1)
    return value / largest_price.clamp(min=1.0)


def signed_prices(mu: torch.Tensor) -> torch.Tensor:
    """``Z' mu`` and ``W' mu`` of centred ``mu`` as ``(..., 2, 2^n)``, the constants set to 0.

    ``Z' mu`` holds superset sums of ``mu``; for centred ``mu`` the OR prices are minus the
    superset sums of ``mu`` read in complement order, so one butterfly gives both.
    """
    sums = inverse_and_transpose(torch.stack((mu, mu.flip(-1)), dim=-2))
    prices = torch.stack((sums[..., 0, :], -sums[..., 1, :]), dim=-2)
    prices[..., 0] = 0.0
    return prices


def _penalty_gradient(excess: torch.Tensor) -> torch.Tensor:
    """``Z e_and + W e_or`` up to a constant, for ``excess`` as laid out by :func:`signed_prices`."""
    sums = inverse_and_interactions(excess)
    # W e = sum(e) - (subset sums of e) at the complement; the constant is centred away.
    return sums[..., 0, :] - sums[..., 1, :].flip(-1)


class _CurvaturePairs:
    """The last few steps ``s`` and gradient changes ``y`` of each batch row (L-BFGS memory).

    A row whose step was rejected pushes a zero pair, which the recursion skips, so rows never
    need to be told apart by a host synchronisation. (The zero pair does push out the row's oldest
    real pair; L-BFGS steps are rarely rejected, so per-row buffers were not worth it.)
    """

    def __init__(self, memory: int, first_scale: torch.Tensor) -> None:
        self.memory = memory
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.scale = first_scale  # the initial inverse Hessian is scale * identity

    def push(self, step: torch.Tensor, change: torch.Tensor) -> None:
        curvature = (step * change).sum(dim=-1)
        usable = curvature > 0
        inverse = torch.where(usable, 1.0 / torch.where(usable, curvature, 1.0), 0.0)
        self.scale = torch.where(
            usable,
            curvature / change.square().sum(dim=-1).clamp(min=torch.finfo(step.dtype).tiny),
            self.scale,
        )
        self.pairs = [*self.pairs, (step, change, inverse)][-self.memory :]

    def descent(self, gradient: torch.Tensor) -> torch.Tensor:
        """``-H gradient`` by the two-loop recursion."""
        # Fused products in place (vecdot, addcmul_): this loop's many small operations, not its
        # arithmetic, are what it costs.
        direction = gradient.clone()
        weights = []
        for step, change, inverse in reversed(self.pairs):
            weight = inverse * torch.linalg.vecdot(step, direction)
            direction.addcmul_(weight[:, None], change, value=-1.0)
            weights.append(weight)
        direction.mul_(self.scale[:, None])
        for (step, change, inverse), weight in zip(self.pairs, reversed(weights)):
            correction = weight - inverse * torch.linalg.vecdot(change, direction)
            direction.addcmul_(correction[:, None], step)
        return direction.neg_()


def _penalised_dual(
    v: torch.Tensor, tau: torch.Tensor, rho: torch.Tensor, point: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """At centred multipliers ``point``: the rescaled bound, the loss to minimise (the penalised
    dual objective, negated) and the loss's gradient, centred (the constant is free).

    Example:
        >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
        >>> point = torch.tensor([[-1.0, 1.0, 1.0, -1.0]], dtype=torch.float64)
        >>> bound, loss, gradient = _penalised_dual(v, torch.zeros(1), torch.ones(1), point)
        >>> float(bound), float(loss)  # dual feasible: no penalty, the bound is the dual value
        (1.0, -1.0)
    """
    prices = signed_prices(point)
    excess = (prices.abs() - 1.0).clamp(min=0.0)
    value = -(point * v).sum(dim=-1) - tau * point.abs().sum(dim=-1)
    bound = value / (1.0 + excess.amax(dim=(-2, -1)))  # rescaled_dual_value, from the excess
    loss = 0.5 * rho * excess.square().sum(dim=(-2, -1)) - value
    gradient = v + tau[:, None] * point.sign() + rho[:, None] * _penalty_gradient(excess * prices.sign())
    return bound, loss, gradient - gradient.mean(dim=-1, keepdim=True)


def _finished(
    bound: torch.Tensor, objective: torch.Tensor, tol: float, taken: int, steps: int
) -> torch.Tensor:
    """Rows certified within ``tol``, or (once ``taken`` > 0 steps were taken) given up: the gap
    roughly halves when the steps double, so a row whose gap after ``taken`` steps extrapolates
    above ``GIVE_UP * tol`` at ``steps`` will not make it, nor will one whose bound is not yet
    positive."""
    certified = bound >= objective / (1.0 + tol)
    if taken == 0:
        return certified
    gap = objective / bound.clamp(min=torch.finfo(bound.dtype).tiny) - 1.0
    return certified | (bound <= 0) | (gap * taken > GIVE_UP * tol * steps)


def repaired_bound(
    v: torch.Tensor,
    tau: torch.Tensor,
    mu: torch.Tensor,
    objective: torch.Tensor,
    tol: float = 0.01,
    steps: int = REPAIR_STEPS,
) -> torch.Tensor:
    """A lower bound at least :func:`dual_lower_bound`'s from ``mu``, after moving ``mu`` toward
    dual feasibility (module docstring).

    ``v`` and ``mu`` are ``(batch, 2^n)``, ``tau`` and ``objective`` (a feasible point's value,
    which sets the penalty's scale and the target) ``(batch,)``. A row stops once its bound is
    within ``tol`` of ``objective`` or it is given up (:func:`_finished`, checked every
    ``CHECK_EVERY`` steps), so each row's result is the same alone as in any batch (up to
    rounding, where a device's reductions depend on the batch's shape).

    Example:
        >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
        >>> mu = torch.tensor([[-1.0, 1.2, 1.2, -1.4]], dtype=torch.float64)
        >>> tau = torch.zeros(1, dtype=torch.float64)
        >>> 0.9 < float(repaired_bound(v, tau, mu, torch.tensor([1.0]))) <= 1.0
        True
    """
    tiny = torch.finfo(v.dtype).tiny
    point = mu - mu.mean(dim=-1, keepdim=True)
    rho = (PENALTY_PER_OBJECTIVE * objective.abs()).clamp(min=tiny)
    best_bound, loss, gradient = _penalised_dual(v, tau, rho, point)
    best_point = point
    live = ~_finished(best_bound, objective, tol, 0, steps)  # rows certified already stay put
    # The first step changes mu by a thousandth of its size; L-BFGS then finds its own scale.
    first_scale = 1e-3 * point.abs().amax(dim=-1) / gradient.abs().amax(dim=-1).clamp(min=tiny)
    pairs = _CurvaturePairs(CURVATURE_PAIRS, first_scale)
    length = torch.ones_like(loss)
    for index in range(steps):
        if index % CHECK_EVERY == 0 and not bool(live.any()):
            break
        direction = pairs.descent(gradient)
        # Not a descent direction (stale pairs): fall back to the scaled gradient.
        fallback = ((gradient * direction).sum(dim=-1) >= 0)[:, None]
        direction = torch.where(fallback, -pairs.scale[:, None] * gradient, direction)
        slope = (gradient * direction).sum(dim=-1)
        trial = point + length[:, None] * direction
        bound, trial_loss, trial_gradient = _penalised_dual(v, tau, rho, trial)
        # Every trial point gives a valid bound, accepted or not.
        better = live & (bound > best_bound)
        best_bound = torch.where(better, bound, best_bound)
        best_point = torch.where(better[:, None], trial, best_point)
        # One trial per step and row (no inner line search, so no host synchronisation): a row
        # whose trial fails the Armijo test stays and tries a quarter of the length next step.
        accepted = live & (trial_loss <= loss + 1e-4 * length * slope)
        keep = accepted[:, None]
        pairs.push(torch.where(keep, trial - point, 0.0), torch.where(keep, trial_gradient - gradient, 0.0))
        point = torch.where(keep, trial, point)
        loss = torch.where(accepted, trial_loss, loss)
        gradient = torch.where(keep, trial_gradient, gradient)
        length = torch.where(
            accepted, (2.0 * length).clamp(max=1.0), torch.where(live, 0.25 * length, length)
        )
        if (index + 1) % CHECK_EVERY == 0:
            live = live & ~_finished(best_bound, objective, tol, index + 1, steps)
    # The bound is re-derived from the kept multipliers by the plain rescaling, so that its
    # validity rests on weak duality alone, not on this loop's arithmetic.
    return dual_lower_bound(v, tau, best_point)
