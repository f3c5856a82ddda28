"""The interaction engine: all ``2^n`` masked forward passes of every sample, then AND-OR extraction.

:func:`masked_outputs` runs a model on every masked version of every sample (in chunks of at
most ``batch_size`` inputs, under :func:`torch.inference_mode`, on the model's device) and
returns the outputs ``v`` ``(B, 2^n)`` in float64, indexed by mask (bit ``i`` set = player ``i``
present, ``docs/theory.md`` section 1). :func:`compute_interactions` adds the AND-OR extraction
(docs/extraction.md) and the strength by order (section 1) and returns an
:class:`~lightning_interactions.engine.result.InteractionResult`.

Neither function changes the model: every submodule's train/eval mode is restored exactly, no
gradient is touched, and nothing random is called, so the global RNG states stay as they were.

Before anything runs, the memory a measurement needs (``v``, one chunk of masked inputs, the
extraction; not the model's activations) is estimated against what the device has available:
the extraction then solves as many samples at a time as fit, and a measurement whose forward
passes, or whose extraction of a single sample, would not fit is refused with
:class:`MeasurementMemoryError`. A CUDA out-of-memory error in the forward passes retries that
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

import torch
from torch import Tensor

from lightning_interactions.analysis.strength import drop_residue, per_sample_strength
from lightning_interactions.engine._forward import Progress, forward_all
from lightning_interactions.engine._setup import Model, Setup, model_device, prepare
from lightning_interactions.engine.outputs import OutputFn
from lightning_interactions.engine.result import InteractionResult
from lightning_interactions.engine.structured import ForwardFn
from lightning_interactions.errors import MeasurementMemoryError, MeasurementTooLarge
from lightning_interactions.extraction.and_or import and_or_interactions
from lightning_interactions.masking import Masker, MaskFn
from lightning_interactions.masking.base import MAX_PLAYERS, FieldName

__all__ = [
    "MAX_PLAYERS",
    "MeasurementMemoryError",
    "MeasurementTooLarge",
    "masked_outputs",
    "compute_interactions",
    "model_device",
]


def masked_outputs(
    model: Model,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    masker: Masker | MaskFn | None = None,
    players: dict[str, Tensor] | None = None,
    output: str | OutputFn = "log_odds",
    batch_size: int = 1024,
    seed: int = 0,
    num_players: int | None = None,
    max_players: int = MAX_PLAYERS,
    check_memory: bool = True,
    masked_field: FieldName | None = None,
    forward_fn: ForwardFn | None = None,
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
    setup = prepare(
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
        masked_field=masked_field,
        forward_fn=forward_fn,
    )
    return forward_all(setup)


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


_EXTRACTED = ("I_and", "I_or", "gamma", "q", "tau", "objective", "gap")


def _extract_in_groups(
    v: Tensor, group: int | None, q_ratio: float, tol: float, progress: Progress | None = None
) -> tuple[Tensor, ...]:
    """:func:`and_or_interactions` on ``group`` samples at a time (all at once for None).

    The extraction's working memory grows with the samples it solves together; each sample's
    problem is its own, so groups change nothing but the peak memory. ``progress(certified,
    samples)`` counts the certified samples of all groups.
    """
    size = v.shape[0] if group is None else group
    parts = []
    with torch.no_grad():
        for start in range(0, v.shape[0], size):

            def report(certified: int, _batch: int, before: int = start) -> None:
                if progress is not None:
                    progress(before + certified, v.shape[0])

            extracted = and_or_interactions(
                v[start : start + size], q_ratio=q_ratio, tol=tol, progress=report
            )
            parts.append([getattr(extracted, name) for name in _EXTRACTED])
    return tuple(torch.cat(tensors) for tensors in zip(*parts))


def compute_interactions(
    model: Model,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    masker: Masker | MaskFn | None = None,
    output: str | OutputFn = "log_odds",
    batch_size: int = 1024,
    q_ratio: float = 0.04,
    players: dict[str, Tensor] | None = None,
    seed: int = 0,
    num_players: int | None = None,
    tol: float = 0.01,
    max_players: int = MAX_PLAYERS,
    progress: Progress | None = None,
    extraction_progress: Progress | None = None,
    check_memory: bool = True,
    masked_field: FieldName | None = None,
    forward_fn: ForwardFn | None = None,
) -> InteractionResult:
    """Measure the AND-OR interactions of ``model`` on a batch of samples.

    Runs the model on all ``2^n`` masked versions of each sample (:func:`masked_outputs`), skips
    samples with a non-finite output (with a warning), extracts sparse AND-OR interactions with
    :func:`~lightning_interactions.extraction.and_or.and_or_interactions` and sums their strength by order.

    Args:
        model: a module (or callable) mapping a batch ``(N, ...)`` of masked inputs to outputs,
            run in eval mode under ``torch.inference_mode()`` (modes restored afterwards), on the
            device of its first parameter or buffer, with floating inputs cast to its dtype;
            half-precision outputs are upcast before the extraction.
        inputs: ``(B, ...)`` samples as the masker expects them; or a dict or tuple of tensors
            (a Hugging Face batch), or a :class:`~lightning_interactions.engine.structured.SampleSet`
            of samples of different shapes: one field is masked (``masked_field``), the others go
            with every masked copy, and a dict reaches the model as keyword arguments.
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
        max_players: refuse more players than this (``2^n`` forward passes per sample); it can
            only lower the limit: values above ``MAX_PLAYERS`` (20) are refused.
        progress: called as ``progress(done, total)`` after each chunk of forward passes.
        extraction_progress: called as ``extraction_progress(certified, samples)`` after each
            round of the extraction.
        masked_field: the dict key (or tuple position) of the field to mask; by default the one
            of ``input_ids``, ``pixel_values``, ``input_values``, ... that the samples hold
            (:data:`~lightning_interactions.engine.structured.INPUT_KEYS`), or a tuple's first.
        forward_fn: ``fn(model, inputs) -> output`` to call the model in any other way; ``inputs``
            is a tensor, dict or tuple of ``N`` masked inputs, as the samples are.
        check_memory: estimate the memory needed (not the model's activations) against what the
            device has: extract as many samples at a time as fit, and refuse a measurement that
            cannot fit (:class:`MeasurementMemoryError`, before any allocation).

    A CUDA out-of-memory error in the forward passes retries that chunk at half its size (down to
    one input; one warning); later chunks keep the lowered size.

    Example:
        >>> import torch
        >>> from lightning_interactions.masking import PatchMasker
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> images, labels = torch.rand(2, 1, 4, 4), torch.tensor([0, 2])
        >>> masker = PatchMasker(patch_size=2, num_players=3)
        >>> result = compute_interactions(model, images, labels, masker=masker)
        >>> result.I_and.shape, result.strength.shape, result.sample_indices.tolist()
        (torch.Size([2, 8]), torch.Size([2, 3]), [0, 1])
    """
    begin = time.perf_counter()
    setup = prepare(
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
        masked_field=masked_field,
        forward_fn=forward_fn,
    )
    v_all = forward_all(setup, progress)
    forward_done = time.perf_counter()

    kept = _finite_rows(v_all)
    fields = _extraction_of(v_all[kept], setup, q_ratio, tol, extraction_progress)
    end = time.perf_counter()
    timings = {"forward_s": forward_done - begin, "extraction_s": end - forward_done, "total_s": end - begin}
    return InteractionResult(
        **fields, players=setup.players, sample_indices=kept, num_players=setup.num_players, timings=timings
    )


def _extraction_of(
    v: Tensor, setup: Setup, q_ratio: float, tol: float, progress: Progress | None
) -> dict[str, Tensor]:
    """The extraction of the kept samples' ``v`` and their strength by order, as result fields."""
    if v.shape[0]:
        I_and, I_or, gamma, q, tau, objective, gap = _extract_in_groups(
            v, setup.extraction_group, q_ratio=q_ratio, tol=tol, progress=progress
        )
    else:
        warnings.warn(
            "compute_interactions: no sample was kept; the result is empty", RuntimeWarning, stacklevel=3
        )
        I_and, I_or, gamma, q = (torch.empty_like(v) for _ in range(4))
        tau, objective, gap = (v.new_empty(0) for _ in range(3))
    # What the certificate does not resolve is not strength (docs/theory.md, "Residue").
    strength = per_sample_strength(*drop_residue(I_and, I_or, tol))
    names = ("v", "I_and", "I_or", "gamma", "q", "tau", "objective", "gap", "strength")
    return dict(zip(names, (v, I_and, I_or, gamma, q, tau, objective, gap, strength)))
