"""The demo: a small over-fitting run on scikit-learn's digits, watched by ``InteractionMonitor``.

A small MLP learns scikit-learn's bundled 8x8 digits (no download) from a small training set
with part of its labels replaced by random ones, so that it over-fits within a few dozen epochs
on a CPU. Lightning trains it with an :class:`~lightning_interactions.InteractionMonitor`
(2x2 patch players) and a TensorBoard logger; the run then writes its report (PNG, summary text,
``summary.json``) with :func:`lightning_interactions.reporting.run_report.write_run_report`.

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

from lightning_interactions.analysis.history import history_filename
from lightning_interactions.demos.datamodule import TensorDataModule
from lightning_interactions.demos.digits import DemoError, load_digits_split
from lightning_interactions.demos.models import DigitsClassifier
from lightning_interactions.demos.training_split import format_training_split, training_split_report

__all__ = ["DemoSettings", "DemoError", "run_demo"]


@dataclass
class DemoSettings:
    """The settings of one demo run (the command line's options).

    Attributes:
        out: directory for the logs and the report.
        epochs: training epochs.
        num_players: patch players per image (``2^n`` masked inputs per measured image).
        num_samples: validation images the monitor measures.
        train_samples: training images a second monitor (``split="train"``) measures; 0: none.
        loggers: the loggers besides TensorBoard: any of ``"csv"``, ``"mlflow"`` (a sqlite store
            in ``out``) and ``"wandb"`` (offline, in ``out``).
        train_every: epochs between that monitor's measurements (fewer than the validation one's,
            to keep the demo short).
        patch_size: patch side in pixels of the 8x8 images.
        train_size: training images (a small set, so that the network over-fits).
        val_size: validation images (the remaining digits are the held-out test set).
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
    train_samples: int = 16
    train_every: int = 10
    loggers: tuple[str, ...] = ("tensorboard",)
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


def _datamodule(data: dict[str, Tensor], settings: DemoSettings) -> TensorDataModule:
    """Training batches shuffled with ``seed + 2`` (the split uses ``seed``, the noise ``seed + 1``)."""
    tensors = (data[key] for key in ("x_train", "y_train", "x_val", "y_val"))
    return TensorDataModule(*tensors, batch_size=settings.batch_size, seed=settings.seed + 2)


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
            # Logged as Lightning logs the epoch's own metrics: the same step as val_loss.
            pl_module.log("test_loss", loss, on_step=False, on_epoch=True)

    return _TestLoss()


LOGGERS = ("tensorboard", "csv", "mlflow", "wandb")


def _loggers(settings: DemoSettings) -> list[Any]:
    """TensorBoard first (its folder holds the history), then the other loggers asked for, all local."""
    from lightning.pytorch import loggers

    out = settings.out.resolve()
    # A named version, and no placeholder hp_metric: the monitor writes the HPARAMS tab at fit end.
    version = f"{settings.optimizer}-lr{settings.lr:g}-seed{settings.seed}"
    made = [
        loggers.TensorBoardLogger(
            save_dir=str(out), name="tensorboard", version=version, default_hp_metric=False
        )
    ]
    if "csv" in settings.loggers:
        made.append(loggers.CSVLogger(save_dir=str(out), name="csv", version=version))
    if "mlflow" in settings.loggers:
        made.append(
            loggers.MLFlowLogger(
                experiment_name="lightning-interactions-demo",
                run_name=version,
                tracking_uri=f"sqlite:///{out / 'mlflow.db'}",
                artifact_location=(out / "mlflow-artifacts").as_uri(),
            )
        )
    if "wandb" in settings.loggers:
        made.append(
            loggers.WandbLogger(
                name=version, project="lightning-interactions-demo", save_dir=str(out), offline=True
            )
        )
    return made


def _trainer(settings: DemoSettings, callbacks: list[Any]) -> Any:
    unknown = set(settings.loggers) - set(LOGGERS)
    if unknown:
        raise DemoError(f"--logger must be one of {', '.join(LOGGERS)}, got {', '.join(sorted(unknown))}")
    logger = _loggers(settings)
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


def _monitors(settings: DemoSettings) -> list[Any]:
    """The validation monitor, and a training one (``split="train"``) unless ``train_samples`` is 0."""
    from lightning_interactions.callbacks.monitor import InteractionMonitor
    from lightning_interactions.masking import PatchMasker

    masker = PatchMasker(patch_size=settings.patch_size, num_players=settings.num_players)
    common = {"q_ratio": settings.q_ratio, "seed": settings.seed}
    monitors = [InteractionMonitor(masker, num_samples=settings.num_samples, **common)]
    if settings.train_samples:
        monitors.append(
            InteractionMonitor(
                masker,
                num_samples=settings.train_samples,
                split="train",
                every_n_epochs=settings.train_every,
                **common,
            )
        )
    return monitors


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def _train(
    settings: DemoSettings, data: dict[str, Tensor], test_losses: dict[int, float]
) -> tuple[Any, Any, Any]:
    """Train under the monitors; returns ``(module, monitors, trainer)``; fills ``test_losses``."""
    import logging
    import warnings

    pl.seed_everything(settings.seed, workers=True, verbose=False)
    module = DigitsClassifier(hidden=settings.hidden, optimizer=settings.optimizer, lr=settings.lr)
    monitors = _monitors(settings)
    callbacks = [*monitors, _test_loss_callback(data["x_test"], data["y_test"], test_losses)]
    if settings.save_checkpoints:
        callbacks.append(_checkpoint_callback(settings.out / "checkpoints"))
    datamodule = _datamodule(data, settings)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*over-fitting alert.*")
        warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
        trainer = _trainer(settings, callbacks)
        trainer.fit(module, datamodule=datamodule)
    return module, monitors, trainer


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
    from lightning_interactions.dashboard import write_page
    from lightning_interactions.reporting.run_report import write_run_report, write_summary_json
    from lightning_interactions.reporting.summary import format_summary

    start = time.perf_counter()
    data = load_digits_split(settings.train_size, settings.val_size, settings.label_noise, settings.seed)
    settings.out.mkdir(parents=True, exist_ok=True)
    _say(settings, _intro(settings))
    test_losses: dict[int, float] = {}
    module, monitors, trainer = _train(settings, data, test_losses)
    train_s = time.perf_counter() - start
    monitor = monitors[0]
    last = monitor.last_interactions
    reference = None if last is None else {"I_and": last.I_and, "I_or": last.I_or}
    extra = _extra(settings, data, module, trainer, train_s)
    if len(monitors) > 1:
        extra["train_split"] = training_split_report(
            monitors[1], data, settings.out / "train_split", trainer.log_dir
        )
    extra["test_loss"] = test_losses
    extra["test_size"] = len(data["y_test"])
    extra["test_loss_min_epoch"] = min(test_losses, key=test_losses.get) if test_losses else None
    # The dashboard of the run, both monitors, as one page that opens offline.
    page = write_page(Path(trainer.log_dir), settings.out / "report.html")
    extra["report_html"] = str(page)
    summary = write_run_report(monitor.history, reference, settings.out, extra=extra, run=monitor.replay)
    summary["wall_time_s"] = time.perf_counter() - start
    write_summary_json(settings.out, summary)
    _say(settings, format_summary(summary))
    if "train_split" in summary:
        _say(settings, format_training_split(summary["train_split"]))
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
        # The files the monitor saved beside its history (the onset's interactions, the samples).
        "history_file": str(Path(trainer.log_dir) / history_filename()),
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
