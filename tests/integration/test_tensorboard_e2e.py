"""End to end with the real dashboard: a finished run, served by ``tensorboard --logdir`` on 127.0.0.1.

The server is asked over its HTTP API for the scalar tags, the custom-scalars layout, the
Interactions tab's runs and the text of the run, as the dashboard's own front end asks. Every
wait is bounded; the server is stopped (terminate, then kill) whatever happens. Skipped only
when no tensorboard executable exists.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions.callbacks.monitor import InteractionMonitor
from lightning_interactions.loggers import scalar_tags
from lightning_interactions.masking import FeatureMasker

FEATURES = 5
EPOCHS = 2
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, 12), nn.Tanh(), nn.Linear(12, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def tensorboard_executable() -> str | None:
    beside = Path(sys.executable).with_name("tensorboard")
    if beside.exists():
        return str(beside)
    return shutil.which("tensorboard")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def get(port: int, path: str, **query: str) -> bytes:
    url = f"http://{HOST}:{port}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def get_json(port: int, path: str, **query: str) -> Any:
    return json.loads(get(port, path, **query))


def finished_run(root: Path) -> tuple[InteractionMonitor, Path]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    pl.seed_everything(0)
    monitor = InteractionMonitor(FeatureMasker(num_features=FEATURES), num_samples=4, batch_size=64)
    logger = TensorBoardLogger(str(root), name="run", version=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        logger=logger,
        callbacks=[monitor],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
    )
    train = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8)
    trainer.fit(Net(), train, DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8))
    return monitor, Path(logger.log_dir)


class Dashboard:
    """``tensorboard --logdir`` on a free port of 127.0.0.1, ready once our run's tags are served."""

    def __init__(self, executable: str, logdir: Path, log: Path) -> None:
        self.executable, self.logdir, self.log = executable, logdir, log
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self, expected_tag: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for _attempt in range(3):  # a port taken between free_port() and the bind: try another
            self.port = free_port()
            with open(self.log, "a") as handle:
                self.process = subprocess.Popen(
                    [
                        self.executable,
                        "--logdir",
                        str(self.logdir),
                        "--host",
                        HOST,
                        "--port",
                        str(self.port),
                        "--load_fast=false",
                        "--reload_interval=1",
                    ],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    tags = get_json(self.port, "/data/plugin/scalars/tags")
                    if any(expected_tag in run_tags for run_tags in tags.values()):
                        return
                except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                    pass
                time.sleep(0.5)
            if self.process.poll() is None:
                break  # running but not serving our data in time
        self.stop()
        pytest.fail(
            f"tensorboard did not serve the run within {STARTUP_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def test_tensorboard_serves_scalars_layout_the_tab_and_summary(tmp_path: Path) -> None:
    executable = tensorboard_executable()
    if executable is None:
        pytest.skip("no tensorboard executable")
    monitor, run_dir = finished_run(tmp_path / "logs")
    run = run_dir.relative_to(tmp_path / "logs").as_posix()  # "run/version_0"
    epochs = list(range(EPOCHS + 1))
    assert [r["epoch"] for r in monitor.history] == epochs

    dashboard = Dashboard(executable, tmp_path / "logs", tmp_path / "tensorboard.log")
    try:
        dashboard.start(expected_tag="interactions/complexity")
        port = dashboard.port
        assert run in get_json(port, "/data/runs")

        # Every documented scalar, at the records' steps (those of Lightning's own epoch metrics).
        served = get_json(port, "/data/plugin/scalars/tags")[run]
        assert set(scalar_tags(FEATURES)) <= set(served)
        steps = [r["step"] for r in monitor.history]
        points = get_json(port, "/data/plugin/scalars/scalars", run=run, tag="interactions/complexity")
        assert [int(step) for _, step, _ in points] == steps
        val = get_json(port, "/data/plugin/scalars/scalars", run=run, tag="val_loss")
        assert [int(step) for _, step, _ in val] == steps[1:]  # one x-axis with Lightning's metrics
        assert [value for _, _, value in points] == pytest.approx(
            [r["complexity"] for r in monitor.history], rel=1e-5
        )

        # The custom-scalars layout: the orders in one chart, the losses with their gap in another.
        layout = get_json(port, "/data/plugin/custom_scalars/layout")
        pages = {c["title"]: {chart["title"]: chart for chart in c["chart"]} for c in layout["category"]}
        assert set(pages) == {"interactions: overview", "interactions: orders", "interactions: theory fit"}
        (pattern,) = pages["interactions: orders"]["strength by order"]["multiline"]["tag"]
        assert sorted(tag for tag in served if re.match(pattern, tag)) == sorted(
            f"interactions/order_{k}" for k in range(1, FEATURES + 1)
        )
        patterns = pages["interactions: overview"]["losses and their gap"]["multiline"]["tag"]
        losses = [tag for tag in served if any(re.match(p, tag) for p in patterns)]
        assert sorted(losses) == ["interactions/loss_gap", "interactions/train_loss", "interactions/val_loss"]

        # No images: the Interactions tab draws the figures from the history file it serves.
        assert not get_json(port, "/data/plugin/images/tags").get(run)
        assert run in [entry["run"] for entry in get_json(port, "/data/plugin/interactions/runs")]

        # The text summary of the run.
        assert "interactions/summary/text_summary" in get_json(port, "/data/plugin/text/tags")[run]
    finally:
        dashboard.stop()
    assert dashboard.process is not None and dashboard.process.poll() is not None
