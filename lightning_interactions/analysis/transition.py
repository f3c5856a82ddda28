"""Where over-fitting begins, read off the losses: the transition window of the loss gap.

The reference the alert is judged against (docs/theory.md, "Judging the alert"). The gap is the
validation loss minus the training loss. Its raw argmin is a poor reference where the gap is flat
for many epochs, so the window runs from the epoch where the gap, smoothed over 3 epochs
(centred), is smallest, to the first epoch from which the smoothed gap stays above its minimum
plus 10% of its range (max minus min over the run).

Example:
    >>> gap = [0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.6, 0.9, 1.0]  # flat from epoch 2 to 5, then rising
    >>> transition_window(range(9), gap)
    (3, 5)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["onset_and_turn", "smooth_centred", "transition_window"]


def smooth_centred(values: Sequence[float], width: int = 3) -> list[float]:
    """Centred moving average over ``width`` (odd) points; at the ends, over the points that exist.

    Example:
        >>> smooth_centred([0.0, 3.0, 0.0, 3.0])
        [1.5, 1.0, 2.0, 1.5]
    """
    if width < 1 or width % 2 == 0:
        raise ValueError(f"width must be an odd integer >= 1, got {width!r}")
    half = width // 2
    out = []
    for index in range(len(values)):
        window = values[max(0, index - half) : index + half + 1]
        out.append(sum(window) / len(window))
    return out


def transition_window(
    epochs: Iterable[int], gap: Sequence[float], *, width: int = 3, rise: float = 0.10
) -> tuple[int, int] | None:
    """``(start, end)`` epochs of the loss gap's transition, or None for fewer than 3 epochs.

    ``start`` is the epoch of the smallest smoothed gap (the first, on ties); ``end`` the first
    epoch after ``start`` from which the smoothed gap stays above ``min + rise * (max - min)``
    to the end of the run; the last epoch if the gap never rises that far for good.

    Args:
        epochs: the epochs of the ``gap`` values, increasing.
        gap: validation minus training loss at those epochs.
        width: points of the centred moving average.
        rise: fraction of the smoothed gap's range that counts as risen.
    """
    epochs = list(epochs)
    if len(epochs) != len(gap):
        raise ValueError(f"got {len(epochs)} epochs and {len(gap)} gap values")
    if len(gap) < 3:
        return None
    smooth = smooth_centred(gap, width)
    low = min(smooth)
    start = smooth.index(low)
    threshold = low + rise * (max(smooth) - low)
    end = len(smooth) - 1
    for index in range(len(smooth) - 1, start, -1):
        if smooth[index] <= threshold:
            break
        end = index
    return epochs[start], epochs[end]


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def onset_and_turn(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The complexity's onset and the loss gap's turn of a run, side by side (the paper's claim, measured).

    ``onset`` is the tracker's ``onset_epoch`` of the last record, or, where no alert fired, the
    epoch of the smallest complexity (the first, on ties). ``window`` is the transition window
    (:func:`~lightning_interactions.analysis.transition.transition_window`) of the logged gap
    ``val_loss - train_loss`` over the records that have both; ``turn`` its start;
    ``onset_minus_turn`` the difference (negative: the onset came first). None where unknown.

    Example:
        >>> losses = [(1.0, 1.0), (0.8, 1.0), (0.6, 0.9), (0.5, 0.9), (0.3, 1.0), (0.1, 1.2)]
        >>> history = [
        ...     {"epoch": e, "complexity": c, "train_loss": t, "val_loss": v}
        ...     for e, c, (t, v) in zip(range(6), [2.0, 1.5, 1.6, 1.8, 1.9, 2.0], losses)
        ... ]
        >>> onset_and_turn(history)
        {'onset': 1, 'turn': 0, 'window': (0, 2), 'onset_minus_turn': 1}
    """
    if not history:
        return {"onset": None, "turn": None, "window": None, "onset_minus_turn": None}
    onset = history[-1].get("onset_epoch")
    if onset is None:
        onset = int(min(history, key=lambda r: float(r["complexity"]))["epoch"])
    logged = [r for r in history if _finite(r.get("train_loss")) and _finite(r.get("val_loss"))]
    window = transition_window(
        [int(r["epoch"]) for r in logged], [float(r["val_loss"]) - float(r["train_loss"]) for r in logged]
    )
    turn = None if window is None else window[0]
    return {
        "onset": onset,
        "turn": turn,
        "window": window,
        "onset_minus_turn": None if turn is None else onset - turn,
    }
