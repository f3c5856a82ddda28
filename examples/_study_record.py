"""What the study suite records per run besides the monitors' histories: losses, per-sample interactions.

``Evaluation`` evaluates the model on the whole of each split after every epoch.
``SampleLog`` reads each monitor's latest interactions after every measurement and keeps, per
measured sample, its strength by order (residue removed, as the records' strength is), and for
the training split each sample's loss under its training label and whether that label was
flipped. The alert candidates and the memorisation scores (docs/theory.md, section 7) read them.

Not an example itself; ``study_suite.py`` imports it from this folder.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lightning_interactions import InteractionMonitor
from lightning_interactions.analysis.strength import drop_residue, per_sample_strength

__all__ = ["Evaluation", "SampleLog"]

SPLITS = ("train", "val", "test")


class SampleLog(L.Callback):
    """Per measured epoch and split: each sample's strength by order; for training, its loss too.

    Put it after the monitors in the trainer's callbacks, so its hooks see their measurements.

    Args:
        monitors: ``{"val": monitor, "train": monitor}``.
        x_train: the training inputs, to find the training monitor's samples in.
        y_train: the training labels the network is fitted to (flipped ones included).
        y_clean: the training labels before flipping.
    """

    def __init__(
        self, monitors: dict[str, InteractionMonitor], x_train: Tensor, y_train: Tensor, y_clean: Tensor
    ) -> None:
        self.monitors = monitors
        self.x_train, self.y_train, self.y_clean = x_train, y_train, y_clean
        self.strength: dict[str, dict[int, list[list[float]]]] = {split: {} for split in monitors}
        self.train_loss: dict[int, list[float]] = {}
        self.indices: list[int] | None = None

    def _capture(self, module: L.LightningModule) -> None:
        for split, monitor in self.monitors.items():
            last = monitor.last_interactions
            if last is None or last.epoch in self.strength[split]:
                continue
            I_and, I_or = drop_residue(last.I_and, last.I_or, monitor.tol)
            self.strength[split][last.epoch] = per_sample_strength(I_and, I_or).tolist()
            if split == "train":
                self._train_losses(module, monitor, last.epoch)

    @torch.no_grad()
    def _train_losses(self, module: L.LightningModule, monitor: InteractionMonitor, epoch: int) -> None:
        samples = monitor.samples
        if self.indices is None:
            self.indices = [int(i) for i in samples.indices]
            # The monitor draws from the training loader in data order: its samples are these rows.
            if not torch.equal(self.x_train[self.indices], samples.inputs):
                raise RuntimeError("the training monitor's samples are not the training set's rows")
        was_training = module.training
        module.eval()
        logits = module(self.x_train[self.indices])
        losses = nn.functional.cross_entropy(logits, self.y_train[self.indices], reduction="none")
        module.train(was_training)
        self.train_loss[epoch] = losses.tolist()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._capture(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._capture(pl_module)

    def result(self) -> dict[str, Any]:
        """What the run saves: ``sample_strength`` per split (epoch -> samples x orders),
        ``train_sample_loss`` (epoch -> samples), the training samples' ``indices``, their training
        ``labels`` and whether each was ``flipped``."""
        indices = self.indices or []
        return {
            "sample_strength": {
                split: {str(epoch): rows for epoch, rows in sorted(per_epoch.items())}
                for split, per_epoch in self.strength.items()
            },
            "train_sample_loss": {str(epoch): rows for epoch, rows in sorted(self.train_loss.items())},
            "train_samples": {
                "indices": indices,
                "labels": [int(self.y_train[i]) for i in indices],
                "flipped": [bool(self.y_train[i] != self.y_clean[i]) for i in indices],
            },
        }


class Evaluation(L.Callback):
    """Loss and accuracy on the whole of each split, in eval mode, before training and after each epoch."""

    def __init__(self, data: dict[str, Tensor]) -> None:
        self.data = data
        self.rows: list[dict[str, float]] = []

    @torch.no_grad()
    def _evaluate(self, module: L.LightningModule, epoch: int) -> None:
        was_training = module.training
        module.eval()
        row: dict[str, float] = {"epoch": epoch}
        for split in SPLITS:
            logits = torch.cat([module(x) for x in self.data[f"x_{split}"].split(256)])
            labels = self.data[f"y_{split}"]
            row[f"{split}_loss"] = float(nn.functional.cross_entropy(logits, labels))
            row[f"{split}_acc"] = float((logits.argmax(dim=1) == labels).float().mean())
        self.rows.append(row)
        module.train(was_training)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluate(pl_module, 0)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._evaluate(pl_module, trainer.current_epoch + 1)
