"""Helpers shared by the maskers: fixed or seeded choices of players, and which units keep their value.

A *unit* is what a player is made of (a patch, a feature group, a token position); ``owner``
maps every unit to its player, -1 for a unit that is no player.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_interactions.masking.base import check_num_players

_DEFAULT_NUM_PLAYERS = 10


def _check_tensor(inputs: object, who: str) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"{who}: inputs must be a tensor, got {type(inputs).__name__}")
    return inputs


def _fixed_indices(indices: Sequence[int] | None, who: str) -> tuple[int, ...] | None:
    """Check a user list of player indices: non-empty, non-negative ints, no repeats."""
    if indices is None:
        return None
    if not isinstance(indices, (Sequence, Tensor)) or isinstance(indices, str):
        raise TypeError(f"{who}: players must be a sequence of indices, got {type(indices).__name__}")
    values = indices.tolist() if isinstance(indices, Tensor) else list(indices)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise ValueError(f"{who}: players must be a non-empty sequence of ints, got {indices!r}")
    if min(values) < 0 or len(set(values)) != len(values):
        raise ValueError(f"{who}: players must be distinct non-negative indices, got {values}")
    return tuple(values)


def _resolve_count(num_players: int | None, fixed: tuple[int, ...] | None, who: str) -> int:
    """``num_players`` defaults to the fixed players' count, or to 10 for random players."""
    if fixed is None:
        return check_num_players(_DEFAULT_NUM_PLAYERS if num_players is None else num_players, who)
    if num_players is not None and num_players != len(fixed):
        raise ValueError(f"{who}: num_players={num_players} but {len(fixed)} fixed players were given")
    return check_num_players(len(fixed), who)


def _fixed_players(
    players: Sequence[int] | None, num_players: int | None, who: str
) -> tuple[tuple[int, ...] | None, int]:
    """The checked fixed players (None for random ones) and the number of players."""
    fixed = _fixed_indices(players, who)
    return fixed, _resolve_count(num_players, fixed, who)


def _generator(seed: int) -> torch.Generator:
    # A local CPU generator: the same players on every device, and the global RNG is untouched.
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _random_choice(allowed: Tensor, n: int, seed: int) -> Tensor:
    """Choose ``n`` allowed units per row of ``allowed`` (B, U) at random; returns sorted (B, n)."""
    scores = torch.rand(allowed.shape, generator=_generator(seed))
    # Disallowed units score above every random number, so they come last.
    scores = scores.masked_fill(~allowed, 2.0)
    chosen = scores.argsort(dim=1)[:, :n]
    return chosen.sort(dim=1).values


def _fixed_choice(fixed: tuple[int, ...], batch: int) -> Tensor:
    return torch.tensor(fixed, dtype=torch.long).expand(batch, len(fixed)).clone()


def _choose(fixed: tuple[int, ...] | None, allowed: Tensor, n: int, seed: int) -> Tensor:
    """The ``fixed`` units for every row of ``allowed`` (B, U), else ``n`` allowed ones at random (seeded)."""
    if fixed is not None:
        return _fixed_choice(fixed, allowed.shape[0])
    return _random_choice(allowed, n, seed)


def _player_tensor(
    players: dict[str, Tensor], key: str, shape: tuple[int, ...], limit: int, inputs: Tensor, who: str
) -> Tensor:
    """Fetch ``players[key]``, check its shape and index range, and move it to the inputs' device."""
    if not isinstance(players, dict) or key not in players:
        raise ValueError(f"{who}: players must be the dict from select_players, with a {key!r} entry")
    value = players[key]
    if not isinstance(value, Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{who}: players[{key!r}] must have shape {shape}, got {got}")
    _check_index_range(value, limit, f"players[{key!r}]", who)
    return value.to(device=inputs.device, dtype=torch.long)


def _check_index_range(index: Tensor, limit: int, what: str, who: str) -> None:
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= limit):
        raise ValueError(
            f"{who}: {what} must lie in 0 .. {limit - 1}, got values from {int(index.min())} "
            f"to {int(index.max())}"
        )


def _owner(choice: Tensor, units: int) -> Tensor:
    """Per-unit player id from chosen units: ``(B, n)`` -> ``(B, units)``, -1 for non-players."""
    ordered = choice.sort(dim=1).values
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        raise ValueError("the players of a sample must be distinct units; one unit appears twice")
    owner = torch.full((choice.shape[0], units), -1, dtype=torch.long, device=choice.device)
    rank = torch.arange(choice.shape[1], device=choice.device).expand_as(choice)
    return owner.scatter(1, choice, rank)


def _keep(owner: Tensor, present: Tensor) -> Tensor:
    """Which units keep their value: ``owner`` (B, U) and ``present`` (M, n) -> (B, M, U) bools.

    A unit keeps its value when its player is present or when it is no player (owner -1).
    """
    n = present.shape[1]
    # Column n stands for "no player" and is always present.
    table = torch.cat([present, present.new_ones(present.shape[0], 1)], dim=1)
    index = torch.where(owner >= 0, owner, torch.full_like(owner, n))
    return table[:, index].transpose(0, 1)


def _keep_chosen(choice: Tensor, units: int, present: Tensor) -> Tensor:
    """:func:`_keep` for players given as chosen units: ``choice`` (B, n) of ``units`` -> (B, M, units)."""
    return _keep(_owner(choice, units), present)
