"""Token positions of an interaction highlighted in the text (:class:`TokenMasker` players).

Each token is a box with its text: ``layout["text"][sample]`` when a ``decode`` was given when the
layout was made, else the token id. The interaction's positions are filled in its colour, the
sample's other players outlined in grey.

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot()
    >>> change = Change(0, "and", [0, 1], 2, 0.0, 1.0, 1.0)
    >>> draw_tokens(ax, {}, torch.tensor([7, 8, 9]), {"positions": torch.tensor([[0, 2]])}, change)
    >>> [t.get_text() for t in ax.texts[::2]]  # each token, then its position below it
    ['7', '8', '9']
    >>> [t.get_bbox_patch().get_edgecolor()[:3] for t in ax.texts[::2]][1]  # position 1: not a player
    (0.0, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot.samples._style import KIND_COLOR, KIND_LINESTYLE, OTHER_COLOR, units_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["draw_tokens"]


def draw_tokens(ax: Axes, layout: Mapping[str, Any], sample: Tensor, players: Any, change: Change) -> None:
    """Draw the sample's tokens in rows of 8, the interaction's positions highlighted.

    Only the tokens the layout's text holds are drawn (its padding left out), else every id.
    """
    ids = [int(token) for token in sample.reshape(-1).tolist()]
    texts = layout.get("text")
    words = list(texts[change.sample]) if texts else [str(token) for token in ids]
    positions = units_of(players, change.sample, "positions")
    chosen = {positions[p] for p in change.players}
    others = set(positions) - chosen
    # Six panels share a figure's width: more than 8 boxes in a row would overlap.
    per_row = 8
    for position, word in enumerate(words):
        row, col = divmod(position, per_row)
        box: dict[str, Any] = {"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "none"}
        if position in chosen:
            color = KIND_COLOR[change.kind]
            box.update(facecolor=color, alpha=0.6, edgecolor=color, linestyle=KIND_LINESTYLE[change.kind])
        elif position in others:
            box.update(edgecolor=OTHER_COLOR)
        ax.text(col + 0.5, -row, word, ha="center", va="center", fontsize="small", bbox=box)
        ax.text(col + 0.5, -row - 0.4, str(position), ha="center", va="center", fontsize=5, color="0.4")
    rows = (len(words) - 1) // per_row + 1
    ax.set_xlim(0, min(len(words), per_row))
    ax.set_ylim(-rows + 0.3, 0.7)
    ax.axis("off")
