"""A scripted Lightning run: its validation losses (and a fake alert flag) are written down here.

Lightning's own ``EarlyStopping``, the package's ``InteractionEarlyStopping`` and the offline
stopping rules (``analysis.stopping``) all run on it, so each can be checked against the others
and against the losses by hand. Shared by ``analysis/test_stopping.py`` and
``callbacks/test_early_stopping.py``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from helpers.trainers import quiet_trainer

# Validation losses of a run (epochs 1..12): a stall at epochs 3-5, a new best at 6, then rising.
VAL = [2.0, 1.5, 1.4, 1.45, 1.42, 1.1, 1.2, 1.3, 1.25, 1.35, 1.4, 1.5]


class Scripted(pl.LightningModule):
    """Logs scripted ``val_loss`` (and an alert flag) per epoch; trains a dummy weight."""

    def __init__(self, val: list[float], alert_from: int | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.val, self.alert_from = val, alert_from

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.weight - 1).square().sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        epoch = self.current_epoch + 1  # completed epochs, the monitor's count
        self.log("val_loss", self.val[epoch - 1])
        if self.alert_from is not None:
            self.log("fake/overfit_alert", float(epoch >= self.alert_from))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module: pl.LightningModule, callbacks: list[Any], epochs: int = len(VAL)) -> pl.Trainer:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)), batch_size=2)
    trainer = quiet_trainer(None, max_epochs=epochs, num_sanity_val_steps=0, callbacks=callbacks)
    trainer.fit(module, data, data)
    return trainer


def records(alert_from: int | None = None) -> list[dict[str, Any]]:
    return [
        {"epoch": e, "val_loss": v, "overfit_alert": alert_from is not None and e >= alert_from}
        for e, v in enumerate(VAL, start=1)
    ]
