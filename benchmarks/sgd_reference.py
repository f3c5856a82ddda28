"""The paper group's extraction procedure (dense matrices + SGD), re-implemented as a baseline.

What it does, from the description in issue 6 and the facts (default values only) read in the
group's public code: build the two dense ``2^n x 2^n`` transform matrices once, ``I_and = A v_and``
and ``I_or = B v_or`` with ``v_and = (v + q) / 2 + gamma`` and ``v_or = (v + q) / 2 - gamma``, and
run SGD with momentum 0.9 on the L1 norm of the interactions over ``gamma`` and ``q``, with the
learning rate decaying geometrically from ``lr`` to ``lr / 10`` and ``q`` clamped to
``|q| <= tau = q_ratio |v(N) - v(empty)|`` after every step.

Defaults and where they come from:

* ``lr = 1e-5``, ``iterations = 10_000``, ``q_ratio = 0.04`` (with ``tau`` measured on
  ``|v(N) - v(empty)|``): the usage example of the README of ``sjtu-xai-lab/interaction-concept``
  (``--sparsify-qthres=0.04 --sparsify-qstd=vN-v0 --sparsify-lr=1e-5 --sparsify-niter=10000``).
  ``eval_interaction_text.py`` of the same group's ``sjtu-xai-lab/generalizable-interaction``
  defaults to ``lr = 1e-7`` and 20,000 iterations; the issue names 10,000 iterations, so the
  README example is taken as the source default here.
* ``gamma`` and ``q`` start at zero, every entry (the empty set's included) is free, the optimiser
  is plain SGD with momentum 0.9 (no dampening, no weight decay), the schedule is
  ``logspace(log10 lr, log10 lr - 1, iterations)`` with ``iterations - 1`` steps (the last
  iteration only evaluates), and ``q`` is clamped to the box: ``_train_p_q`` in
  ``src/harsanyi/and_or_harsanyi_utils.py`` of ``sjtu-xai-lab/interaction-concept``.
* Matrices in float32: that code builds them with ``.float()``. ``dtype`` changes it.

One deliberate difference: that code's loss also counts ``|I_and(empty)| + |I_or(empty)|``.
Here the loss sums over nonempty sets only, which is exactly the objective of this package's
LP (``docs/extraction.md``, "The problem"), so that the objectives of the
two methods are the same function and their ratio is meaningful. Its gradient is that of
autograd on ``|x|`` (``sign(x)``, zero at zero), written out by hand to skip autograd's overhead.

Samples are independent (the loss is a sum over samples and their parameters are disjoint), so
a batch runs as one matrix product per transform; each sample follows the trajectory it would
follow alone (up to float rounding), and the batch only reads the matrices fewer times than
one-by-one runs.

Example:
    >>> import torch
    >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)  # an AND of two players
    >>> run = sgd_extraction(v, tau=torch.zeros(1), lr=1e-2, iterations=2000)
    >>> bool(abs(float(run.objective[0]) - 1.0) < 0.05)
    True
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # helpers.oracles: the exact LP

from helpers.oracles import transform_matrix  # noqa: E402

from lightning_interactions.extraction.and_or import extraction_objective  # noqa: E402
from lightning_interactions.extraction.transforms import (  # noqa: E402
    and_interactions,
    num_players_of,
    or_interactions,
)

__all__ = [
    "SOURCE_LR",
    "SOURCE_ITERATIONS",
    "SgdRun",
    "reference_matrices",
    "dense_objective",
    "fast_objective",
    "objective_gradient",
    "scheduled_lr",
    "sgd_extraction",
]

SOURCE_LR = 1e-5
SOURCE_ITERATIONS = 10_000
MOMENTUM = 0.9


@dataclass
class SgdRun:
    """Result of :func:`sgd_extraction` for a batch of samples (tensors have a batch dimension).

    ``objective`` is ``sum_{S nonempty} |I_and(S)| + |I_or(S)|`` of the final ``gamma`` and ``q``,
    recomputed in float64 with the fast transforms; ``iterations`` is how many were run (fewer
    than asked when ``time_limit`` stopped the loop); ``seconds`` is the wall time of the loop.
    """

    gamma: torch.Tensor
    q: torch.Tensor
    objective: torch.Tensor
    iterations: int
    seconds: float


def reference_matrices(n: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense AND and OR matrices ``A``, ``B`` with ``I_and = A v`` and ``I_or = B v`` (``4^n``)."""
    and_matrix = torch.from_numpy(transform_matrix(and_interactions, n)).to(dtype)
    or_matrix = torch.from_numpy(transform_matrix(or_interactions, n)).to(dtype)
    return and_matrix, or_matrix


def dense_objective(
    v: torch.Tensor, gamma: torch.Tensor, q: torch.Tensor, and_matrix: torch.Tensor, or_matrix: torch.Tensor
) -> torch.Tensor:
    """The loss SGD minimises, per sample: ``sum_{S nonempty} |(A v_and)_S| + |(B v_or)_S|``."""
    half = 0.5 * (v + q)
    I_and = (half + gamma) @ and_matrix.T
    I_or = (half - gamma) @ or_matrix.T
    return I_and[..., 1:].abs().sum(-1) + I_or[..., 1:].abs().sum(-1)


def fast_objective(v: torch.Tensor, gamma: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The same objective in float64 through this package's butterflies (no dense matrix)."""
    v, gamma, q = v.double(), gamma.double(), q.double()
    half = 0.5 * (v + q)
    return extraction_objective(and_interactions(half + gamma), or_interactions(half - gamma))


def objective_gradient(
    v: torch.Tensor, gamma: torch.Tensor, q: torch.Tensor, and_matrix: torch.Tensor, or_matrix: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of :func:`dense_objective` with respect to ``gamma`` and ``q`` (autograd's, by hand).

    ``d|x|/dx`` is ``sign(x)`` (zero at zero, as in autograd); the chain rule through
    ``v_and = (v + q) / 2 + gamma`` and ``v_or = (v + q) / 2 - gamma`` gives
    ``A' s_and - B' s_or`` for ``gamma`` and ``(A' s_and + B' s_or) / 2`` for ``q``.
    """
    half = 0.5 * (v + q)
    sign_and = torch.sign((half + gamma) @ and_matrix.T)
    sign_or = torch.sign((half - gamma) @ or_matrix.T)
    sign_and[..., 0] = 0.0  # the empty set is not in the objective
    sign_or[..., 0] = 0.0
    grad_and = sign_and @ and_matrix
    grad_or = sign_or @ or_matrix
    return grad_and - grad_or, 0.5 * (grad_and + grad_or)


def scheduled_lr(lr: float, step: int, iterations: int) -> float:
    """Rate of gradient step ``step``: ``lr`` to ``lr / 10`` evenly on a log scale over ``iterations``.

    Entry ``step`` of ``numpy.logspace(log10(lr), log10(lr) - 1, iterations)``; the last entry is never
    used, since the last iteration only evaluates.
    """
    return lr * 0.1 ** (step / max(iterations - 1, 1))


def sgd_extraction(
    v: torch.Tensor,
    tau: torch.Tensor | float,
    lr: float = SOURCE_LR,
    iterations: int = SOURCE_ITERATIONS,
    momentum: float = MOMENTUM,
    matrices: tuple[torch.Tensor, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    time_limit: float | None = None,
) -> SgdRun:
    """Run the reference SGD on a batch of value vectors ``v`` (``(batch, 2^n)`` or ``(2^n,)``).

    Args:
        v: outputs on every mask.
        tau: the box half-width of ``q``, a number or one per sample.
        lr: first learning rate; it decays geometrically to ``lr / 10`` at the last iteration.
        iterations: iterations of the schedule (``iterations - 1`` gradient steps, as in the source).
        momentum: SGD momentum (0.9 in the source).
        matrices: prebuilt ``(A, B)`` from :func:`reference_matrices`; built here when omitted.
        dtype: arithmetic dtype of the loop (float32 in the source).
        time_limit: stop the loop after this many seconds even if the schedule is not finished;
            the schedule itself is not shortened (pass a matching ``iterations`` for that).

    Returns:
        An :class:`SgdRun` with the last iterate (the source returns the last iterate too).
    """
    if iterations < 1 or lr <= 0:
        raise ValueError(f"need iterations >= 1 and lr > 0, got {iterations} and {lr}")
    values = v.reshape(-1, v.shape[-1])
    n = num_players_of(values)
    and_matrix, or_matrix = matrices if matrices is not None else reference_matrices(n, dtype)
    and_matrix, or_matrix = and_matrix.to(dtype), or_matrix.to(dtype)
    work = values.to(dtype)
    bound = torch.as_tensor(tau, dtype=dtype).reshape(-1, 1)
    if len(bound) not in (1, len(work)):
        raise ValueError(f"tau needs one value or one per sample ({len(work)}), got {len(bound)}")
    if not (torch.isfinite(work).all() and torch.isfinite(bound).all()):
        raise ValueError("v and tau must be finite")
    bound = bound.expand(len(work), 1)
    gamma = torch.zeros_like(work)
    q = torch.zeros_like(work)
    gamma_velocity = torch.zeros_like(work)
    q_velocity = torch.zeros_like(work)
    done = 1
    start = time.perf_counter()
    for step in range(iterations - 1):
        if time_limit is not None and time.perf_counter() - start >= time_limit:
            break
        grad_gamma, grad_q = objective_gradient(work, gamma, q, and_matrix, or_matrix)
        # torch.optim.SGD's momentum (no dampening): velocity = momentum * velocity + gradient.
        gamma_velocity.mul_(momentum).add_(grad_gamma)
        q_velocity.mul_(momentum).add_(grad_q)
        rate = scheduled_lr(lr, step, iterations)
        gamma.sub_(rate * gamma_velocity)
        q.sub_(rate * q_velocity)
        q = torch.maximum(torch.minimum(q, bound), -bound)
        done = step + 2
    seconds = time.perf_counter() - start
    shape = v.shape
    gamma64, q64 = gamma.double().reshape(shape), q.double().reshape(shape)
    objective = fast_objective(v.double(), gamma64, q64)
    return SgdRun(gamma64, q64, objective, done, seconds)
