"""Measuring under DDP: each process measures its share of the samples, then everyone gathers.

Every process measures the same number of samples (the last share is padded by repeating its last
sample), so that the tensors all processes gather have equal shapes; padding rows are dropped in
the gather, and the kept samples come back in sample order.

Example:
    >>> shard_indices(total=5, world_size=2, rank=1)
    ([3, 4, 4], [True, True, False])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["shard_indices", "first_failing_rank", "pad_shard", "gather_shards"]


def shard_indices(total: int, world_size: int, rank: int) -> tuple[list[int], list[bool]]:
    """This process's sample indices (padded to an equal share) and which of them are its own."""
    share = -(-total // world_size)
    span = range(rank * share, (rank + 1) * share)
    return [min(i, total - 1) for i in span], [i < total for i in span]


def first_failing_rank(trainer: Any, device: torch.device, failed: bool) -> int | None:
    """The lowest rank whose measurement failed, or None; every process learns the same answer."""
    if trainer.world_size == 1:
        return trainer.global_rank if failed else None
    flag = torch.tensor([float(failed)], device=device)
    flags = trainer.strategy.all_gather(flag).reshape(-1)
    failing = flags.nonzero().flatten()
    return int(failing[0]) if failing.numel() else None


def pad_shard(result: Any, indices: list[int], own: list[bool], device: torch.device) -> tuple[Tensor, ...]:
    """This process's ``(I_and, I_or, gap, kept, owner)``: a row per index, zeros for a skipped sample.

    ``result`` is the :class:`~lightning_interactions.engine.InteractionResult` of the samples at
    ``indices``; ``kept`` is 1 for a sample that was measured and is this process's own.
    """
    share, size = len(indices), 2**result.num_players
    I_and = torch.zeros(share, size, dtype=torch.float64, device=device)
    I_or = torch.zeros_like(I_and)
    gap = torch.zeros(share, dtype=torch.float64, device=device)
    kept = torch.zeros(share, dtype=torch.float64, device=device)
    rows = result.sample_indices.to(device)
    I_and[rows], I_or[rows], gap[rows], kept[rows] = result.I_and, result.I_or, result.gap, 1.0
    owner = torch.tensor(indices, device=device)
    return I_and, I_or, gap, kept * torch.tensor(own, dtype=torch.float64, device=device), owner


def gather_shards(
    trainer: Any, local: tuple[Tensor, ...], total: int
) -> tuple[Tensor, Tensor, Tensor, list[int]]:
    """Everyone's kept interactions and gaps in sample order, on the CPU; and the skipped samples."""
    gathered = [trainer.strategy.all_gather(t) for t in local]
    if trainer.world_size > 1:
        gathered = [t.reshape(-1, *t.shape[2:]) for t in gathered]
    I_and, I_or, gap, kept, owner = gathered
    keep = kept > 0
    order = owner[keep].argsort()
    skipped = sorted(set(range(total)) - set(owner[keep].tolist()))
    return I_and[keep][order].cpu(), I_or[keep][order].cpu(), gap[keep][order].cpu(), skipped
