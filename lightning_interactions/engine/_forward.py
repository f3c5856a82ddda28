"""The masked forward passes: every sample on every mask, in chunks, in eval and inference mode.

The probe pass (the empty and the full coalition of the first sample) comes first, so a model or
output function that does not fit fails fast. Chunks of masked inputs are written into one
reused buffer when the masker can; a chunk that runs out of device memory is retried at half
its size.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import Tensor

from lightning_interactions.engine._memory import OOM_ERRORS, release_cached_memory
from lightning_interactions.engine._setup import Model, Setup
from lightning_interactions.engine.outputs import check_output_values


class _EvalMode:
    """Put a module in eval mode and restore every submodule's own ``training`` flag afterwards.

    As Lightning's evaluation loop does (``_ModuleMode``): capture the flags, call ``eval()``
    (so a module's own ``train()`` override still runs), then set each flag back as it was.
    """

    def __init__(self, model: Model) -> None:
        self.model = model if isinstance(model, torch.nn.Module) else None
        self.modules = list(model.modules()) if self.model is not None else []
        self.flags: list[bool] = []

    def __enter__(self) -> None:
        self.flags = [m.training for m in self.modules]
        if self.model is not None:
            self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for m, flag in zip(self.modules, self.flags):
            m.training = flag


def _rows(players: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    return {key: tensor[start:stop] for key, tensor in players.items()}


def _evaluate(setup: Setup, start: int, stop: int, masks: Tensor, buffer: Tensor | None = None) -> Tensor:
    """Outputs of samples ``start:stop`` on ``masks``: ``(stop - start, len(masks))`` float64.

    With a ``buffer`` (``(batch_size, *input_shape)``, flat storage) the masked inputs are
    written into it rather than into a fresh tensor.
    """
    batch, num_masks = stop - start, masks.shape[0]
    extra: dict[str, Tensor] = {}
    if buffer is not None:
        size = batch * num_masks * buffer[0].numel()
        extra["out"] = buffer.view(-1)[:size].view(batch, num_masks, *buffer.shape[1:])
    rows = _rows(setup.players, start, stop)
    masked = setup.masker.apply(setup.inputs[start:stop], rows, masks, **extra)
    expected = (batch, num_masks)
    if not isinstance(masked, Tensor) or tuple(masked.shape[:2]) != expected:
        got = tuple(masked.shape) if isinstance(masked, Tensor) else type(masked).__name__
        raise ValueError(
            f"the masker must return masked inputs (B, M, ...) = {expected + ('...',)}, got {got}"
        )
    flat = masked.flatten(0, 1)
    targets = None
    if setup.targets is not None:
        targets = setup.targets[start:stop].repeat_interleave(num_masks, dim=0)
    raw = setup.model(flat)
    if isinstance(raw, Tensor) and raw.is_floating_point():
        # At least float32 for the output function, so half-precision logits keep their log-odds.
        raw = raw.to(torch.promote_types(raw.dtype, torch.float32))
    values = setup.output_fn(raw, targets)
    check_output_values(values, flat.shape[0])
    return values.to(torch.float64).reshape(batch, num_masks)


def _next_chunk(sample: int, mask: int, batch: int, num_masks: int, size: int) -> tuple[int, int, int, int]:
    """The chunk ``(sample_start, sample_stop, mask_start, mask_stop)`` that starts at a position.

    At most ``size`` inputs: several whole samples when all their masks fit, else a range of
    masks of one sample.
    """
    if mask == 0 and num_masks <= size:
        return sample, min(sample + size // num_masks, batch), 0, num_masks
    return sample, sample + 1, mask, min(mask + size, num_masks)


def _masked_input_buffer(setup: Setup, masks: Tensor, size: int) -> Tensor | None:
    """One buffer for every chunk's masked inputs (``size`` at most), when the masker can write into one.

    A fresh ~10 MB batch per chunk is returned to the system and faulted in again by the
    allocator each time; reusing one buffer measured 2-2.5x faster for a small CNN on CPU.
    """
    if not setup.masker.supports_out:
        return None
    # A masked sample has the shape and dtype of the sample itself (the masker contract).
    per_chunk = min(size, setup.inputs.shape[0] * masks.shape[0])
    return setup.inputs.new_empty((per_chunk, *setup.inputs.shape[1:]))


# Called after every chunk of forward passes with (inputs done, inputs in all).
Progress = Callable[[int, int], None]


def _evaluate_or_none(
    setup: Setup, chunk: tuple[int, int, int, int], masks: Tensor, buffer: Tensor | None
) -> Tensor | None:
    """Outputs of one chunk, or None when the device ran out of memory on it.

    Returning rather than handling the error inside ``except`` lets the traceback, and with it
    the chunk's masked inputs and activations, be freed before the cache is emptied.
    """
    s0, s1, m0, m1 = chunk
    try:
        return _evaluate(setup, s0, s1, masks[m0:m1], buffer)
    except OOM_ERRORS as error:
        if (s1 - s0) * (m1 - m0) <= 1:
            raise type(error)(
                "out of memory on a single masked input (one forward pass of the model); the chunk "
                "size cannot go lower: free memory on the device, or measure on a larger one. "
                f"The original error: {error}"
            ) from error
        return None


def forward_all(setup: Setup, progress: Progress | None = None) -> Tensor:
    """``v`` ``(B, 2^n)`` float64 for every sample and mask; the probe pass comes first.

    A chunk that runs out of memory is retried at half its size, down to one input; later
    chunks keep the lowered size, and one warning at the end gives it.
    """
    n, batch, device = setup.num_players, setup.inputs.shape[0], setup.inputs.device
    num_masks = 2**n
    masks = torch.arange(num_masks, device=device)
    # Allocated outside inference mode, so the result is an ordinary tensor.
    v = torch.empty(batch, num_masks, dtype=torch.float64, device=device)
    size, first_failure = setup.batch_size, 0
    with _EvalMode(setup.model), torch.inference_mode():
        # A tiny probe (the empty and the full coalition of sample 0) checks the model and the
        # output function before the heavy work.
        probe = masks[[0, -1]] if num_masks > 1 else masks
        while _evaluate_or_none(setup, (0, 1, 0, len(probe)), probe, None) is None:
            release_cached_memory()
            probe = probe[:1]
        buffer = _masked_input_buffer(setup, masks, size)
        sample, mask, done, total = 0, 0, 0, batch * num_masks
        while sample < batch:
            s0, s1, m0, m1 = chunk = _next_chunk(sample, mask, batch, num_masks, size)
            values = _evaluate_or_none(setup, chunk, masks, buffer)
            if values is None:
                first_failure = first_failure or (s1 - s0) * (m1 - m0)
                size = (s1 - s0) * (m1 - m0) // 2
                # A smaller buffer leaves the memory of the rest to the model's activations.
                buffer = None
                release_cached_memory()
                buffer = _masked_input_buffer(setup, masks, size)
                continue
            v[s0:s1, m0:m1] = values
            sample, mask = (s1, 0) if m1 == num_masks else (s0, m1)
            done += (s1 - s0) * (m1 - m0)
            if progress is not None:
                progress(done, total)
    if first_failure:
        warnings.warn(
            f"the device ran out of memory on a chunk of {first_failure} masked inputs; the chunk size "
            f"was lowered to {size} and the measurement completed. Pass batch_size={size} to skip "
            "the retries",
            RuntimeWarning,
            stacklevel=3,
        )
    return v
