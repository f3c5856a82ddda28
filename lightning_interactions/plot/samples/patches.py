"""Image patches of an interaction outlined and filled on the image (:class:`PatchMasker` players).

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot()
    >>> players = {"patches": torch.tensor([[0, 3, 5]])}
    >>> change = Change(0, "and", [0, 2], 2, 0.0, 1.0, 1.0)
    >>> draw_patches(ax, {"patch_size": [2, 2]}, torch.zeros(1, 4, 6), players, change)
    >>> len(ax.patches)  # two patches of the interaction, one other player
    3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot.samples._style import (
    KIND_COLOR,
    KIND_HATCH,
    KIND_LINESTYLE,
    OTHER_COLOR,
    units_of,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["draw_patches", "image_of"]


def image_of(sample: Tensor) -> tuple[Any, str | None]:
    """A ``(C, H, W)`` sample as something ``imshow`` shows: grey for 1 channel, RGB for 3, else the mean."""
    x = sample.detach().cpu().double()
    if x.shape[0] == 3:
        low, high = float(x.min()), float(x.max())
        return ((x - low) / (high - low or 1.0)).permute(1, 2, 0).numpy(), None
    return x.mean(dim=0).numpy(), "gray"


def draw_patches(ax: Axes, layout: Mapping[str, Any], sample: Tensor, players: Any, change: Change) -> None:
    """Draw ``sample`` (C, H, W) with the interaction's patches filled and outlined, other players in grey."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    ph, pw = (int(s) for s in layout["patch_size"])
    cols = sample.shape[-1] // pw
    image, cmap = image_of(sample)
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    chosen = set(change.players)
    for player, patch in enumerate(units_of(players, change.sample, "patches")):
        row, col = divmod(patch, cols)
        corner = (col * pw - 0.5, row * ph - 0.5)
        if player in chosen:
            color, kind = KIND_COLOR[change.kind], change.kind
            style = {"linestyle": KIND_LINESTYLE[kind], "hatch": KIND_HATCH[kind], "linewidth": 2.0}
            ax.add_patch(Rectangle(corner, pw, ph, facecolor=to_rgba(color, 0.35), edgecolor=color, **style))
        else:
            ax.add_patch(Rectangle(corner, pw, ph, fill=False, edgecolor=OTHER_COLOR, linewidth=0.8))
    ax.set_xticks([])
    ax.set_yticks([])
