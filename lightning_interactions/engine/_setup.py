"""Checks of a measurement's arguments, all made before any forward pass or allocation.

:func:`prepare` validates the model, inputs, targets, masker, players and output function in
order, refuses a measurement that would not fit in memory, and returns a :class:`Setup` with
everything on the model's device and dtype.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from lightning_interactions.engine._layers import feature_maps, layer_of
from lightning_interactions.engine._memory import (
    available_memory,
    estimate_memory,
    extraction_bytes,
    format_gib,
)
from lightning_interactions.engine.outputs import OutputFn, resolve_output
from lightning_interactions.engine.structured import ForwardFn, SampleSet
from lightning_interactions.errors import MeasurementMemoryError
from lightning_interactions.masking import FeatureMapMasker, Masker, MaskFn, as_masker
from lightning_interactions.masking.base import FieldName, check_num_players

Model = Callable[[Tensor], Any]


def model_device(model: Model, default: torch.device | str = "cpu") -> torch.device:
    """The device of the model's first parameter or buffer; ``default`` if it has none.

    Example:
        >>> model_device(torch.nn.Linear(2, 1))
        device(type='cpu')
    """
    if isinstance(model, torch.nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return torch.device(default)


def _model_float_dtype(model: Model) -> torch.dtype | None:
    """The dtype of the model's first floating-point parameter or buffer, if any."""
    if isinstance(model, torch.nn.Module):
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        for tensor in model.buffers():
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size must be an int >= 1 (masked inputs per forward pass), got {batch_size!r}"
        )
    return batch_size


def _check_not_meta(tensor: Tensor, what: str) -> None:
    if tensor.device.type == "meta":
        raise ValueError(
            f"{what} are on the 'meta' device, which holds shapes but no values; pass real tensors"
        )


@contextmanager
def numbered_from(samples: SampleSet, index: int) -> Iterator[None]:
    """A masker's ``ValueError`` about group ``index`` of several says where that group's samples are.

    Maskers number the samples they are given; with samples of several shapes, those are the
    group's own.
    """
    try:
        yield
    except ValueError as error:
        if len(samples.groups) == 1:
            raise
        start, group = samples.offsets[index], samples.groups[index]
        raise ValueError(
            f"{error} (samples of shape {tuple(group.main.shape[1:])}, numbered from 0 here: "
            f"sample k is sample {start} + k of all)"
        ) from error


def validate_groups(masker: Masker, samples: SampleSet) -> None:
    """``masker.validate`` on every group's masked field, errors saying where the group's samples are.

    A :class:`FeatureMapMasker` masks a layer's output, not the inputs: it is checked on the
    feature maps when it chooses its players.
    """
    if isinstance(masker, FeatureMapMasker):
        return
    for index, group in enumerate(samples.groups):
        with numbered_from(samples, index):
            masker.validate(group.main)


def _check_inputs(inputs: object, masker: Masker, masked_field: FieldName | None) -> SampleSet:
    """The samples as a :class:`SampleSet`, each group's masked field checked by the masker."""
    if not isinstance(inputs, (Tensor, Mapping, tuple, list, SampleSet)):
        raise TypeError(
            f"inputs must be a tensor (B, ...), a dict or a tuple of tensors, got {type(inputs).__name__}"
        )
    samples = SampleSet.from_structure(inputs, masked_field)
    for group in samples.groups:
        _check_not_meta(group.main, "inputs")
        if group.main.dim() < 1 or group.size == 0:
            raise ValueError(
                f"inputs must be a batch (B, ...) with B >= 1 samples, got shape {tuple(group.main.shape)}"
            )
    validate_groups(masker, samples)
    # A measurement never differentiates: a graph through the inputs would only hold memory.
    return samples.map(lambda _name, value: value.detach())


def _check_targets(targets: object, batch: int) -> Tensor | None:
    if targets is None:
        return None
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a tensor with one entry per sample, got {type(targets).__name__}")
    _check_not_meta(targets, "targets")
    if targets.dim() < 1 or targets.shape[0] != batch:
        raise ValueError(
            f"targets must have one entry per sample, leading dimension {batch}; "
            f"got shape {tuple(targets.shape)}"
        )
    return targets.detach()


def _check_model_device(model: Model, inputs: Tensor) -> torch.device:
    """The device to run on: the model's, or the inputs' for a model without parameters or buffers."""
    device = model_device(model, default=inputs.device)
    if device.type == "meta":
        raise ValueError(
            "the model's parameters are on the 'meta' device (shapes without values): materialise "
            "them first, e.g. model.to_empty(device='cpu') then load_state_dict(...)"
        )
    return device


def _check_memory(
    device: torch.device,
    batch: int,
    n: int,
    batch_size: int,
    sample: Tensor,
    dtype: torch.dtype,
    with_extraction: bool,
) -> int | None:
    """Refuse a measurement that cannot fit in what ``device`` has available.

    Returns how many samples the extraction may take at once (None: all of them, or unknown).
    The extraction's memory grows with the samples it solves together, so a measurement whose
    samples do not fit at once is extracted in groups; only one whose forward passes, or whose
    single sample's extraction, do not fit is refused.
    """
    available = available_memory(device)
    if available is None:
        return None
    estimate = estimate_memory(batch, n, batch_size, sample.numel(), dtype.itemsize)
    one_sample = extraction_bytes(1, n)
    needed = max(estimate.forward, estimate.v_table + one_sample) if with_extraction else estimate.forward
    if needed <= available:
        if not with_extraction:
            return None
        fixed = extraction_bytes(0, n)
        return max(1, min(batch, (available - estimate.v_table - fixed) // (one_sample - fixed)))
    parts = [
        f"v table {batch} x 2^{n} float64: {format_gib(estimate.v_table)}",
        f"masked inputs of one chunk of {min(batch_size, batch * 2**n)}: {format_gib(estimate.masked_chunk)}",
    ]
    if with_extraction:
        parts.append(f"extraction of one sample (estimated): {format_gib(one_sample)}")
    raise MeasurementMemoryError(
        f"this measurement needs about {format_gib(needed)} on {device} but only {format_gib(available)} "
        f"is available ({'; '.join(parts)}; the model's activations come on top): lower the number of "
        f"samples (now {batch}), batch_size (now {batch_size}) or the number of players (now {n}: each "
        "player fewer halves the forward passes and v, and divides the extraction's 3^n table by 3), "
        "or pass check_memory=False to try anyway"
    )


def _check_players(players: object, batch: int, device: torch.device) -> dict[str, Tensor]:
    if not isinstance(players, dict) or not all(isinstance(t, Tensor) for t in players.values()):
        raise TypeError("players must be the dict of tensors returned by masker.select_players(inputs, seed)")
    for key, tensor in players.items():
        if tensor.dim() < 1 or tensor.shape[0] != batch:
            raise ValueError(
                f"players[{key!r}] must have leading dimension {batch} (one row per sample), "
                f"got shape {tuple(tensor.shape)}"
            )
    return {key: tensor.to(device) for key, tensor in players.items()}


def select_players(
    masker: Masker,
    samples: SampleSet,
    seed: int,
    model: Model | None = None,
    forward_fn: ForwardFn | None = None,
) -> dict[str, Tensor]:
    """Each group's players (knowing its other fields), in sample order.

    A :class:`FeatureMapMasker` chooses them on its layer's output, which needs the ``model``.
    """
    mains = [group.main for group in samples.groups]
    layer = layer_of(masker, model)
    if layer is not None:
        mains = feature_maps(model, layer, samples, forward_fn)
    parts = []
    for index, (main, group) in enumerate(zip(mains, samples.groups)):
        with numbered_from(samples, index):
            # A seed of its own per group: two groups of one shape must not get the same positions.
            parts.append(masker.select_players_with(main, group.companions(), seed + index))
    try:
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    except (RuntimeError, KeyError) as error:
        raise ValueError(
            f"{type(masker).__name__}: the players of samples of different shapes cannot be put "
            f"together ({error}); measure samples of one shape, or pad the batches to one length"
        ) from error


def on_model(samples: SampleSet, model: Model) -> SampleSet:
    """The samples on the model's device, floating fields in its floating dtype."""
    return _to_device(samples, model_device(model), _model_float_dtype(model))


def _masked_sample(
    model: Model,
    layer: torch.nn.Module | None,
    samples: SampleSet,
    largest: Tensor,
    dtype: torch.dtype,
    forward_fn: ForwardFn | None,
) -> tuple[Tensor, torch.dtype]:
    """One sample of what is masked and its dtype, for the memory estimate: the largest input as
    the model gets it, or a masked ``layer``'s output on the first sample (one forward pass)."""
    if layer is None:
        return largest[0], dtype
    masked = feature_maps(model, layer, on_model(samples.take([0]), model), forward_fn)[0][0]
    return masked, masked.dtype


def _to_device(samples: SampleSet, device: torch.device, dtype: torch.dtype | None) -> SampleSet:
    """Every field on ``device``; floating fields in the model's floating dtype."""

    def move(_name: object, value: Tensor) -> Tensor:
        cast = dtype if dtype is not None and value.is_floating_point() else value.dtype
        return value.to(device=device, dtype=cast)

    return samples.map(move)


@dataclass
class Setup:
    """Everything checked and on the model's device, ready for the forward passes."""

    model: Model
    samples: SampleSet
    targets: Tensor | None
    masker: Masker
    players: dict[str, Tensor]
    output_fn: OutputFn
    batch_size: int
    num_players: int
    # Samples the extraction may solve together to stay within memory; None: all at once.
    extraction_group: int | None = None
    forward_fn: ForwardFn | None = None
    # The layer whose output the masker masks (FeatureMapMasker); None: the masker masks the inputs.
    layer: torch.nn.Module | None = None
    # Whether the output function is called with the model's inputs too (fn.needs_inputs).
    output_needs_inputs: bool = field(init=False)

    def __post_init__(self) -> None:
        self.output_needs_inputs = bool(getattr(self.output_fn, "needs_inputs", False))


def prepare(
    model: Model,
    inputs: Any,
    targets: Tensor | None,
    masker: Masker | MaskFn | None,
    players: dict[str, Tensor] | None,
    output: str | OutputFn,
    batch_size: int,
    seed: int,
    num_players: int | None,
    max_players: int,
    check_memory: bool = True,
    with_extraction: bool = True,
    masked_field: FieldName | None = None,
    forward_fn: ForwardFn | None = None,
) -> Setup:
    """All cheap checks, in order, before any forward pass or player selection."""
    if not callable(model):
        raise TypeError(f"model must be a callable (an nn.Module), got {type(model).__name__}")
    if forward_fn is not None and not callable(forward_fn):
        raise TypeError(f"forward_fn must be a callable fn(model, inputs), got {type(forward_fn).__name__}")
    batch_size = check_batch_size(batch_size)
    output_fn = resolve_output(output)
    if masker is None:
        raise TypeError("a masker is needed, e.g. masker=PatchMasker(patch_size=4, num_players=10)")
    masker = as_masker(masker, num_players)
    n = int(masker.num_players)
    check_num_players(n, type(masker).__name__, max_players)
    samples = _check_inputs(inputs, masker, masked_field)
    targets = _check_targets(targets, len(samples))

    largest = max((g.main for g in samples.groups), key=lambda main: main[0].numel())
    device = _check_model_device(model, largest)
    dtype = _model_float_dtype(model)
    run_dtype = dtype if dtype is not None and largest.is_floating_point() else largest.dtype
    layer = layer_of(masker, model)
    group = None
    if check_memory:
        masked, run = _masked_sample(model, layer, samples, largest, run_dtype, forward_fn)
        group = _check_memory(device, len(samples), n, batch_size, masked, run, with_extraction)
    samples = _to_device(samples, device, dtype)
    if targets is not None:
        targets = targets.to(device)
    if players is None:
        players = select_players(masker, samples, seed, model, forward_fn)
    players = _check_players(players, len(samples), device)
    return Setup(model, samples, targets, masker, players, output_fn, batch_size, n, group, forward_fn, layer)
