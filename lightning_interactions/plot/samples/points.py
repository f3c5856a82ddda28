"""Point clusters of an interaction coloured in a 3-D scatter (:class:`PointCloudMasker` players).

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot(projection="3d")
    >>> cloud, ids = torch.rand(6, 3), {"clusters": torch.tensor([[0, 0, 1, 1, 2, 2]])}
    >>> draw_points(ax, {}, cloud, ids, Change(0, "or", [1], 1, 0.0, 1.0, 1.0))
    >>> [len(c.get_offsets()) for c in ax.collections]  # other points, then the interaction's
    [4, 2]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot.samples._style import KIND_COLOR, OTHER_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["PROJECTION", "draw_points"]

PROJECTION = "3d"


def draw_points(ax: Axes, layout: Mapping[str, Any], sample: Tensor, players: Any, change: Change) -> None:
    """Scatter the cloud (P, 3): the interaction's clusters in its colour, the other points grey."""
    import torch

    points = sample.detach().cpu().double()
    ids = players["clusters"][change.sample].cpu()
    inside = torch.isin(ids, torch.tensor(change.players, dtype=ids.dtype))
    rest, chosen = points[~inside].numpy(), points[inside].numpy()
    ax.scatter(rest[:, 0], rest[:, 1], rest[:, 2], s=4, color=OTHER_COLOR, alpha=0.5)
    marker = "o" if change.kind == "and" else "^"
    ax.scatter(chosen[:, 0], chosen[:, 1], chosen[:, 2], s=12, color=KIND_COLOR[change.kind], marker=marker)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
