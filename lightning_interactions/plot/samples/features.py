"""Tabular feature groups as labelled bars, an interaction's groups coloured (:class:`FeatureMasker`).

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot()
    >>> layout = {"groups": [[0], [1, 2]], "feature_names": ["age", "bmi", "bp"]}
    >>> change = Change(0, "and", [1], 1, 0.0, 1.0, 1.0)
    >>> draw_features(ax, layout, torch.tensor([1.0, -2.0, 0.5]), {"groups": torch.tensor([[0, 1]])}, change)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['age (player 0)', 'bmi (player 1)', 'bp (player 1)']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot.samples._style import KIND_COLOR, KIND_HATCH, OTHER_COLOR, units_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["draw_features"]

UNGROUPED_COLOR = "0.85"


def draw_features(ax: Axes, layout: Mapping[str, Any], sample: Tensor, players: Any, change: Change) -> None:
    """Horizontal bars of the sample's feature values; the interaction's groups in its colour.

    Bars are labelled with ``layout["feature_names"]`` when given (else ``feature i``) and the
    player each feature belongs to; features of no player are light grey.
    """
    values = sample.detach().cpu().double().reshape(-1).tolist()
    names = layout.get("feature_names") or [f"feature {i}" for i in range(len(values))]
    owner: dict[int, int] = {}
    for player, group in enumerate(units_of(players, change.sample, "groups")):
        owner.update({int(f): player for f in layout["groups"][group]})
    chosen = set(change.players)
    colors, hatches, labels = [], [], []
    for feature in range(len(values)):
        player = owner.get(feature)
        inside = player in chosen
        other = OTHER_COLOR if player is not None else UNGROUPED_COLOR
        colors.append(KIND_COLOR[change.kind] if inside else other)
        hatches.append(KIND_HATCH[change.kind] if inside else None)
        labels.append(str(names[feature]) + ("" if player is None else f" (player {player})"))
    bars = ax.barh(range(len(values)), values, color=colors)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.set_yticks(range(len(values)))
    ax.set_yticklabels(labels, fontsize="x-small")
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("feature value")
