"""The monitor's figures are drawn off the training thread, and none is lost without a word.

Unit tests of :class:`FigureWorker` (results logged on the caller's thread, a failed job reported,
a job still drawing at the deadline dropped and named), then real Lightning fits with a
``CSVLogger``, whose figure files show what reached the logger: the training loop does not wait
for a drawing; fit end waits for every pending figure; a crash logs what finishes in time and
warns about the rest, and the history file keeps every measurement.
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from lightning_interactions import InteractionMonitor, demos
from lightning_interactions.analysis.history import read_history
from lightning_interactions.callbacks import publishing, run_log
from lightning_interactions.callbacks.figure_worker import FigureWorker
from lightning_interactions.errors import MeasurementWarning
from lightning_interactions.loggers import LoggerBackend
from lightning_interactions.masking import FeatureMasker
from lightning_interactions.plot._canvas import new_figure

FEATURES = 4


class Images(LoggerBackend):
    """Records each image's tag, step and the thread that logged it."""

    supports_figures = True

    def __init__(self) -> None:
        self.images: list[tuple[str, int, str]] = []

    def log_scalars(self, scalars: Any, step: int) -> None:
        pass

    def log_image(self, tag: str, image: Any, step: int) -> None:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"
        self.images.append((tag, step, threading.current_thread().name))


def _line(tag: str, step: int, wait: threading.Event | None = None) -> Any:
    def draw() -> dict[str, tuple[Any, int]]:
        if wait is not None:
            assert wait.wait(timeout=30)
        figure = new_figure(figsize=(2, 1))
        figure.add_subplot().plot([0, 1], [1, 0])
        return {tag: (figure, step)}

    return draw


def test_images_are_logged_on_the_thread_that_delivers_them() -> None:
    backend, worker = Images(), FigureWorker()
    worker.submit(_line("a", 1), [backend], epoch=1)
    worker.submit(_line("b", 2), [backend], epoch=2)
    finished = worker.finish(timeout=60.0)
    assert (finished.logged, finished.dropped) == (2, 0)
    here = threading.current_thread().name
    assert backend.images == [("a", 1, here), ("b", 2, here)]


def test_a_failed_job_is_reported_and_the_others_still_logged() -> None:
    def broken() -> dict[str, tuple[Any, int]]:
        raise ValueError("no such order")

    backend, worker, errors = Images(), FigureWorker(), []
    worker.submit(broken, [backend], epoch=4)
    worker.submit(_line("fine", 5), [backend], epoch=5)
    worker.finish(timeout=60.0, on_error=lambda epoch, error: errors.append((epoch, str(error))))
    assert errors == [(4, "no such order")]
    assert [tag for tag, _, _ in backend.images] == ["fine"]


def test_a_job_still_drawing_at_the_deadline_is_dropped_and_named() -> None:
    backend, worker, release = Images(), FigureWorker(), threading.Event()
    worker.submit(_line("slow", 7), [backend], epoch=7)
    worker.submit(_line("queued", 8), [backend], epoch=8)
    try:
        finished = worker.finish(timeout=0.2)
    finally:
        release.set()
    assert (finished.logged, finished.dropped_epochs) == (2, ())  # nothing blocked: both finished
    blocked = FigureWorker()
    blocked.submit(_line("slow", 7, wait=(gate := threading.Event())), [backend], epoch=7)
    blocked.submit(_line("queued", 8), [backend], epoch=8)
    finished = blocked.finish(timeout=0.2)
    gate.set()
    assert finished.logged == 0 and finished.dropped_epochs == (7, 8)
    # The dropped job's thread hands nothing to the worker's next jobs.
    blocked.submit(_line("next", 9), [backend], epoch=9)
    assert blocked.finish(timeout=60.0).logged == 1
    assert [tag for tag, _, _ in backend.images][-1] == "next"
    assert "slow" not in [tag for tag, _, _ in backend.images[2:]]


def test_a_copy_of_the_worker_starts_empty() -> None:
    import copy

    worker = FigureWorker()
    worker.submit(_line("a", 1, wait=(gate := threading.Event())), [Images()], epoch=1)
    twin = copy.deepcopy(worker)
    assert twin.pending == 0 and worker.pending == 1
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):  # 0 and 1 skip __setstate__ for a false state
        assert pickle.loads(pickle.dumps(worker, protocol=protocol)).pending == 0
    gate.set()
    worker.finish(timeout=60.0)


# --- real fits ---------------------------------------------------------------------------------


class Crash(pl.Callback):
    """Raises in the training loop once ``epoch`` training epochs are done."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("the user's training step failed")


class PendingAtTrainEnd(pl.Callback):
    """Notes the monitor's pending figure jobs when training ended, then lets the drawings go on."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate, self.pending = gate, None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        monitor = next(c for c in trainer.callbacks if isinstance(c, InteractionMonitor))
        self.pending = monitor._log.figures.pending
        self.gate.set()


def _fit(root: Path, epochs: int, callbacks: list[pl.Callback]) -> tuple[InteractionMonitor, Path]:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(40, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    model = demos.Classifier(nn.Sequential(nn.Linear(FEATURES, 8), nn.Tanh(), nn.Linear(8, 2)), lr=0.3)
    data = demos.TensorDataModule(x[:32], y[:32], x[32:], y[32:], batch_size=8)
    monitor = InteractionMonitor(FeatureMasker(num_features=FEATURES), num_samples=3, on_error="raise")
    logger = CSVLogger(str(root), name="csv", version=0)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=[monitor, *callbacks],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    pl.seed_everything(0, verbose=False)
    try:
        trainer.fit(model, datamodule=data)
    except RuntimeError as error:
        assert "training step failed" in str(error)
    return monitor, Path(logger.log_dir)


def _figure_files(log_dir: Path) -> set[str]:
    return {str(path.relative_to(log_dir / "figures")) for path in (log_dir / "figures").rglob("*.png")}


def _slow_drawings(monkeypatch: pytest.MonkeyPatch, gate: threading.Event) -> None:
    """Every measurement's figures wait for ``gate`` before they are drawn."""
    real = publishing._measurement_figures

    def waiting(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(publishing, "_measurement_figures", waiting)


def test_training_does_not_wait_for_figures_and_fit_end_logs_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    _slow_drawings(monkeypatch, gate)
    watcher = PendingAtTrainEnd(gate)
    monitor, log_dir = _fit(tmp_path, epochs=3, callbacks=[watcher])
    # All four measurements (epochs 0-3) were still waiting to be drawn when training ended...
    assert watcher.pending == 4
    # ...and fit end drew and logged them: the untrained model's figure and the periodic ones.
    files = _figure_files(log_dir)
    assert "interactions.key_epochs.untrained/step_000000.png" in files
    assert any(name.startswith("interactions.figures.orders_over_epochs/") for name in files)
    assert monitor._log.figures.pending == 0


def test_a_crash_logs_the_figures_that_finish_in_time(tmp_path: Path) -> None:
    monitor, log_dir = _fit(tmp_path, epochs=6, callbacks=[Crash(epoch=2)])
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    assert "interactions.key_epochs.untrained/step_000000.png" in _figure_files(log_dir)
    assert monitor._log.figures.pending == 0


def test_a_crash_drops_figures_still_drawing_with_a_word_and_keeps_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    _slow_drawings(monkeypatch, gate)
    monkeypatch.setattr(run_log, "CRASH_WAIT_S", 0.2)
    try:
        with pytest.warns(MeasurementWarning, match=r"training stopped with an error.*of epoch\(s\) 0, 1, 2"):
            monitor, log_dir = _fit(tmp_path, epochs=6, callbacks=[Crash(epoch=2)])
    finally:
        gate.set()
    time.sleep(0.1)
    assert not (log_dir / "figures").exists() or not _figure_files(log_dir)
    history = read_history(log_dir / "interaction_history.jsonl")
    assert [record["epoch"] for record in history] == [0, 1, 2]


class ReleaseThenCrash(Crash):
    """Lets the held-back drawings go on, then raises: they finish while training stops."""

    def __init__(self, epoch: int, gate: threading.Event) -> None:
        super().__init__(epoch)
        self.gate = gate

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            self.gate.set()
        super().on_train_epoch_start(trainer, pl_module)


def test_a_figure_failing_after_a_crash_is_a_warning_and_the_users_error_comes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_interactions.loggers import CSVBackend

    def full_disk(self: Any, tag: str, image: Any, step: int) -> None:
        raise OSError("disk full")

    gate = threading.Event()
    _slow_drawings(monkeypatch, gate)  # nothing reaches the logger before the crash
    monkeypatch.setattr(CSVBackend, "log_image", full_disk)
    # on_error="raise" (the _fit's monitor): the failure must not replace the user's own error,
    # which _fit checks is the one that came out of trainer.fit.
    with pytest.warns(MeasurementWarning, match=r"failed with OSError: disk full \(training had stopped"):
        monitor, _ = _fit(tmp_path, epochs=6, callbacks=[ReleaseThenCrash(2, gate)])
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
