"""The masker contract: :class:`Masker`, the one limit of players, and the bits of a mask.

A coalition ``T`` is an integer mask: bit ``i`` set means player ``i`` is present (see
``docs/theory.md`` section 1). Every measurement runs ``2^n`` masked forward passes per sample,
so the number of players ``n`` is limited to :data:`MAX_PLAYERS`, checked by
:func:`check_num_players` wherever a number of players is given.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Callable, Union

import torch
from torch import Tensor

__all__ = ["Baseline", "FieldName", "MaskFn", "MAX_PLAYERS", "check_num_players", "presence", "Masker"]

# "zeros", "mean" (over the ``data`` given to the masker), a number, or a tensor that
# broadcasts to one sample.
Baseline = Union[str, float, Tensor]

# The name of a field of a structured sample: a dict key, or a position in a tuple.
FieldName = Union[str, int]

# A user masking function: ``fn(inputs (B, ...), masks (M,)) -> (B, M, ...)``.
MaskFn = Callable[[Tensor, Tensor], Tensor]

# 2^20 masked inputs per sample is about a million forward passes (and a (B, 2^20) float64 table
# of outputs); beyond that the cost is rarely what anyone meant. The engine's ``max_players=`` may
# lower the limit, never raise it.
MAX_PLAYERS = 20

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_num_players(num_players: object, who: str, limit: int = MAX_PLAYERS) -> int:
    """Return ``num_players`` if it is an int in ``1 .. limit``; raise a clear error otherwise.

    ``who`` starts the message. ``limit`` lowers the bound (the engine's ``max_players=``); a
    limit outside ``1 .. MAX_PLAYERS`` is refused.

    Example:
        >>> check_num_players(10, "PatchMasker")
        10
        >>> check_num_players(21, "PatchMasker")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: PatchMasker: 21 players need 2^21 = ... per sample; the limit is 20 players (2^20 ...
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PLAYERS:
        raise ValueError(
            f"{who}: the player limit max_players must be an int in 1 .. {MAX_PLAYERS} "
            f"(2^{MAX_PLAYERS} masked forward passes per sample), got {limit!r}"
        )
    if isinstance(num_players, bool) or not isinstance(num_players, int):
        raise TypeError(f"{who}: num_players must be an int, got {type(num_players).__name__}")
    if num_players < 1:
        raise ValueError(f"{who}: num_players must be in 1 .. {limit}, got {num_players}")
    if num_players > limit:
        if limit == MAX_PLAYERS:
            bound, advice = f"{limit} players (2^{limit} = {2**limit:,} per sample)", ""
        else:
            bound, advice = f"max_players={limit}", f", or raise max_players (at most {MAX_PLAYERS})"
        raise ValueError(
            f"{who}: {num_players} players need 2^{num_players} = {2**num_players:,} masked forward "
            f"passes per sample; the limit is {bound}: lower num_players (8 to 12 is usual){advice}"
        )
    return num_players


def presence(masks: Tensor, num_players: int) -> Tensor:
    """Return ``(M, n)`` booleans: ``out[m, i]`` is True when player ``i`` is in ``masks[m]``.

    Raises a ``TypeError`` / ``ValueError`` for masks that are not a 1-D integer tensor with
    values in ``0 .. 2^n - 1``.

    Example:
        >>> presence(torch.tensor([0, 1, 6]), 3)
        tensor([[False, False, False],
                [ True, False, False],
                [False,  True,  True]])
    """
    check_num_players(num_players, "presence")
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a tensor of integer masks, got {type(masks).__name__}")
    if masks.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"masks must be an integer tensor (int64), got dtype {masks.dtype}")
    if masks.dim() != 1:
        raise ValueError(f"masks must be a 1-D tensor of M masks, got shape {tuple(masks.shape)}")
    masks = masks.long()
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= 2**num_players):
        raise ValueError(
            f"masks must lie in 0 .. 2^{num_players} - 1 = {2**num_players - 1} for {num_players} "
            f"players, got values from {int(masks.min())} to {int(masks.max())}"
        )
    bits = torch.arange(num_players, device=masks.device)
    return ((masks[:, None] >> bits) & 1).bool()


class Masker(abc.ABC):
    """Base class of all maskers: chooses the players of each sample and builds masked inputs.

    Subclasses set ``num_players`` and implement :meth:`validate`, :meth:`select_players` and
    :meth:`apply`. A masker whose ``apply`` can write into a preallocated buffer declares
    ``supports_out = True`` in its class body, as the built-in maskers do: the engine then passes
    ``out=`` (one ``(B, M, ...)`` buffer reused for every chunk). A class that overrides ``apply``
    without declaring ``supports_out`` gets ``False``, so an ``apply`` without ``out`` keeps
    working. A custom masker needs only the three methods:

    Example:
        >>> class FirstFeatures(Masker):
        ...     num_players = 2
        ...     def validate(self, inputs):
        ...         if inputs.dim() != 2: raise ValueError("expected (B, F)")
        ...     def select_players(self, inputs, seed=0):
        ...         return {}
        ...     def apply(self, inputs, players, masks):
        ...         keep = presence(masks, 2)  # (M, 2): features 0 and 1 are the players
        ...         out = inputs[:, None].repeat(1, len(masks), 1)
        ...         out[:, :, :2] *= keep
        ...         return out
        >>> FirstFeatures().apply(torch.ones(1, 3), {}, torch.tensor([0, 3]))
        tensor([[[0., 0., 1.],
                 [1., 1., 1.]]])
        >>> FirstFeatures.supports_out
        False
    """

    num_players: int
    # Whether ``apply`` takes ``out=``; declared by the class that defines ``apply``.
    supports_out: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # An ``apply`` inherited keeps its ``supports_out``; a new one must declare its own.
        if "apply" in cls.__dict__ and "supports_out" not in cls.__dict__:
            cls.supports_out = False

    @abc.abstractmethod
    def validate(self, inputs: Tensor) -> None:
        """Raise a ``ValueError`` with a clear message if ``inputs`` (B, ...) do not fit."""

    @abc.abstractmethod
    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Choose the players of every sample; every value has leading dimension ``B``.

        Deterministic for given inputs and seed, and the global RNG is left untouched.
        """

    @abc.abstractmethod
    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return masked inputs ``(B, M, ...)``: ``out[b, m]`` is sample ``b`` with coalition ``masks[m]``.

        ``out`` is passed only when ``supports_out`` is True: a tensor of the masked inputs' shape,
        dtype and device (any values) that ``apply`` fills and returns. A masker without
        ``supports_out`` may define ``apply(inputs, players, masks)`` with no ``out``.
        """

    # ----- Samples with several fields (a dict batch: ids, attention mask, ...) ---------------
    # The engine masks one field of a structured sample (the ``inputs`` every method above gets)
    # and calls the two hooks below with the sample's other fields, ``{name: (B, ...)}`` (for a
    # tuple sample the names are the positions). The defaults ignore them; a masker that reads or
    # writes another field (TokenMasker reads and may write ``attention_mask``) overrides them.

    def select_players_with(
        self, inputs: Tensor, fields: Mapping[FieldName, Tensor], seed: int = 0
    ) -> dict[str, Tensor]:
        """:meth:`select_players` knowing the sample's other ``fields``; by default they are ignored.

        ``validate`` has been called on ``inputs``. A masker that reads a field (padding from an
        attention mask) overrides this; :class:`~lightning_interactions.masking.TokenMasker` does.
        """
        return self.select_players(inputs, seed)

    def mask_fields(
        self, fields: Mapping[FieldName, Tensor], players: dict[str, Tensor], masks: Tensor
    ) -> dict[FieldName, Tensor]:
        """The other fields of every masked copy: each ``(B, ...)`` field -> ``(B, M, ...)``.

        By default every field travels unchanged with each masked copy (an expanded view).

        Example:
            >>> class Identity(Masker):
            ...     num_players = 1
            ...     def validate(self, inputs): pass
            ...     def select_players(self, inputs, seed=0): return {}
            ...     def apply(self, inputs, players, masks): return inputs[:, None].expand(-1, len(masks))
            >>> fields = Identity().mask_fields({"attention_mask": torch.ones(2, 3)}, {}, torch.arange(2))
            >>> fields["attention_mask"].shape
            torch.Size([2, 2, 3])
        """
        count = masks.shape[0]
        return {
            name: value[:, None].expand(value.shape[0], count, *value.shape[1:])
            for name, value in fields.items()
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_players={self.num_players})"
