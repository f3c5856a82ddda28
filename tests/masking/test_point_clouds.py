"""PointCloudMasker's own rules: its k-means clusters (masking/_kmeans.py), centroids, errors.

What every masker must do (against a literal loop over masks and players) is ``test_base.py``'s.
"""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.masking import (
    PointCloudMasker,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _blobs(batch=2, per_blob=12, seed=0):
    """Four tight blobs far apart, shuffled; returns the cloud and each point's blob."""
    gen = _gen(seed)
    centres = torch.tensor([[0.0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, 50]])
    clouds, labels = [], []
    for _ in range(batch):
        label = torch.arange(4).repeat_interleave(per_blob)
        order = torch.randperm(len(label), generator=gen)
        label = label[order]
        clouds.append(centres[label] + 0.1 * torch.randn(len(label), 3, generator=gen))
        labels.append(label)
    return torch.stack(clouds), torch.stack(labels)


def test_kmeans_recovers_separated_blobs_and_is_deterministic():
    cloud, labels = _blobs()
    masker = PointCloudMasker(num_players=4)
    ids = masker.select_players(cloud, seed=1)["clusters"]
    for b in range(cloud.shape[0]):
        # Same partition as the blobs, up to renaming the clusters.
        pairs = set(zip(ids[b].tolist(), labels[b].tolist()))
        assert len(pairs) == 4 and len({c for c, _ in pairs}) == 4
    assert torch.equal(ids, masker.select_players(cloud, seed=1)["clusters"])


def test_kmeans_clusters_are_never_empty_with_duplicate_points():
    # Half the points coincide, so seeded initial centres often coincide too.
    gen = _gen(9)
    cloud = torch.randn(4, 16, 3, generator=gen)
    cloud[:, :8] = cloud[:, :1]
    masker = PointCloudMasker(num_players=6, iters=10)
    for seed in range(5):
        ids = masker.select_players(cloud, seed=seed)["clusters"]
        counts = torch.stack([torch.bincount(row, minlength=6) for row in ids])
        assert counts.gt(0).all()


def test_kmeans_reseeds_empty_clusters(monkeypatch):
    from lightning_interactions.masking import _kmeans

    def all_on_first_point(points, k, generator):
        return points[:, :1].expand(-1, k, -1).clone()  # every cluster but one starts empty

    monkeypatch.setattr(_kmeans, "_kmeans_plus_plus", all_on_first_point)
    cloud, _ = _blobs()
    ids = PointCloudMasker(num_players=4, iters=10).select_players(cloud)["clusters"]
    assert torch.stack([torch.bincount(row, minlength=4) for row in ids]).gt(0).all()


def test_cloud_with_fewer_distinct_points_than_players():
    # Three distinct points, five players: two clusters stay empty and change nothing.
    cloud = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]).repeat(4, 1)[None]
    masker = PointCloudMasker(num_players=5)
    ids = masker.select_players(cloud)["clusters"]
    assert len(set(ids[0].tolist())) == 3
    out = masker.apply(cloud, {"clusters": ids}, torch.arange(32))
    assert torch.equal(out, cloud[:, None].expand_as(out))  # every cluster sits on its centroid


def test_cloud_masked_cluster_moves_to_its_centroid():
    cloud = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [4, 4, 0], [10, 0, 0]]])
    masker = PointCloudMasker(clusters=torch.tensor([0, 0, 0, 1]))
    out = masker.apply(cloud, masker.select_players(cloud), torch.tensor([2]))
    centroid = cloud[0, :3].mean(dim=0)
    assert torch.allclose(out[0, 0, :3], centroid.expand(3, 3))
    assert torch.equal(out[0, 0, 3], cloud[0, 3])


def test_cloud_errors():
    with pytest.raises(ValueError, match=r"\(B, P, 3\)"):
        PointCloudMasker(num_players=2).validate(torch.zeros(2, 10, 2))
    with pytest.raises(ValueError, match="3 points, fewer than num_players=4"):
        PointCloudMasker(num_players=4).validate(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="floating-point"):
        PointCloudMasker(num_players=2).validate(torch.zeros(2, 10, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"cluster ids must lie in 0 \.\. 1"):
        PointCloudMasker(num_players=2, clusters=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="ids for 3 points, the clouds have 4"):
        PointCloudMasker(clusters=torch.tensor([0, 1, 1])).validate(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="batch of 2, the inputs have 3"):
        PointCloudMasker(clusters=torch.zeros(2, 4, dtype=torch.long)).validate(torch.zeros(3, 4, 3))
