"""Clusters of points as players: :class:`PointCloudMasker`, for ``(B, P, 3)`` point clouds."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_interactions.masking._common import (
    _DEFAULT_NUM_PLAYERS,
    _check_index_range,
    _check_tensor,
    _keep,
    _player_tensor,
)
from lightning_interactions.masking._kmeans import _cluster_sums, _kmeans
from lightning_interactions.masking.base import (
    _INTEGER_DTYPES,
    Masker,
    check_num_players,
    presence,
)

__all__ = ["PointCloudMasker"]


class PointCloudMasker(Masker):
    """Clusters of points as players: inputs ``(B, P, 3)`` point clouds.

    The clusters are given (``clusters``: cluster ids in ``0 .. n-1``, shape ``(P,)`` for every
    sample or ``(B, P)`` for a batch of that size) or found by a seeded k-means per sample
    (k-means++ start and ``iters`` Lloyd steps, in float64 on the CPU, so the same on every device; empty
    clusters are re-seeded at the farthest point, so a cluster stays empty only when a cloud
    has fewer distinct points than players, and then that player changes nothing). A masked
    cluster's points move to the cluster's centre, the centroid of its points.
    ``num_players`` defaults to ``clusters.max() + 1`` for given clusters, else 10.

    Example:
        >>> cloud = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [10, 0, 0], [12, 0, 0]]])
        >>> masker = PointCloudMasker(clusters=torch.tensor([0, 0, 1, 1]))
        >>> masker.apply(cloud, masker.select_players(cloud), torch.tensor([2]))[0, 0, :, 0]
        tensor([ 1.,  1., 10., 12.])
    """

    supports_out = True

    def __init__(
        self, num_players: int | None = None, clusters: Tensor | None = None, iters: int = 20
    ) -> None:
        if clusters is not None:
            clusters = self._check_clusters(clusters, num_players)
            num_players = int(clusters.max()) + 1 if num_players is None else num_players
        elif num_players is None:
            num_players = _DEFAULT_NUM_PLAYERS
        self.num_players = check_num_players(num_players, "PointCloudMasker")
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
            raise ValueError(f"PointCloudMasker: iters must be a non-negative int, got {iters!r}")
        self.clusters = clusters
        self.iters = iters

    @staticmethod
    def _check_clusters(clusters: Tensor, num_players: int | None) -> Tensor:
        is_ids = isinstance(clusters, Tensor) and clusters.dtype in _INTEGER_DTYPES
        if not is_ids or clusters.dim() not in (1, 2):
            raise ValueError("PointCloudMasker: clusters must be integer cluster ids of shape (P,) or (B, P)")
        clusters = clusters.detach().cpu().long()
        # Without num_players the ids give the count (largest + 1), which check_num_players limits.
        largest = max(int(clusters.max()), 0) if clusters.numel() else 0
        limit = largest + 1 if num_players is None else num_players
        _check_index_range(clusters, limit, "cluster ids", "PointCloudMasker")
        return clusters

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, P, 3)`` float point clouds with at least ``num_players`` points."""
        inputs = _check_tensor(inputs, "PointCloudMasker")
        if inputs.dim() != 3 or inputs.shape[-1] != 3:
            raise ValueError(f"PointCloudMasker expects clouds (B, P, 3), got shape {tuple(inputs.shape)}")
        if not inputs.is_floating_point():
            raise ValueError(f"PointCloudMasker expects floating-point coordinates, got dtype {inputs.dtype}")
        if inputs.shape[1] < self.num_players:
            raise ValueError(
                f"PointCloudMasker: clouds have {inputs.shape[1]} points, fewer than "
                f"num_players={self.num_players} clusters"
            )
        if self.clusters is not None and self.clusters.shape[-1] != inputs.shape[1]:
            raise ValueError(
                f"PointCloudMasker: clusters give ids for {self.clusters.shape[-1]} points, "
                f"the clouds have {inputs.shape[1]}"
            )
        given = self.clusters
        if given is not None and given.dim() == 2 and given.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"PointCloudMasker: clusters are given for a batch of {self.clusters.shape[0]}, "
                f"the inputs have {inputs.shape[0]} clouds"
            )

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"clusters": (B, P)}``: the player (cluster id) of every point."""
        self.validate(inputs)
        batch, num_points = inputs.shape[:2]
        if self.clusters is not None:
            ids = self.clusters.expand(batch, num_points).clone()
        else:
            ids = _kmeans(inputs.detach().cpu().double(), self.num_players, self.iters, seed)
        return {"clusters": ids.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, P, 3)``: masked clusters' points sit at their centroid (into ``out``)."""
        batch, num_points, dim = inputs.shape
        shape = (batch, num_points)
        ids = _player_tensor(players, "clusters", shape, self.num_players, inputs, "PointCloudMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        # Centroids in at least float32, so half-precision clouds do not lose the sums.
        work = inputs.to(torch.promote_types(inputs.dtype, torch.float32))
        sums, counts = _cluster_sums(work, ids, self.num_players)
        centres = (sums / counts.clamp(min=1)[..., None]).to(inputs.dtype)
        baseline = centres.gather(1, ids[..., None].expand(-1, -1, dim))  # (B, P, 3)
        keep = _keep(ids, present)[..., None]  # (B, M, P, 1)
        return torch.where(keep, inputs[:, None], baseline[:, None], out=out)
