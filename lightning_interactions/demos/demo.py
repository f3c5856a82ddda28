"""The demo: a small over-fitting run on scikit-learn's digits, watched by ``InteractionMonitor``.

A small MLP learns scikit-learn's bundled 8x8 digits (no download) from a small training set
with part of its labels replaced by random ones, so that it over-fits within a few dozen epochs
on a CPU. Lightning trains it with an :class:`~lightning_interactions.InteractionMonitor`
(2x2 patch players) and a TensorBoard logger; the run then writes its report (PNG, summary text,
``summary.json``) with :func:`lightning_interactions.reporting.offline.write_run_report`.

Everything is seeded: the split, the label noise, the weights, the batch order and the players.

Example:
    >>> settings = DemoSettings(epochs=3, num_players=4, num_samples=4)
    >>> settings.train_size, settings.label_noise
    (300, 0.25)
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

__all__ = [
    "DemoSettings",
    "DemoError",
    "load_digits_split",
    "build_mlp",
    "DigitsClassifier",
    "run_demo",
]



class DemoError(Exception):
    """A problem with the demo's settings or environment, reported without a traceback."""


@dataclass
class DemoSettings:
    """The settings of one demo run (the command line's options).

    Attributes:
        out: directory for the logs and the report.
        epochs: training epochs.
        num_players: patch players per image (``2^n`` masked inputs per measured image).
        num_samples: validation images the monitor measures.
        patch_size: patch side in pixels of the 8x8 images.
        train_size: training images (a small set, so that the network over-fits).
        val_size: validation images (the rest of the data set is unused).
        label_noise: fraction of training labels replaced by a uniformly drawn other class.
        hidden: width of the two hidden layers.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        lr: learning rate.
        batch_size: training batch size.
        seed: seed of everything.
        q_ratio: error box of the extraction.
        threads: torch CPU threads during the run (default 1: robust on a busy machine; None: as is).
        save_checkpoints: also save the model's state dict after every epoch (for ``analyze``).
        quiet: print nothing.
    """

    out: Path = Path("demo-run")
    epochs: int = 50
    num_players: int = 8
    num_samples: int = 16
    patch_size: int = 2
    train_size: int = 300
    val_size: int = 500
    label_noise: float = 0.25
    hidden: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    q_ratio: float = 0.04
    threads: int | None = 1
    save_checkpoints: bool = False
    quiet: bool = False


# ---------------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------------


def _digits() -> tuple[Tensor, Tensor]:
    """All 1797 digits as ``(N, 1, 8, 8)`` float32 in [0, 1] and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DemoError(
            "the demo needs scikit-learn for its bundled digits data set: pip install scikit-learn "
            "(or pip install 'lightning-interactions[dev]')"
        ) from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    return images, torch.tensor(digits.target, dtype=torch.long)


def noisy_labels(labels: Tensor, fraction: float, seed: int, num_classes: int = 10) -> Tensor:
    """``labels`` with ``round(fraction * N)`` of them (seeded choice) replaced by another class.

    Example:
        >>> labels = torch.zeros(10, dtype=torch.long)
        >>> int((noisy_labels(labels, 0.3, seed=0) != labels).sum())
        3
    """
    generator = torch.Generator().manual_seed(seed)
    count = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:count]
    shift = torch.randint(1, num_classes, (count,), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def load_digits_split(
    train_size: int, val_size: int, label_noise: float, seed: int
) -> dict[str, Tensor]:
    """A seeded split of the digits: a small noisy training set and a clean validation set.

    Returns ``x_train``, ``y_train`` (noisy), ``y_train_clean``, ``x_val``, ``y_val``, and
    ``x_test``, ``y_test``: the remaining digits, a held-out test set.
    """
    images, labels = _digits()
    if train_size + val_size > len(labels):
        raise DemoError(
            f"--train-size {train_size} + --val-size {val_size} exceeds the {len(labels)} digits"
        )
    if not 0.0 <= label_noise <= 1.0:
        raise DemoError(f"--label-noise must lie in [0, 1], got {label_noise}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    train, val = order[:train_size], order[train_size : train_size + val_size]
    test = order[train_size + val_size :]
    return {
        "x_test": images[test],
        "y_test": labels[test],
        "x_train": images[train],
        "y_train": noisy_labels(labels[train], label_noise, seed + 1),
        "y_train_clean": labels[train],
        "x_val": images[val],
        "y_val": labels[val],
    }


def build_mlp(hidden: int) -> nn.Module:
    """The demo's network: an MLP 64 -> hidden -> hidden -> 10 on flattened 8x8 images."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


class DigitsClassifier(pl.LightningModule):
    """The demo's MLP with cross-entropy; logs ``train_loss`` and ``val_loss`` once per epoch.

    Example:
        >>> DigitsClassifier(hidden=8)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, hidden: int = 256, optimizer: str = "adam", lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_mlp(hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hparams.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _check(settings: DemoSettings) -> None:
    if settings.epochs < 1:
        raise DemoError(f"--epochs must be at least 1, got {settings.epochs}")
    if settings.optimizer not in ("adam", "sgd"):
        raise DemoError(f"--optimizer must be adam or sgd, got {settings.optimizer!r}")
    grid = 8 // settings.patch_size
    if 8 % settings.patch_size:
        raise DemoError(f"the 8x8 images are not divisible by the patch size {settings.patch_size}")
    if settings.num_players > grid * grid:
        raise DemoError(f"--num-players {settings.num_players} exceeds the {grid * grid} patches")
    if settings.num_samples > settings.val_size:
        raise DemoError(
            f"--num-samples {settings.num_samples} exceeds the {settings.val_size} validation images"
        )


def _loaders(data: dict[str, Tensor], settings: DemoSettings) -> tuple[Any, Any]:
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(settings.seed + 2)
    train = DataLoader(
        TensorDataset(data["x_train"], data["y_train"]),
        batch_size=settings.batch_size,
        shuffle=True,
        generator=generator,
    )
    val = DataLoader(TensorDataset(data["x_val"], data["y_val"]), batch_size=256)
    return train, val


class _EpochCheckpoints:
    """Save the module's state dict at the start of training and after every epoch."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, module: nn.Module, epoch: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items()}
        torch.save(state, self.directory / f"epoch={epoch:03d}.pt")


def _checkpoint_callback(directory: Path) -> Any:
    saver = _EpochCheckpoints(directory)

    class _Saver(pl.Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            saver.save(pl_module, 0)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            saver.save(pl_module, trainer.current_epoch + 1)

    return _Saver()


def _test_loss_callback(x: Tensor, y: Tensor, losses: dict[int, float]) -> Any:
    """Record (and log) the loss on the held-out test digits after every training epoch."""

    class _TestLoss(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if len(y) == 0:
                return
            was_training = pl_module.training
            pl_module.eval()
            with torch.no_grad():
                loss = float(nn.functional.cross_entropy(pl_module(x), y))
            pl_module.train(was_training)
            epoch = trainer.current_epoch + 1
            losses[epoch] = loss
            for logger in trainer.loggers:
                logger.log_metrics({"test_loss": loss}, step=epoch)

    return _TestLoss()


def _trainer(settings: DemoSettings, callbacks: list[Any]) -> Any:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(save_dir=str(settings.out), name="tensorboard", version="")
    return pl.Trainer(
        max_epochs=settings.epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        log_every_n_steps=1,
    )


def _monitor(settings: DemoSettings) -> Any:
    from lightning_interactions.callbacks.monitor import InteractionMonitor
    from lightning_interactions.masking import PatchMasker

    masker = PatchMasker(patch_size=settings.patch_size, num_players=settings.num_players)
    return InteractionMonitor(
        masker, num_samples=settings.num_samples, q_ratio=settings.q_ratio, seed=settings.seed
    )


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def _train(
    settings: DemoSettings, data: dict[str, Tensor], test_losses: dict[int, float]
) -> tuple[Any, Any, Any]:
    """Train under the monitor; returns ``(module, monitor, trainer)``; fills ``test_losses``."""
    import logging
    import warnings

    pl.seed_everything(settings.seed, workers=True, verbose=False)
    module = DigitsClassifier(hidden=settings.hidden, optimizer=settings.optimizer, lr=settings.lr)
    monitor = _monitor(settings)
    callbacks = [monitor, _test_loss_callback(data["x_test"], data["y_test"], test_losses)]
    if settings.save_checkpoints:
        callbacks.append(_checkpoint_callback(settings.out / "checkpoints"))
    train, val = _loaders(data, settings)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*over-fitting alert.*")
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        trainer = _trainer(settings, callbacks)
        trainer.fit(module, train, val)
    return module, monitor, trainer


def run_demo(settings: DemoSettings) -> dict[str, Any]:
    """Train the demo under the monitor, write its logs and report into ``settings.out``.

    Returns the summary that ``summary.json`` holds.
    """
    _check(settings)
    previous = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            return _run(settings)
    finally:
        torch.set_num_threads(previous)


def _say(settings: DemoSettings, text: str) -> None:
    if not settings.quiet:
        print(text, flush=True)


def _run(settings: DemoSettings) -> dict[str, Any]:
    from lightning_interactions.reporting import offline

    start = time.perf_counter()
    data = load_digits_split(settings.train_size, settings.val_size, settings.label_noise, settings.seed)
    settings.out.mkdir(parents=True, exist_ok=True)
    _say(settings, _intro(settings))
    test_losses: dict[int, float] = {}
    module, monitor, trainer = _train(settings, data, test_losses)
    train_s = time.perf_counter() - start
    reference = monitor.state_dict()["reference"]
    extra = _extra(settings, data, module, trainer, train_s)
    extra["test_loss"] = test_losses
    extra["test_size"] = len(data["y_test"])
    extra["test_loss_min_epoch"] = min(test_losses, key=test_losses.get) if test_losses else None
    summary = offline.write_run_report(monitor.history, reference, settings.out, extra=extra)
    summary["wall_time_s"] = time.perf_counter() - start
    offline.write_summary_json(settings.out, summary)
    _say(settings, offline.format_summary(summary))
    return summary


def _intro(settings: DemoSettings) -> str:
    n = settings.num_players
    return (
        f"demo: MLP 64-{settings.hidden}-{settings.hidden}-10 on {settings.train_size} digits "
        f"({settings.label_noise:.0%} random labels), {settings.val_size} clean validation digits; "
        f"{settings.optimizer} lr {settings.lr}, {settings.epochs} epochs, seed {settings.seed}; "
        f"monitor: {settings.num_samples} validation images, {n} players "
        f"({settings.patch_size}x{settings.patch_size} patches), {2**n} masked inputs each; "
        f"{torch.get_num_threads()} torch thread(s)"
    )


def _extra(
    settings: DemoSettings, data: dict[str, Tensor], module: Any, trainer: Any, train_s: float
) -> dict[str, Any]:
    fields = dataclasses.asdict(settings)
    fields = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in fields.items()}
    return {
        "command": "demo",
        "settings": fields,
        "tensorboard_dir": str(Path(trainer.log_dir)),
        "tensorboard_command": f"tensorboard --logdir {settings.out}",
        "accuracy": {
            "train_noisy_labels": _accuracy(module, data["x_train"], data["y_train"]),
            "train_clean_labels": _accuracy(module, data["x_train"], data["y_train_clean"]),
            "val": _accuracy(module, data["x_val"], data["y_val"]),
            "test": _accuracy(module, data["x_test"], data["y_test"]) if len(data["y_test"]) else None,
        },
        "train_s": train_s,
        "torch_version": torch.__version__,
    }
