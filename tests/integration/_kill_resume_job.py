"""A tiny monitored training job for ``test_kill_resume.py``.

``python tests/integration/_kill_resume_job.py ROOT MAX_EPOCHS [--resume] [--hang-at E] [--wait-for FILE]``

Trains a small classifier on the CPU (deterministic: unshuffled data, no dropout) with
``InteractionMonitor``, a ``CSVLogger`` of fixed version (so a resumed run writes into the same log
directory) and a ``ModelCheckpoint`` that saves ``last.ckpt`` after every epoch. ``--resume``
continues from ``ROOT/ckpt/last.ckpt``. ``--hang-at E`` makes the job stop moving right after the
monitor has measured epoch ``E`` (before that epoch's checkpoint is saved), after writing the file
``ROOT/hanging``: the test kills it there. ``--wait-for FILE`` imports everything, then waits until
``FILE`` exists before it starts (so that a test can start the resumed run while the first one
still trains, and the slow imports of the two processes overlap).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import FeatureMasker, InteractionMonitor, demos

FEATURES = 4
HANG_MARKER = "hanging"
LOG_NAME = "logs"
WAIT_LIMIT_S = 600  # a job left waiting by a test that died gives up


class Classifier(demos.Classifier):
    def __init__(self) -> None:
        net = nn.Sequential(nn.Linear(FEATURES, 8), nn.Tanh(), nn.Linear(8, 2))
        super().__init__(net, optimizer="sgd", lr=0.3)


class HangAfterMeasurement(Callback):
    """Placed after the monitor: once it has measured epoch ``epoch``, say so and wait to be killed."""

    def __init__(self, root: Path, epoch: int) -> None:
        self.root, self.epoch = root, epoch

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch + 1 != self.epoch:
            return
        partial = self.root / (HANG_MARKER + ".partial")
        partial.write_text(str(os.getpid()))
        os.replace(partial, self.root / HANG_MARKER)
        while True:  # the test sends SIGKILL
            time.sleep(0.05)


def data() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(48, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    return (
        DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),
        DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8),
    )


def run(
    root: Path, max_epochs: int, resume: bool = False, hang_at: int | None = None, version: int = 0
) -> InteractionMonitor:
    """Train (or resume) the job in ``root``, logging to ``logs/version_{version}``; return its monitor."""
    torch.set_num_threads(1)
    pl.seed_everything(0)
    root = Path(root)
    monitor = InteractionMonitor(FeatureMasker(num_features=FEATURES), num_samples=2, log_figures=False)
    callbacks: list[Callback] = [monitor]
    if hang_at is not None:
        callbacks.append(HangAfterMeasurement(root, hang_at))
    callbacks.append(ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=CSVLogger(str(root), name=LOG_NAME, version=version),
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    ckpt_path = str(root / "ckpt" / "last.ckpt") if resume else None
    trainer.fit(Classifier(), *data(), ckpt_path=ckpt_path)
    return monitor


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("max_epochs", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-at", type=int, default=None)
    parser.add_argument("--wait-for", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.wait_for is not None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not args.wait_for.exists():
            if time.monotonic() > deadline:
                sys.exit(f"gave up waiting for {args.wait_for}")
            time.sleep(0.05)
    run(args.root, args.max_epochs, resume=args.resume, hang_at=args.hang_at)


if __name__ == "__main__":
    main(sys.argv[1:])
