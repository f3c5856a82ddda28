"""What the monitor checks when fitting starts: the samples' players, and one probe of the model.

Both run before the first training step, so that a masker that does not fit the samples, a
model the monitor cannot call or an output it cannot read stops the run there, with what to
change, instead of failing at every epoch. Under DDP every process learns whether any failed,
and all stop together.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_interactions.callbacks import distributed
from lightning_interactions.callbacks.measurement import EngineSettings, MeasuredSamples
from lightning_interactions.engine._forward import probe
from lightning_interactions.engine._setup import (
    model_device,
    on_model,
    prepare,
    select_players,
    validate_groups,
)
from lightning_interactions.engine.structured import ForwardFn, SampleSet
from lightning_interactions.masking import FeatureMapMasker, Masker
from lightning_interactions.masking.base import MAX_PLAYERS

__all__ = ["choose_players", "check_measurable"]


def choose_players(
    masker: Masker, samples: SampleSet, seed: int, model: Any, forward_fn: ForwardFn | None
) -> dict[str, Tensor]:
    """Check the samples against the masker and choose their players (on the CPU).

    A :class:`~lightning_interactions.masking.FeatureMapMasker` chooses them on its layer's
    output, from one forward pass of each sample on the model's device and dtype; a failure of
    that pass is worded as :func:`check_measurable` words its own.
    """
    if not isinstance(masker, FeatureMapMasker):
        validate_groups(masker, samples)
        chosen = select_players(masker, samples, seed)
    else:
        try:
            chosen = select_players(masker, on_model(samples, model), seed, model, forward_fn)
        except Exception as error:
            raise ValueError(_cannot_measure(error, samples)) from error
    return {key: value.cpu() for key, value in chosen.items()}


def check_measurable(trainer: Any, model: Any, samples: MeasuredSamples, settings: EngineSettings) -> None:
    """Run the model and the output function on one sample's empty and full coalitions.

    Each process checks the first sample of its own share, the one it will measure first; if any
    fails, every process raises (the failing one with the cause).
    """
    indices, _ = distributed.shard_indices(len(samples.sample_set), trainer.world_size, trainer.global_rank)
    first = indices[:1]
    error: Exception | None = None
    try:
        setup = prepare(
            model,
            samples.sample_set.take(first),
            None if samples.targets is None else samples.targets[first],
            settings.masker,
            {key: value[first] for key, value in samples.players.items()},
            settings.output,
            settings.batch_size,
            seed=0,
            num_players=None,
            max_players=MAX_PLAYERS,
            check_memory=False,
            forward_fn=settings.forward_fn,
        )
        probe(setup)
    except Exception as raised:  # any failure of the user's model, output or masker
        error = raised
    failing = distributed.first_failing_rank(trainer, model_device(model), failed=error is not None)
    if error is not None:
        raise ValueError(_cannot_measure(error, samples.sample_set)) from error
    if failing is not None:
        raise ValueError(
            f"InteractionMonitor cannot measure this model: the check when fitting started failed on "
            f"rank {failing} (that process reports the cause); every process stops"
        )


def _cannot_measure(error: Exception, samples: SampleSet) -> str:
    return (
        f"InteractionMonitor cannot measure this model on its samples: {type(error).__name__}: "
        f"{error}. {_advice(error, samples)}"
    )


def _advice(error: Exception, samples: SampleSet) -> str:
    """What to change, from what failed."""
    names = samples.groups[0].names
    fields = "inputs tensor" if names == [None] else f"fields {names}"
    text = str(error)
    if isinstance(error, TypeError) and "unexpected keyword argument" in text:
        return (
            f"The model was called with the samples' {fields} as keyword arguments and its forward "
            "does not take one of them: leave that field out with batch_split=lambda batch: "
            "({key: batch[key] for key in ('input_ids', 'attention_mask')}, batch['labels']) (your "
            "keys), or call the model yourself with forward_fn=lambda model, inputs: model(...)"
        )
    if isinstance(error, TypeError) and ("argument" in text or "positional" in text):
        return (
            f"The model was called with the samples' {fields}. If its forward needs other inputs "
            "(an attention mask), give the monitor batches that hold them (a dict batch passes "
            "every field as a keyword argument), or pass forward_fn=lambda model, inputs: "
            "model(...) or batch_split=fn(batch) -> (inputs, targets)"
        )
    return (
        "Check the masker and the monitor's output=, masked_field=, batch_split= and forward_fn= "
        "against the model's inputs and outputs (the check ran the first sample's empty and full "
        "coalitions)"
    )
