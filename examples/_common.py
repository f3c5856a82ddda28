"""Pieces shared by the examples: the command line every example accepts, the Trainer they all
use, and the printed summary; the classifier wrapper and the tensor DataModule are those of
:mod:`lightning_interactions.demos`, re-exported here.

Not an example itself; the examples import it from their own folder.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_interactions import InteractionMonitor
from lightning_interactions.demos import Classifier, TensorDataModule

__all__ = ["Classifier", "TensorDataModule", "parse_args", "torch_threads", "fit", "print_summary"]


def parse_args(
    argv: Sequence[str] | None, doc: str | None, name: str, epochs: int, samples: int = 16
) -> argparse.Namespace:
    """The options every example takes: ``--epochs``, ``--out``, ``--samples``, ``--seed``, ``--threads``,
    ``--quick``.

    ``--quick`` is a few-seconds run (few epochs, data and samples) that only shows the pipeline works.
    """
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument(
        "--out", type=Path, default=Path("runs") / name, help=f"output folder (default runs/{name})"
    )
    parser.add_argument(
        "--samples", type=int, default=samples, help=f"validation samples measured (default {samples})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and samples (default 0)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: robust on a busy machine)"
    )
    parser.add_argument("--quick", action="store_true", help="a few-seconds run: tiny data, 2 epochs")
    return parser.parse_args(argv)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` torch CPU threads, then restore the previous count.

    One thread is the default of every example: tiny models gain nothing from more, and on a
    machine whose cores are busy with other work two threads were measured 10x slower than one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    monitor: InteractionMonitor,
    args: argparse.Namespace,
    name: str,
) -> L.Trainer:
    """Train with the monitor, log to TensorBoard under ``args.out/name``, and print the summary."""
    logger = TensorBoardLogger(save_dir=str(args.out), name=name)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        logger=logger,
        callbacks=[monitor],
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    begin = time.perf_counter()
    with torch_threads(args.threads):
        trainer.fit(model, datamodule=datamodule)
    print_summary(monitor, trainer, time.perf_counter() - begin)
    return trainer


def print_summary(monitor: InteractionMonitor, trainer: L.Trainer, seconds: float) -> None:
    """Print complexity, noise level, phase and losses by epoch, the alert, and where the logs are."""
    print(f"\nmeasured {monitor.num_samples} samples with {monitor.masker.num_players} players each")
    print(f"{'epoch':>5} {'complexity':>10} {'noise s':>8} {'phase':>5} {'train':>7} {'val':>7}")
    history = monitor.history
    # Long runs: about a dozen rows, always with the first, the last, the minimum and the alert.
    step = max(1, -(-len(history) // 12))
    keep = {0, len(history) - 1}
    marked = (monitor.tracker.onset_epoch, monitor.tracker.alert_epoch)
    keep |= {index for index, record in enumerate(history) if record["epoch"] in marked}
    for index, record in enumerate(history):
        if index % step and index not in keep:
            continue
        losses = [record.get(key) for key in ("train_loss", "val_loss")]
        noise = record.get("noise_level")
        print(
            f"{record['epoch']:>5} {record['complexity']:>10.3f} "
            f"{'-' if noise is None else f'{noise:.3g}':>8} {record['phase']:>5} "
            + " ".join(f"{'-' if value is None else f'{value:.3f}':>7}" for value in losses)
        )
    epochs = f"{history[0]['epoch']}..{history[-1]['epoch']}" if history else "-"
    print(f"complexity by epoch ({epochs}): " + " ".join(f"{r['complexity']:.2f}" for r in history))
    tracker = monitor.tracker
    if tracker.alert:
        print(
            f"over-fitting alert at epoch {tracker.alert_epoch}: complexity minimum (phase 2 onset) "
            f"at epoch {tracker.onset_epoch}"
        )
    else:
        print("no over-fitting alert (the complexity has not risen above its minimum for long enough)")
    accuracy = trainer.callback_metrics.get("val_acc")
    if accuracy is not None:
        print(f"final validation accuracy {float(accuracy):.3f}")
    print(f"wall time {seconds:.1f} s; TensorBoard logs and interaction_history.jsonl in {trainer.log_dir}")
