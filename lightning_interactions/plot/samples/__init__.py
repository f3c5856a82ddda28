"""Interactions drawn on their samples: one drawing per masker type, a table for any other masker.

:func:`sample_layout` describes, as plain values that can be saved beside the history, how a
masker's players sit on a sample: ``{"kind": "patches", "patch_size": [h, w]}``,
``{"kind": "signal" | "features", "groups": [...], "feature_names": [...] | None}``,
``{"kind": "tokens", "text": [[word, ...], ...] | None}``, ``{"kind": "point_clouds"}`` or
``{"kind": "table"}`` (a custom masker). :func:`figure_interactions_on_samples` draws one panel
per interaction (:class:`~lightning_interactions.analysis.emerging.Change`) on its sample:

* image patches (``patches.py``): the interaction's patches filled and outlined, AND solid blue,
  OR dashed and hatched orange, the other players outlined in grey;
* 1-D signals (``signal.py``): the segments shaded on the signal;
* tabular features (``features.py``): labelled bars, the interaction's groups coloured;
* tokens (``tokens.py``): the positions highlighted in the text;
* point clouds (``points.py``): the clusters coloured in a 3-D scatter;
* anything else (``table.py``): one readable table of all of them.

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.masking import TokenMasker
    >>> ids = torch.tensor([[5, 6, 7, 8]])
    >>> masker = TokenMasker(mask_token_id=0, players=[0, 1, 2, 3])
    >>> layout = sample_layout(masker, ids, decode=lambda t: "abcdefghij"[t])
    >>> layout
    {'kind': 'tokens', 'text': [['f', 'g', 'h', 'i']]}
    >>> figure = figure_interactions_on_samples(
    ...     layout, ids, masker.select_players(ids), [Change(0, "and", [1, 3], 2, 0.0, 2.0, 0.5)])
    >>> [t.get_text() for t in figure.axes[0].texts[::2]]
    ['f', 'g', 'h', 'i']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_interactions.plot._canvas import new_figure
from lightning_interactions.plot.samples._style import panel_title
from lightning_interactions.plot.samples.features import draw_features
from lightning_interactions.plot.samples.patches import draw_patches
from lightning_interactions.plot.samples.points import draw_points
from lightning_interactions.plot.samples.signal import draw_signal
from lightning_interactions.plot.samples.table import draw_table
from lightning_interactions.plot.samples.tokens import draw_tokens

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubplotSpec

    from lightning_interactions.analysis.emerging import Change

__all__ = ["DRAWINGS", "DrawnChanges", "sample_layout", "figure_interactions_on_samples", "draw_interactions"]

# kind -> (drawing function, axes projection)
DRAWINGS: dict[str, tuple[Callable[..., None], str | None]] = {
    "patches": (draw_patches, None),
    "signal": (draw_signal, None),
    "features": (draw_features, None),
    "tokens": (draw_tokens, None),
    "point_clouds": (draw_points, "3d"),
}
MAX_PANELS = 6
# (layout, inputs, players, changes): what draw_interactions draws.
DrawnChanges = tuple[Mapping[str, Any], Tensor, Mapping[str, Tensor], Sequence["Change"]]


def _without_padding(row: list[int], pad_token_id: int | None) -> list[int]:
    """A row of token ids without its trailing padding (samples of different lengths are padded
    to one for their pictures)."""
    end = len(row)
    while pad_token_id is not None and end and row[end - 1] == pad_token_id:
        end -= 1
    return row[:end]


def sample_layout(
    masker: Any,
    inputs: Tensor | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    decode: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """How ``masker``'s players sit on its samples, as plain values (see the module).

    ``feature_names`` label tabular features; ``decode`` turns a token id into its text, applied
    here to ``inputs`` so that the saved layout keeps the words.
    """
    from lightning_interactions.masking import (
        FeatureMapMasker,
        FeatureMasker,
        PatchMasker,
        PointCloudMasker,
        TokenMasker,
    )

    if isinstance(masker, FeatureMapMasker):  # regions of a hidden layer, not of the picture
        return {"kind": "table"}
    if isinstance(masker, PatchMasker):
        return {"kind": "patches", "patch_size": list(masker.patch_size)}
    if isinstance(masker, FeatureMasker):
        signal = inputs is not None and inputs.dim() >= 3
        names = None if feature_names is None else [str(name) for name in feature_names]
        return {
            "kind": "signal" if signal else "features",
            "groups": [list(g) for g in masker.groups],
            "feature_names": names,
        }
    if isinstance(masker, TokenMasker):
        text = None
        if decode is not None and inputs is not None:
            rows = [_without_padding(row, masker.pad_token_id) for row in inputs.tolist()]
            text = [[str(decode(int(token))) for token in row] for row in rows]
        return {"kind": "tokens", "text": text}
    if isinstance(masker, PointCloudMasker):
        return {"kind": "point_clouds"}
    return {"kind": "table"}


def draw_interactions(
    figure: Figure,
    spec: SubplotSpec,
    layout: Mapping[str, Any],
    inputs: Tensor,
    players: Mapping[str, Tensor],
    changes: Sequence[Change],
    max_panels: int = MAX_PANELS,
) -> None:
    """Draw up to ``max_panels`` of ``changes`` on their samples into ``spec`` (a table if no drawing)."""
    drawing = DRAWINGS.get(str(layout.get("kind")))
    shown = [c for c in changes if 0 <= c.sample < inputs.shape[0]][:max_panels]
    if drawing is None or not shown:
        draw_table(figure.add_subplot(spec), list(changes)[:max_panels])
        return
    draw, projection = drawing
    grid = spec.subgridspec(1, len(shown))
    for column, change in enumerate(shown):
        ax = figure.add_subplot(grid[0, column], projection=projection)
        draw(ax, layout, inputs[change.sample], players, change)
        ax.set_title(panel_title(change), fontsize="small")


def figure_interactions_on_samples(
    layout: Mapping[str, Any],
    inputs: Tensor,
    players: Mapping[str, Tensor],
    changes: Sequence[Change],
    *,
    title: str | None = None,
    max_panels: int = MAX_PANELS,
) -> Figure:
    """One panel per interaction (at most ``max_panels``) on its sample, or a table (see the module)."""
    panels = max(1, min(len(changes), max_panels))
    tall = layout.get("kind") in ("features",)
    figure = new_figure(figsize=(3.2 * panels + 0.5, 5.0 if tall else 3.6), layout="constrained")
    draw_interactions(figure, figure.add_gridspec(1, 1)[0, 0], layout, inputs, players, changes, max_panels)
    if title:
        figure.suptitle(title)
    return figure
