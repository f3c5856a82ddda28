"""Alert candidates: what the interactions might know before the loss gap does (docs/theory.md, section 7).

Pure functions of what a run recorded, so that ``examples/study_suite.py`` can compare them with
the gap rule on saved runs. Every signal is a series, one value per measured epoch, and fires by
one rule, :func:`widening_epoch`: the gap rule's own averaging and patience
(:func:`~lightning_interactions.analysis.phases.gap_widening`) with an absolute margin ``theta``.

The signals: the fitted noise level falling (:func:`noise_fall_series`), the training samples'
complexity above the validation samples' (a difference of two recorded complexities), the share
of high-order strength held by the top quarter of training samples (:func:`outlier_share`), and
the share of salient strength held by interactions found in one sample of a class only
(:func:`specific_share`). Per-sample memorisation scores: :func:`high_order_share`, judged with
:func:`roc_auc` and :func:`precision_recall`.

Example:
    >>> widening_epoch(range(9), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0], theta=0.2)
    7
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lightning_interactions.analysis.phases import gap_widening

__all__ = [
    "false_alarm",
    "gap_rule_epoch",
    "high_order_share",
    "high_order_strength",
    "noise_fall_series",
    "outlier_share",
    "precision_recall",
    "roc_auc",
    "series",
    "specific_share",
    "widening_epoch",
]


def widening_epoch(
    epochs: Iterable[int], values: Sequence[float | None], theta: float, patience: int = 2, window: int = 3
) -> int | None:
    """The first epoch at which ``values`` up to it are widening by an absolute margin ``theta``.

    ``gap_widening`` on the pairs ``(value, 1.0)``: each of the last ``patience`` averages over
    ``window`` consecutive values exceeds the smallest average before it by more than ``theta``,
    and the last average is above the one ``window`` entries earlier. Entries whose value is None
    or not finite are skipped (the epoch is not measured). None if it never fires.

    Example:
        >>> widening_epoch(range(8), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 2.0], theta=0.1)
        7
        >>> widening_epoch(range(8), [1.0] * 8, theta=0.1) is None
        True
    """
    pairs: list[tuple[float, float]] = []
    for epoch, value in zip(epochs, values):
        if value is None or not math.isfinite(float(value)):
            continue
        pairs.append((float(value), 1.0))
        if gap_widening(pairs, theta, patience, window):
            return int(epoch)
    return None


def gap_rule_epoch(
    epochs: Iterable[int],
    train_losses: Sequence[float | None],
    val_losses: Sequence[float | None],
    rise: float = 0.05,
    patience: int = 2,
    window: int = 3,
) -> int | None:
    """The gap rule alone: the first epoch ``e`` at which the losses logged up to ``e`` are widening.

    ``gap_widening`` on ``(val - train, val)`` of the epochs with both losses, the margin ``rise``
    times the validation loss, as the alert's confirmation uses it, without the complexity's rise.

    Example:
        >>> train = [1.0] * 6 + [0.8, 0.6]
        >>> gap_rule_epoch(range(8), train, [1.0] * 8)
        7
    """
    pairs: list[tuple[float, float]] = []
    for epoch, train, val in zip(epochs, train_losses, val_losses):
        if train is None or val is None or not (math.isfinite(train) and math.isfinite(val)):
            continue
        pairs.append((float(val) - float(train), float(val)))
        if gap_widening(pairs, rise, patience, window):
            return int(epoch)
    return None


def noise_fall_series(noise_levels: Sequence[float | None]) -> list[float | None]:
    """``-log s`` per epoch: rises where the fitted noise level falls (phase 2 in the theory).

    Example:
        >>> [round(v, 3) for v in noise_fall_series([1.0, math.e])]
        [-0.0, -1.0]
    """
    return [None if s is None or not s > 0 else -math.log(s) for s in noise_levels]


def high_order_strength(strength: Sequence[float], min_order: int = 3) -> float:
    """A sample's strength at orders ``>= min_order`` (``strength`` lists orders ``1..n``).

    Example:
        >>> high_order_strength([4.0, 2.0, 1.0, 0.5])
        1.5
    """
    return float(sum(strength[min_order - 1 :]))


def high_order_share(strength: Sequence[float], min_order: int = 3) -> float:
    """A sample's share of strength at orders ``>= min_order``; 0 for a sample with no strength.

    Example:
        >>> high_order_share([4.0, 2.0, 1.0, 1.0])
        0.25
    """
    total = float(sum(strength))
    return high_order_strength(strength, min_order) / total if total > 0 else 0.0


def outlier_share(high: Sequence[float], fraction: float = 0.25) -> float:
    """Share of the summed ``high`` held by the ``ceil(fraction * m)`` largest of the ``m`` values.

    ``high`` is each sample's high-order strength; 0 when they sum to 0.

    Example:
        >>> outlier_share([1.0, 1.0, 1.0, 1.0])  # the top 1 of 4 holds a quarter
        0.25
        >>> outlier_share([6.0, 1.0, 0.5, 0.5, 0.0])  # the top 2 of 5 hold 7 of 8
        0.875
    """
    total = float(sum(high))
    if total <= 0:
        return 0.0
    count = math.ceil(fraction * len(high))
    return float(sum(sorted(high, reverse=True)[:count])) / total


def specific_share(
    salient: Sequence[Sequence[Sequence[Any]]],
    spans: Sequence[float],
    labels: Sequence[int],
    min_order: int = 2,
) -> float:
    """Share of the salient strength (orders ``>= min_order``) held by interactions of one sample of a class.

    ``salient[i]`` is sample ``i``'s list of ``[kind, players, order, value]`` (a record's
    ``salient``), ``spans[i]`` its span (each value is divided by it; a span of 0 counts as 1),
    ``labels[i]`` its training label. An interaction ``(kind, players)`` of sample ``i`` is
    *specific* when no other sample with the same label lists it. 0 when nothing of that order is
    listed.

    Example:
        >>> a = [["and", [0, 1], 2, 2.0]]
        >>> b = [["and", [0, 1], 2, 1.0], ["or", [1, 2], 2, -1.0]]
        >>> specific_share([a, b], [1.0, 1.0], [0, 0])  # ("or", [1, 2]) is b's own: 1 of 4
        0.25
        >>> specific_share([a, b], [1.0, 1.0], [0, 1])  # different labels: all specific
        1.0
    """
    owners: dict[tuple[int, str, tuple[int, ...]], set[int]] = {}
    for index, (entries, label) in enumerate(zip(salient, labels)):
        for kind, players, order, _ in entries:
            if order >= min_order:
                owners.setdefault((int(label), kind, tuple(players)), set()).add(index)
    total = specific = 0.0
    for index, (entries, span, label) in enumerate(zip(salient, spans, labels)):
        scale = span if span > 0 else 1.0
        for kind, players, order, value in entries:
            if order < min_order:
                continue
            weight = abs(float(value)) / scale
            total += weight
            if owners[(int(label), kind, tuple(players))] == {index}:
                specific += weight
    return specific / total if total > 0 else 0.0


def false_alarm(
    fired: int | None, epochs: Sequence[int], val_losses: Sequence[float], near: float = 0.05
) -> bool:
    """Whether a firing at epoch ``fired`` gave up more than ``near`` of the validation loss still to come.

    True when the validation loss at ``fired`` exceeds ``(1 + near)`` times the lowest validation
    loss at that epoch or later: stopping there would have kept a model more than ``near`` worse
    than one training could still reach. False for no firing.

    Example:
        >>> false_alarm(1, [0, 1, 2, 3], [2.0, 1.5, 1.0, 1.2])
        True
        >>> false_alarm(2, [0, 1, 2, 3], [2.0, 1.5, 1.0, 1.2]), false_alarm(None, [0], [1.0])
        (False, False)
    """
    if fired is None:
        return False
    later = [val for epoch, val in zip(epochs, val_losses) if epoch >= fired]
    current = [val for epoch, val in zip(epochs, val_losses) if epoch == fired]
    if not current or not later:
        return False
    return current[0] > (1 + near) * min(later)


def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Probability that a positive's score exceeds a negative's (ties count a half); None without both.

    Example:
        >>> roc_auc([0.9, 0.1, 0.5, 0.5], [True, False, True, False])
        0.875
    """
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    if not pos or not neg:
        return None
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def precision_recall(
    scores: Sequence[float], positives: Sequence[bool], threshold: float
) -> tuple[float | None, float | None]:
    """Precision and recall of flagging ``score > threshold`` (None where undefined).

    Example:
        >>> precision_recall([0.9, 0.1, 0.5, 0.6], [True, False, True, False], 0.55)
        (0.5, 0.5)
    """
    flagged = [p for s, p in zip(scores, positives) if s > threshold]
    hits = sum(flagged)
    total = sum(bool(p) for p in positives)
    precision = hits / len(flagged) if flagged else None
    recall = hits / total if total else None
    return precision, recall


def series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[Any]]:
    """``(epochs, values)`` of one key of a history's records, in record order.

    Example:
        >>> series([{"epoch": 0, "complexity": 2.0}, {"epoch": 1, "complexity": 1.5}], "complexity")
        ([0, 1], [2.0, 1.5])
    """
    return [int(r["epoch"]) for r in history], [r.get(key) for r in history]
