"""The demo's MLP and one classifier LightningModule for the demo, the examples and the tests.

:class:`Classifier` wraps any network that returns logits: cross-entropy, ``train_loss`` logged
once per epoch, ``val_loss`` and ``val_acc`` per validation epoch (the monitor attaches the two
losses to its records), and Adam or SGD (momentum 0.9) with a learning rate and weight decay.
:class:`DigitsClassifier` is the demo's :func:`build_mlp` in it, constructible without
arguments (for ``analyze --module lightning_interactions.demos:DigitsClassifier``).

Example:
    >>> model = Classifier(nn.Linear(4, 3), optimizer="sgd", lr=0.1)
    >>> model(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> model.configure_optimizers().defaults["momentum"]
    0.9
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

__all__ = ["OPTIMIZERS", "build_mlp", "Classifier", "DigitsClassifier"]

OPTIMIZERS = ("adam", "sgd")
SGD_MOMENTUM = 0.9


def build_mlp(hidden: int) -> nn.Module:
    """The demo's network: an MLP 64 -> hidden -> hidden -> 10 on flattened 8x8 images.

    Example:
        >>> build_mlp(8)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


class Classifier(pl.LightningModule):
    """A classifier around any ``net`` that returns logits ``(N, C)``: cross-entropy and its logs.

    Logs ``train_loss`` (on_step=False, on_epoch=True), ``val_loss`` and ``val_acc`` (per epoch).
    Batches are ``(inputs, labels, ...)``; further items are ignored.

    Args:
        net: the network, stored as ``self.net``. ``None`` for a subclass that sets ``self.net``
            itself after ``super().__init__(...)`` (or overrides :meth:`forward`).
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        lr: the learning rate.
        weight_decay: the optimizer's weight decay.

    Example:
        >>> class Tiny(Classifier):  # a subclass that builds its own network
        ...     def __init__(self) -> None:
        ...         super().__init__(optimizer="sgd", lr=0.3)
        ...         self.net = nn.Linear(3, 2)
        >>> Tiny()(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        *,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if net is not None:
            self.net = net
        self.optimizer_name = optimizer
        self.lr = lr
        self.weight_decay = weight_decay

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        logits = self(batch[0])
        self.log("val_loss", nn.functional.cross_entropy(logits, batch[1]), on_step=False, on_epoch=True)
        accuracy = (logits.argmax(dim=1) == batch[1]).float().mean()
        self.log("val_acc", accuracy, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=self.lr, momentum=SGD_MOMENTUM, weight_decay=self.weight_decay
            )
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class DigitsClassifier(Classifier):
    """The demo's model: :func:`build_mlp` in a :class:`Classifier`, its arguments saved as hparams.

    Constructible without arguments, and rebuilt by ``load_from_checkpoint`` from a Lightning
    checkpoint: what ``analyze --module`` needs.

    Example:
        >>> model = DigitsClassifier(hidden=8)
        >>> model(torch.zeros(2, 1, 8, 8)).shape, model.hparams.optimizer
        (torch.Size([2, 10]), 'adam')
    """

    def __init__(self, hidden: int = 256, optimizer: str = "adam", lr: float = 1e-3) -> None:
        super().__init__(build_mlp(hidden), optimizer=optimizer, lr=lr)
        self.save_hyperparameters()
