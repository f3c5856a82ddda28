"""Which samples a run measures: a seeded draw from the first samples of the data, made once.

The monitor (from its validation loader) and ``analyze`` (from tensors or a file) draw the same
samples for the same data and seed: ``num_samples`` of the first ``POOL_FACTOR * num_samples``,
chosen by a seeded permutation and kept in data order. A private generator is used, so the
global random state is never touched.

Example:
    >>> import torch
    >>> inputs, targets = torch.arange(100.0)[:, None], torch.arange(100)
    >>> chosen, labels = draw_samples(inputs, targets, num_samples=3, seed=0)
    >>> chosen.shape, bool((labels == chosen[:, 0].long()).all()), int(chosen.max()) < 12
    (torch.Size([3, 1]), True, True)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["POOL_FACTOR", "pool_size", "draw_indices", "draw_samples"]

# Samples are drawn from the first POOL_FACTOR * num_samples samples of the data.
POOL_FACTOR = 4


def pool_size(num_samples: int) -> int:
    """How many leading samples of the data the draw chooses from."""
    return POOL_FACTOR * num_samples


def draw_indices(count: int, num_samples: int, seed: int) -> Tensor:
    """The positions (in data order) of the samples drawn from data of ``count`` samples.

    Example:
        >>> draw_indices(100, num_samples=3, seed=0).tolist() == sorted(draw_indices(100, 3, 0).tolist())
        True
    """
    pool = min(count, pool_size(num_samples))
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(pool, generator=generator)[:num_samples].sort().values


def draw_samples(
    inputs: Tensor, targets: Tensor | None, num_samples: int, seed: int
) -> tuple[Tensor, Tensor | None]:
    """``num_samples`` of the first :func:`pool_size` samples (fewer if there are fewer), seeded, in order."""
    chosen = draw_indices(inputs.shape[0], num_samples, seed)
    return inputs[chosen], None if targets is None else targets[chosen]
