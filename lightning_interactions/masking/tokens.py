"""Token positions as players: :class:`TokenMasker`, for integer token ids."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_interactions.masking._common import (
    _check_tensor,
    _choose,
    _fixed_players,
    _keep_chosen,
    _player_tensor,
)
from lightning_interactions.masking.base import _INTEGER_DTYPES, Masker, presence

__all__ = ["TokenMasker"]


class TokenMasker(Masker):
    """Token positions as players: inputs ``(B, L)`` integer token ids.

    The players are ``num_players`` positions chosen at random (seeded) among the non-padding
    positions of each sample, or the fixed positions ``players`` for every sample. Padding is
    never a player. A masked player becomes ``mask_token_id``; the output keeps the integer
    dtype. ``num_players`` defaults to ``len(players)``, or 10 for random positions.

    Example:
        >>> masker = TokenMasker(mask_token_id=0, num_players=2, pad_token_id=9)
        >>> ids = torch.tensor([[5, 6, 9, 9]])
        >>> masker.apply(ids, masker.select_players(ids), torch.tensor([0, 1, 3]))
        tensor([[[0, 0, 9, 9],
                 [5, 0, 9, 9],
                 [5, 6, 9, 9]]])
    """

    supports_out = True

    def __init__(
        self,
        mask_token_id: int,
        num_players: int | None = None,
        pad_token_id: int | None = None,
        players: Sequence[int] | None = None,
    ) -> None:
        for name, value in (("mask_token_id", mask_token_id), ("pad_token_id", pad_token_id)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"TokenMasker: {name} must be an int, got {type(value).__name__}")
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        self.players, self.num_players = _fixed_players(players, num_players, "TokenMasker")

    def _non_padding(self, inputs: Tensor) -> Tensor:
        if self.pad_token_id is None:
            return torch.ones_like(inputs, dtype=torch.bool)
        return inputs != self.pad_token_id

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, L)`` integer ids that every sample has enough non-padding players."""
        inputs = _check_tensor(inputs, "TokenMasker")
        if inputs.dim() != 2:
            raise ValueError(f"TokenMasker expects token ids (B, L), got shape {tuple(inputs.shape)}")
        if inputs.dtype not in _INTEGER_DTYPES:
            raise ValueError(f"TokenMasker expects integer token ids, got dtype {inputs.dtype}")
        self._mask_token(inputs)
        non_padding = self._non_padding(inputs)
        if self.players is not None:
            self._validate_fixed(non_padding)
            return
        counts = non_padding.sum(dim=1)
        if inputs.shape[0] and int(counts.min()) < self.num_players:
            sample = int(counts.argmin())
            raise ValueError(
                f"TokenMasker: sample {sample} has {int(counts[sample])} non-padding tokens, fewer than "
                f"num_players={self.num_players}"
            )

    def _mask_token(self, inputs: Tensor) -> Tensor:
        """``mask_token_id`` as a 0-d tensor of the ids' dtype; raise if that dtype cannot hold it."""
        info = torch.iinfo(inputs.dtype) if inputs.dtype in _INTEGER_DTYPES else None
        # torch.tensor would wrap -1 to 255 for uint8 silently, or fail with a bare RuntimeError.
        if info is not None and not info.min <= self.mask_token_id <= info.max:
            raise ValueError(
                f"TokenMasker: mask_token_id={self.mask_token_id} does not fit the token ids' dtype "
                f"{inputs.dtype} (values {info.min} .. {info.max})"
            )
        return torch.tensor(self.mask_token_id, dtype=inputs.dtype, device=inputs.device)

    def _validate_fixed(self, non_padding: Tensor) -> None:
        length = non_padding.shape[1]
        if max(self.players) >= length:
            raise ValueError(f"TokenMasker: fixed player position {max(self.players)} >= the length {length}")
        on_padding = ~non_padding[:, list(self.players)]
        if bool(on_padding.any()):
            sample, k = (int(i) for i in on_padding.nonzero()[0])
            raise ValueError(
                f"TokenMasker: fixed player position {self.players[k]} is padding in sample {sample}"
            )

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"positions": (B, n)}``: the token position of every player, never padding."""
        self.validate(inputs)
        allowed = self._non_padding(inputs.detach().cpu())
        positions = _choose(self.players, allowed, self.num_players, seed)
        return {"positions": positions.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, L)`` ids: masked player positions become ``mask_token_id`` (into ``out``)."""
        batch, length = inputs.shape
        shape = (batch, self.num_players)
        positions = _player_tensor(players, "positions", shape, length, inputs, "TokenMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        keep = _keep_chosen(positions, length, present)
        return torch.where(keep, inputs[:, None], self._mask_token(inputs), out=out)
