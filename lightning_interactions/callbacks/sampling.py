"""Where the monitor's samples come from: the validation loader (or the user's tensors), drawn once.

The draw itself (seeded, from the first samples) is
:func:`lightning_interactions.engine.samples.draw_samples`,
shared with ``analyze``; this module only finds the data in a Lightning run.

Example:
    >>> import torch
    >>> inputs, targets = default_batch_split({"image": torch.zeros(2, 1, 8, 8), "label": torch.ones(2)})
    >>> inputs.shape, targets.tolist()
    (torch.Size([2, 1, 8, 8]), [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from lightning_interactions.engine.samples import draw_indices, pool_size
from lightning_interactions.engine.structured import (
    INPUT_KEYS,
    KEYWORD_INPUT_KEYS,
    PLAIN_INPUT_KEYS,
    TARGET_KEYS,
    SampleSet,
)
from lightning_interactions.masking.base import FieldName

__all__ = [
    "SPLITS",
    "BatchSplit",
    "default_batch_split",
    "split_batch",
    "split_given",
    "validation_loader",
    "training_loader",
    "draw_from_loader",
]

BatchSplit = Callable[[Any], tuple[Any, Optional[Tensor]]]
# Where the monitor's samples come from, by the name of the data split.
SPLITS = ("val", "train")


def _target_of(batch: Mapping[str, Any]) -> Tensor | None:
    return next((batch[k] for k in TARGET_KEYS if isinstance(batch.get(k), Tensor)), None)


def _input_fields(batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """Every tensor field of a dict batch but its targets."""
    return {k: v for k, v in batch.items() if isinstance(v, Tensor) and k not in TARGET_KEYS}


def _split_dict(batch: Mapping[str, Any]) -> tuple[Any, Tensor | None]:
    fields = _input_fields(batch)
    if any(key in fields for key in KEYWORD_INPUT_KEYS):
        return fields, _target_of(batch)
    plain = next((key for key in PLAIN_INPUT_KEYS if key in fields), None)
    if plain is not None or len(fields) == 1:
        return fields[plain] if plain is not None else next(iter(fields.values())), _target_of(batch)
    keys = list(batch)
    candidate = next(iter(fields), keys[0] if keys else "x")
    raise ValueError(
        f"InteractionMonitor could not find the inputs in a batch of type {type(batch).__name__} "
        f"with keys {keys}: it looks for one of {list(INPUT_KEYS)} (the field to mask) and takes "
        f"the targets from one of {list(TARGET_KEYS)}. Pass masked_field='{candidate}' if the other "
        "fields are the model's inputs too, or batch_split=lambda batch: (batch['x'], batch['y']) "
        "with your keys"
    )


def default_batch_split(batch: Any) -> tuple[Any, Tensor | None]:
    """``(inputs, targets)`` from a batch: ``(x, y, ...)``, a tensor ``x``, or a dict.

    A dict batch gives its targets under one of
    :data:`~lightning_interactions.engine.structured.TARGET_KEYS`. Its inputs are:

    * with a Hugging Face input name (``input_ids``, ``pixel_values``, ``input_values``,
      ``input_features``, ``inputs_embeds``), every other tensor field too, as a dict that the
      model gets as keyword arguments (the attention mask among them);
    * else the field under a plain name (``input``, ``inputs``, ``x``, ``image``, ``points``, ...),
      or the only field, as a tensor that the model gets positionally; other fields are left out.

    Example:
        >>> ids, mask = torch.ones(2, 4), torch.ones(2, 4)
        >>> batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.ones(2)}
        >>> inputs, targets = default_batch_split(batch)
        >>> sorted(inputs), targets.shape
        (['attention_mask', 'input_ids'], torch.Size([2]))
        >>> default_batch_split({"x": ids, "index": torch.arange(2), "y": torch.ones(2)})[0] is ids
        True
    """
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        targets = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        return batch[0], targets
    if isinstance(batch, Mapping):
        return _split_dict(batch)
    raise ValueError(
        f"InteractionMonitor could not find the inputs in a batch of type {type(batch).__name__}; "
        "pass batch_split=fn(batch) -> (inputs, targets), where inputs is a tensor or a dict of tensors"
    )


def split_batch(
    batch: Any, batch_split: BatchSplit, masked_field: FieldName | None
) -> tuple[Any, Tensor | None]:
    """``batch_split(batch)``, its result checked; a dict batch with ``masked_field`` keeps every field."""
    if batch_split is default_batch_split and masked_field is not None and isinstance(batch, Mapping):
        return _input_fields(batch), _target_of(batch)
    split = batch_split(batch)
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(
            f"batch_split must return a pair (inputs, targets), got {type(split).__name__}; "
            "inputs may be a tensor or a dict of tensors, targets a tensor or None"
        )
    inputs, targets = split
    if targets is not None and not isinstance(targets, Tensor):
        raise ValueError(f"batch_split must return targets as a tensor or None, got {type(targets).__name__}")
    return inputs, targets


def split_given(samples: Any, masked_field: FieldName | None = None) -> tuple[SampleSet, Tensor | None]:
    """The user's ``samples=``: inputs (a tensor or a dict of tensors) or ``(inputs, targets)``.

    A dict is split as a dict batch is (its targets taken from ``labels``, ...). On the CPU.
    """
    inputs, targets = samples, None
    structures = (Tensor, Mapping, SampleSet)
    if isinstance(samples, (list, tuple)) and len(samples) == 2 and isinstance(samples[0], structures):
        inputs, targets = samples
    elif isinstance(samples, Mapping):
        inputs, targets = split_batch(samples, default_batch_split, masked_field)
    if not isinstance(inputs, structures):
        raise ValueError("samples must be inputs (a tensor or a dict of tensors) or a pair (inputs, targets)")
    given = SampleSet.from_structure(inputs, masked_field).map(lambda _name, value: value.detach().cpu())
    return given, None if targets is None else torch.as_tensor(targets).cpu()


def _first_loader(loaders: Any) -> Any:
    """The first dataloader of Lightning's ``val_dataloaders`` (one, a sequence or a mapping)."""
    if loaders is None:
        return None
    if isinstance(loaders, Mapping):
        return next(iter(loaders.values()), None)
    if isinstance(loaders, Sequence) and not isinstance(loaders, (str, bytes)):
        return loaders[0] if len(loaders) else None
    return loaders


def _in_data_order(loader: Any) -> DataLoader:
    """A loader over ``loader``'s whole dataset in data order, with its batch size and collate function."""
    return DataLoader(loader.dataset, batch_size=loader.batch_size or 1, collate_fn=loader.collate_fn)


def _unsharded(loader: Any) -> Any:
    """``loader``; under a distributed sampler, a loader over its whole dataset, as one process sees it."""
    if isinstance(getattr(loader, "sampler", None), DistributedSampler) and loader.batch_size is not None:
        return _in_data_order(loader)
    return loader


def validation_loader(trainer: Any) -> Any:
    """The first validation dataloader, unsharded; called on every process (it may synchronise)."""
    if trainer.val_dataloaders is None and trainer.enable_validation:
        # Without a sanity check, and with no validation after the first epoch, Lightning builds the
        # validation loaders only at the first validation; build them now, as its fit loop does.
        trainer.validating = True
        trainer.fit_loop.epoch_loop.val_loop.setup_data()
        trainer.training = True
    loader = _first_loader(trainer.val_dataloaders)
    if loader is None:
        raise ValueError(
            "InteractionMonitor needs validation data to draw samples from: give the Trainer a "
            "val_dataloader, or pass samples=(inputs, targets) to the monitor"
        )
    return _unsharded(loader)


def training_loader(trainer: Any) -> Any:
    """The first training dataloader, over its dataset in data order (not shuffled, not sharded).

    Training loaders usually shuffle; the monitor's samples must not depend on the shuffle, so a
    map-style dataset is read in order with the loader's batch size and collate function.
    """
    loader = _first_loader(trainer.train_dataloader)
    if loader is None:
        raise ValueError(
            'InteractionMonitor(split="train") needs the training dataloader, and the Trainer has none; '
            "pass samples=(inputs, targets) instead"
        )
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
        return _in_data_order(loader)
    return loader


def draw_fixed_samples(
    trainer: Any, split: str, batch_split: Any, num_samples: int, seed: int, masked_field: Any
) -> tuple[Any, Tensor | None, Tensor | None]:
    """The fit's samples, the same on every process: ``(inputs, targets, indices)``.

    Every process finds (or fails to find) the loader; only rank 0 draws, then it broadcasts.
    """
    loader = (validation_loader if split == "val" else training_loader)(trainer)
    drawn = (None, None, None)
    if trainer.is_global_zero:
        drawn = draw_from_loader(loader, batch_split, num_samples, seed, split, masked_field)
    return trainer.strategy.broadcast(drawn, src=0)


def draw_from_loader(
    loader: Any,
    batch_split: BatchSplit,
    num_samples: int,
    seed: int,
    split: str = "val",
    masked_field: FieldName | None = None,
) -> tuple[SampleSet, Tensor | None, Tensor]:
    """Read the loader's first samples (only as many as the draw chooses from) and draw from them.

    Returns the inputs, their targets and their positions in the loader's data order. Batches of
    different shapes (each padded to its own length) are kept apart, never concatenated.
    """
    what = "validation" if split == "val" else "training"
    wanted = pool_size(num_samples)
    inputs, targets, count = [], [], 0
    for batch in loader:
        x, y = split_batch(batch, batch_split, masked_field)
        group = SampleSet.from_structure(x, masked_field).map(lambda _name, value: value.detach().cpu())
        inputs.append(group.groups[0].fields)
        targets.append(None if y is None else y.detach().cpu())
        count += len(group)
        if count >= wanted:
            break
    if count == 0:
        raise ValueError(f"InteractionMonitor: the {what} dataloader gave no samples")
    if count < num_samples:
        rank_zero_warn(f"InteractionMonitor: only {count} {what} samples, fewer than num_samples")
    pool = SampleSet.from_batches(inputs, masked_field)
    chosen = draw_indices(len(pool), num_samples, seed)
    if any(y is None for y in targets):
        return pool.take(chosen), None, chosen
    try:
        pool_targets = torch.cat(targets)
    except RuntimeError as error:
        raise ValueError(
            f"InteractionMonitor: the {what} targets of different batches have different shapes "
            f"({error}); targets must be one per sample, e.g. class indices (B,)"
        ) from error
    return pool.take(chosen), pool_targets[chosen], chosen
