"""The small data set and models shared by the demo, the examples and the tests.

Like ``lightning.pytorch.demos``: one place for them instead of a copy in each user.

* :mod:`~lightning_interactions.demos.digits`: scikit-learn's 8x8 digits as tensors, seeded
  label noise, the demo's split (:func:`load_digits_split`).
* :mod:`~lightning_interactions.demos.models`: the demo's MLP (:func:`build_mlp`), the classifier
  LightningModule around any network (:class:`Classifier`), and the demo's
  :class:`DigitsClassifier`.
* :mod:`~lightning_interactions.demos.datamodule`: :class:`TensorDataModule`.
* :mod:`~lightning_interactions.demos.demo`: the demo run (``lightning-interactions demo``).

Example:
    >>> import lightning.pytorch as pl
    >>> from lightning_interactions.demos import DigitsClassifier, TensorDataModule, load_digits_split
    >>> data = load_digits_split(train_size=40, val_size=20, label_noise=0.0, seed=0)
    >>> datamodule = TensorDataModule(data["x_train"], data["y_train"], data["x_val"], data["y_val"])
    >>> trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
    ...                      enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    >>> trainer.fit(DigitsClassifier(hidden=16), datamodule=datamodule)
    >>> sorted(trainer.callback_metrics)
    ['train_loss', 'val_acc', 'val_loss']
"""

from lightning_interactions.demos.datamodule import TensorDataModule
from lightning_interactions.demos.demo import DemoSettings, run_demo
from lightning_interactions.demos.digits import (
    DemoError,
    load_digits_split,
    load_digits_tensors,
    noisy_labels,
)
from lightning_interactions.demos.models import Classifier, DigitsClassifier, build_mlp

__all__ = [
    "Classifier",
    "DigitsClassifier",
    "build_mlp",
    "TensorDataModule",
    "DemoError",
    "load_digits_tensors",
    "noisy_labels",
    "load_digits_split",
    "DemoSettings",
    "run_demo",
]
