"""Maskers from plain functions: :class:`CallableMasker` and :func:`as_masker`."""

from __future__ import annotations

from torch import Tensor

from lightning_interactions.masking._common import _check_tensor
from lightning_interactions.masking.base import Masker, MaskFn, check_num_players, presence

__all__ = ["CallableMasker", "as_masker"]


class CallableMasker(Masker):
    """Wrap a function ``fn(inputs, masks) -> (B, M, ...)`` that masks a fixed set of players.

    There is no player selection: ``select_players`` returns an empty dict, and the function
    decides which input variables the ``num_players`` players are.

    Example:
        >>> import torch
        >>> def zero_first_two(inputs, masks):
        ...     keep = presence(masks, 2).to(inputs.dtype)  # (M, 2)
        ...     out = inputs[:, None].repeat(1, len(masks), 1)
        ...     out[:, :, :2] *= keep
        ...     return out
        >>> masker = CallableMasker(zero_first_two, num_players=2)
        >>> masker.apply(torch.ones(1, 3), {}, torch.tensor([1]))
        tensor([[[1., 0., 1.]]])
    """

    def __init__(self, fn: MaskFn, num_players: int) -> None:
        if not callable(fn):
            raise TypeError(f"CallableMasker needs a callable fn(inputs, masks), got {type(fn).__name__}")
        self.fn = fn
        self.num_players = check_num_players(num_players, "CallableMasker")

    def validate(self, inputs: Tensor) -> None:
        """Check only that the inputs are a batched tensor; the function knows the rest."""
        inputs = _check_tensor(inputs, "CallableMasker")
        if inputs.dim() < 1:
            raise ValueError("CallableMasker: inputs must have a batch dimension, got a scalar")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return an empty dict: the wrapped function fixes the players."""
        self.validate(inputs)
        return {}

    def apply(self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor) -> Tensor:
        """Call the function and check that it returned ``(B, M, ...)``."""
        presence(masks, self.num_players)  # clear errors for bad masks before calling user code
        out = self.fn(inputs, masks)
        expected = (inputs.shape[0], masks.shape[0])
        if not isinstance(out, Tensor) or tuple(out.shape[:2]) != expected:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the masking function must return a tensor of shape (B, M, ...) = {expected + ('...',)}, "
                f"got {got}"
            )
        return out


def as_masker(obj: Masker | MaskFn, num_players: int | None = None) -> Masker:
    """Return ``obj`` if it is a :class:`Masker`, else wrap a callable in :class:`CallableMasker`.

    Example:
        >>> as_masker(lambda inputs, masks: inputs[:, None], num_players=3)
        CallableMasker(num_players=3)
    """
    if isinstance(obj, Masker):
        if num_players is not None and num_players != obj.num_players:
            raise ValueError(f"num_players={num_players} disagrees with the masker's {obj.num_players}")
        return obj
    if callable(obj):
        if num_players is None:
            raise ValueError("a masking function needs num_players: as_masker(fn, num_players=n)")
        return CallableMasker(obj, num_players)
    raise TypeError(f"expected a Masker or a callable fn(inputs, masks), got {type(obj).__name__}")
