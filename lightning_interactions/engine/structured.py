"""Samples with several fields: a dict or tuple of tensors, one field masked, the others carried along.

A sample is what a batch holds for it: a tensor, a dict of tensors (a Hugging Face batch:
``input_ids``, ``attention_mask``, ``token_type_ids``, ...) or a tuple of tensors. The masker
masks one field (the *masked field*); every other field travels with each masked copy; the model
is called as its ``forward`` expects: a tensor positionally, a dict as keyword arguments, a tuple
as positional arguments (:func:`call_model`).

Batches padded each to its own length (what ``DataCollatorWithPadding`` gives) hold samples of
different shapes. A :class:`SampleSet` keeps them in groups of one shape (:class:`SampleGroup`)
and never concatenates samples across groups, so no sample gets padding it did not have.

Example:
    >>> import torch
    >>> short = {"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.ones(2, 3)}
    >>> long = {"input_ids": torch.ones(1, 5, dtype=torch.long), "attention_mask": torch.ones(1, 5)}
    >>> samples = SampleSet.from_batches([short, long])
    >>> len(samples), [group.main.shape[1] for group in samples.groups], samples.key
    (3, [3, 5], 'input_ids')
    >>> [group.size for group in samples.take(torch.tensor([1, 2])).groups]
    [1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Union

import torch
from torch import Tensor

from lightning_interactions.masking.base import FieldName

__all__ = [
    "Structure",
    "ForwardFn",
    "KEYWORD_INPUT_KEYS",
    "PLAIN_INPUT_KEYS",
    "INPUT_KEYS",
    "TARGET_KEYS",
    "masked_field_of",
    "SampleGroup",
    "SampleSet",
    "call_model",
]

# What a batch holds for its samples: a tensor, a dict of tensors or a tuple of tensors.
Structure = Union[Tensor, Mapping[str, Tensor], Sequence[Tensor]]
# ``forward_fn(model, inputs) -> output``: how to call a model that ``call_model`` cannot.
ForwardFn = Callable[[Any, Structure], Any]

# Names of the masked field in a dict sample, in the order they are looked for. The Hugging Face
# names (text, vision, audio) come with other fields the model needs (an attention mask), so a
# dict batch holding one of them is passed whole, as keyword arguments; a dict batch of
# hand-written datasets names its input with one of the plain names, which is passed alone.
KEYWORD_INPUT_KEYS = ("input_ids", "pixel_values", "input_values", "input_features", "inputs_embeds")
PLAIN_INPUT_KEYS = ("input", "inputs", "x", "image", "points", "images", "features")
INPUT_KEYS = KEYWORD_INPUT_KEYS + PLAIN_INPUT_KEYS
# Names of the targets in a dict batch: the monitor's default batch split takes the targets from
# such a field and leaves it out of what the model gets. (Samples given to the engine directly
# are passed as they are: leave the targets out of them.)
TARGET_KEYS = ("labels", "label", "targets", "target", "y")


def _fields_of(structure: object, who: str) -> Tensor | dict[str, Tensor] | tuple[Tensor, ...]:
    """``structure`` as a tensor, a dict or a tuple of tensors with one leading size; else raise."""
    if isinstance(structure, Tensor):
        if structure.dim() < 1:
            raise ValueError(f"{who}: a sample batch needs a batch dimension, got a 0-d tensor")
        return structure
    if isinstance(structure, Mapping):
        # Non-tensor entries (strings, lists) cannot be split per sample; they are left out.
        fields: Any = {str(k): v for k, v in structure.items() if isinstance(v, Tensor)}
        names = list(fields)
    elif isinstance(structure, (tuple, list)) and structure and all(isinstance(v, Tensor) for v in structure):
        fields, names = tuple(structure), list(range(len(structure)))
    else:
        raise TypeError(
            f"{who}: samples must be a tensor, a dict of tensors or a tuple of tensors, got "
            f"{type(structure).__name__}"
        )
    values = list(fields.values()) if isinstance(fields, dict) else list(fields)
    if not values:
        raise ValueError(f"{who}: the sample dict holds no tensor (keys {list(structure)})")
    sizes = {name: (v.shape[0] if v.dim() else None) for name, v in zip(names, values)}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(
            f"{who}: every field of a batch needs the same leading (batch) size, got {sizes}; "
            "pass batch_split=fn(batch) -> (inputs, targets) that returns only per-sample fields"
        )
    return fields


def masked_field_of(
    fields: Tensor | Mapping[str, Tensor] | Sequence[Tensor], field: FieldName | None
) -> FieldName | None:
    """Which field of a sample the masker masks: ``field`` checked, or found by its name.

    A tensor has no fields (None). A tuple's masked field is its first unless ``field`` says
    otherwise. In a dict, exactly one of :data:`INPUT_KEYS` must be present, or the dict must
    have a single field; otherwise the error lists the keys tried and the one-line fix.

    Example:
        >>> import torch
        >>> masked_field_of({"pixel_values": torch.zeros(1, 3), "pixel_mask": torch.ones(1, 3)}, None)
        'pixel_values'
    """
    if isinstance(fields, Tensor):
        if field is not None:
            raise ValueError(f"masked_field={field!r} names a field, but the samples are a single tensor")
        return None
    if isinstance(fields, Mapping):
        keys = list(fields)
        if field is not None:
            if field not in fields:
                raise ValueError(f"masked_field={field!r} is not a key of the samples; their keys: {keys}")
            return field
        found = [key for key in INPUT_KEYS if key in fields]
        if len(found) == 1 or (not found and len(keys) == 1):
            return found[0] if found else keys[0]
        problem = (
            f"several fields could be masked: {found}" if found else f"none of {list(INPUT_KEYS)} is a key"
        )
        raise ValueError(
            f"could not tell which field of the samples to mask ({problem}; the samples' keys: {keys}): "
            f"pass masked_field='{keys[0]}' (the key to mask) to InteractionMonitor or compute_interactions"
        )
    index = 0 if field is None else field
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(fields):
        raise ValueError(
            f"masked_field={field!r} must be a position 0 .. {len(fields) - 1} of the samples' tuple"
        )
    return index


def _signature(fields: Tensor | dict[str, Tensor] | tuple[Tensor, ...]) -> tuple:
    """Field names, per-sample shapes and dtypes: batches with equal signatures can be stacked."""
    items = (
        fields.items()
        if isinstance(fields, dict)
        else enumerate([fields] if isinstance(fields, Tensor) else fields)
    )
    return tuple((name, tuple(v.shape[1:]), v.dtype) for name, v in items)


def _names(fields: Tensor | dict[str, Tensor] | tuple[Tensor, ...]) -> list[FieldName]:
    return [name for name, *_ in _signature(fields)]


def _map_fields(fields: Any, fn: Callable[[FieldName | None, Tensor], Tensor]) -> Any:
    if isinstance(fields, Tensor):
        return fn(None, fields)
    if isinstance(fields, dict):
        return {name: fn(name, value) for name, value in fields.items()}
    return tuple(fn(position, value) for position, value in enumerate(fields))


@dataclass(frozen=True)
class SampleGroup:
    """Samples of one shape: ``fields`` is a tensor, a dict or a tuple of tensors, each ``(b, ...)``.

    ``key`` names the masked field (None for a tensor).
    """

    fields: Tensor | dict[str, Tensor] | tuple[Tensor, ...]
    key: FieldName | None = None

    @property
    def main(self) -> Tensor:
        """The masked field, ``(b, ...)``."""
        return self.fields if self.key is None else self.fields[self.key]  # type: ignore[index]

    @property
    def size(self) -> int:
        return int(self.main.shape[0])

    @property
    def names(self) -> list[FieldName | None]:
        """The fields' dict keys or tuple positions; ``[None]`` for a tensor."""
        return [None] if isinstance(self.fields, Tensor) else _names(self.fields)

    def companions(self) -> dict[FieldName, Tensor]:
        """Every field but the masked one, by name (dict key or tuple position)."""
        if isinstance(self.fields, Tensor):
            return {}
        items = self.fields.items() if isinstance(self.fields, dict) else enumerate(self.fields)
        return {name: value for name, value in items if name != self.key}

    def map(self, fn: Callable[[FieldName | None, Tensor], Tensor]) -> SampleGroup:
        """A group with ``fn(name, tensor)`` applied to every field (name None for a tensor)."""
        return SampleGroup(_map_fields(self.fields, fn), self.key)

    def take(self, index: Tensor | slice) -> SampleGroup:
        return self.map(lambda _name, value: value[index])

    def model_inputs(self, main: Tensor, companions: Mapping[FieldName, Tensor]) -> Structure:
        """What the model is called with: ``main`` as the masked field, the others from ``companions``."""
        if self.key is None:
            return main
        if isinstance(self.fields, dict):
            return {name: main if name == self.key else companions[name] for name in self.fields}
        return tuple(
            main if position == self.key else companions[position] for position in range(len(self.fields))
        )


class SampleSet:
    """``B`` samples in groups of one shape, in order; the masked field is ``key`` in every group.

    Example:
        >>> import torch
        >>> samples = SampleSet.from_structure(torch.zeros(4, 2))
        >>> len(samples), samples.key, samples.take(torch.tensor([3, 0])).groups[0].size
        (4, None, 2)
    """

    def __init__(self, groups: Sequence[SampleGroup]) -> None:
        if not groups:
            raise ValueError("a SampleSet needs at least one group of samples")
        self.groups = tuple(groups)
        self.key = self.groups[0].key

    @classmethod
    def from_structure(
        cls, structure: Structure | SampleSet, masked_field: FieldName | None = None
    ) -> SampleSet:
        """One batch (a tensor, a dict or a tuple of tensors), or a SampleSet as it is."""
        if isinstance(structure, SampleSet):
            return structure
        return cls.from_batches([structure], masked_field)

    @classmethod
    def from_batches(cls, batches: Sequence[Structure], masked_field: FieldName | None = None) -> SampleSet:
        """Batches in order; consecutive batches of one signature are stacked into one group."""
        fields = [_fields_of(batch, "samples") for batch in batches]
        if not fields:
            raise ValueError("samples: no batch was given")
        key = masked_field_of(fields[0], masked_field)
        runs: list[list[Any]] = []
        for current in fields:
            if runs and _signature(runs[-1][0]) == _signature(current):
                runs[-1].append(current)
                continue
            if runs and _names(runs[-1][0]) != _names(current):
                raise ValueError(
                    f"samples: every batch must have the same fields, got {_names(runs[-1][0])} "
                    f"and {_names(current)}"
                )
            runs.append([current])
        return cls([SampleGroup(_concatenate(run), key) for run in runs])

    def __len__(self) -> int:
        return sum(group.size for group in self.groups)

    def __repr__(self) -> str:
        shapes = [tuple(group.main.shape) for group in self.groups]
        return f"SampleSet({len(self)} samples, masked field {self.key!r}, groups {shapes})"

    def map(self, fn: Callable[[FieldName | None, Tensor], Tensor]) -> SampleSet:
        return SampleSet([group.map(fn) for group in self.groups])

    @property
    def offsets(self) -> list[int]:
        """The index of every group's first sample."""
        starts, total = [], 0
        for group in self.groups:
            starts.append(total)
            total += group.size
        return starts

    def locate(self, index: int) -> tuple[int, int]:
        """The group of sample ``index`` and its row in that group."""
        for position, group in enumerate(self.groups):
            if index < group.size:
                return position, index
            index -= group.size
        raise IndexError("sample index out of range")

    def take(self, indices: Tensor | Sequence[int]) -> SampleSet:
        """The samples at ``indices``, in that order; runs from one group stay stacked."""
        located = [self.locate(int(i)) for i in torch.as_tensor(indices).reshape(-1).tolist()]
        if not located:
            raise ValueError("samples: no index was given")
        runs: list[tuple[int, list[int]]] = []
        for group, row in located:
            if runs and runs[-1][0] == group:
                runs[-1][1].append(row)
            else:
                runs.append((group, [row]))
        return SampleSet([self.groups[g].take(torch.tensor(rows)) for g, rows in runs])

    def main_padded(self, pad_value: float | int = 0) -> Tensor:
        """The masked field of every sample in one tensor, padded with ``pad_value`` where shapes differ.

        For pictures of the samples only; measurements never pad.
        """
        mains = [group.main for group in self.groups]
        shape = [max(sizes) for sizes in zip(*(m.shape[1:] for m in mains))]
        if all(list(m.shape[1:]) == shape for m in mains):
            return torch.cat(mains)
        padded = []
        for m in mains:
            out = m.new_full((m.shape[0], *shape), pad_value)
            out[(slice(None), *(slice(0, s) for s in m.shape[1:]))] = m
            padded.append(out)
        return torch.cat(padded)

    def to_state(self) -> Tensor | dict[str, Any]:
        """Plain containers for a checkpoint (a tensor when the samples are one tensor)."""
        if self.key is None and len(self.groups) == 1:
            return self.groups[0].fields  # type: ignore[return-value]
        return {"masked_field": self.key, "groups": [group.fields for group in self.groups]}

    @classmethod
    def from_state(cls, state: Any) -> SampleSet:
        if isinstance(state, Tensor):
            return cls([SampleGroup(state)])
        key = state["masked_field"]
        return cls(
            [
                SampleGroup(fields if not isinstance(fields, list) else tuple(fields), key)
                for fields in state["groups"]
            ]
        )


def _concatenate(run: list[Any]) -> Any:
    if len(run) == 1:
        return run[0]
    first = run[0]
    if isinstance(first, Tensor):
        return torch.cat(run)
    if isinstance(first, dict):
        return {name: torch.cat([fields[name] for fields in run]) for name in first}
    return tuple(torch.cat(parts) for parts in zip(*run))


def call_model(model: Any, inputs: Structure, forward_fn: ForwardFn | None = None) -> Any:
    """Call ``model`` as its ``forward`` expects: a tensor or tuple positionally, a dict as keywords.

    ``forward_fn(model, inputs)`` replaces that rule for anything else.

    Example:
        >>> import torch
        >>> call_model(lambda a, b: a + b, (torch.ones(1), torch.ones(1)))
        tensor([2.])
    """
    if forward_fn is not None:
        return forward_fn(model, inputs)
    if isinstance(inputs, Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs)
