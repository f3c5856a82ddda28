"""The interaction engine: all ``2^n`` masked forward passes of every sample, then AND-OR extraction.

:func:`masked_outputs` runs a model on every masked version of every sample (in chunks of at
most ``batch_size`` inputs, under :func:`torch.inference_mode`, on the model's device) and
returns the outputs ``v`` ``(B, 2^n)`` in float64, indexed by mask (bit ``i`` set = player ``i``
present, ``docs/theory.md`` section 1). :func:`compute_interactions` adds the AND-OR extraction
(section 3) and the strength by order (section 4) and returns an :class:`InteractionResult`.

Neither function changes the model: every submodule's train/eval mode is restored exactly, no
gradient is touched, and nothing random is called, so the global RNG states stay as they were.

Before anything runs, a measurement whose estimated memory (``v``, one chunk of masked inputs,
the extraction; not the model's activations) exceeds what the device has available is refused
with :class:`MeasurementTooLarge`. A CUDA out-of-memory error in the forward passes retries that
chunk at half its size (down to one input), and later chunks keep the lowered size.

Example:
    >>> import torch
    >>> from lightning_interactions.masking import FeatureMasker
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(2, 3)
    >>> result = compute_interactions(model, x, masker=FeatureMasker(num_features=3), output="regression")
    >>> result.v.shape, result.num_players
    (torch.Size([2, 8]), 3)
    >>> result.mean_strength.shape  # A(k) for k = 1..3; a linear model has only order 1
    torch.Size([3])
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import torch
from torch import Tensor

from lightning_interactions._memory import (
    OOM_ERRORS,
    MeasurementTooLarge,
    available_memory,
    estimate_memory,
    format_gib,
    release_cached_memory,
)
from lightning_interactions.masking import Masker, MaskFn, accepts_out, as_masker
from lightning_interactions.outputs import OutputFn, check_output_values, resolve_output
from lightning_interactions.sparsify import and_or_interactions
from lightning_interactions.strength import complexity as _complexity
from lightning_interactions.strength import per_sample_strength, strength_shape

__all__ = [
    "MAX_PLAYERS",
    "InteractionResult",
    "MeasurementTooLarge",
    "masked_outputs",
    "compute_interactions",
    "model_device",
]

# 2^20 masked inputs per sample is about a million forward passes; beyond that the cost (and the
# (B, 2^n) float64 outputs) is rarely what anyone meant. Raise it with ``max_players``.
MAX_PLAYERS = 20

Model = Callable[[Tensor], Any]


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------


@dataclass
class InteractionResult:
    """AND-OR interactions of the kept samples and their strength by order.

    Every tensor with a leading batch dimension has one row per *kept* sample (``K`` rows);
    ``sample_indices`` (``(K,)``, int64) gives each row's index among the inputs. Samples whose
    model outputs were not finite on some masked input are skipped (with a warning).
    ``players`` is the player selection of *all* inputs (the dict from ``select_players``,
    leading dimension ``B``), so it can be passed back as ``players=`` to measure the same
    inputs again with the same players.

    Attributes:
        v: ``(K, 2^n)`` float64 outputs on every mask.
        I_and, I_or: ``(K, 2^n)`` AND and OR interactions, indexed by mask.
        gamma, q: ``(K, 2^n)`` the split of ``v`` into AND and OR parts and the error term.
        tau: ``(K,)`` the error box ``q_ratio * |v(N) - v(empty)|``.
        objective: ``(K,)`` ``sum_{S nonempty} |I_and(S)| + |I_or(S)|``.
        gap: ``(K,)`` certified relative gap to the LP optimum, ``objective / lower_bound - 1``.
        strength: ``(K, n)`` per-sample strength by order ``k = 1..n``.
        players: player selection of all ``B`` inputs.
        sample_indices: ``(K,)`` indices of the kept samples among the inputs.
        num_players: ``n``.
        timings: wall-clock seconds of the stages (``forward_s``, ``extraction_s``, ``total_s``).

    Example:
        >>> import torch
        >>> from lightning_interactions.masking import FeatureMasker
        >>> class Product(torch.nn.Module):  # v(T) = 1 when both players are present: one AND
        ...     def forward(self, x):
        ...         return x.prod(dim=1, keepdim=True)
        >>> result = compute_interactions(
        ...     Product(), torch.ones(1, 2), masker=FeatureMasker(num_features=2), output="regression",
        ...     q_ratio=0.0,
        ... )
        >>> [round(a, 6) for a in result.mean_strength.tolist()], round(result.complexity, 6)
        ([0.0, 1.0], 2.0)
    """

    v: Tensor
    I_and: Tensor
    I_or: Tensor
    gamma: Tensor
    q: Tensor
    tau: Tensor
    objective: Tensor
    gap: Tensor
    strength: Tensor
    players: dict[str, Tensor]
    sample_indices: Tensor
    num_players: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """The number of kept samples ``K``."""
        return int(self.v.shape[0])

    @property
    def mean_strength(self) -> Tensor:
        """``A(k)``, ``k = 1..n``: the strength by order averaged over the kept samples.

        NaN when no sample was kept.
        """
        if self.num_samples == 0:
            return self.strength.new_full((self.num_players,), float("nan"))
        return self.strength.mean(dim=0)

    @property
    def shape(self) -> Tensor:
        """``A(k) / sum_j A(j)``: the distribution of strength over orders ``1..n``."""
        return strength_shape(self.mean_strength)

    @property
    def complexity(self) -> float:
        """The mean order ``sum_k k * shape(k)`` (NaN when no sample was kept)."""
        return float(_complexity(self.shape))

    @property
    def max_gap(self) -> float:
        """The largest certified gap over the kept samples (NaN when none was kept)."""
        return float(self.gap.max()) if self.num_samples else float("nan")

    def to(self, device: torch.device | str) -> InteractionResult:
        """Return a copy with every tensor (and the players) on ``device``."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.to(device)
            elif f.name == "players":
                value = {key: tensor.to(device) for key, tensor in value.items()}
            elif f.name == "timings":
                value = dict(value)
            values[f.name] = value
        return InteractionResult(**values)

    def cpu(self) -> InteractionResult:
        """Return a copy on the CPU."""
        return self.to("cpu")


# ---------------------------------------------------------------------------------------------
# Checks and the model's state
# ---------------------------------------------------------------------------------------------


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


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batch_size must be an int >= 1 (masked inputs per forward pass), got {batch_size!r}"
        )
    return batch_size


def _check_num_players(n: int, max_players: int) -> None:
    if n > max_players:
        raise ValueError(
            f"{n} players need 2^{n} = {2**n:,} masked forward passes per sample, above the limit of "
            f"max_players={max_players}: lower num_players of the masker (8 to 12 is usual), or raise "
            "max_players if you mean it"
        )


def _check_not_meta(tensor: Tensor, what: str) -> None:
    if tensor.device.type == "meta":
        raise ValueError(
            f"{what} are on the 'meta' device, which holds shapes but no values; pass real tensors"
        )


def _check_inputs(inputs: object, masker: Masker) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a tensor (B, ...), got {type(inputs).__name__}")
    _check_not_meta(inputs, "inputs")
    if inputs.dim() < 1 or inputs.shape[0] == 0:
        raise ValueError(
            f"inputs must be a batch (B, ...) with B >= 1 samples, got shape {tuple(inputs.shape)}"
        )
    masker.validate(inputs)
    # A measurement never differentiates: a graph through the inputs would only hold memory.
    return inputs.detach()


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
) -> None:
    """Refuse a measurement whose estimated peak memory exceeds what ``device`` has available."""
    available = available_memory(device)
    if available is None:
        return
    estimate = estimate_memory(batch, n, batch_size, sample.numel(), dtype.itemsize)
    needed = estimate.total if with_extraction else estimate.forward
    if needed <= available:
        return
    parts = [
        f"v table {batch} x 2^{n} float64: {format_gib(estimate.v_table)}",
        f"masked inputs of one chunk of {min(batch_size, batch * 2**n)}: {format_gib(estimate.masked_chunk)}",
    ]
    if with_extraction:
        parts.append(f"extraction working memory (estimated): {format_gib(estimate.extraction)}")
    raise MeasurementTooLarge(
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


@dataclass
class _Setup:
    """Everything checked and on the model's device, ready for the forward passes."""

    model: Model
    inputs: Tensor
    targets: Tensor | None
    masker: Masker
    players: dict[str, Tensor]
    output_fn: OutputFn
    batch_size: int
    num_players: int


def _setup(
    model: Model,
    inputs: Tensor,
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
) -> _Setup:
    """All cheap checks, in order, before any forward pass or player selection."""
    if not callable(model):
        raise TypeError(f"model must be a callable (an nn.Module), got {type(model).__name__}")
    batch_size = _check_batch_size(batch_size)
    output_fn = resolve_output(output)
    if masker is None:
        raise TypeError("a masker is needed, e.g. masker=PatchMasker(patch_size=4, num_players=10)")
    masker = as_masker(masker, num_players)
    n = int(masker.num_players)
    _check_num_players(n, max_players)
    inputs = _check_inputs(inputs, masker)
    targets = _check_targets(targets, inputs.shape[0])

    device = _check_model_device(model, inputs)
    dtype = _model_float_dtype(model)
    run_dtype = dtype if dtype is not None and inputs.is_floating_point() else inputs.dtype
    if check_memory:
        _check_memory(device, inputs.shape[0], n, batch_size, inputs[0], run_dtype, with_extraction)
    inputs = inputs.to(device=device, dtype=run_dtype)
    if targets is not None:
        targets = targets.to(device)
    if players is None:
        players = masker.select_players(inputs, seed)
    players = _check_players(players, inputs.shape[0], device)
    return _Setup(model, inputs, targets, masker, players, output_fn, batch_size, n)


# ---------------------------------------------------------------------------------------------
# Forward passes
# ---------------------------------------------------------------------------------------------


def _rows(players: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    return {key: tensor[start:stop] for key, tensor in players.items()}


def _evaluate(setup: _Setup, start: int, stop: int, masks: Tensor, buffer: Tensor | None = None) -> Tensor:
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


def _masked_input_buffer(setup: _Setup, masks: Tensor, size: int) -> Tensor | None:
    """One buffer for every chunk's masked inputs (``size`` at most), when the masker can write into one.

    A fresh ~10 MB batch per chunk is returned to the system and faulted in again by the
    allocator each time; reusing one buffer measured 2-2.5x faster for a small CNN on CPU.
    """
    if not accepts_out(setup.masker):
        return None
    # A masked sample has the shape and dtype of the sample itself (the masker contract).
    per_chunk = min(size, setup.inputs.shape[0] * masks.shape[0])
    return setup.inputs.new_empty((per_chunk, *setup.inputs.shape[1:]))


# Called after every chunk of forward passes with (inputs done, inputs in all).
Progress = Callable[[int, int], None]


def _evaluate_or_none(
    setup: _Setup, chunk: tuple[int, int, int, int], masks: Tensor, buffer: Tensor | None
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


def _forward_all(setup: _Setup, progress: Progress | None = None) -> Tensor:
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


def masked_outputs(
    model: Model,
    inputs: Tensor,
    targets: Tensor | None = None,
    masker: Masker | MaskFn | None = None,
    players: dict[str, Tensor] | None = None,
    output: str | OutputFn = "log_odds",
    batch_size: int = 1024,
    *,
    seed: int = 0,
    num_players: int | None = None,
    max_players: int = MAX_PLAYERS,
    check_memory: bool = True,
) -> Tensor:
    """Run ``model`` on all ``2^n`` masked versions of every sample; return ``v`` ``(B, 2^n)`` float64.

    ``v[b, T]`` is the output function on sample ``b`` with coalition ``T`` (bit ``i`` set =
    player ``i`` present). Non-finite values are returned as they are (``compute_interactions``
    skips those samples). Arguments are as for :func:`compute_interactions`.

    Example:
        >>> import torch
        >>> from lightning_interactions.masking import FeatureMasker
        >>> model = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, 10.0]]))
        >>> masked_outputs(model, torch.ones(1, 2), masker=FeatureMasker(num_features=2), output="regression")
        tensor([[ 0.,  1., 10., 11.]], dtype=torch.float64)
    """
    setup = _setup(
        model,
        inputs,
        targets,
        masker,
        players,
        output,
        batch_size,
        seed,
        num_players,
        max_players,
        check_memory=check_memory,
        with_extraction=False,
    )
    return _forward_all(setup)


# ---------------------------------------------------------------------------------------------
# The whole measurement
# ---------------------------------------------------------------------------------------------


def _finite_rows(v: Tensor) -> Tensor:
    """Indices of the samples whose outputs are finite on every mask; warn about the others."""
    finite = torch.isfinite(v).all(dim=1)
    skipped = (~finite).nonzero().flatten().tolist()
    if skipped:
        first = int((~torch.isfinite(v[skipped[0]])).nonzero()[0])
        warnings.warn(
            f"compute_interactions: skipped sample{'s' if len(skipped) > 1 else ''} {skipped}: the model "
            f"output was not finite on a masked input (sample {skipped[0]} first at mask {first}); "
            f"{int(finite.sum())} of {v.shape[0]} samples kept",
            RuntimeWarning,
            stacklevel=3,
        )
    return finite.nonzero().flatten()


def compute_interactions(
    model: Model,
    inputs: Tensor,
    targets: Tensor | None = None,
    masker: Masker | MaskFn | None = None,
    output: str | OutputFn = "log_odds",
    batch_size: int = 1024,
    q_ratio: float = 0.04,
    players: dict[str, Tensor] | None = None,
    seed: int = 0,
    num_players: int | None = None,
    tol: float = 0.01,
    *,
    max_players: int = MAX_PLAYERS,
    progress: Progress | None = None,
    check_memory: bool = True,
) -> InteractionResult:
    """Measure the AND-OR interactions of ``model`` on a batch of samples.

    Runs the model on all ``2^n`` masked versions of each sample (:func:`masked_outputs`), skips
    samples with a non-finite output (with a warning), extracts sparse AND-OR interactions with
    :func:`~lightning_interactions.sparsify.and_or_interactions` and sums their strength by order.

    Args:
        model: a module (or callable) mapping a batch ``(N, ...)`` of masked inputs to outputs.
            It runs in eval mode under ``torch.inference_mode()``; every submodule's mode is
            restored afterwards. Floating inputs are cast to the model's floating dtype and
            moved, with the targets, to its device (that of its first parameter or buffer; the
            inputs' own for a model with neither). Half-precision and bfloat16 outputs are upcast
            (to float32 for the output function, then float64) before the extraction.
        inputs: ``(B, ...)`` samples, in the form the masker expects.
        targets: ``(B, ...)`` targets for the output function (class indices for log-odds), or None.
        masker: a :class:`~lightning_interactions.masking.Masker`, or a function
            ``fn(inputs, masks) -> (B, M, ...)`` together with ``num_players``.
        output: ``"log_odds"`` (default), ``"logit"``, ``"regression"``, or a callable
            ``fn(model_output, targets) -> (N,)``.
        batch_size: at most this many masked inputs per forward pass.
        q_ratio: error box of the extraction, ``tau = q_ratio * |v(N) - v(empty)|``.
        players: the players of every sample from an earlier ``masker.select_players``; by
            default ``masker.select_players(inputs, seed)``.
        seed: seed of the player selection.
        num_players: ``n`` for a masking function (must agree with a masker's own).
        tol: certified relative gap at which the extraction stops.
        max_players: refuse more players than this (``2^n`` forward passes per sample).
        progress: called as ``progress(done, total)`` after each chunk of forward passes.
        check_memory: refuse (:class:`MeasurementTooLarge`, before any allocation) a measurement
            whose estimated memory exceeds what the device has available; the estimate counts
            ``v``, one chunk of masked inputs and the extraction, not the model's activations.

    A CUDA out-of-memory error during the forward passes retries that chunk at half its size,
    down to a single input; later chunks keep the lowered size and one warning reports it. The
    chunks are then those of a run with the lowered ``batch_size`` from the start.

    Example:
        >>> import torch
        >>> from lightning_interactions.masking import PatchMasker
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> images, labels = torch.rand(2, 1, 4, 4), torch.tensor([0, 2])
        >>> result = compute_interactions(model, images, labels, PatchMasker(patch_size=2, num_players=3))
        >>> result.I_and.shape, result.strength.shape, result.sample_indices.tolist()
        (torch.Size([2, 8]), torch.Size([2, 3]), [0, 1])
    """
    begin = time.perf_counter()
    setup = _setup(
        model,
        inputs,
        targets,
        masker,
        players,
        output,
        batch_size,
        seed,
        num_players,
        max_players,
        check_memory=check_memory,
    )
    v_all = _forward_all(setup, progress)
    forward_done = time.perf_counter()

    kept = _finite_rows(v_all)
    v = v_all[kept]
    n = setup.num_players
    if kept.numel():
        with torch.no_grad():
            extracted = and_or_interactions(v, q_ratio=q_ratio, tol=tol)
        I_and, I_or = extracted.I_and, extracted.I_or
        gamma, q, tau = extracted.gamma, extracted.q, extracted.tau
        objective, gap = extracted.objective, extracted.gap
    else:
        warnings.warn(
            "compute_interactions: no sample was kept; the result is empty", RuntimeWarning, stacklevel=2
        )
        I_and, I_or, gamma, q = (torch.empty_like(v) for _ in range(4))
        tau, objective, gap = (v.new_empty(0) for _ in range(3))
    strength = per_sample_strength(I_and, I_or)
    end = time.perf_counter()
    return InteractionResult(
        v=v,
        I_and=I_and,
        I_or=I_or,
        gamma=gamma,
        q=q,
        tau=tau,
        objective=objective,
        gap=gap,
        strength=strength,
        players=setup.players,
        sample_indices=kept,
        num_players=n,
        timings={
            "forward_s": forward_done - begin,
            "extraction_s": end - forward_done,
            "total_s": end - begin,
        },
    )
