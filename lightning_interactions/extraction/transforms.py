"""Fast O(n 2^n) transforms between values on masks and AND / OR interactions.

Values live on a ``(..., 2^n)`` tensor indexed by integer masks: bit ``i`` of the index set
means player ``i`` is present (see ``docs/theory.md``). Every transform here is a Kronecker
power of a 2x2 matrix, applied as a butterfly one bit at a time, so no ``2^n x 2^n`` matrix
is ever built and memory stays ``O(batch * 2^n)``.

Example:
    >>> import torch
    >>> v = torch.tensor([[0.0, 1.0, 2.0, 5.0]])  # n = 2 players
    >>> and_interactions(v)
    tensor([[0., 1., 2., 2.]])
    >>> torch.allclose(inverse_and_interactions(and_interactions(v)), v)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch

__all__ = [
    "num_players_of",
    "order_index",
    "kron_butterfly",
    "and_interactions",
    "inverse_and_interactions",
    "and_transpose",
    "inverse_and_transpose",
    "or_interactions",
    "inverse_or_interactions",
    "or_transpose",
    "inverse_or_transpose",
]

# One entry of a 2x2 factor: a number, or a tensor that broadcasts against ``(batch, 1, 1)``.
Entry = Union[float, torch.Tensor]


def num_players_of(values: torch.Tensor) -> int:
    """Return ``n`` for a tensor whose last dimension has size ``2^n``; raise otherwise."""
    if values.dim() == 0:
        raise ValueError("expected a tensor of shape (..., 2^n), got a scalar")
    size = values.shape[-1]
    if size < 1 or size & (size - 1):
        raise ValueError(f"the last dimension must have size 2^n (one value per mask), got {size}")
    return size.bit_length() - 1


def order_index(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Return ``|S|`` (the number of set bits) for every mask ``S`` in ``0 .. 2^n - 1``."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    masks = torch.arange(2**n, device=device, dtype=torch.int64)
    order = torch.zeros_like(masks)
    for bit in range(n):
        order += (masks >> bit) & 1
    return order


def _as_batch(values: torch.Tensor) -> tuple[torch.Tensor, int]:
    if not values.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {values.dtype}")
    n = num_players_of(values)
    return values.reshape(-1, 2**n), n


def _unit_triangular_butterfly(values: torch.Tensor, sign: float, upward: bool) -> torch.Tensor:
    """Kronecker power of ``[[1, 0], [sign, 1]]`` (upward) or ``[[1, sign], [0, 1]]``.

    Works in place on a copy: for each bit the half with the bit set (``hi``) gets
    ``sign * lo`` added (upward), or the half without it gets ``sign * hi`` added.
    """
    flat, n = _as_batch(values)
    out = flat.clone()
    batch = out.shape[0]
    for bit in range(n):
        halves = out.view(batch, 2 ** (n - 1 - bit), 2, 2**bit)
        lo, hi = halves[:, :, 0, :], halves[:, :, 1, :]
        if upward:
            hi.add_(lo, alpha=sign)
        else:
            lo.add_(hi, alpha=sign)
    return out.view(values.shape)


def kron_butterfly(values: torch.Tensor, factor: Sequence[Sequence[Entry]]) -> torch.Tensor:
    """Apply the n-fold Kronecker power of a 2x2 ``factor`` along the last dimension.

    ``factor[r][c]`` maps input bit value ``c`` to output bit value ``r`` (row: output bit,
    column: input bit), the same for every player. Entries may be numbers or tensors that
    broadcast against ``(batch, 1, 1)`` for a factor that differs per batch row.
    """
    flat, n = _as_batch(values)
    (f00, f01), (f10, f11) = factor
    out = flat
    batch = out.shape[0]
    for bit in range(n):
        halves = out.view(batch, 2 ** (n - 1 - bit), 2, 2**bit)
        lo, hi = halves[:, :, 0, :], halves[:, :, 1, :]
        out = torch.stack((f00 * lo + f01 * hi, f10 * lo + f11 * hi), dim=2).view(batch, -1)
    return out.view(values.shape)


def and_interactions(values: torch.Tensor) -> torch.Tensor:
    """Harsanyi dividends: ``I(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T)`` for every mask."""
    return _unit_triangular_butterfly(values, sign=-1.0, upward=True)


def inverse_and_interactions(interactions: torch.Tensor) -> torch.Tensor:
    """Values from AND interactions: ``v(T) = sum_{S subset of T} I(S)``."""
    return _unit_triangular_butterfly(interactions, sign=1.0, upward=True)


def and_transpose(duals: torch.Tensor) -> torch.Tensor:
    """Apply the transpose of the AND transform: ``y(T) = sum_{S superset of T} (-1)^{|S|-|T|} x(S)``."""
    return _unit_triangular_butterfly(duals, sign=-1.0, upward=False)


def or_interactions(values: torch.Tensor) -> torch.Tensor:
    """OR interactions of docs/theory.md section 1.

    With ``u(T) = v(N \\ T)``: ``I(S) = -sum_{T subset of S} (-1)^{|S|-|T|} u(T)`` for nonempty
    ``S`` and ``I(empty) = v(empty)``. The complement of mask ``m`` is ``2^n - 1 - m``, which is
    a flip of the last dimension.
    """
    out = -and_interactions(values.flip(-1))
    out[..., 0] = values[..., 0]
    return out


def inverse_or_interactions(interactions: torch.Tensor) -> torch.Tensor:
    """Values from OR interactions: ``v(T) = I(empty) + sum_{S nonempty, S n T nonempty} I(S)``."""
    _as_batch(interactions)  # validate before indexing
    # Undo the negation; the Moebius value at the empty set is u(empty) = v(N), the sum of all.
    moebius = -interactions
    moebius[..., 0] = interactions.sum(dim=-1)
    return inverse_and_interactions(moebius).flip(-1)


def or_transpose(duals: torch.Tensor) -> torch.Tensor:
    """Apply the transpose of the OR transform (``<or_interactions(v), y> = <v, or_transpose(y)>``)."""
    _as_batch(duals)  # validate before indexing
    # Row "empty" of the OR transform is v(empty) alone, so dual(empty) reaches entry "empty" only;
    # routing it through the butterfly and cancelling it afterwards would lose tiny entries.
    rest = duals.clone()
    rest[..., 0] = 0
    out = -and_transpose(rest).flip(-1)
    out[..., 0] += duals[..., 0]
    return out


def inverse_and_transpose(duals: torch.Tensor) -> torch.Tensor:
    """Apply the transpose of the inverse AND transform: ``y(S) = sum_{T superset of S} x(T)``."""
    return _unit_triangular_butterfly(duals, sign=1.0, upward=False)


def inverse_or_transpose(duals: torch.Tensor) -> torch.Tensor:
    """Apply the transpose of :func:`inverse_or_interactions`."""
    out = inverse_and_transpose(duals.flip(-1))
    # Transpose of the step that negates every entry but puts the sum of all at "empty".
    head = out[..., :1].clone()
    out = head - out
    out[..., :1] = head
    return out
