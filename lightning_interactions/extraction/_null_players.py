"""Null players: players that no output of a sample depends on, taken out before it is solved.

Player ``i`` is null for a sample when ``v(T u {i}) = v(T)`` for every mask ``T``, bit for bit
(a blank image patch masked by a blank baseline, a token the model ignores). With ``K`` the other
players (``m = |K|``) and ``v'`` the values on the masks of ``K`` alone, the extraction LP of the
``n`` players and that of the ``m`` players have the same optimum, and each solution or bound of
the small one is one of the large one:

* Primal: a solution on ``K`` fits every mask of ``N``, since neither its triggers
  (``1[S subset of T]``, ``1[S meets T]`` with ``S`` inside ``K``) nor ``v(T)`` depend on
  ``T \\ K``. Conversely, on the masks that contain every null player an interaction ``S`` acts
  as ``S n K`` (AND) or as the constant (OR, when ``S`` holds a null player), so merging those
  gives a solution on ``K`` that costs no more, also under the tie-break cost ``1 + b |S|``.
* Dual: row multipliers ``mu'`` on ``K`` lifted as ``mu(T) = mu'(T n K) / 2^(n-m)`` keep the
  dual objective ``-<mu, v> - tau ||mu||_1``, and the price of an interaction with ``j`` null
  players is that of its part in ``K`` divided by ``2^j``: a bound on ``K`` is a bound on ``N``.

So the extraction solves the ``2^m``-mask problem and scatters its interactions back (zero on
every set that holds a null player, which is also the tie-break's lowest-order choice); ``q``
and ``gamma`` are read at ``T n K``. This is a presolve reduction in the sense of Andersen and
Andersen, "Presolving in linear programming", Mathematical Programming 71 (1995): here a whole
player's worth of rows and columns at once; the null player itself is Shapley's (1953).
"""

from __future__ import annotations

import torch

__all__ = ["kept_players", "full_masks", "reduced_masks", "scatter_interactions"]

# At least this many players are kept (the lowest-numbered null players fill up): a problem on
# no player at all has no mask to fit.
MIN_KEPT = 1


def kept_players(values: torch.Tensor) -> torch.Tensor:
    """``(batch, n)`` bool: the players some output of each sample depends on (at least
    ``MIN_KEPT``, the lowest-numbered null players added where fewer are)."""
    batch, size = values.shape
    n = size.bit_length() - 1
    kept = torch.empty(batch, n, dtype=torch.bool, device=values.device)
    for player in range(n):
        halves = values.view(batch, size >> (player + 1), 2, 1 << player)
        kept[:, player] = (halves[:, :, 0, :] != halves[:, :, 1, :]).flatten(1).any(dim=1)
    short = (MIN_KEPT - kept.sum(dim=1)).clamp(min=0)
    if bool(short.any()):
        # Null players are the False entries; keep the first `short` of them (cumulative count).
        nulls_before = (~kept).cumsum(dim=1)
        kept |= (~kept) & (nulls_before <= short[:, None])
    return kept


def full_masks(kept: torch.Tensor) -> torch.Tensor:
    """``(batch, 2^m)``: the mask of ``N`` that each mask of the kept players is, per sample
    (every row of ``kept`` holds the same number ``m`` of players)."""
    batch, n = kept.shape
    m = int(kept[0].sum())
    players = kept.nonzero()[:, 1].view(batch, m)  # each row's kept players, in order
    small = torch.arange(2**m, device=kept.device)
    out = torch.zeros(batch, 2**m, dtype=torch.int64, device=kept.device)
    for bit in range(m):
        out |= ((small >> bit) & 1)[None, :] << players[:, bit : bit + 1]
    return out


def reduced_masks(kept: torch.Tensor) -> torch.Tensor:
    """``(batch, 2^n)``: for every mask ``T`` of ``N``, the index of ``T n K`` among the masks of
    the kept players ``K``."""
    batch, n = kept.shape
    masks = torch.arange(2**n, device=kept.device)
    # Bit j of the reduced index is the j-th kept player's bit: its position among the kept.
    position = kept.long().cumsum(dim=1) - 1
    out = torch.zeros(batch, 2**n, dtype=torch.int64, device=kept.device)
    for player in range(n):
        present = ((masks >> player) & 1)[None, :] * kept[:, player : player + 1]
        out |= present << position[:, player : player + 1].clamp(min=0)
    return out


def scatter_interactions(reduced: torch.Tensor, full: torch.Tensor, size: int) -> torch.Tensor:
    """Interactions on the kept players' sets back on all ``size`` sets of ``N``, zero on the
    sets that hold a null player (``full`` from :func:`full_masks`)."""
    return reduced.new_zeros(reduced.shape[0], size).scatter_(1, full, reduced)
