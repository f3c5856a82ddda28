"""Image patches as players: :class:`PatchMasker`."""

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
from lightning_interactions.masking.base import Baseline, Masker, presence
from lightning_interactions.masking.baselines import _baseline_on, _check_baseline, resolve_baseline

__all__ = ["PatchMasker"]


def _pair(patch_size: int | Sequence[int]) -> tuple[int, int]:
    size = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"patch_size must be a positive int or a pair of them, got {patch_size!r}")
    return size


class PatchMasker(Masker):
    """Image patches as players: inputs ``(B, C, H, W)`` cut into a grid of ``patch_size`` patches.

    Patches are numbered row-major over the grid. The players are ``num_players`` patches
    chosen at random (seeded) per sample, or the fixed patch indices ``players`` for every
    sample (player ``i`` is ``players[i]``). ``num_players`` defaults to ``len(players)``, or
    10 for random patches. Other patches keep their values. A masked patch takes the baseline:
    zeros, a tensor that broadcasts to ``(C, H, W)``, or ``"mean"`` over ``data`` (N, C, H, W).

    Example:
        >>> masker = PatchMasker(patch_size=2, players=[0, 3])
        >>> image = torch.ones(1, 1, 4, 4)
        >>> players = masker.select_players(image)
        >>> masker.apply(image, players, torch.tensor([1]))[0, 0, 0]  # player 1 (patch 3) masked
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 0., 0.],
                [1., 1., 0., 0.]])
    """

    supports_out = True

    def __init__(
        self,
        patch_size: int | tuple[int, int],
        num_players: int | None = None,
        players: Sequence[int] | None = None,
        baseline: Baseline = "zeros",
        data: Tensor | None = None,
    ) -> None:
        self.patch_size = _pair(patch_size)
        self.players, self.num_players = _fixed_players(players, num_players, "PatchMasker")
        self.baseline = resolve_baseline(baseline, data)

    def _grid(self, inputs: Tensor) -> tuple[int, int]:
        (height, width), (ph, pw) = inputs.shape[-2:], self.patch_size
        return height // ph, width // pw

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, C, H, W)`` images that the patch grid divides and holds the players."""
        inputs = _check_tensor(inputs, "PatchMasker")
        if inputs.dim() != 4:
            raise ValueError(f"PatchMasker expects images (B, C, H, W), got shape {tuple(inputs.shape)}")
        (height, width), (ph, pw) = inputs.shape[-2:], self.patch_size
        if height % ph or width % pw:
            raise ValueError(
                f"PatchMasker: image size {height}x{width} is not divisible by the patch size {ph}x{pw}"
            )
        rows, cols = self._grid(inputs)
        if rows * cols < self.num_players:
            raise ValueError(
                f"PatchMasker: the {rows}x{cols} patch grid has {rows * cols} patches, fewer than "
                f"num_players={self.num_players}; use smaller patches or fewer players"
            )
        if self.players is not None and max(self.players) >= rows * cols:
            raise ValueError(
                f"PatchMasker: fixed player patch {max(self.players)} is outside the {rows}x{cols} grid "
                f"(patches 0 .. {rows * cols - 1}, row-major)"
            )
        _check_baseline(self.baseline, inputs.shape[1:], "PatchMasker")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"patches": (B, n)}``: the row-major patch index of every player."""
        self.validate(inputs)
        batch, (rows, cols) = inputs.shape[0], self._grid(inputs)
        allowed = torch.ones(batch, rows * cols, dtype=torch.bool)
        patches = _choose(self.players, allowed, self.num_players, seed)
        return {"patches": patches.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, C, H, W)``: masked patches take the baseline (written into ``out`` if given)."""
        batch, _, height, width = inputs.shape
        (rows, cols), (ph, pw) = self._grid(inputs), self.patch_size
        shape = (batch, self.num_players)
        patches = _player_tensor(players, "patches", shape, rows * cols, inputs, "PatchMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        keep = _keep_chosen(patches, rows * cols, present).reshape(batch, -1, rows, cols)
        # Blow each patch's flag up to its pixels: (B, M, 1, rows, ph, cols, pw) -> (B, M, 1, H, W).
        keep = keep[:, :, None, :, None, :, None].expand(-1, -1, 1, rows, ph, cols, pw)
        keep = keep.reshape(batch, -1, 1, height, width)
        return torch.where(keep, inputs[:, None], _baseline_on(self.baseline, inputs), out=out)
