"""Segments of a 1-D signal shaded where an interaction's players are (:class:`FeatureMasker` on ``(C, F)``).

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot()
    >>> layout = {"groups": [[0, 1], [2, 3], [4, 5]]}
    >>> change = Change(0, "or", [0, 2], 2, 0.0, 1.0, 1.0)
    >>> draw_signal(ax, layout, torch.zeros(1, 6), {"groups": torch.tensor([[0, 1, 2]])}, change)
    >>> len(ax.patches), len(ax.lines)  # two shaded segments; the signal and the other player's edge
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot.samples._style import KIND_COLOR, KIND_HATCH, OTHER_COLOR, units_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["draw_signal", "runs"]


def runs(features: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(first, last)`` of indices: ``runs([4, 0, 1, 5])`` is ``[(0, 1), (4, 5)]``."""
    ordered, found = sorted(int(f) for f in features), []
    for feature in ordered:
        if found and feature == found[-1][1] + 1:
            found[-1] = (found[-1][0], feature)
        else:
            found.append((feature, feature))
    return found


def draw_signal(ax: Axes, layout: Mapping[str, Any], sample: Tensor, players: Any, change: Change) -> None:
    """Draw every channel of ``sample`` (C, F), shading the interaction's segments, other players grey."""
    signal = sample.detach().cpu().double().reshape(-1, sample.shape[-1])
    for channel in signal:
        ax.plot(range(signal.shape[-1]), channel.numpy(), color="black", linewidth=1.0)
    groups = layout["groups"]
    chosen = set(change.players)
    for player, group in enumerate(units_of(players, change.sample, "groups")):
        for first, last in runs(groups[group]):
            if player in chosen:
                ax.axvspan(
                    first - 0.5,
                    last + 0.5,
                    color=KIND_COLOR[change.kind],
                    alpha=0.35,
                    hatch=KIND_HATCH[change.kind],
                    label=f"player {player}",
                )
            else:
                ax.axvline(first - 0.5, color=OTHER_COLOR, linewidth=0.5)
    ax.set_xlabel("position")
