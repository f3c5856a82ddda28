"""The masked forward passes: every sample on every mask, in chunks, in eval and inference mode.

The probe pass (the empty and the full coalition of the first sample) comes first, so a model or
output function that does not fit fails fast. Chunks of masked inputs are written into one
reused buffer when the masker can; a chunk that runs out of device memory is retried at half
its size.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import Tensor

from lightning_interactions.engine._layers import SKIP_HINT, EvalMode, masked_layer
from lightning_interactions.engine._memory import OOM_ERRORS, release_cached_memory
from lightning_interactions.engine._setup import Setup
from lightning_interactions.engine.outputs import check_output_values
from lightning_interactions.engine.structured import SampleGroup, call_model


def _rows(players: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    return {key: tensor[start:stop] for key, tensor in players.items()}


def _check_masked(masked: object, expected: tuple[int, int], what: str) -> Tensor:
    if not isinstance(masked, Tensor) or tuple(masked.shape[:2]) != expected:
        got = tuple(masked.shape) if isinstance(masked, Tensor) else type(masked).__name__
        raise ValueError(f"the masker must return {what} (B, M, ...) = {expected + ('...',)}, got {got}")
    return masked


def _model_inputs(
    setup: Setup, group: SampleGroup, rows: slice, players: dict, masks: Tensor, out: dict
) -> Any:
    """The structure the model gets for samples ``rows`` of ``group`` on ``masks``: ``B * M`` inputs."""
    companions = {name: value[rows] for name, value in group.companions().items()}
    if setup.layer is not None:
        # The layer's hook makes the masked copies; the model gets each sample once.
        return group.model_inputs(group.main[rows], companions)
    expected = (rows.stop - rows.start, masks.shape[0])
    masked = setup.masker.apply(group.main[rows], players, masks, **out)
    flat = _check_masked(masked, expected, "masked inputs").flatten(0, 1)
    # Called even without other fields: a masker that needs one (TokenMasker's attention mode
    # needs the attention mask) says so instead of masking nothing.
    carried = setup.masker.mask_fields(companions, players, masks)
    for name, value in carried.items():
        carried[name] = _check_masked(value, expected, f"the field {name!r} of every masked copy").flatten(
            0, 1
        )
    return group.model_inputs(flat, carried)


def _unmasked(group: SampleGroup, rows: slice, num_masks: int) -> Any:
    """The samples ``rows`` as the model would get them unmasked, each repeated once per mask."""
    fields = {
        name: value[rows].repeat_interleave(num_masks, dim=0) for name, value in group.companions().items()
    }
    return group.model_inputs(group.main[rows].repeat_interleave(num_masks, dim=0), fields)


def _evaluate(
    setup: Setup, group_index: int, start: int, stop: int, masks: Tensor, buffer: Tensor | None = None
) -> Tensor:
    """Outputs of samples ``start:stop`` of one group on ``masks``: ``(stop - start, len(masks))`` float64.

    With a ``buffer`` (``(batch_size, *input_shape)``, flat storage) the masked inputs are
    written into it rather than into a fresh tensor.
    """
    group, offset = setup.samples.groups[group_index], setup.samples.offsets[group_index]
    batch, num_masks = stop - start, masks.shape[0]
    out: dict[str, Tensor] = {}
    if buffer is not None:
        size = batch * num_masks * buffer[0].numel()
        out["out"] = buffer.view(-1)[:size].view(batch, num_masks, *buffer.shape[1:])
    players = _rows(setup.players, offset + start, offset + stop)
    inputs = _model_inputs(setup, group, slice(start, stop), players, masks, out)
    targets = None
    if setup.targets is not None:
        targets = setup.targets[offset + start : offset + stop].repeat_interleave(num_masks, dim=0)
    raw = _call(setup, inputs, players, masks)
    if isinstance(raw, Tensor) and raw.is_floating_point():
        # At least float32 for the output function, so half-precision logits keep their log-odds.
        raw = raw.to(torch.promote_types(raw.dtype, torch.float32))
    if setup.output_needs_inputs:
        unmasked = _unmasked(group, slice(start, stop), num_masks)
        values = setup.output_fn(raw, targets, unmasked)  # type: ignore[call-arg]
    else:
        values = setup.output_fn(raw, targets)
    check_output_values(values, batch * num_masks)
    return values.to(torch.float64).reshape(batch, num_masks)


def _call(setup: Setup, inputs: Any, players: dict[str, Tensor], masks: Tensor) -> Any:
    """The model's output on ``inputs``, with the masked layer's hook in place when there is one."""
    with masked_layer(setup.layer, setup.masker, players, masks):
        try:
            return call_model(setup.model, inputs, setup.forward_fn)
        except RuntimeError as error:
            if setup.layer is None or isinstance(error, OOM_ERRORS) or "size" not in str(error):
                raise
            raise RuntimeError(f"{error}. {SKIP_HINT}") from error


def _next_chunk(sample: int, mask: int, batch: int, num_masks: int, size: int) -> tuple[int, int, int, int]:
    """The chunk ``(sample_start, sample_stop, mask_start, mask_stop)`` that starts at a position.

    At most ``size`` inputs: several whole samples when all their masks fit, else a range of
    masks of one sample.
    """
    if mask == 0 and num_masks <= size:
        return sample, min(sample + size // num_masks, batch), 0, num_masks
    return sample, sample + 1, mask, min(mask + size, num_masks)


def _masked_input_buffer(setup: Setup, group: SampleGroup, masks: Tensor, size: int) -> Tensor | None:
    """One buffer for every chunk's masked inputs (``size`` at most), when the masker can write into one.

    A fresh ~10 MB batch per chunk is returned to the system and faulted in again by the
    allocator each time; reusing one buffer measured 2-2.5x faster for a small CNN on CPU.
    """
    if not setup.masker.supports_out or setup.layer is not None:
        return None
    # A masked sample has the shape and dtype of the sample itself (the masker contract).
    per_chunk = min(size, group.size * masks.shape[0])
    return group.main.new_empty((per_chunk, *group.main.shape[1:]))


# Called after every chunk of forward passes with (inputs done, inputs in all).
Progress = Callable[[int, int], None]


def _evaluate_or_none(
    setup: Setup, group: int, chunk: tuple[int, int, int, int], masks: Tensor, buffer: Tensor | None
) -> Tensor | None:
    """Outputs of one chunk, or None when the device ran out of memory on it.

    Returning rather than handling the error inside ``except`` lets the traceback, and with it
    the chunk's masked inputs and activations, be freed before the cache is emptied.
    """
    s0, s1, m0, m1 = chunk
    try:
        return _evaluate(setup, group, s0, s1, masks[m0:m1], buffer)
    except OOM_ERRORS as error:
        if (s1 - s0) * (m1 - m0) <= 1:
            raise type(error)(
                "out of memory on a single masked input (one forward pass of the model); the chunk "
                "size cannot go lower: free memory on the device, or measure on a larger one. "
                f"The original error: {error}"
            ) from error
        return None


def _twice_the_first_sample(setup: Setup) -> Setup:
    """The setup of the first sample taken twice, for probing a masked layer.

    With one sample per forward pass, a skip connection around the masked layer (``(1, C, H, W)``
    added to ``(M, C, H, W)``) broadcasts silently; with two samples it cannot.
    """
    twice = torch.tensor([0, 0])
    players = {key: value[twice.to(value.device)] for key, value in setup.players.items()}
    targets = None if setup.targets is None else setup.targets[twice.to(setup.targets.device)]
    return replace(setup, samples=setup.samples.take(twice), players=players, targets=targets)


def probe(setup: Setup) -> None:
    """Run the model and the output function on the empty and the full coalition of the first sample.

    A model or output function that does not fit the samples fails here, after two forward passes
    (for a masked layer, two samples' worth, so that a skip connection around it cannot pass).
    """
    rows = 1
    if setup.layer is not None:
        setup, rows = _twice_the_first_sample(setup), 2
    num_masks = 2**setup.num_players
    masks = torch.arange(num_masks, device=setup.samples.groups[0].main.device)
    probe_masks = masks[[0, -1]] if num_masks > 1 else masks
    with EvalMode(setup.model), torch.inference_mode():
        while _evaluate_or_none(setup, 0, (0, rows, 0, len(probe_masks)), probe_masks, None) is None:
            release_cached_memory()
            # Out of memory: one mask, then one sample (a single input fails for good inside).
            if len(probe_masks) > 1:
                probe_masks = probe_masks[:1]
            else:
                rows = 1


class _Chunks:
    """The running chunk size, lowered when the device runs out of memory, and the first failure."""

    def __init__(self, size: int) -> None:
        self.size, self.first_failure = size, 0

    def lower(self, failed: int) -> None:
        self.first_failure = self.first_failure or failed
        self.size = failed // 2


def _forward_group(
    setup: Setup, index: int, masks: Tensor, v: Tensor, chunks: _Chunks, progress: Callable[[int], None]
) -> None:
    """Fill the rows of ``v`` of one group of samples, chunk by chunk."""
    group, offset, num_masks = setup.samples.groups[index], setup.samples.offsets[index], masks.shape[0]
    buffer = _masked_input_buffer(setup, group, masks, chunks.size)
    sample, mask = 0, 0
    while sample < group.size:
        s0, s1, m0, m1 = chunk = _next_chunk(sample, mask, group.size, num_masks, chunks.size)
        values = _evaluate_or_none(setup, index, chunk, masks, buffer)
        if values is None:
            chunks.lower((s1 - s0) * (m1 - m0))
            # A smaller buffer leaves the memory of the rest to the model's activations.
            buffer = None
            release_cached_memory()
            buffer = _masked_input_buffer(setup, group, masks, chunks.size)
            continue
        v[offset + s0 : offset + s1, m0:m1] = values
        sample, mask = (s1, 0) if m1 == num_masks else (s0, m1)
        progress((s1 - s0) * (m1 - m0))


def forward_all(setup: Setup, progress: Progress | None = None) -> Tensor:
    """``v`` ``(B, 2^n)`` float64 for every sample and mask; the probe pass comes first.

    Samples are run group by group (samples of one shape); a chunk never mixes groups. A chunk
    that runs out of memory is retried at half its size, down to one input; later chunks keep
    the lowered size, and one warning at the end gives it.
    """
    n, batch, device = setup.num_players, len(setup.samples), setup.samples.groups[0].main.device
    num_masks = 2**n
    masks = torch.arange(num_masks, device=device)
    # Allocated outside inference mode, so the result is an ordinary tensor.
    v = torch.empty(batch, num_masks, dtype=torch.float64, device=device)
    chunks, done, total = _Chunks(setup.batch_size), 0, batch * num_masks

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    probe(setup)
    with EvalMode(setup.model), torch.inference_mode():
        for index in range(len(setup.samples.groups)):
            _forward_group(setup, index, masks, v, chunks, advance)
    if chunks.first_failure:
        warnings.warn(
            f"the device ran out of memory on a chunk of {chunks.first_failure} masked inputs; the chunk "
            f"size was lowered to {chunks.size} and the measurement completed. Pass "
            f"batch_size={chunks.size} to skip the retries",
            RuntimeWarning,
            stacklevel=3,
        )
    return v
