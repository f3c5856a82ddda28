"""Seeded k-means of every point cloud of a batch at once, for :class:`PointCloudMasker`.

Deterministic: a seeded k-means++ start on a local generator, exact squared distances, and
sums by a one-hot matrix product rather than ``scatter_add``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_interactions.masking._common import _generator


def _cluster_sums(points: Tensor, ids: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Per-cluster coordinate sums (B, k, D) and point counts (B, k)."""
    # A one-hot matrix product rather than scatter_add: deterministic on GPUs too.
    one_hot = torch.nn.functional.one_hot(ids, k).to(points.dtype)  # (B, P, k)
    return one_hot.transpose(1, 2) @ points, one_hot.sum(dim=1)


def _squared_distances(points: Tensor, centres: Tensor) -> Tensor:
    # Explicit differences rather than cdist's matmul trick: exact, so ties break the same way.
    return (points[:, :, None, :] - centres[:, None, :, :]).square().sum(dim=-1)


def _reseed_empty(points: Tensor, centres: Tensor, ids: Tensor, counts: Tensor) -> Tensor:
    """Move each empty cluster's centre onto the point farthest from its own centre."""
    empty = counts == 0
    if not bool(empty.any()):
        return centres
    centres = centres.clone()
    own = centres.gather(1, ids[..., None].expand(-1, -1, points.shape[-1]))
    far = (points - own).square().sum(dim=-1)  # (B, P)
    rows = torch.arange(points.shape[0])
    for j in range(centres.shape[1]):
        index = far.argmax(dim=1)
        hit = empty[:, j]
        centres[rows[hit], j] = points[rows[hit], index[hit]]
        # A point that became a centre is not picked again for another empty cluster.
        far[rows[hit], index[hit]] = -1.0
    return centres


def _kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Seeded k-means++ initial centres (B, k, D): each new centre is drawn with weight D^2."""
    rows = torch.arange(points.shape[0])
    centre = points[rows, torch.randint(points.shape[1], (points.shape[0],), generator=generator)]
    centres = [centre]
    closest = (points - centre[:, None]).square().sum(dim=-1)  # (B, P)
    for _ in range(1, k):
        # A cloud whose points all sit on centres already has no D^2 mass: draw uniformly.
        weights = torch.where(closest.sum(dim=1, keepdim=True) > 0, closest, torch.ones_like(closest))
        centre = points[rows, torch.multinomial(weights, 1, generator=generator)[:, 0]]
        centres.append(centre)
        closest = torch.minimum(closest, (points - centre[:, None]).square().sum(dim=-1))
    return torch.stack(centres, dim=1)


def _kmeans(points: Tensor, k: int, iters: int, seed: int) -> Tensor:
    """Lloyd's k-means for every cloud of ``points`` (B, P, D) at once; returns ids (B, P)."""
    centres = _kmeans_plus_plus(points, k, _generator(seed))
    for _ in range(iters):
        ids = _squared_distances(points, centres).argmin(dim=-1)
        sums, counts = _cluster_sums(points, ids, k)
        means = sums / counts.clamp(min=1)[..., None]
        centres = torch.where(counts[..., None] > 0, means, centres)
        centres = _reseed_empty(points, centres, ids, counts)
    return _squared_distances(points, centres).argmin(dim=-1)
