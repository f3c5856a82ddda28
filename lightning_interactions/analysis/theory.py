"""The analytic two-phase prediction (docs/theory.md): noise transform, predicted shapes, fitting.

The paper's reformulation treats the network output on masked samples as a linear regression on
interaction triggers. Fitting reference interactions ``w*`` under multiplicative trigger noise of
level ``s`` has a closed-form solution, the n-fold Kronecker power ``M(s)`` of
``[[1, a], [0, b]]`` with ``b = 1 / (1 + 2 s)`` and ``a = s / (1 + 2 s)``. From it come the predicted
shapes of strength by order (prior mode and reference mode) and the noise level ``s`` that best
explains a measured shape.

Example:
    >>> import torch
    >>> w = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)  # one AND term on {0, 1}
    >>> noise_transform(w, 0.5)  # mass moves down onto the subsets, order 2 shrinks
    tensor([0.0625, 0.1250, 0.1250, 0.2500], dtype=torch.float64)
    >>> fit = fit_noise_level(prior_shape(4, 0.3), shape_predictor("prior", n=4))
    >>> round(fit.s, 4), fit.error < 1e-6
    (0.3, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch

from lightning_interactions.analysis.strength import per_sample_strength, strength_shape
from lightning_interactions.extraction.transforms import kron_butterfly, num_players_of

__all__ = [
    "NoiseFit",
    "noise_transform",
    "inverse_noise_transform",
    "noise_transform_or",
    "prior_shape",
    "reference_shape",
    "shape_predictor",
    "fit_noise_level",
]

# A noise level: one number, or a tensor with one level per row of the interactions.
NoiseLevel = Union[float, torch.Tensor]
ShapePredictor = Callable[[float], torch.Tensor]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618..., the golden-section step


@dataclass(frozen=True)
class NoiseFit:
    """The noise level ``s`` that best explains a measured shape, and the L1 distance left there."""

    s: float
    error: float


# ---------------------------------------------------------------------------------------------
# The noise transform M(s)
# ---------------------------------------------------------------------------------------------


def _check_level_values(s: torch.Tensor) -> None:
    if not bool(torch.isfinite(s).all()):
        raise ValueError("the noise level s must be finite")
    if bool((s < 0).any()):
        raise ValueError(f"the noise level s must be non-negative, got min {float(s.min())}")


def _level_per_row(s: NoiseLevel, values: torch.Tensor) -> float | torch.Tensor:
    """Return ``s`` as a number, or as a ``(rows, 1, 1)`` tensor for :func:`kron_butterfly`."""
    if isinstance(s, torch.Tensor) and s.dim() > 0:
        levels = s.detach().to(dtype=values.dtype, device=values.device)
        _check_level_values(levels)
        try:
            rows = torch.broadcast_to(levels, values.shape[:-1])
        except RuntimeError as err:
            raise ValueError(
                f"a tensor of noise levels of shape {tuple(levels.shape)} must broadcast against the "
                f"leading dimensions {tuple(values.shape[:-1])} of the interactions"
            ) from err
        return rows.reshape(-1, 1, 1)
    level = float(s)
    _check_level_values(torch.tensor(level))
    return level


def noise_transform(w: torch.Tensor, s: NoiseLevel) -> torch.Tensor:
    """Interactions learned from reference interactions ``w*`` under noise level ``s``.

    ``w^_S = b^|S| sum_{S' superset of S} a^(|S'| - |S|) w*_S'`` with ``b = 1/(1+2s)``,
    ``a = s/(1+2s)``: the Kronecker power of ``[[1, a], [0, b]]``, applied as a butterfly in
    ``O(n 2^n)``. ``w`` has shape ``(..., 2^n)``; ``s`` is a number or a tensor that broadcasts
    against ``w.shape[:-1]`` (for example one level per row of a ``(batch, 2^n)`` tensor).

    OR interactions transform the same way on every nonempty set (see :func:`noise_transform_or`
    for the constant term), so this is also the prediction for the nonempty OR entries.

    Example:
        >>> import torch
        >>> w = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
        >>> torch.equal(noise_transform(w, 0.0), w)
        True
        >>> noise_transform(w.repeat(2, 1), torch.tensor([0.0, 1.0]))[1]
        tensor([3.1111, 1.1111, 1.4444, 0.4444], dtype=torch.float64)
    """
    level = _level_per_row(s, w)
    scale = 1.0 / (1.0 + 2.0 * level)  # b; a = s * b
    return kron_butterfly(w, [[1.0, level * scale], [0.0, scale]])


def inverse_noise_transform(w: torch.Tensor, s: NoiseLevel) -> torch.Tensor:
    """Undo :func:`noise_transform`: the Kronecker power of ``[[1, -s], [0, 1 + 2s]]``.

    Example:
        >>> import torch
        >>> w = torch.randn(3, 8, dtype=torch.float64)
        >>> torch.allclose(inverse_noise_transform(noise_transform(w, 0.7), 0.7), w)
        True
    """
    level = _level_per_row(s, w)
    # The 2x2 inverse of [[1, a], [0, b]] is [[1, -a/b], [0, 1/b]], and a/b = s, 1/b = 1 + 2s.
    return kron_butterfly(w, [[1.0, -level], [0.0, 1.0 + 2.0 * level]])


def noise_transform_or(w_or: torch.Tensor, s: NoiseLevel) -> torch.Tensor:
    """OR interactions learned under noise level ``s``, constant term included.

    The OR model ``v(T) = c + sum_{S nonempty} w(S) 1[S n T nonempty]`` is, since
    ``1[S n T nonempty] = 1 - 1[S subset of N \\ T]``, an AND model on the complement ``N \\ T``
    with weights ``-w(S)`` and constant ``c + sum_S w(S)``; the noise scales the trigger
    ``1[S subset of N \\ T]`` by ``prod_{i in S} (1 + e_i)``. On nonempty sets the result equals
    :func:`noise_transform`; only entry 0 (the constant ``c``, index as in ``or_interactions``)
    differs.

    Example:
        >>> import torch
        >>> w_or = torch.tensor([0.5, 1.0, 0.0, 2.0], dtype=torch.float64)
        >>> noise_transform_or(w_or, 0.5)
        tensor([1.6250, 0.7500, 0.2500, 0.5000], dtype=torch.float64)
    """
    # Write the OR model as the AND model on the complement, transform it, and read it back.
    as_and = -w_or
    as_and[..., 0] = w_or.sum(dim=-1)
    fitted = noise_transform(as_and, s)
    out = -fitted
    out[..., 0] = fitted.sum(dim=-1)
    return out


# ---------------------------------------------------------------------------------------------
# Predicted shapes of strength by order
# ---------------------------------------------------------------------------------------------


def prior_shape(n: int, s: NoiseLevel, device: torch.device | str | None = None) -> torch.Tensor:
    """Predicted shape over orders ``1..n`` when ``w*`` has independent entries of equal variance.

    ``E[w^_S^2] = b^(2k) (1 + a^2)^(n-k) Var(w*)`` for ``|S| = k``, and for Gaussian ``w*`` the mean
    ``E|w^_S|`` is proportional to its square root, so ``A(k) ∝ C(n, k) b^k (1 + a^2)^((n-k)/2)``,
    normalised to sum to one. ``s`` is a number (returns ``(n,)``) or a 1-D tensor (``(len(s), n)``).
    Float64.

    Example:
        >>> prior_shape(3, 0.0)  # no noise: the binomial spindle
        tensor([0.4286, 0.4286, 0.1429], dtype=torch.float64)
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    levels = torch.as_tensor(s, dtype=torch.float64, device=device)
    if levels.dim() > 1:
        raise ValueError(f"s must be a number or a 1-D tensor, got shape {tuple(levels.shape)}")
    _check_level_values(levels)
    levels = levels.unsqueeze(-1)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=levels.device)
    log_binomial = math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    b = 1.0 / (1.0 + 2.0 * levels)
    a = levels * b
    # Work in logs and normalise with a softmax: the raw terms under/overflow for large n or s.
    log_strength = log_binomial + k * torch.log(b) + 0.5 * (n - k) * torch.log1p(a * a)
    return torch.softmax(log_strength, dim=-1)


def _as_interaction_batch(I_and: torch.Tensor, I_or: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if I_and.shape != I_or.shape:
        raise ValueError(
            f"I_and and I_or must have one shape, got {tuple(I_and.shape)} and {tuple(I_or.shape)}"
        )
    n = num_players_of(I_and)
    if n < 1:
        raise ValueError("need at least one player to form a shape over orders 1..n")
    return I_and.detach().reshape(-1, 2**n).double(), I_or.detach().reshape(-1, 2**n).double()


def _reference_shape_one(I_and: torch.Tensor, I_or: torch.Tensor, s: float) -> torch.Tensor:
    # Entry 0 of I_or is the OR constant, which no nonempty entry reads, so the plain transform
    # gives every entry that counts (see noise_transform_or).
    strength = per_sample_strength(noise_transform(I_and, s), noise_transform(I_or, s))
    return strength_shape(strength.mean(dim=0))


def reference_shape(I_and: torch.Tensor, I_or: torch.Tensor, s: NoiseLevel) -> torch.Tensor:
    """Predicted shape over orders ``1..n`` from measured reference interactions ``(batch, 2^n)``.

    Each sample's AND and OR interactions go through :func:`noise_transform`; the strength by order
    is averaged over samples and normalised. ``s`` is a number (returns ``(n,)``) or a 1-D tensor
    of levels (returns ``(len(s), n)``). Float64, on the device of the interactions.

    Example:
        >>> import torch
        >>> I_and = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
        >>> reference_shape(I_and, torch.zeros(1, 4), 0.0)
        tensor([0., 1.], dtype=torch.float64)
        >>> reference_shape(I_and, torch.zeros(1, 4), 0.5)
        tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    flat_and, flat_or = _as_interaction_batch(I_and, I_or)
    if isinstance(s, torch.Tensor) and s.dim() > 0:
        if s.dim() != 1:
            raise ValueError(f"s must be a number or a 1-D tensor, got shape {tuple(s.shape)}")
        # One level at a time keeps memory at O(batch * 2^n).
        return torch.stack([_reference_shape_one(flat_and, flat_or, float(level)) for level in s])
    return _reference_shape_one(flat_and, flat_or, float(s))


def shape_predictor(
    mode: str,
    n: int | None = None,
    reference: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ShapePredictor:
    """Return a callable ``s -> predicted shape`` for :func:`fit_noise_level`, by mode name.

    ``"prior"`` needs ``n`` (the number of players); ``"reference"`` needs
    ``reference=(I_and, I_or)``, the interactions of the reference epoch.

    Example:
        >>> shape_predictor("prior", n=3)(0.0)
        tensor([0.4286, 0.4286, 0.1429], dtype=torch.float64)
    """
    if mode == "prior":
        if n is None:
            raise ValueError('mode "prior" needs n, the number of players')
        return lambda s: prior_shape(n, s)
    if mode == "reference":
        if reference is None:
            raise ValueError('mode "reference" needs reference=(I_and, I_or)')
        # Convert once here rather than on every evaluation of the search.
        flat_and, flat_or = _as_interaction_batch(*reference)
        return lambda s: reference_shape(flat_and, flat_or, s)
    raise ValueError(f'mode must be "prior" or "reference", got {mode!r}')


# ---------------------------------------------------------------------------------------------
# Fitting the noise level
# ---------------------------------------------------------------------------------------------


def _measured_shape(shape: torch.Tensor) -> torch.Tensor:
    shape = torch.as_tensor(shape).detach().double()
    if shape.dim() != 1 or shape.numel() < 1:
        raise ValueError(f"expected a 1-D shape over orders 1..n, got shape {tuple(shape.shape)}")
    if not bool(torch.isfinite(shape).all()) or bool((shape < 0).any()):
        raise ValueError("a shape must be finite and non-negative")
    # Accept raw strength A(k) as well: only the distribution over orders matters.
    return strength_shape(shape)


def _golden_section(
    objective: Callable[[float], float], lo: float, hi: float, tol: float
) -> tuple[float, float]:
    """Minimise a unimodal ``objective`` on ``[lo, hi]``; return the best point seen and its value.

    Golden-section search compares values only, so the kinks of an L1 objective do not hurt it.
    """
    best_x, best_f = lo, objective(lo)
    f_hi = objective(hi)
    if f_hi < best_f:
        best_x, best_f = hi, f_hi
    x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    f1, f2 = objective(x1), objective(x2)
    while hi - lo > tol:
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - _GOLDEN * (hi - lo)
            f1 = objective(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + _GOLDEN * (hi - lo)
            f2 = objective(x2)
        for x, f in ((x1, f1), (x2, f2)):
            if f < best_f:
                best_x, best_f = x, f
    return best_x, best_f


def fit_noise_level(
    shape: torch.Tensor,
    predictor: ShapePredictor,
    bounds: tuple[float, float] = (1e-4, 1e2),
    grid_points: int = 41,
    tol: float = 1e-9,
) -> NoiseFit:
    """Find the ``s`` in ``bounds`` whose predicted shape is closest (L1) to a measured ``shape``.

    The search runs over ``log s``: a coarse grid of ``grid_points`` levels finds the best basin,
    then a golden-section search refines it until the bracket is narrower than ``tol`` in
    ``log s``. ``predictor`` maps a level ``s`` to a shape over orders ``1..n`` (see
    :func:`shape_predictor`). A fit that lands on a bound means the shape lies outside the
    range the bounds allow.

    Example:
        >>> import torch
        >>> fit = fit_noise_level(prior_shape(6, 2.0), lambda s: prior_shape(6, s))
        >>> round(fit.s, 6), fit.error < 1e-6
        (2.0, True)
    """
    low, high = bounds
    if not (0.0 < low < high < math.inf):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds}")
    if grid_points < 2:
        raise ValueError(f"grid_points must be at least 2, got {grid_points}")
    target = _measured_shape(shape)

    def distance(log_s: float) -> float:
        predicted = predictor(math.exp(log_s))
        if predicted.shape != target.shape:
            raise ValueError(
                f"the predictor returned a shape of {tuple(predicted.shape)} orders, "
                f"the measured shape has {tuple(target.shape)}"
            )
        return float((predicted.double() - target.to(predicted.device)).abs().sum())

    grid = torch.linspace(math.log(low), math.log(high), grid_points, dtype=torch.float64).tolist()
    values = [distance(x) for x in grid]
    best = min(range(grid_points), key=values.__getitem__)
    # Refine inside the neighbours of the best grid point, where the minimum must lie if the
    # distance is unimodal at the grid's resolution.
    x, f = _golden_section(distance, grid[max(best - 1, 0)], grid[min(best + 1, grid_points - 1)], tol)
    if values[best] < f:
        x, f = grid[best], values[best]
    return NoiseFit(s=math.exp(x), error=f)
