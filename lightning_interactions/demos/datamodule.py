"""Training and validation tensors as a LightningDataModule: seeded shuffled training batches.

Example:
    >>> x, y = torch.rand(10, 3), torch.arange(10) % 2
    >>> data = TensorDataModule(x[:8], y[:8], x[8:], y[8:], batch_size=4, seed=1)
    >>> [len(batch[0]) for batch in data.train_dataloader()], len(data.val_dataloader())
    ([4, 4], 1)
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["TensorDataModule"]


class TensorDataModule(pl.LightningDataModule):
    """``(x_train, y_train)`` and ``(x_val, y_val)`` as a DataModule.

    Args:
        x_train, y_train, x_val, y_val: the tensors (first dimension: samples).
        batch_size: training batch size; the training batches are shuffled by a generator
            seeded with ``seed`` at each ``train_dataloader()`` call.
        seed: the shuffle's seed.
        val_batch_size: validation batch size (the validation order is fixed).
    """

    def __init__(
        self,
        x_train: Tensor,
        y_train: Tensor,
        x_val: Tensor,
        y_val: Tensor,
        batch_size: int = 64,
        seed: int = 0,
        val_batch_size: int = 256,
    ) -> None:
        super().__init__()
        self.train_set = TensorDataset(x_train, y_train)
        self.val_set = TensorDataset(x_val, y_val)
        self.batch_size = batch_size
        self.seed = seed
        self.val_batch_size = val_batch_size

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.val_batch_size)
