"""LightningCLI configures the monitor, masker included, from a YAML file."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import FeatureMasker, InteractionMonitor

pytest.importorskip("jsonargparse")
from lightning.pytorch.cli import LightningCLI  # noqa: E402


class TinyModel(L.LightningModule):
    def __init__(self, features: int = 5, hidden: int = 8) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, _):
        return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, _):
        self.log("val_loss", torch.nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TinyData(L.LightningDataModule):
    def __init__(self, features: int = 5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, features, generator=generator)
        self.y = (self.x[:, 0] * self.x[:, 1] > 0).long()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[:16], self.y[:16]), batch_size=16)


CONFIG = """
trainer:
  max_epochs: 2
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: lightning_interactions.InteractionMonitor
      init_args:
        masker:
          class_path: lightning_interactions.masking.FeatureMasker
          init_args:
            num_features: 5
        num_samples: 4
        every_n_epochs: 1
        q_ratio: 0.02
        prediction: reference
        alert_patience: 3
        log_prefix: tiny
"""


def test_monitor_is_configured_from_yaml_and_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    arguments = ["--config", str(config)]
    cli = LightningCLI(TinyModel, TinyData, run=False, save_config_callback=None, args=arguments)
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, InteractionMonitor)]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert isinstance(monitor.masker, FeatureMasker) and monitor.masker.num_players == 5
    assert (monitor.q_ratio, monitor.prediction, monitor.log_prefix) == (0.02, "reference", "tiny")
    assert monitor.tracker.patience == 3
    cli.trainer.fit(cli.model, cli.datamodule)
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    assert "tiny/complexity" in cli.trainer.callback_metrics
