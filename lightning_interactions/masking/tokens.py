"""Token positions as players: :class:`TokenMasker`, for integer token ids.

A masked player either becomes a mask token (the paper's convention, ``masked_as="mask_token"``)
or leaves the attention of the model (``masked_as="attention"``: its ``attention_mask`` is 0 in
that masked copy). Padding and special tokens ([CLS], [SEP], ...) are never players.
:meth:`TokenMasker.from_tokenizer` reads the ids from a Hugging Face tokenizer.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from lightning_interactions.masking._common import (
    _check_tensor,
    _choose,
    _fixed_players,
    _keep_chosen,
    _player_tensor,
)
from lightning_interactions.masking._tokenizers import TOKENIZER_SETTINGS, TokenText, read_tokenizer
from lightning_interactions.masking.base import _INTEGER_DTYPES, FieldName, Masker, presence

__all__ = ["TokenMasker", "TokenText"]

_MASKED_AS = ("mask_token", "attention")
_ATTENTION = "attention_mask"


def _check_token_id(value: object, name: str, vocab_size: int | None) -> None:
    """Raise unless ``value`` is an int token id in ``0 .. vocab_size - 1``; ``name`` is the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"TokenMasker: {name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"TokenMasker: {name} must be a non-negative token id, got {value}")
    if vocab_size is not None and value >= vocab_size:
        raise ValueError(
            f"TokenMasker: {name}={value} is outside the vocabulary 0 .. {vocab_size - 1} "
            f"(vocab_size={vocab_size}); fix {name} or vocab_size"
        )


def _check_special_ids(special_token_ids: object, vocab_size: int | None) -> tuple[int, ...]:
    """The checked special ids, sorted and without repeats."""
    if special_token_ids is None:
        return ()
    if isinstance(special_token_ids, Tensor):
        special_token_ids = special_token_ids.tolist()
    if isinstance(special_token_ids, (str, bytes)) or not isinstance(special_token_ids, Iterable):
        raise TypeError(
            "TokenMasker: special_token_ids must be a sequence of ints, "
            f"got {type(special_token_ids).__name__}"
        )
    values = list(special_token_ids)
    for i, value in enumerate(values):
        _check_token_id(value, f"special_token_ids[{i}]", vocab_size)
    return tuple(sorted(set(values)))


def _check_vocab_size(vocab_size: object) -> int | None:
    if vocab_size is None:
        return None
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"TokenMasker: vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < 1:
        raise ValueError(f"TokenMasker: vocab_size must be at least 1, got {vocab_size}")
    return vocab_size


def _warn_if_padded(ids: Tensor) -> None:
    """Warn when the ids look padded but no pad id is known: padding would become players.

    Looks padded: at least two rows, and a third of them, end in a run of the same id.
    """
    if ids.shape[0] < 2 or ids.shape[1] < 3:
        return
    last = ids[:, -1]
    in_runs = last[(ids[:, -2] == last)]
    if in_runs.numel() < max(2, ids.shape[0] / 3):
        return
    common = int(in_runs.mode().values)
    if int((in_runs == common).sum()) >= max(2, ids.shape[0] / 3):
        warnings.warn(
            f"TokenMasker: {int((in_runs == common).sum())} of {ids.shape[0]} samples end in a run of the "
            f"token {common}, as padding does, but the masker knows no pad_token_id and the samples have "
            "no attention_mask: padding positions can become players. Pass "
            f"pad_token_id={common} (or use TokenMasker.from_tokenizer(tokenizer)) if that is padding",
            UserWarning,
            stacklevel=3,
        )


class TokenMasker(Masker):
    """Token positions as players: inputs ``(B, L)`` integer token ids.

    The players are ``num_players`` positions chosen at random (seeded) among the allowed
    positions of each sample, or the fixed positions ``players`` for every sample. Padding (a
    ``pad_token_id``, or a 0 in the sample's ``attention_mask`` field) and ``special_token_ids``
    are never players, so they keep their value in every masked copy. ``num_players`` defaults
    to ``len(players)``, or 10 for random positions.

    ``masked_as`` says what a masked player becomes: ``"mask_token"`` (the paper's convention)
    puts ``mask_token_id`` in its place, keeping the integer dtype; ``"attention"`` keeps its id
    and sets the sample's ``attention_mask`` to 0 there (:meth:`mask_fields`), for models
    without a mask token. :meth:`from_tokenizer` takes the ids from a Hugging Face tokenizer.

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
        mask_token_id: int | None = None,
        num_players: int | None = None,
        pad_token_id: int | None = None,
        players: Sequence[int] | None = None,
        *,
        special_token_ids: Sequence[int] | None = None,
        vocab_size: int | None = None,
        masked_as: str = "mask_token",
    ) -> None:
        if masked_as not in _MASKED_AS:
            choices = " or ".join(repr(choice) for choice in _MASKED_AS)
            raise ValueError(f"TokenMasker: masked_as must be {choices}, got {masked_as!r}")
        self.vocab_size = _check_vocab_size(vocab_size)
        for name, value in (("mask_token_id", mask_token_id), ("pad_token_id", pad_token_id)):
            if value is not None:
                _check_token_id(value, name, self.vocab_size)
        if masked_as == "mask_token" and mask_token_id is None:
            raise ValueError(
                "TokenMasker: masked_as='mask_token' replaces a masked player with mask_token_id; "
                "pass mask_token_id=, or masked_as='attention' to hide masked players from attention"
            )
        if mask_token_id is not None and mask_token_id == pad_token_id:
            raise ValueError(
                f"TokenMasker: mask_token_id and pad_token_id are both {mask_token_id}, so the model could "
                "not tell a masked token from padding; pass the tokenizer's own mask_token_id"
            )
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        # Token id -> text for the monitor's pictures (set by from_tokenizer); None shows the ids.
        self.decode: TokenText | None = None
        # [MASK] may be among them (it is a special token in Hugging Face tokenizers): that is fine.
        self.special_token_ids = _check_special_ids(special_token_ids, self.vocab_size)
        self.masked_as = masked_as
        self.players, self.num_players = _fixed_players(players, num_players, "TokenMasker")

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: object,
        num_players: int | None = None,
        *,
        masked_as: str = "mask_token",
        players: Sequence[int] | None = None,
        **kwargs: object,
    ) -> TokenMasker:
        """A masker with the ids of a Hugging Face tokenizer.

        Reads ``mask_token_id``, ``pad_token_id``, ``all_special_ids`` (as ``special_token_ids``)
        and ``len(tokenizer)`` (as ``vocab_size``, added tokens included); any object with those
        will do. ``kwargs`` (those four names) override what the tokenizer gives. A tokenizer
        without a mask token (GPT-2) needs ``masked_as="attention"`` or ``mask_token_id=``.

        Example:
            >>> class Tokenizer:  # the attributes of a Hugging Face tokenizer that are read
            ...     mask_token_id, pad_token_id, all_special_ids = 4, 0, [0, 1, 2, 3, 4]
            ...     def __len__(self): return 30
            >>> masker = TokenMasker.from_tokenizer(Tokenizer(), num_players=2)
            >>> masker.mask_token_id, masker.pad_token_id, masker.special_token_ids, masker.vocab_size
            (4, 0, (0, 1, 2, 3, 4), 30)
        """
        unknown = sorted(set(kwargs) - set(TOKENIZER_SETTINGS))
        if unknown:
            raise TypeError(
                f"TokenMasker.from_tokenizer: unexpected keyword arguments {unknown}; it takes "
                f"num_players, masked_as, players and overrides of {list(TOKENIZER_SETTINGS)}"
            )
        settings = {**read_tokenizer(tokenizer), **kwargs}
        if masked_as == "mask_token" and settings["mask_token_id"] is None:
            raise ValueError(
                f"TokenMasker.from_tokenizer: the tokenizer ({type(tokenizer).__name__}) has no mask "
                "token; pass masked_as='attention' to hide masked players from attention, or "
                "mask_token_id= to mask them with a token of your choice"
            )
        mask_token_id, pad_token_id = settings.pop("mask_token_id"), settings.pop("pad_token_id")
        masker = cls(mask_token_id, num_players, pad_token_id, players, masked_as=masked_as, **settings)
        vocabulary = getattr(tokenizer, "get_vocab", None)
        if callable(vocabulary):  # the monitor's pictures show the words, not their ids
            masker.decode = TokenText(vocabulary())
        return masker

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, L)`` integer ids that every sample has enough allowed positions.

        Only the ids are seen here (pad id and special ids); :meth:`select_players_with` checks
        again with the padding of an ``attention_mask`` field.
        """
        inputs = _check_tensor(inputs, "TokenMasker")
        if inputs.dim() != 2:
            raise ValueError(f"TokenMasker expects token ids (B, L), got shape {tuple(inputs.shape)}")
        if inputs.dtype not in _INTEGER_DTYPES:
            raise ValueError(f"TokenMasker expects integer token ids, got dtype {inputs.dtype}")
        if self.masked_as == "mask_token":
            self._mask_token(inputs)
        self._check_players(self._padding(inputs, None), self._special(inputs))

    def _mask_token(self, inputs: Tensor) -> Tensor:
        """``mask_token_id`` as a 0-d tensor of the ids' dtype; raise if that dtype cannot hold it."""
        info = torch.iinfo(inputs.dtype) if inputs.dtype in _INTEGER_DTYPES else None
        # torch.tensor would fail with a bare RuntimeError for an id the dtype cannot hold.
        if info is not None and not info.min <= self.mask_token_id <= info.max:
            raise ValueError(
                f"TokenMasker: mask_token_id={self.mask_token_id} does not fit the token ids' dtype "
                f"{inputs.dtype} (values {info.min} .. {info.max})"
            )
        return torch.tensor(self.mask_token_id, dtype=inputs.dtype, device=inputs.device)

    def _padding(self, inputs: Tensor, attention: Tensor | None) -> Tensor:
        """``(B, L)`` True at padding: the pad id, or a 0 in the attention mask."""
        if self.pad_token_id is None:
            padding = torch.zeros_like(inputs, dtype=torch.bool)
        else:
            # As int64: uint8 ids compared with 300 would wrap it to 44 and find it.
            padding = inputs.long() == self.pad_token_id
        if attention is not None:
            padding |= attention == 0
        return padding

    def _special(self, inputs: Tensor) -> Tensor:
        """``(B, L)`` True at the special tokens."""
        special = torch.tensor(self.special_token_ids, dtype=torch.long, device=inputs.device)
        return torch.isin(inputs.long(), special)

    def _check_players(self, padding: Tensor, special: Tensor) -> None:
        """Raise if a fixed player is padding or special, or a sample has too few allowed positions."""
        if self.players is not None:
            self._check_fixed(padding, special)
            return
        counts = (~(padding | special)).sum(dim=1)
        if counts.numel() and int(counts.min()) < self.num_players:
            sample = int(counts.argmin())
            kind = "non-padding, non-special" if self.special_token_ids else "non-padding"
            raise ValueError(
                f"TokenMasker: sample {sample} has {int(counts[sample])} {kind} tokens, fewer than "
                f"num_players={self.num_players}; lower num_players or leave out the samples this short"
            )

    def _check_fixed(self, padding: Tensor, special: Tensor) -> None:
        length = padding.shape[1]
        if max(self.players) >= length:
            raise ValueError(f"TokenMasker: fixed player position {max(self.players)} >= the length {length}")
        for what, flags in (("padding", padding), ("a special token", special)):
            hit = flags[:, list(self.players)]
            if bool(hit.any()):
                sample, k = (int(i) for i in hit.nonzero()[0])
                raise ValueError(
                    f"TokenMasker: fixed player position {self.players[k]} is {what} in sample {sample}, and "
                    "padding and special tokens are never players; choose other positions in players=, "
                    "or give num_players= alone for random positions"
                )

    def _attention(self, fields: Mapping[FieldName, Tensor], inputs: Tensor) -> Tensor | None:
        """The ``attention_mask`` field (None if absent), checked to be ``(B, L)`` like the ids."""
        attention = fields.get(_ATTENTION)
        if attention is None:
            return None
        if not isinstance(attention, Tensor) or attention.shape != inputs.shape:
            got = tuple(attention.shape) if isinstance(attention, Tensor) else type(attention).__name__
            raise ValueError(
                f"TokenMasker: the {_ATTENTION!r} field must have the shape of the token ids "
                f"{tuple(inputs.shape)}, got {got}"
            )
        return attention

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"positions": (B, n)}``: the token position of every player, never padding or special."""
        return self.select_players_with(inputs, {}, seed)

    def select_players_with(
        self, inputs: Tensor, fields: Mapping[FieldName, Tensor], seed: int = 0
    ) -> dict[str, Tensor]:
        """:meth:`select_players` where a 0 in the ``attention_mask`` field is padding too.

        Example:
            >>> masker = TokenMasker(mask_token_id=4, num_players=2, special_token_ids=[1, 2])
            >>> ids = torch.tensor([[1, 7, 8, 2, 0]])  # [CLS] 7 8 [SEP] [PAD]
            >>> fields = {"attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
            >>> masker.select_players_with(ids, fields)["positions"]
            tensor([[1, 2]])
        """
        self.validate(inputs)
        attention = self._attention(fields, inputs)
        ids = inputs.detach().cpu()
        padding = self._padding(ids, None if attention is None else attention.detach().cpu())
        if attention is None and self.pad_token_id is None:
            _warn_if_padded(ids)
        special = self._special(ids)
        if attention is not None:
            self._check_players(padding, special)
        positions = _choose(self.players, ~(padding | special), self.num_players, seed)
        return {"positions": positions.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, L)`` ids (into ``out``): masked players become ``mask_token_id``.

        With ``masked_as="attention"`` every copy keeps the ids; :meth:`mask_fields` masks.
        """
        keep = self._keep(inputs, players, masks)
        if self.masked_as == "attention":
            copies = inputs[:, None].expand(keep.shape)
            # A new tensor, as in the other mode, never a view of the caller's ids.
            return copies.clone(memory_format=torch.contiguous_format) if out is None else out.copy_(copies)
        return torch.where(keep, inputs[:, None], self._mask_token(inputs), out=out)

    def _keep(self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor) -> Tensor:
        """``(B, M, L)`` True where a position keeps its token (its player is present, or no player)."""
        batch, length = inputs.shape
        shape = (batch, self.num_players)
        positions = _player_tensor(players, "positions", shape, length, inputs, "TokenMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        return _keep_chosen(positions, length, present)

    def mask_fields(
        self, fields: Mapping[FieldName, Tensor], players: dict[str, Tensor], masks: Tensor
    ) -> dict[FieldName, Tensor]:
        """Every field ``(B, ...)`` -> ``(B, M, ...)``, the attention mask masked in attention mode.

        With ``masked_as="attention"`` the ``attention_mask`` of every copy is 0 at the players
        absent from its mask (its dtype kept); every other field, and every field in the other
        mode, travels unchanged (an expanded view).

        Example:
            >>> masker = TokenMasker(num_players=2, players=[1, 2], masked_as="attention")
            >>> fields = {"attention_mask": torch.tensor([[1, 1, 1, 0]])}
            >>> masker.mask_fields(fields, {"positions": torch.tensor([[1, 2]])}, torch.tensor([0, 2]))
            {'attention_mask': tensor([[[1, 0, 0, 0],
                     [1, 0, 1, 0]]])}
        """
        masked = super().mask_fields(fields, players, masks)
        if self.masked_as != "attention":
            return masked
        if _ATTENTION not in fields:
            raise ValueError(
                f"TokenMasker: masked_as='attention' masks players through the attention mask, but the "
                f"samples have no {_ATTENTION!r} field (they have {list(fields)}); give batches with an "
                f"{_ATTENTION!r} (the tokenizer's output has one) or use masked_as='mask_token'"
            )
        attention = fields[_ATTENTION]
        if not isinstance(attention, Tensor) or attention.dim() != 2:
            got = tuple(attention.shape) if isinstance(attention, Tensor) else type(attention).__name__
            raise ValueError(f"TokenMasker: the {_ATTENTION!r} field must be (B, L), got {got}")
        keep = self._keep(attention, players, masks)
        masked[_ATTENTION] = torch.where(keep, attention[:, None], attention.new_zeros(()))
        return masked
