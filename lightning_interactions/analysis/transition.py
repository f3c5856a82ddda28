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

from collections.abc import Iterable, Sequence

__all__ = ["smooth_centred", "transition_window"]


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
