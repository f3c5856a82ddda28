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

__all__ = [
    "SPLITS",
    "BatchSplit",
    "default_batch_split",
    "split_given",
    "validation_loader",
    "training_loader",
    "draw_from_loader",
]

BatchSplit = Callable[[Any], tuple[Tensor, Optional[Tensor]]]
# Where the monitor's samples come from, by the name of the data split.
SPLITS = ("val", "train")
_INPUT_KEYS = ("input", "inputs", "x", "input_ids", "image", "points")
_TARGET_KEYS = ("target", "targets", "y", "label", "labels")


def default_batch_split(batch: Any) -> tuple[Tensor, Tensor | None]:
    """``(inputs, targets)`` from a batch: ``(x, y, ...)``, a tensor ``x``, or a dict with common keys."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        targets = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        return batch[0], targets
    if isinstance(batch, Mapping):
        inputs = next((batch[k] for k in _INPUT_KEYS if k in batch), None)
        targets = next((batch[k] for k in _TARGET_KEYS if k in batch), None)
        if isinstance(inputs, Tensor):
            return inputs, targets
    raise ValueError(
        "InteractionMonitor could not find the inputs in a validation batch of type "
        f"{type(batch).__name__}; pass batch_split=fn(batch) -> (inputs, targets)"
    )


def split_given(samples: Any) -> tuple[Tensor, Tensor | None]:
    """The user's ``samples=``: an inputs tensor or ``(inputs, targets)``, on the CPU."""
    if isinstance(samples, Tensor):
        return samples.detach().cpu(), None
    if isinstance(samples, (list, tuple)) and len(samples) == 2 and isinstance(samples[0], Tensor):
        targets = samples[1]
        return samples[0].detach().cpu(), None if targets is None else torch.as_tensor(targets).cpu()
    raise ValueError("samples must be an inputs tensor or a pair (inputs, targets)")


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


def draw_from_loader(
    loader: Any, batch_split: BatchSplit, num_samples: int, seed: int, split: str = "val"
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Read the loader's first samples (only as many as the draw chooses from) and draw from them.

    Returns the inputs, their targets and their positions in the loader's data order.
    """
    what = "validation" if split == "val" else "training"
    wanted = pool_size(num_samples)
    inputs, targets, count = [], [], 0
    for batch in loader:
        x, y = batch_split(batch)
        inputs.append(x.detach().cpu())
        targets.append(None if y is None else y.detach().cpu())
        count += x.shape[0]
        if count >= wanted:
            break
    if count == 0:
        raise ValueError(f"InteractionMonitor: the {what} dataloader gave no samples")
    if count < num_samples:
        rank_zero_warn(f"InteractionMonitor: only {count} {what} samples, fewer than num_samples")
    pool_inputs = torch.cat(inputs)
    pool_targets = None if any(y is None for y in targets) else torch.cat(targets)
    chosen = draw_indices(pool_inputs.shape[0], num_samples, seed)
    return pool_inputs[chosen], None if pool_targets is None else pool_targets[chosen], chosen
