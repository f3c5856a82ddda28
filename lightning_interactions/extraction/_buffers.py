"""Work buffers kept between interior-point steps.

The Newton matrices, lattice-sum tables and factors of one extraction have the same shape at
every step; allocating them afresh each time cost more than the arithmetic that fills them.
"""

from __future__ import annotations

import torch


def kept(
    buffer: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor, grow_only: bool = False
) -> torch.Tensor:
    """``buffer`` if it has ``shape`` (``grow_only``: at least as many entries, for a flat
    ``shape``) and ``like``'s dtype and device; a new, uninitialised one otherwise.

    Example:
        >>> weights = torch.zeros(2, 4)
        >>> first = kept(None, (2, 8), weights)
        >>> kept(first, (2, 8), weights) is first
        True
        >>> kept(first, (2, 8), weights.double()) is first
        False
    """
    fits = buffer is not None and (buffer.dtype, buffer.device) == (like.dtype, like.device)
    if fits and grow_only:
        fits = buffer.numel() >= shape[0]
    elif fits:
        fits = tuple(buffer.shape) == tuple(shape)
    return buffer if fits else like.new_empty(shape)
