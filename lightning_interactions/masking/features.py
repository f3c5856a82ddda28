"""Features along the last axis as players: :class:`FeatureMasker`, for tabular data and 1-D signals."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_interactions.masking._common import (
    _check_tensor,
    _choose,
    _keep,
    _owner,
    _player_tensor,
)
from lightning_interactions.masking.base import Baseline, Masker, check_num_players, presence
from lightning_interactions.masking.baselines import _baseline_on, _check_baseline, resolve_baseline

__all__ = ["FeatureMasker", "contiguous_segments"]


def contiguous_segments(length: int, num_segments: int) -> list[list[int]]:
    """Split ``0 .. length - 1`` into ``num_segments`` contiguous runs whose sizes differ by <= 1.

    Example:
        >>> contiguous_segments(7, 3)
        [[0, 1, 2], [3, 4], [5, 6]]
    """
    if num_segments < 1 or num_segments > length:
        raise ValueError(f"num_segments must be in 1 .. length={length}, got {num_segments}")
    size, extra = divmod(length, num_segments)
    segments, start = [], 0
    for k in range(num_segments):
        stop = start + size + (1 if k < extra else 0)
        segments.append(list(range(start, stop)))
        start = stop
    return segments


def _check_groups(groups: Sequence[Sequence[int]], num_features: int | None) -> tuple[tuple[int, ...], ...]:
    checked = []
    for k, group in enumerate(groups):
        members = group.tolist() if isinstance(group, Tensor) else group
        if (
            not isinstance(members, (list, tuple, range))
            or not members
            or any(isinstance(f, bool) or not isinstance(f, int) for f in members)
        ):
            raise ValueError(
                f"FeatureMasker: group {k} must be a non-empty list of feature indices, got {group!r}"
            )
        checked.append(tuple(members))
    if not checked:
        raise ValueError("FeatureMasker: groups must not be empty")
    flat = [f for group in checked for f in group]
    if min(flat) < 0 or (num_features is not None and max(flat) >= num_features):
        limit = "" if num_features is None else f" .. {num_features - 1}"
        raise ValueError(f"FeatureMasker: feature indices must lie in 0{limit}, got {min(flat)}..{max(flat)}")
    if len(set(flat)) != len(flat):
        repeated = sorted({f for f in flat if flat.count(f) > 1})
        raise ValueError(f"FeatureMasker: groups must be disjoint, features {repeated} are in more than one")
    return tuple(checked)


class FeatureMasker(Masker):
    """Features along the last axis as players: tabular ``(B, F)`` or signals ``(B, C, F)``.

    Each player is a group of feature indices (``groups``; disjoint); by default every feature
    is its own group. Features in no group are never masked. For inputs with middle
    dimensions (e.g. channels of a 1-D signal), a group masks its positions in all of them.
    ``num_players`` defaults to the number of groups; if smaller, that many groups are chosen
    at random (seeded) per sample. The number of features comes from ``num_features``, else
    from ``data``; it is required when ``groups`` is not given. The baseline is zeros, a tensor
    that broadcasts to one sample, or ``"mean"`` over ``data`` (N, ..., F).
    Use :meth:`segments` to make contiguous segments of a signal into players.

    Example:
        >>> masker = FeatureMasker(groups=[[0, 1], [3]], baseline=torch.tensor(-1.0))
        >>> x = torch.arange(1.0, 5.0)[None]  # one sample, 4 features
        >>> masker.apply(x, masker.select_players(x), torch.tensor([0, 1, 2, 3]))
        tensor([[[-1., -1.,  3., -1.],
                 [ 1.,  2.,  3., -1.],
                 [-1., -1.,  3.,  4.],
                 [ 1.,  2.,  3.,  4.]]])
    """

    supports_out = True

    def __init__(
        self,
        groups: Sequence[Sequence[int]] | None = None,
        baseline: Baseline = "zeros",
        data: Tensor | None = None,
        num_players: int | None = None,
        num_features: int | None = None,
    ) -> None:
        self.baseline = resolve_baseline(baseline, data)
        if num_features is None and data is not None:
            num_features = data.shape[-1]
        if groups is None:
            if num_features is None:
                raise ValueError(
                    "FeatureMasker needs groups, num_features or data to know its players "
                    "(every feature is a player by default)"
                )
            groups = [[f] for f in range(num_features)]
        self.num_features = num_features
        self.groups = _check_groups(groups, num_features)
        count = len(self.groups) if num_players is None else num_players
        self.num_players = check_num_players(count, "FeatureMasker")
        if self.num_players > len(self.groups):
            raise ValueError(
                f"FeatureMasker: num_players={self.num_players} exceeds the {len(self.groups)} groups"
            )
        # Group of every feature up to the largest grouped one; -1 means "in no group".
        group_of = torch.full((max(f for g in self.groups for f in g) + 1,), -1, dtype=torch.long)
        for k, group in enumerate(self.groups):
            group_of[list(group)] = k
        self._group_of = group_of

    @classmethod
    def segments(cls, num_features: int, num_segments: int, **kwargs: object) -> FeatureMasker:
        """Make ``num_segments`` contiguous segments of the last axis into players.

        Example:
            >>> FeatureMasker.segments(40, 8).groups[1]
            (5, 6, 7, 8, 9)
        """
        groups = contiguous_segments(num_features, num_segments)
        return cls(groups=groups, num_features=num_features, **kwargs)

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, ..., F)`` inputs that the feature count fits the groups and baseline."""
        inputs = _check_tensor(inputs, "FeatureMasker")
        if inputs.dim() < 2:
            raise ValueError(f"FeatureMasker expects inputs (B, ..., F), got shape {tuple(inputs.shape)}")
        features = inputs.shape[-1]
        if self.num_features is not None and features != self.num_features:
            raise ValueError(
                f"FeatureMasker: inputs have {features} features (last axis), expected {self.num_features}"
            )
        if features < len(self._group_of):
            raise ValueError(
                f"FeatureMasker: inputs have {features} features but the groups use feature "
                f"{len(self._group_of) - 1}"
            )
        _check_baseline(self.baseline, inputs.shape[1:], "FeatureMasker")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"groups": (B, n)}``: the group index of every player.

        With ``num_players`` equal to the number of groups, player ``i`` is group ``i``.
        """
        self.validate(inputs)
        batch, count = inputs.shape[0], len(self.groups)
        every_group = tuple(range(count)) if self.num_players == count else None
        allowed = torch.ones(batch, count, dtype=torch.bool)
        chosen = _choose(every_group, allowed, self.num_players, seed)
        return {"groups": chosen.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, ..., F)``: masked groups' features take the baseline (into ``out`` if given)."""
        batch, features, count = inputs.shape[0], inputs.shape[-1], len(self.groups)
        chosen = _player_tensor(players, "groups", (batch, self.num_players), count, inputs, "FeatureMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        # Player of each group (B, G + 1; column G = "no group"), then of each feature (B, F).
        group_owner = torch.cat([_owner(chosen, count), chosen.new_full((batch, 1), -1)], dim=1)
        group_of = torch.full((features,), count, dtype=torch.long)
        group_of[: len(self._group_of)] = self._group_of.masked_fill(self._group_of < 0, count)
        owner = group_owner[:, group_of.to(inputs.device)]
        keep = _keep(owner, present)  # (B, M, F)
        keep = keep.reshape(batch, -1, *([1] * (inputs.dim() - 2)), features)
        return torch.where(keep, inputs[:, None], _baseline_on(self.baseline, inputs), out=out)
