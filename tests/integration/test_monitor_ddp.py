"""InteractionMonitor under DDP on the CPU: two processes (gloo), the numbers of one process, logged once.

The DDP run is a script launched in a subprocess (``Trainer(strategy="ddp", accelerator="cpu",
devices=2)`` re-launches the script for rank 1), so pytest itself is never forked. The same script,
imported here, runs the single-process comparison in this process.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from helpers.processes import distributed_free_env, run_in_own_group

from lightning_interactions.analysis.history import HISTORY_FILENAME, read_history
from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.engine.samples import draw_indices

REPO = Path(__file__).resolve().parents[2]
DDP_TIMEOUT_S = 300  # a few seconds normally; generous for a loaded CI machine
NUM_SAMPLES = 5  # odd: two processes measure 3 and 2 samples (the second pads its share)
FEATURES = 5
EPOCHS = 2

SCRIPT = '''
"""Train a tiny classifier with InteractionMonitor; ``python script.py OUT DEVICES``."""
import copy
import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import FeatureMasker, InteractionMonitor

FEATURES, NUM_SAMPLES, EPOCHS = {features}, {num_samples}, {epochs}


class RecordingMasker(FeatureMasker):
    """Remembers the samples it masked in this process."""

    seen = set()

    def apply(self, inputs, players, masks):
        RecordingMasker.seen.update(tuple(row) for row in inputs.tolist())
        return super().apply(inputs, players, masks)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, 12), nn.Tanh(), nn.Linear(12, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)  # not synced: differs by rank
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class Snapshots(Callback):
    """The weights at every measurement point, by completed epochs."""

    def __init__(self):
        self.weights = {{}}

    def on_train_start(self, trainer, pl_module):
        self.weights[trainer.current_epoch] = copy.deepcopy(pl_module.state_dict())

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.weights[trainer.current_epoch + 1] = copy.deepcopy(pl_module.state_dict())


def loaders():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16)
    return train, DataLoader(TensorDataset(x[64:], y[64:]), batch_size=8)


def run(root, devices):
    pl.seed_everything(0)
    model, snapshots = Net(), Snapshots()
    masker = RecordingMasker(num_features=FEATURES)
    monitor = InteractionMonitor(masker, num_samples=NUM_SAMPLES, batch_size=64)
    # A second monitor on training samples: its own prefix, state and history file.
    train_monitor = InteractionMonitor(
        FeatureMasker(num_features=FEATURES), num_samples=NUM_SAMPLES, batch_size=64, split="train"
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=EPOCHS,
        logger=CSVLogger(str(root), name="csv", version=0),
        callbacks=[monitor, train_monitor, snapshots],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
    )
    trainer.fit(model, *loaders())
    seen = sorted(RecordingMasker.seen)
    Path(root, f"seen_rank{{trainer.global_rank}}.json").write_text(json.dumps(seen))
    tracker = json.dumps(monitor.tracker.state_dict())
    Path(root, f"tracker_rank{{trainer.global_rank}}.json").write_text(tracker)
    if trainer.is_global_zero:
        result = {{"history": monitor.history, "state": monitor.state_dict(), "weights": snapshots.weights,
                   "train_history": train_monitor.history, "train_state": train_monitor.state_dict()}}
        torch.save(result, Path(root, "result.pt"))
    return monitor, snapshots


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
'''


def write_script(tmp_path: Path) -> Path:
    path = tmp_path / "ddp_monitor_script.py"
    path.write_text(SCRIPT.format(features=FEATURES, num_samples=NUM_SAMPLES, epochs=EPOCHS))
    return path


def import_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ddp_monitor_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch(script: Path, out: Path, devices: int) -> subprocess.CompletedProcess:
    """Run the script in its own process group; on timeout kill the group (rank 1 included)."""
    pythonpath = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = distributed_free_env(PYTHONPATH=pythonpath, MASTER_ADDR="127.0.0.1")
    command = [sys.executable, str(script), str(out), str(devices)]
    log = out.parent / f"{out.name}.log"
    code, output = run_in_own_group(command, out.parent, env, log, DDP_TIMEOUT_S)
    return subprocess.CompletedProcess(command, code, output, "")


def recompute(module: ModuleType, weights: dict, state: dict):
    model = module.Net()
    model.load_state_dict(weights)
    return compute_interactions(
        model,
        state["inputs"],
        state["targets"],
        masker=module.RecordingMasker(num_features=FEATURES),
        players=state["players"],
        q_ratio=0.04,
        tol=0.01,
    )


def test_ddp_two_processes_match_one_process_and_log_once(tmp_path: Path) -> None:
    script = write_script(tmp_path)
    out = tmp_path / "ddp"
    out.mkdir()
    done = launch(script, out, devices=2)
    assert done.returncode == 0, done.stdout[-4000:]

    result = torch.load(out / "result.pt", weights_only=False)
    history, state = result["history"], result["state"]
    epochs = list(range(EPOCHS + 1))
    assert [r["epoch"] for r in history] == epochs
    assert all(r["num_samples"] == NUM_SAMPLES for r in history)

    # Logged once: one history file with one record per measurement, one CSV row per measurement.
    files = list(out.rglob(HISTORY_FILENAME))
    assert len(files) == 1
    assert [r["epoch"] for r in read_history(files[0])] == epochs
    with open(out / "csv" / "version_0" / "metrics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("interactions/complexity")]
    # At the steps of the records: those of Lightning's own epoch-level metrics of each epoch.
    assert [int(row["step"]) for row in rows] == [r["step"] for r in history]
    assert len({r["step"] for r in history}) == len(epochs)

    # Each process measured its own share: disjoint, non-empty, together all the samples.
    samples = {tuple(row) for row in state["inputs"].tolist()}
    seen = [set(map(tuple, json.loads((out / f"seen_rank{rank}.json").read_text()))) for rank in (0, 1)]
    assert seen[0] and seen[1] and not (seen[0] & seen[1])
    assert seen[0] | seen[1] == samples
    # Every process reaches the same phase verdict: the unsynced training loss is rank 0's everywhere.
    trackers = [json.loads((out / f"tracker_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert trackers[0] == trackers[1] and len(trackers[0]["gaps"]) == EPOCHS

    # The gathered numbers are those of all samples measured at once, at every epoch.
    module = import_script(script)
    for record in history:
        expected = recompute(module, result["weights"][record["epoch"]], state)
        assert record["strength"] == pytest.approx(expected.mean_strength.tolist(), rel=1e-6, abs=1e-9)
        assert record["complexity"] == pytest.approx(expected.complexity, rel=1e-6)

    # One process, the same data and seed: the same samples, players and (untrained) strength by order.
    single_root = tmp_path / "single"
    single_root.mkdir()
    single, _ = module.run(single_root, devices=1)
    single_state = single.state_dict()
    assert torch.equal(single_state["inputs"], state["inputs"])
    assert torch.equal(single_state["targets"], state["targets"])
    assert all(torch.equal(single_state["players"][k], state["players"][k]) for k in state["players"])
    assert history[0]["strength"] == pytest.approx(single.history[0]["strength"], rel=1e-6, abs=1e-9)
    assert history[0]["complexity"] == pytest.approx(single.history[0]["complexity"], rel=1e-6)

    # The training monitor beside it: training samples in data order, measured on both processes
    # and logged once, under its own prefix and history file, with the numbers of all at once.
    train_history, train_state = result["train_history"], result["train_state"]
    assert [r["epoch"] for r in train_history] == epochs
    x_train, y_train = module.loaders()[0].dataset.tensors
    chosen = draw_indices(len(x_train), NUM_SAMPLES, seed=0)
    assert torch.equal(train_state["indices"], chosen) and torch.equal(train_state["inputs"], x_train[chosen])
    assert torch.equal(train_state["targets"], y_train[chosen])
    train_files = list(out.rglob("interaction_history_interactions_train.jsonl"))
    assert len(train_files) == 1 and [r["epoch"] for r in read_history(train_files[0])] == epochs
    with open(out / "csv" / "version_0" / "metrics.csv", newline="") as handle:
        train_rows = [row for row in csv.DictReader(handle) if row.get("interactions/train/complexity")]
    assert [int(row["step"]) for row in train_rows] == [r["step"] for r in train_history]
    for record in train_history:
        expected = recompute(module, result["weights"][record["epoch"]], train_state)
        assert record["complexity"] == pytest.approx(expected.complexity, rel=1e-6)
