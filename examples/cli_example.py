"""LightningCLI: the monitor added as a callback from a YAML file, with no monitor code in Python.

A minimal ``LightningCLI`` entry point: ``DigitsModel`` (the CNN of ``image_patches.py`` in the
examples' classifier wrapper) and ``DigitsData`` (scikit-learn's bundled digits). Everything
else, the ``InteractionMonitor`` and its ``PatchMasker`` included, comes from ``config.yaml``:

    .venv/bin/python examples/cli_example.py fit --config examples/config.yaml
    .venv/bin/python examples/cli_example.py fit --config examples/config.yaml --trainer.max_epochs 5
    tensorboard --logdir runs/cli

After ``fit`` it prints the monitor's summary, as the other examples do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from _common import Classifier, TensorDataModule, print_summary
from image_patches import digits, digits_cnn
from lightning.pytorch.cli import LightningCLI

from lightning_interactions import InteractionMonitor


class DigitsModel(Classifier):
    """The digits CNN (``image_patches.digits_cnn``) as a classifier; ``lr`` is Adam's step size."""

    def __init__(self, channels: int = 16, lr: float = 1e-3) -> None:
        super().__init__(digits_cnn(channels), lr=lr)


class DigitsData(TensorDataModule):
    """Scikit-learn's digits: a seeded ``train_size`` training split, the rest for validation."""

    def __init__(self, train_size: int = 300, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__(*digits(train_size, seed), batch_size=batch_size)


def main(args: Sequence[str] | None = None) -> LightningCLI:
    """Run LightningCLI with ``args`` (default: the command line) and print the monitor's summary."""
    begin = time.perf_counter()
    cli = LightningCLI(DigitsModel, DigitsData, args=None if args is None else list(args))
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, InteractionMonitor)]
    if monitors and monitors[0].history:
        print_summary(monitors[0], cli.trainer, time.perf_counter() - begin)
    return cli


if __name__ == "__main__":
    main()
