"""What :func:`~lightning_interactions.engine.outputs.last_token_log_odds` returns: the output of a
causal language model used as a classifier, read at each input's last non-padding token.

Example:
    >>> import torch
    >>> fn = LastTokenLogOdds([3, 1], pad_token_id=0)
    >>> fn(torch.zeros(1, 2, 4), torch.tensor([0]), torch.tensor([[5, 0]]))  # last real token: position 0
    tensor([0.])
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from lightning_interactions.engine.outputs import _check_float, _class_indices, _describe, _stable_log_odds

__all__ = ["LastTokenLogOdds"]


def _token_ids(label_token_ids: object) -> tuple[int, ...]:
    """``label_token_ids`` checked: at least 2 distinct non-negative int token ids."""
    who = "last_token_log_odds: label_token_ids"
    try:
        items = list(label_token_ids)
        # operator.index takes ints, NumPy ints and integer 0-d tensors, not floats; a bool is a mistake.
        ids = [operator.index(item) for item in items if not isinstance(item, bool)]
        if len(ids) != len(items):
            raise TypeError
    except TypeError:
        raise TypeError(
            f"{who} must be a sequence of int token ids, one per class, got {label_token_ids!r} (a label "
            "of several tokens needs an output=lambda out, targets: ... of your own)"
        ) from None
    if len(ids) < 2 or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ValueError(f"{who} must be at least 2 distinct non-negative token ids, got {ids}")
    return tuple(ids)


def _last_positions(inputs: object, pad_token_id: int | None, shape: tuple[int, int]) -> Tensor:
    """``(N,)`` int64: each row's last non-padding position, by the rule of :func:`last_token_log_odds`."""
    if isinstance(inputs, Mapping):
        ids, mask = inputs.get("input_ids"), inputs.get("attention_mask")
    elif isinstance(inputs, Tensor) or (isinstance(inputs, (tuple, list)) and inputs):
        ids, mask = inputs if isinstance(inputs, Tensor) else inputs[0], None
    else:
        raise TypeError(
            "last_token_log_odds: expected the model inputs as a tensor of ids (N, L), a dict with "
            "'input_ids' and/or 'attention_mask', or a tuple whose first element is the ids, got "
            f"{_describe(inputs)}"
        )
    if pad_token_id is not None:
        name, value, padding = f"input ids (read for pad_token_id={pad_token_id})", ids, pad_token_id
    elif mask is not None:
        name, value, padding = "attention_mask", mask, 0
    else:
        return torch.full(shape[:1], shape[1] - 1, dtype=torch.long)
    if not isinstance(value, Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"last_token_log_odds: the {name} must be a tensor of shape {shape}, one row per masked input "
            f"and one column per position of the logits, got {got}"
        )
    positions = torch.arange(shape[1], device=value.device).expand(shape)
    last = torch.where(value != padding, positions, -1).amax(dim=1)
    if shape[0] and int(last.min()) < 0:
        row = int((last < 0).nonzero()[0, 0])
        raise ValueError(f"last_token_log_odds: masked input {row} has no non-padding token in its {name}")
    return last


class LastTokenLogOdds:
    """The output function :func:`last_token_log_odds` returns (a class, so that it pickles)."""

    # The engine calls fn(model_output, targets, inputs): the padding is in the inputs only.
    needs_inputs = True

    def __init__(self, label_token_ids: Sequence[int], pad_token_id: int | None) -> None:
        self.label_token_ids = _token_ids(label_token_ids)
        if pad_token_id is not None and (isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int)):
            raise TypeError(f"last_token_log_odds: pad_token_id must be an int or None, got {pad_token_id!r}")
        self.pad_token_id = pad_token_id

    def __repr__(self) -> str:
        pad = "" if self.pad_token_id is None else f", pad_token_id={self.pad_token_id}"
        return f"last_token_log_odds({list(self.label_token_ids)}{pad})"

    def __call__(self, model_output: object, targets: Tensor | None, inputs: object = None) -> Tensor:
        who = "last_token_log_odds"
        if inputs is None:
            raise TypeError(
                f"{self!r} needs the model inputs, to find each row's last non-padding token: the engine "
                "calls an output with needs_inputs = True as fn(model_output, targets, inputs)"
            )
        logits = _check_float(model_output, who)
        if logits.dim() != 3 or logits.shape[1] == 0:
            raise ValueError(
                f"{who} expects per-token logits of shape (N, L, V) with L >= 1, got {tuple(logits.shape)}; "
                "for class logits (N, C) pass output='log_odds'"
            )
        num_samples, length, vocab = logits.shape
        if max(self.label_token_ids) >= vocab:
            raise ValueError(
                f"{who}: label_token_ids {list(self.label_token_ids)} must be below the vocabulary size "
                f"V = {vocab} of the logits (N, L, V) = {tuple(logits.shape)}"
            )
        of = f" (target k is label_token_ids[k] of {list(self.label_token_ids)})"
        targets = _class_indices(targets, num_samples, len(self.label_token_ids), who, of)
        last = _last_positions(inputs, self.pad_token_id, (num_samples, length)).to(logits.device)
        rows = torch.arange(num_samples, device=logits.device)
        columns = torch.tensor(self.label_token_ids, device=logits.device)
        # Pick the (N, K) label logits directly: never a copy of a row of the whole vocabulary.
        chosen = logits[rows[:, None], last[:, None], columns[None, :]]
        return _stable_log_odds(chosen, targets)
