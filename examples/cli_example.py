"""LightningCLI: the monitor added as a callback from a YAML file, with no monitor code in Python.

A minimal ``LightningCLI`` entry point: ``DigitsModel`` (the CNN of ``image_patches.py`` in the
examples' classifier wrapper) and ``DigitsData`` (scikit-learn's bundled digits). Everything
else, the ``InteractionMonitor`` and its ``PatchMasker`` included, comes from ``config.yaml``:

    .venv/bin/python examples/cli_example.py fit --config examples/config.yaml
    .venv/bin/python examples/cli_example.py fit --config examples/config.yaml --trainer.max_epochs 5
    .venv/bin/python examples/cli_example.py --quick   # config.yaml, 2 epochs, 100 digits, 4 samples
    tensorboard --logdir runs/cli

After ``fit`` it prints the monitor's summary, as the other examples do. ``--quick``, which
LightningCLI itself does not know, is taken out of the arguments and becomes the overrides in
``QUICK`` (after ``fit --config examples/config.yaml`` when no subcommand is given).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from _common import Classifier, TensorDataModule, print_summary, torch_threads
from image_patches import digits, digits_cnn
from lightning.pytorch.cli import LightningCLI

from lightning_interactions import InteractionMonitor

CONFIG = Path(__file__).with_name("config.yaml")
# A short run: 2 epochs, 100 training digits, 4 measured samples (jsonargparse sets init_args of the
# last callback in the list, the monitor).
QUICK = [
    "--trainer.max_epochs", "2", "--data.train_size", "100", "--trainer.callbacks.init_args.num_samples", "4",
]  # fmt: skip


class DigitsModel(Classifier):
    """The digits CNN (``image_patches.digits_cnn``) as a classifier; ``lr`` is Adam's step size."""

    def __init__(self, channels: int = 16, lr: float = 1e-3) -> None:
        super().__init__(digits_cnn(channels), lr=lr)


class DigitsData(TensorDataModule):
    """Scikit-learn's digits: a seeded ``train_size`` training split, the rest for validation."""

    def __init__(self, train_size: int = 300, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__(*digits(train_size, seed), batch_size=batch_size)


def quick_arguments(args: Sequence[str]) -> list[str]:
    """``args`` with ``--quick`` replaced by the overrides of a short run (and ``fit`` if no subcommand).

    Example:
        >>> quick = quick_arguments(["--quick"])
        >>> quick[:2], quick[3:] == QUICK
        (['fit', '--config'], True)
        >>> quick_arguments(["fit", "--trainer.max_epochs", "5"])  # without --quick: as they are
        ['fit', '--trainer.max_epochs', '5']
    """
    args = list(args)
    if "--quick" not in args:
        return args
    args.remove("--quick")
    if not args or args[0].startswith("-"):
        args = ["fit", "--config", str(CONFIG), *args]
    return args + QUICK


def main(args: Sequence[str] | None = None) -> LightningCLI:
    """Run LightningCLI with ``args`` (default: the command line) and print the monitor's summary."""
    begin = time.perf_counter()
    given = sys.argv[1:] if args is None else list(args)
    arguments = quick_arguments(given)
    with warnings.catch_warnings(), torch_threads(1):
        # LightningCLI warns when it gets args while sys.argv has some: here they are sys.argv's own.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = LightningCLI(DigitsModel, DigitsData, args=arguments)
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, InteractionMonitor)]
    if monitors and monitors[0].history:
        print_summary(monitors[0], cli.trainer, time.perf_counter() - begin)
    return cli


if __name__ == "__main__":
    main()
