"""Interval sums of chosen lattice intervals by inclusion-exclusion over superset or subset sums.

A mixed Gram entry of an AND set ``A`` and a disjoint OR set ``B`` needs the sum of the weights
``w`` over the interval ``A subset of T subset of N \\ B``. With the superset sums ``U`` and the
subset sums ``L`` of ``w`` it is either of

    sum_{R subset of B} (-1)^|R| U(A u R)        (drop every T that meets B)
    sum_{R subset of A} (-1)^|R| L((N \\ B) \\ R)  (keep only the T that contain A)

so the smaller of ``A`` and ``B`` sets the number of terms, ``2^min(|A|, |B|)``. On the restricted
problems of trained networks the chosen sets are of low order and all these terms together are
0.1% to 50% of the ``3^n`` entries of the full interval table (digits MLP, n = 12 to 14), and the
terms are read from the two ``2^n`` tables the Gram matrix needs anyway.
"""

from __future__ import annotations

import torch

from lightning_interactions.extraction.transforms import order_index


def count_terms(and_sets: torch.Tensor, or_sets: torch.Tensor, n: int) -> int:
    """Terms that :class:`IntervalTerms` reads for these pairs: ``sum 2^min(|A|, |B|)``."""
    order = order_index(n, device=and_sets.device)
    smaller = torch.minimum(order[and_sets], order[or_sets])
    return int((1 << smaller).sum()) if smaller.numel() else 0


def _subsets(sets: torch.Tensor, size: int) -> torch.Tensor:
    """All ``2^size`` subsets of each set of exactly ``size`` players, ``(len(sets), 2^size)``.

    Column ``r`` holds the subset made of the set's players at the positions of ``r``'s bits, so
    the subset in column ``r`` has ``popcount(r)`` players.
    """
    codes = torch.arange(2**size, device=sets.device)
    subsets = sets.new_zeros(sets.shape[0], 2**size)
    remaining = sets.clone()
    for position in range(size):
        lowest = remaining & -remaining
        remaining = remaining ^ lowest
        subsets += lowest[:, None] * ((codes >> position) & 1)[None, :]
    return subsets


class IntervalTerms:
    """Interval sums for a fixed list of (AND set, disjoint OR set) pairs, one per batch row index.

    ``rows`` says which batch row each pair belongs to; the table read by :meth:`sums` holds, for
    every batch row, ``U`` in its first ``2^n`` entries and ``L`` in the next ``2^n``, with
    ``stride`` entries per row. Pairs are grouped by their number of terms, so that each group
    is one gather and one product with a fixed vector of signs.
    """

    def __init__(
        self, rows: torch.Tensor, and_sets: torch.Tensor, or_sets: torch.Tensor, n: int, stride: int
    ) -> None:
        size, full = 2**n, 2**n - 1
        order = order_index(n, device=rows.device)
        and_count, or_count = order[and_sets], order[or_sets]
        through_or = or_count <= and_count
        smaller = torch.where(through_or, or_sets, and_sets)
        # U(A u R) with R inside B, or L((N \ B) \ R) with R inside A: in both cases R is disjoint
        # from the base (or inside it), so adding or removing it is an exclusive or.
        base = torch.where(through_or, and_sets, size + (full ^ or_sets))
        offset = rows * stride
        smaller_count = torch.minimum(and_count, or_count)
        indices, self._groups, positions = [], [], []
        for terms in smaller_count.unique().tolist():
            chosen = (smaller_count == terms).nonzero().flatten()
            read = base[chosen, None] ^ _subsets(smaller[chosen], terms)
            indices.append((read + offset[chosen, None]).flatten())
            signs = 1 - 2 * (order_index(terms, device=rows.device) & 1)  # (-1)^|R|
            self._groups.append((len(chosen), 2**terms, signs))
            positions.append(chosen)
        self.index = torch.cat(indices) if indices else rows.new_zeros(0)
        # Position of each result in the order of the given pairs.
        self.order = torch.cat(positions) if positions else rows.new_zeros(0)
        self._signs: dict[torch.dtype, list[torch.Tensor]] = {}

    def sums(self, table: torch.Tensor) -> torch.Tensor:
        """Interval sums of the pairs, in the order of :attr:`order`, from a ``(batch, stride)`` table."""
        values = table.reshape(-1).index_select(0, self.index)
        signs = self._signs.get(table.dtype)
        if signs is None:
            signs = self._signs[table.dtype] = [group[2].to(table.dtype) for group in self._groups]
        pieces, start = [], 0
        for (count, terms, _), sign in zip(self._groups, signs):
            pieces.append(values[start : start + count * terms].view(count, terms) @ sign)
            start += count * terms
        return torch.cat(pieces) if pieces else table.new_zeros(0)
