"""Interaction strength by order (docs/theory.md section 1), as functions and as a torchmetrics Metric.

For samples ``x`` and order ``k = 1..n``:
``A(k) = mean_x sum_{|S| = k} (|I_and(S|x)| + |I_or(S|x)|)``; the shape is ``A(k) / sum_j A(j)``
and the complexity is the mean order ``sum_k k * shape(k)``. Order 0 is not an interaction.

Example:
    >>> import torch
    >>> I_and = torch.tensor([[5.0, 1.0, 0.0, 2.0]])  # n = 2: masks {}, {0}, {1}, {0, 1}
    >>> I_or = torch.zeros(1, 4)
    >>> per_sample_strength(I_and, I_or)
    tensor([[1., 2.]])
    >>> complexity(strength_shape(torch.tensor([1.0, 2.0])))
    tensor(1.6667)
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric

from lightning_interactions.extraction.transforms import num_players_of, order_index

__all__ = [
    "drop_residue",
    "per_sample_strength",
    "strength_shape",
    "complexity",
    "signed_strength",
    "InteractionStrength",
]


def _sum_by_order(values: torch.Tensor, n: int) -> torch.Tensor:
    """Sum ``(batch, 2^n)`` values over the masks of each order; returns ``(batch, n)``, orders 1..n."""
    order = order_index(n, device=values.device)
    sums = values.new_zeros(values.shape[0], n + 1)
    sums.index_add_(1, order, values)
    return sums[:, 1:]


def per_sample_strength(I_and: torch.Tensor, I_or: torch.Tensor) -> torch.Tensor:
    """Return ``sum_{|S|=k} |I_and(S)| + |I_or(S)|`` for every sample and ``k = 1..n``: ``(batch, n)``."""
    if I_and.shape != I_or.shape:
        raise ValueError(
            f"I_and and I_or must have one shape, got {tuple(I_and.shape)} and {tuple(I_or.shape)}"
        )
    n = num_players_of(I_and)
    flat_and = I_and.reshape(-1, 2**n)
    flat_or = I_or.reshape(-1, 2**n)
    return _sum_by_order(flat_and.abs() + flat_or.abs(), n)


def drop_residue(I_and: torch.Tensor, I_or: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The interactions with what the extraction's certificate does not resolve set to zero.

    Per sample, with ``objective = sum_{S nonempty} |I_and(S)| + |I_or(S)|`` and ``m = 2 (2^n - 1)``
    nonempty terms, every term with ``|I(S)| <= tol * objective / m`` is residue: removing all of
    them changes the objective by at most ``tol * objective``, the slack within which the
    extraction is certified optimal, so none of them is a measured interaction
    (``docs/theory.md``, "Residue"). ``I(empty)`` is kept.

    Example:
        >>> I_and = torch.tensor([[5.0, 1.0, 1e-9, 2.0]])  # n = 2, so m = 6
        >>> drop_residue(I_and, torch.zeros(1, 4), tol=0.01)[0]
        tensor([[5., 1., 0., 2.]])
    """
    n = num_players_of(I_and)
    flat_and, flat_or = I_and.reshape(-1, 2**n), I_or.reshape(-1, 2**n)
    objective = flat_and[:, 1:].abs().sum(dim=1) + flat_or[:, 1:].abs().sum(dim=1)
    floor = (tol * objective / (2 * (2**n - 1)))[:, None]
    keep_empty = torch.zeros_like(flat_and, dtype=torch.bool)
    keep_empty[:, 0] = True

    def cleaned(values: torch.Tensor) -> torch.Tensor:
        return torch.where((values.abs() > floor) | keep_empty, values, torch.zeros_like(values))

    return cleaned(flat_and).reshape(I_and.shape), cleaned(flat_or).reshape(I_or.shape)


def strength_shape(strength: torch.Tensor) -> torch.Tensor:
    """Normalise strength by order over its last dimension to sum to one (all zeros stay zeros)."""
    total = strength.sum(dim=-1, keepdim=True)
    return strength / torch.where(total > 0, total, torch.ones_like(total))


def complexity(shape: torch.Tensor) -> torch.Tensor:
    """Mean order ``sum_k k * shape(k)`` of a shape over orders ``1..n`` (last dimension)."""
    orders = torch.arange(1, shape.shape[-1] + 1, dtype=shape.dtype, device=shape.device)
    return (shape * orders).sum(dim=-1)


def signed_strength(
    I_and: torch.Tensor, I_or: torch.Tensor, salient_ratio: float = 0.03, v_span: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The paper group's view: signed strength of salient interactions per order.

    An interaction is salient when ``|I| > salient_ratio * mean_x |v(N) - v(empty)|``; ``v_span``
    gives ``|v(N) - v(empty)|`` per sample (by default recovered from the interactions).
    Returns ``positive`` and ``negative`` sums per order ``1..n`` (AND and OR together, divided by
    the number of samples) and ``count``, the mean number of salient interactions per order.
    """
    n = num_players_of(I_and)
    flat_and = I_and.reshape(-1, 2**n)
    flat_or = I_or.reshape(-1, 2**n)
    if v_span is None:
        # v(N) - v(empty) = sum of all nonempty AND and OR interactions (universal matching).
        v_span = (flat_and[:, 1:].sum(dim=1) + flat_or[:, 1:].sum(dim=1)).abs()
    threshold = salient_ratio * v_span.abs().mean()
    both = torch.cat((flat_and, flat_or), dim=0)
    salient = both.abs() > threshold
    kept = torch.where(salient, both, torch.zeros_like(both))
    samples = flat_and.shape[0]
    return {
        "positive": _sum_by_order(kept.clamp(min=0), n).sum(dim=0) / samples,
        "negative": _sum_by_order(kept.clamp(max=0), n).sum(dim=0) / samples,
        "count": _sum_by_order(salient.to(both.dtype), n).sum(dim=0) / samples,
    }


class InteractionStrength(Metric):
    """Strength by order accumulated over samples, synced across processes.

    ``update(I_and, I_or)`` takes ``(batch, 2^n)`` interactions; ``compute()`` returns a dict with
    ``strength`` (raw ``A(k)``, ``k = 1..n``), ``shape`` and ``complexity``.

    Example:
        >>> import torch
        >>> metric = InteractionStrength(num_players=2)
        >>> metric.update(torch.tensor([[0.0, 1.0, 1.0, 2.0]]), torch.zeros(1, 4))
        >>> metric.compute()["complexity"]
        tensor(1.5000, dtype=torch.float64)
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, num_players: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_players < 1:
            raise ValueError(f"num_players must be at least 1, got {num_players}")
        self.num_players = num_players
        zeros = torch.zeros(num_players, dtype=torch.float64)
        self.add_state("strength_sum", default=zeros, dist_reduce_fx="sum")
        self.add_state("samples", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, I_and: torch.Tensor, I_or: torch.Tensor) -> None:
        """Add the strength by order of a batch of samples."""
        n = num_players_of(I_and)
        if n != self.num_players:
            raise ValueError(f"expected interactions of {self.num_players} players, got {n}")
        strength = per_sample_strength(I_and.double(), I_or.double())
        self.strength_sum += strength.sum(dim=0).to(self.strength_sum.device)
        self.samples += strength.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """Return raw strength ``A(k)``, its shape and the complexity (mean order)."""
        strength = self.strength_sum / self.samples.clamp(min=1)
        shape = strength_shape(strength)
        return {"strength": strength, "shape": shape, "complexity": complexity(shape)}
