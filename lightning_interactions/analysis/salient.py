"""The salient interactions a record keeps: each sample's top K, and how to look one up again.

A record (:func:`~lightning_interactions.analysis.record.build_record`) keeps, per measured
sample, the ``K`` interactions of largest ``|I|`` among its ``2 (2^n - 1)`` nonempty AND and OR
interactions *after residue removal* (:func:`~lightning_interactions.analysis.strength.drop_residue`),
as ``"salient"``: one list per sample (in the order of the measured samples), strongest first,
each entry ``[kind, players, order, value]``:

* ``kind``: ``"and"`` or ``"or"``;
* ``players``: the player set ``S``, a sorted list of player indices ``0 .. n-1`` (bit ``i`` of
  the mask; which patch, token or feature group player ``i`` is comes from the samples' players);
* ``order``: ``|S|``;
* ``value``: the signed ``I(S)``, rounded to 6 significant digits.

Zeros (residue) are never listed, so a sample's list is shorter than ``K`` exactly when it has
fewer than ``K`` nonzero interactions, and then it is complete. Ties in ``|I|`` go to AND before
OR, then to the smaller mask. ``"output_span"`` keeps each sample's whole interaction strength
``sum_{S nonempty} |I_and(S)| + |I_or(S)|`` after residue removal, the scale its growth is
measured against (:mod:`lightning_interactions.analysis.emerging`).

Example:
    >>> import torch
    >>> I_and = torch.tensor([[0.0, 1.0, -3.0, 0.5]])  # n = 2: masks {}, {0}, {1}, {0, 1}
    >>> I_or = torch.tensor([[0.0, 0.0, 0.0, 2.0]])
    >>> top_salient(I_and, I_or, k=3)
    [[['and', [1], 1, -3.0], ['or', [0, 1], 2, 2.0], ['and', [0], 1, 1.0]]]
    >>> output_span(I_and, I_or)  # |1| + |-3| + |0.5| + |2|
    [6.5]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_interactions.extraction.transforms import num_players_of

__all__ = ["KINDS", "SALIENT_TOP_K", "top_salient", "output_span", "mask_of", "full_value", "listed_value"]

KINDS = ("and", "or")
SALIENT_TOP_K = 10
Entry = Sequence[Any]  # [kind, players, order, value]


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def top_salient(I_and: Tensor, I_or: Tensor, k: int = SALIENT_TOP_K) -> list[list[list[Any]]]:
    """Each sample's ``k`` nonzero interactions of largest ``|I|``, as the record keeps them."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"salient_top_k must be an int >= 0, got {k!r}")
    n = num_players_of(I_and)
    nonempty = 2**n - 1
    both = torch.cat((I_and.reshape(-1, 2**n)[:, 1:], I_or.reshape(-1, 2**n)[:, 1:]), dim=1)
    order = torch.sort(both.abs(), dim=1, descending=True, stable=True).indices[:, : min(k, both.shape[1])]
    values = both.gather(1, order).tolist()
    players = [[i for i in range(n) if mask >> i & 1] for mask in range(2**n)]
    lists = []
    for row_index, row_values in zip(order.tolist(), values):
        entries = []
        for index, value in zip(row_index, row_values):
            if value == 0:
                break  # sorted by |I|: only zeros follow
            kind, mask = KINDS[index // nonempty], index % nonempty + 1
            entries.append([kind, players[mask], len(players[mask]), _round(value)])
        lists.append(entries)
    return lists


def output_span(I_and: Tensor, I_or: Tensor) -> list[float]:
    """Per sample ``sum_{S nonempty} |I_and(S)| + |I_or(S)|``: the sample's whole interaction strength.

    The scale that growth is measured against. It is never smaller than ``|v(N) - v(empty)|``
    (up to ``q``), and unlike that difference it does not vanish on a sample whose interactions
    cancel, where growth relative to it would be huge for any change.
    """
    n = num_players_of(I_and)
    flat_and, flat_or = I_and.reshape(-1, 2**n), I_or.reshape(-1, 2**n)
    span = flat_and[:, 1:].abs().sum(dim=1) + flat_or[:, 1:].abs().sum(dim=1)
    return [_round(value) for value in span.tolist()]


def mask_of(players: Sequence[int]) -> int:
    """The integer mask of a player set: ``mask_of([0, 2]) == 5``."""
    return sum(1 << int(i) for i in players)


def full_value(full: Mapping[str, Tensor], row: int, kind: str, players: Sequence[int]) -> float:
    """``I(S)`` of sample ``row`` in full ``{"I_and", "I_or"}`` interactions (residue already removed)."""
    return float(full["I_and" if kind == "and" else "I_or"][row, mask_of(players)])


def listed_value(
    record: Mapping[str, Any], row: int, kind: str, players: Sequence[int]
) -> tuple[float | None, float]:
    """``I(S)`` of sample ``row`` as far as ``record["salient"]`` tells it: ``(value, bound)``.

    ``value`` is the listed value; 0.0 when the sample's list is complete (shorter than the
    record's ``salient_top_k``), so an unlisted interaction is zero; None when the list is full
    and does not hold it. ``bound`` is what ``|I(S)|`` is at most: ``|value|`` when it is known,
    else the smallest ``|I|`` listed (an unlisted interaction is no stronger than the K-th).
    """
    entries = record["salient"][row]
    wanted = [int(i) for i in players]
    for entry_kind, entry_players, _, value in entries:
        if entry_kind == kind and list(entry_players) == wanted:
            return float(value), abs(float(value))
    if len(entries) < int(record.get("salient_top_k", SALIENT_TOP_K)):
        return 0.0, 0.0
    return None, min((abs(float(entry[3])) for entry in entries), default=float("inf"))
