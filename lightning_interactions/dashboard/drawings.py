"""The measured samples as data the dashboard draws them from, one layout kind at a time.

:mod:`lightning_interactions.plot.samples` draws interactions on their samples with matplotlib;
this module carries the same information as small JSON values, so the page can draw them in
SVG. For each sample index asked for, :func:`sample_drawings` gives a dict with ``"kind"`` (the
layout's) and:

* ``patches``: ``image`` (``{"height", "width", "rgb", "pixels"}``, pixels in ``[0, 1]``, row
  by row, each an RGB triple when ``rgb``), ``regions`` (one ``[x, y, w, h]`` rectangle per
  player, in the image's pixels); images larger than :data:`MAX_SIDE` are averaged down;
* ``tokens``: ``tokens`` (the words, or the ids as text) and ``positions`` (each player's
  token position);
* ``signal``: ``values`` (one list per channel) and ``segments`` (each player's runs
  ``[first, last]`` of positions);
* ``features``: ``values``, ``names`` and ``owner`` (each feature's player, or None);
* ``point_clouds``: ``points`` (``[x, y, z]``, at most :data:`MAX_POINTS`) and ``clusters``
  (each point's player, or None);
* ``table`` (any other masker): nothing more; the page lists the interactions.

Example:
    >>> import torch
    >>> saved = {"inputs": torch.tensor([[5, 6, 7]]), "players": {"positions": torch.tensor([[0, 2]])},
    ...          "layout": {"kind": "tokens", "text": [["the", "<b>", "cat"]]}}
    >>> sample_drawings(saved, [0])
    {'0': {'kind': 'tokens', 'tokens': ['the', '<b>', 'cat'], 'positions': [0, 2]}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Callable

import torch
from torch import Tensor

from lightning_interactions.plot.samples.signal import runs

__all__ = ["MAX_SIDE", "MAX_POINTS", "sample_drawings", "rounded"]

MAX_SIDE = 48
MAX_POINTS = 400


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` (a number, or nested lists of them) with floats at ``digits`` significant digits.

    Example:
        >>> rounded([3.14159265, [2.0e-7, None, float("nan")]])
        [3.142, [2e-07, None, None]]
    """
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    if isinstance(value, bool) or not isinstance(value, float):
        return value
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _units(players: Mapping[str, Tensor], key: str, row: int) -> list[int]:
    return [int(unit) for unit in players[key][row].tolist()]


def _image(sample: Tensor) -> tuple[Tensor, int]:
    """``(H, W)`` grey or ``(H, W, 3)`` RGB values in ``[0, 1]``, averaged down by the returned factor."""
    x = sample.detach().cpu().double()
    x = x.mean(dim=0, keepdim=True) if x.shape[0] != 3 else x
    factor = max(1, math.ceil(max(x.shape[-2:]) / MAX_SIDE))
    if factor > 1:
        x = torch.nn.functional.avg_pool2d(x.unsqueeze(0), factor, ceil_mode=True).squeeze(0)
    low, high = float(x.min()), float(x.max())
    x = (x - low) / (high - low or 1.0)
    return (x.permute(1, 2, 0) if x.shape[0] == 3 else x[0]), factor


def _patches(layout: Mapping[str, Any], sample: Tensor, players: Mapping[str, Tensor], row: int) -> dict:
    ph, pw = (int(s) for s in layout["patch_size"])
    cols = sample.shape[-1] // pw
    image, factor = _image(sample)
    regions = []
    for patch in _units(players, "patches", row):
        r, c = divmod(patch, cols)
        regions.append(rounded([c * pw / factor, r * ph / factor, pw / factor, ph / factor], 3))
    pixels = rounded(image.tolist(), 2)
    height, width = image.shape[0], image.shape[1]
    return {"image": {"height": height, "width": width, "rgb": image.dim() == 3, "pixels": pixels},
            "regions": regions}  # fmt: skip


def _tokens(layout: Mapping[str, Any], sample: Tensor, players: Mapping[str, Tensor], row: int) -> dict:
    texts = layout.get("text")
    if texts:
        words = [str(word) for word in texts[row]]
    else:
        words = [str(int(token)) for token in sample.reshape(-1).tolist()]
    return {"tokens": words, "positions": _units(players, "positions", row)}


def _signal(layout: Mapping[str, Any], sample: Tensor, players: Mapping[str, Tensor], row: int) -> dict:
    values = sample.detach().cpu().double().reshape(-1, sample.shape[-1])
    groups = layout["groups"]
    segments = [[list(run) for run in runs(groups[g])] for g in _units(players, "groups", row)]
    return {"values": rounded(values.tolist(), 3), "segments": segments}


def _features(layout: Mapping[str, Any], sample: Tensor, players: Mapping[str, Tensor], row: int) -> dict:
    values = sample.detach().cpu().double().reshape(-1).tolist()
    names = layout.get("feature_names") or [f"feature {i}" for i in range(len(values))]
    owner: list[int | None] = [None] * len(values)
    for player, group in enumerate(_units(players, "groups", row)):
        for feature in layout["groups"][group]:
            if 0 <= int(feature) < len(values):
                owner[int(feature)] = player
    return {"values": rounded(values, 3), "names": [str(name) for name in names], "owner": owner}


def _points(layout: Mapping[str, Any], sample: Tensor, players: Mapping[str, Tensor], row: int) -> dict:
    points = sample.detach().cpu().double().reshape(-1, sample.shape[-1])[:, :3]
    ids = players["clusters"][row].reshape(-1).tolist()
    step = max(1, math.ceil(points.shape[0] / MAX_POINTS))
    chosen = range(0, points.shape[0], step)
    clusters = [int(ids[i]) if int(ids[i]) >= 0 else None for i in chosen]
    return {"points": rounded(points[::step].tolist(), 3), "clusters": clusters}


_DRAW: dict[str, Callable[..., dict]] = {
    "patches": _patches,
    "tokens": _tokens,
    "signal": _signal,
    "features": _features,
    "point_clouds": _points,
}


def sample_drawings(saved: Mapping[str, Any] | None, rows: Iterable[int]) -> dict[str, dict[str, Any]]:
    """``{str(row): drawing}`` of the samples ``rows`` of ``saved`` (``interaction_samples.pt``).

    A layout the page has no drawing for, a sample that cannot be drawn, or no ``saved`` at all
    gives ``{"kind": "table"}``: the page then lists the interactions without a picture.
    """
    drawings: dict[str, dict[str, Any]] = {}
    layout = dict(saved["layout"]) if saved is not None else {"kind": "table"}
    draw = _DRAW.get(str(layout.get("kind")))
    for row in sorted(set(rows)):
        drawing: dict[str, Any] = {"kind": "table"}
        if draw is not None and saved is not None and 0 <= row < len(saved["inputs"]):
            try:
                drawing = {
                    "kind": layout["kind"],
                    **draw(layout, saved["inputs"][row], saved["players"], row),
                }
            except (KeyError, IndexError, ValueError, RuntimeError, TypeError):
                drawing = {"kind": "table"}
        drawings[str(row)] = drawing
    return drawings
