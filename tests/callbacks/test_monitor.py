"""InteractionMonitor in real ``Trainer.fit`` runs on the CPU.

Every expected number comes from outside the callback: the interactions are recomputed with
``compute_interactions`` on copies of the weights taken at each measurement point, on the samples
and players the monitor reports in its ``state_dict``; epochs and steps follow from the run's
length; the phase alert follows from a model whose planted high-order term is set by hand each
epoch. Models and data are tiny (5 features, 4 samples, 2 to 5 epochs).
"""

from __future__ import annotations

import copy
import csv
import math
import random
import re
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers.trainers import quiet_trainer
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import demos
from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    load_reference,
    read_history,
)
from lightning_interactions.analysis.replay import replay_run
from lightning_interactions.analysis.strength import (
    complexity,
    drop_residue,
    strength_shape,
)
from lightning_interactions.analysis.theory import fit_noise_level, shape_predictor
from lightning_interactions.callbacks import progress as progress_module
from lightning_interactions.callbacks.monitor import InteractionMonitor
from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.engine.samples import draw_indices
from lightning_interactions.loggers import scalar_tags
from lightning_interactions.loggers.artifacts import FIGURES, artifact_file
from lightning_interactions.masking import FeatureMasker, Masker

FEATURES = 5
NUM_SAMPLES = 4
TRAIN_SIZE, BATCH = 32, 8
STEPS_PER_EPOCH = TRAIN_SIZE // BATCH
TAGS = scalar_tags(FEATURES)  # interactions/order_k, interactions/shape/order_k, complexity, ...


# ---------------------------------------------------------------------------------------------
# Models, data and helpers
# ---------------------------------------------------------------------------------------------


def classification_data(n: int, seed: int, features: int = FEATURES) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    return x, (x[:, 0] * x[:, 1] * x[:, 2] > 0).long()


def loaders(features: int = FEATURES, shuffle: bool = False) -> tuple[DataLoader, DataLoader]:
    x, y = classification_data(TRAIN_SIZE, seed=1, features=features)
    xv, yv = classification_data(24, seed=2, features=features)
    train = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=shuffle)
    return train, DataLoader(TensorDataset(xv, yv), batch_size=8)


class Classifier(demos.Classifier):
    """A small MLP with batch norm and (optionally) dropout: both would show a wrong train/eval mode."""

    def __init__(
        self, features: int = FEATURES, dropout: float = 0.0, nan_marker: float | None = None
    ) -> None:
        super().__init__(optimizer="sgd", lr=0.3)
        self.net = nn.Sequential(
            nn.Linear(features, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 2)
        )
        self.nan_marker = nan_marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.nan_marker is not None:
            # NaN on a masked copy of the marked sample (feature 4 = marker) whose feature 0 is masked.
            bad = (x[:, 4] == self.nan_marker) & (x[:, 0] == 0)
            out = torch.where(bad[:, None], torch.full_like(out, float("nan")), out)
        return out


class Planted(pl.LightningModule):
    """``v(x) = w.x + b + alpha * x0 x1 x2 x3``, with ``alpha`` set by hand for each epoch.

    The optimiser has learning rate zero, so the linear part stays put and the complexity (mean
    order) of the measured interactions is a function of ``alpha`` alone: it rises with ``alpha``.
    ``schedule[e]`` is ``alpha`` for the measurement after ``e`` completed epochs.
    """

    def __init__(self, schedule: list[float]) -> None:
        super().__init__()
        self.schedule = schedule
        self.linear = nn.Linear(FEATURES, 1)
        self.register_buffer("alpha", torch.tensor(float(schedule[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.alpha * x[:, :4].prod(dim=1, keepdim=True)

    def on_train_epoch_start(self) -> None:
        self.alpha.fill_(self.schedule[min(self.current_epoch + 1, len(self.schedule) - 1)])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).square().mean()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self(batch[0]).square().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def planted_loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(3)
    x = 0.5 + torch.rand(TRAIN_SIZE + 16, FEATURES, generator=generator)
    return (
        DataLoader(TensorDataset(x[:TRAIN_SIZE]), batch_size=BATCH),
        DataLoader(TensorDataset(x[TRAIN_SIZE:]), batch_size=8),
    )


class Snapshots(Callback):
    """Copies of the weights at every measurement point: fit start and each validation end."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.weights[trainer.current_epoch] = copy.deepcopy(pl_module.state_dict())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.weights[trainer.current_epoch + 1] = copy.deepcopy(pl_module.state_dict())


def make_trainer(root: Path, max_epochs: int = 3, **kwargs: Any) -> pl.Trainer:
    return quiet_trainer(root, max_epochs=max_epochs, log_every_n_steps=1, **kwargs)


def monitor(**kwargs: Any) -> InteractionMonitor:
    kwargs.setdefault("num_samples", NUM_SAMPLES)
    kwargs.setdefault("batch_size", 64)
    return InteractionMonitor(FeatureMasker(num_features=kwargs.pop("features", FEATURES)), **kwargs)


def recompute(
    model: nn.Module, weights: dict[str, torch.Tensor], mon: InteractionMonitor, rows=None, **kw: Any
):
    """The interactions of ``model`` with ``weights`` on the monitor's samples and players, from scratch."""
    state = mon.state_dict()
    inputs, targets, players = state["inputs"], state["targets"], state["players"]
    if rows is not None:
        inputs, players = inputs[rows], {key: value[rows] for key, value in players.items()}
        targets = None if targets is None else targets[rows]
    model.load_state_dict(weights)
    return compute_interactions(
        model,
        inputs,
        targets,
        masker=mon.masker,
        output=mon.output,
        q_ratio=mon.q_ratio,
        players=players,
        tol=mon.tol,
        **kw,
    )


def assert_record_matches(record: dict[str, Any], expected) -> None:
    # Both leave out what the extraction does not resolve (docs/theory.md, "Residue"); the rule
    # itself is tested against a literal loop in analysis/test_record.py and engine/test_compute.py.
    strength = expected.mean_strength
    assert record["num_samples"] == expected.num_samples
    assert record["strength"] == pytest.approx(strength.tolist(), rel=1e-6, abs=1e-9)
    assert record["shape"] == pytest.approx(strength_shape(strength).tolist(), rel=1e-6, abs=1e-9)
    assert record["complexity"] == pytest.approx(float(complexity(strength_shape(strength))), rel=1e-6)


def without_timing(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in record.items() if key != "seconds"} for record in records]


def assert_rows_of(samples: torch.Tensor, pool: torch.Tensor) -> None:
    """Every sample is a distinct row of ``pool``."""
    hits = [(pool == sample).all(dim=1).nonzero().flatten().tolist() for sample in samples]
    assert all(len(hit) == 1 for hit in hits), hits
    assert len({hit[0] for hit in hits}) == len(hits)


# ---------------------------------------------------------------------------------------------
# TensorBoard: every documented tag, the layout, the figures and the summary
# ---------------------------------------------------------------------------------------------


REPLAY_PANELS = ("shapes", "noise_level", "complexity", "losses")


def test_tensorboard_run_logs_every_tag_layout_figure_and_summary(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    pl.seed_everything(0)
    model, snapshots = Classifier(), Snapshots()
    # The rise alone fires the alert (alert_gap_rise=None): the loss gap needs 5 epochs of losses,
    # more than this 3-epoch run has, and the alert's note and figures are part of what is checked.
    mon = monitor(alert_gap_rise=None)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    # The figures go to the loggers that show PNGs (TensorBoard's are drawn by the Interactions tab).
    csv_logger = CSVLogger(str(tmp_path), name="csv", version=0)
    trainer = make_trainer(tmp_path, max_epochs=3, logger=[logger, csv_logger], callbacks=[mon, snapshots])
    train, val = loaders()
    trainer.fit(model, train, val)

    # Epochs count completed training epochs: 0 is the untrained model; one record each.
    history = mon.history
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    assert [r["global_step"] for r in history] == [STEPS_PER_EPOCH * epoch for epoch in range(4)]
    # The samples are fixed validation samples; the numbers are those of compute_interactions.
    assert_rows_of(mon.state_dict()["inputs"], val.dataset.tensors[0])
    for record in history:
        assert_record_matches(record, recompute(Classifier(), snapshots.weights[record["epoch"]], mon))
        assert record["num_players"] == FEATURES and record["prediction"] == "prior"
    assert history[0]["train_loss"] is None and history[0]["val_loss"] is None
    assert all(r["train_loss"] is not None and r["val_loss"] is not None for r in history[1:])

    # The same numbers in trainer.callback_metrics, for EarlyStopping and ModelCheckpoint.
    last = history[-1]
    for k in range(1, FEATURES + 1):
        assert float(trainer.callback_metrics[f"interactions/order_{k}"]) == pytest.approx(
            last["strength"][k - 1]
        )
    for name in ("complexity", "noise_level", "theory_error", "phase", "overfit_alert"):
        assert float(trainer.callback_metrics[f"interactions/{name}"]) == pytest.approx(last[name], rel=1e-6)

    # The history file in the run's log directory holds the same records, losses merged in.
    on_disk = read_history(Path(logger.log_dir) / HISTORY_FILENAME)
    assert [r["epoch"] for r in on_disk] == [0, 1, 2, 3]
    for disk, memory in zip(on_disk, history):
        assert disk["strength"] == memory["strength"]
        assert disk["train_loss"] == memory["train_loss"] and disk["val_loss"] == memory["val_loss"]
    # Beside it, the last measurement's interactions, for a reference replay from disk.
    saved = load_reference(Path(logger.log_dir) / REFERENCE_FILENAME)
    assert saved["epoch"] == 3
    assert torch.equal(saved["I_and"], mon.state_dict()["reference"]["I_and"])
    assert torch.equal(saved["I_or"], mon.state_dict()["reference"]["I_or"])
    # The public accessors give the same as the state.
    last = mon.last_interactions
    assert last.epoch == 3
    assert torch.equal(last.I_and, saved["I_and"]) and torch.equal(last.I_or, saved["I_or"])
    assert torch.equal(mon.samples.inputs, mon.state_dict()["inputs"])
    # The reference replay made at fit end, which the demo's report reuses instead of redoing it.
    assert mon.replay.fits == replay_run(mon.history, saved["I_and"], saved["I_or"]).fits
    assert torch.equal(mon.samples.targets, mon.state_dict()["targets"])
    assert mon.samples.players.keys() == mon.state_dict()["players"].keys()
    # The records carry the phase tracker's verdict, so a saved history never re-derives it.
    assert (mon.history[-1]["alert_epoch"], mon.history[-1]["onset_epoch"]) == (
        mon.tracker.alert_epoch,
        mon.tracker.onset_epoch,
    )

    accumulator = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert set(TAGS) <= set(tags["scalars"])
    # One x-axis: each measurement at the step of Lightning's own epoch-level metrics of its epoch.
    steps = [r["step"] for r in history]
    assert steps == [0] + [STEPS_PER_EPOCH * epoch - 1 for epoch in range(1, 4)]
    assert [e.step for e in accumulator.Scalars("val_loss")] == steps[1:]
    for tag in TAGS:
        events = accumulator.Scalars(tag)
        assert [e.step for e in events] == steps, tag
    for record in history:
        epoch = record["epoch"]
        for k in range(1, FEATURES + 1):
            value = accumulator.Scalars(f"interactions/order_{k}")[epoch].value
            assert value == pytest.approx(record["strength"][k - 1], rel=1e-5, abs=1e-7)
        assert accumulator.Scalars("interactions/complexity")[epoch].value == pytest.approx(
            record["complexity"], rel=1e-5
        )
        assert accumulator.Scalars("interactions/overfit_alert")[epoch].value == record["overfit_alert"]
    # The loss gap, once both losses of an epoch are known, at the same step.
    gaps = accumulator.Scalars("interactions/loss_gap")
    assert [e.step for e in gaps] == steps[1:]
    for event, record in zip(gaps, history[1:]):
        assert event.value == pytest.approx(record["val_loss"] - record["train_loss"], rel=1e-5)
    # Each tag says what it is.
    metadata = accumulator.SummaryMetadata("interactions/complexity")
    assert "mean order" in metadata.summary_description
    assert metadata.plugin_data.plugin_name == "scalars"  # an unowned description makes readers warn

    # Custom scalars, a page per topic; together the charts show every tag once.
    assert "custom_scalars__config__" in accumulator.PluginTagToContent("custom_scalars")
    (config,) = accumulator.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    pages = {c.title: {chart.title: list(chart.multiline.tag) for chart in c.chart} for c in layout.category}
    assert list(pages) == ["interactions: overview", "interactions: orders", "interactions: theory fit"]
    charted = []
    for charts in pages.values():
        for patterns in charts.values():
            charted += [tag for tag in tags["scalars"] if any(re.match(p, tag) for p in patterns)]
    losses = {"interactions/loss_gap", "interactions/train_loss", "interactions/val_loss"}
    assert sorted(charted) == sorted(set(TAGS) | losses)

    # Figures at the epochs that matter: the untrained model, the onset and the alert (epoch 3,
    # onset 0 in this run), the last epoch, each under its own tag; the periodic ones every epoch
    # of this 3-epoch run; the replay's panels at fit end. As PNG files of the CSV logger; none in
    # TensorBoard's event file.
    assert (mon.tracker.alert_epoch, mon.tracker.onset_epoch) == (3, 0)
    expected = {
        "interactions/key_epochs/untrained": [0],
        "interactions/key_epochs/onset": [0],
        "interactions/key_epochs/alert": [steps[3]],
        "interactions/key_epochs/last": [steps[3]],
        # The interactions that grew since the onset, drawn on their samples.
        "interactions/key_epochs/emerging_at_alert": [steps[3]],
        "interactions/key_epochs/emerging_at_end": [steps[3]],
        "interactions/figures/measured_vs_predicted": steps,
        "interactions/figures/orders_over_epochs": steps,
        "interactions/figures/shape_heatmap": steps,
        **{f"interactions/replay/{panel}": [steps[3]] for panel in REPLAY_PANELS},
    }
    figures = Path(csv_logger.log_dir)
    drawn = sorted(figures.glob(f"{FIGURES}/*/*.png"))
    assert len(drawn) == sum(len(tag_steps) for tag_steps in expected.values())
    for tag, tag_steps in expected.items():
        for step in tag_steps:
            png = figures / artifact_file(FIGURES, tag, step, "png")
            assert png.read_bytes().startswith(b"\x89PNG"), tag
    assert not tags["images"]
    (summary,) = accumulator.Tensors("interactions/summary/text_summary")
    text = summary.tensor_proto.string_val[0].decode()
    assert "Interaction report" in text and "epochs 0 to 3" in text
    (alert,) = accumulator.Tensors("interactions/alert/text_summary")
    assert alert.step == steps[3]
    assert "Over-fitting alert at epoch 3" in alert.tensor_proto.string_val[0].decode()
    emerging = accumulator.Tensors("interactions/emerging_interactions/text_summary")
    assert [event.step for event in emerging] == [steps[3], steps[3]]  # at the alert and at fit end
    assert "| sample | kind | players |" in emerging[0].tensor_proto.string_val[0].decode()
    # The HPARAMS tab: the monitor's settings and the run's outcome.
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(
        accumulator.PluginTagToContent("hparams")
    )
    outcome = accumulator.Scalars("interactions/outcome/alert_epoch")
    assert [(event.step, event.value) for event in outcome] == [(steps[3], 3.0)]  # one point, at the end
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    shown = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert shown["interactions/num_players"].string_value == str(FEATURES)  # an integer, not 5.0000
    assert shown["interactions/q_ratio"].number_value == pytest.approx(mon.q_ratio)


# ---------------------------------------------------------------------------------------------
# Metrics for EarlyStopping / ModelCheckpoint, and the over-fitting alert
# ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*over-fitting alert")
@pytest.mark.parametrize("at_train_epoch_end", [True, False])
def test_early_stopping_and_checkpoint_on_rising_complexity(tmp_path: Path, at_train_epoch_end: bool) -> None:
    # alpha (the planted order-4 term) by completed epochs: the complexity dips at epoch 2, then rises.
    schedule = [0.0, 1.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    pl.seed_everything(0)
    mon = monitor(output="regression")
    # Checked at train-epoch end (Lightning's default here) or at the same validation end as the
    # measurement: either way the metric must be the current epoch's.
    stopper = EarlyStopping(
        monitor="interactions/complexity", mode="min", patience=2, check_on_train_epoch_end=at_train_epoch_end
    )
    best = ModelCheckpoint(
        dirpath=tmp_path / "ckpt",
        monitor="interactions/complexity",
        mode="min",
        save_top_k=1,
        save_on_train_epoch_end=at_train_epoch_end,
    )
    trainer = make_trainer(tmp_path, max_epochs=7, callbacks=[mon, stopper, best], enable_checkpointing=True)
    trainer.fit(Planted(schedule), *planted_loaders())

    c = [r["complexity"] for r in mon.history]
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3, 4], c
    # The complexity follows alpha: down from epoch 1 to 2, then up at every measurement.
    assert c[2] < c[1] and c[2] < c[3] < c[4], c
    # Best after epoch 2; epochs 3 and 4 are worse: patience 2 stops the run after epoch 4. (A metric
    # one measurement late would make epoch 0 the best and stop after epoch 3.)
    assert trainer.current_epoch == 4
    assert stopper.stopped_epoch == 3  # Lightning's 0-based index of the epoch at which it stopped
    assert float(best.best_model_score) == pytest.approx(c[2], rel=1e-6)
    assert "epoch=1" in Path(best.best_model_path).name  # 0-based: the second epoch


ALERT_SCHEDULE = [4.0, 1.0, 0.25, 1.0, 4.0, 8.0]  # complexity falls to epoch 2, then rises


def run_alert(tmp_path: Path, stop_on_alert: bool) -> tuple[pl.Trainer, InteractionMonitor, list[str]]:
    pl.seed_everything(0)
    mon = monitor(output="regression", stop_on_alert=stop_on_alert, alert_margin=0.05, alert_patience=2)
    trainer = make_trainer(tmp_path, max_epochs=5, callbacks=[mon])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Planted(ALERT_SCHEDULE), *planted_loaders())
    messages = [str(w.message) for w in caught if "over-fitting alert" in str(w.message)]
    return trainer, mon, messages


class PlantedLosses(Planted):
    """:class:`Planted` that also logs scripted epoch losses: ``train[e]`` and ``val[e]`` for epoch e."""

    def __init__(self, schedule: list[float], train: list[float], val: list[float]) -> None:
        super().__init__(schedule)
        self.train_losses, self.val_losses = train, val

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.log("train_loss", self.train_losses[self.current_epoch + 1], on_step=False, on_epoch=True)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.val_losses[self.current_epoch + 1])


def test_the_alert_waits_for_the_logged_loss_gap_to_widen(tmp_path: Path) -> None:
    from lightning_interactions.analysis.phases import alert_of, replay_tracker

    pl.seed_everything(0)
    schedule = [4.0, 1.0, 0.25, 1.0, 4.0] + [8.0] * 6  # complexity minimum at epoch 2, rise at 4
    # Gap (val - train) -0.3 through epoch 6, then 0, 0.3, 0.6: the measurement of epoch 9 is the
    # first whose known losses (epochs 1..8) show two 3-epoch means above the minimum by 5% of val.
    train = [math.nan] + [1.3] * 6 + [1.0, 0.7, 0.4, 0.4]
    mon = monitor(output="regression")
    trainer = make_trainer(tmp_path, max_epochs=10, callbacks=[mon])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(PlantedLosses(schedule, train, [1.0] * 11), *planted_loaders())
    messages = [str(w.message) for w in caught if "over-fitting alert" in str(w.message)]
    assert mon.tracker.rise_epoch == 4 and [r["rise_epoch"] for r in mon.history][3:5] == [None, 4]
    assert (mon.tracker.alert_epoch, mon.tracker.onset_epoch) == (9, 2)
    assert [r["overfit_alert"] for r in mon.history] == [0] * 9 + [1, 1]
    assert len(messages) == 1 and "epoch 9" in messages[0] and "loss gap has grown since" in messages[0]
    assert mon.history[-1]["phase1_seen"] is True
    assert float(trainer.callback_metrics["interactions/phase1_seen"]) == 1.0
    # The history file keeps what the replay needs: the same verdict from disk.
    on_disk = read_history(Path(trainer.log_dir or trainer.default_root_dir) / HISTORY_FILENAME)
    assert alert_of(on_disk) == (9, 2)
    assert replay_tracker(on_disk).state_dict() == mon.tracker.state_dict()
    # Without the gap rule the same run alerts at the rise.
    pl.seed_everything(0)
    rise_only = monitor(output="regression", alert_gap_rise=None)
    trainer = make_trainer(tmp_path / "rise", max_epochs=10, callbacks=[rise_only])
    trainer.fit(PlantedLosses(schedule, train, [1.0] * 11), *planted_loaders())
    assert (rise_only.tracker.alert_epoch, rise_only.tracker.onset_epoch) == (4, 2)


def test_overfit_alert_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    trainer, mon, messages = run_alert(tmp_path, stop_on_alert=False)
    complexities = [r["complexity"] for r in mon.history]
    # The planted schedule gives: minimum at epoch 2, then two measurements above it by > 5%.
    assert min(range(len(complexities)), key=complexities.__getitem__) == 2
    assert complexities[3] > 1.05 * complexities[2] and complexities[4] > 1.05 * complexities[2]
    assert [r["overfit_alert"] for r in mon.history] == [0, 0, 0, 0, 1, 1]
    assert [r["phase"] for r in mon.history] == [1, 1, 1, 1, 2, 2]
    assert len(messages) == 1
    assert "epoch 4" in messages[0] and "epoch 2" in messages[0]
    assert trainer.current_epoch == 5  # stop_on_alert is off by default: all epochs ran
    assert float(trainer.callback_metrics["interactions/overfit_alert"]) == 1.0
    assert float(trainer.callback_metrics["interactions/phase"]) == 2.0


def test_stop_on_alert_stops_at_the_alert(tmp_path: Path) -> None:
    trainer, mon, messages = run_alert(tmp_path, stop_on_alert=True)
    assert len(messages) == 1
    assert trainer.current_epoch == 4
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# The monitor does not change training
# ---------------------------------------------------------------------------------------------


class Probe(Callback):
    """Records the module's modes, gradients and the RNG states at the hooks where the monitor measures."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def _look(self, hook: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        grads = [None if p.grad is None else p.grad.clone() for p in pl_module.parameters()]
        modes = [m.training for m in pl_module.modules()]
        rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
        self.seen.append((hook, (grads, modes, rng, torch.is_inference_mode_enabled())))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._look("train_start", trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._look("validation_epoch_end", trainer, pl_module)


def assert_same_look(before: Any, after: Any) -> None:
    (grads_a, modes_a, rng_a, inference_a), (grads_b, modes_b, rng_b, inference_b) = before, after
    assert modes_a == modes_b and inference_a == inference_b
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert torch.equal(rng_a[0], rng_b[0]) and np.array_equal(rng_a[1], rng_b[1]) and rng_a[2] == rng_b[2]


@pytest.mark.parametrize("num_sanity_val_steps", [2, 0])
def test_weights_bit_identical_with_and_without_monitor(tmp_path: Path, num_sanity_val_steps: int) -> None:
    def train(with_monitor: bool, root: Path):
        pl.seed_everything(0)
        model = Classifier(dropout=0.3)
        before, after = Probe(), Probe()
        callbacks = [before, monitor(), after] if with_monitor else []
        logger = TensorBoardLogger(str(root), name="tb", version=0)
        trainer = make_trainer(
            root, max_epochs=3, logger=logger, callbacks=callbacks, num_sanity_val_steps=num_sanity_val_steps
        )
        trainer.fit(model, *loaders(shuffle=True))
        rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
        return model, rng, before, after, callbacks

    plain, plain_rng, *_ = train(False, tmp_path / "plain")
    watched, watched_rng, before, after, callbacks = train(True, tmp_path / "watched")
    assert [r["epoch"] for r in callbacks[1].history] == [0, 1, 2, 3]
    plain_state, watched_state = plain.state_dict(), watched.state_dict()
    assert plain_state.keys() == watched_state.keys()
    for name in plain_state:  # parameters and buffers (batch-norm statistics)
        assert torch.equal(plain_state[name], watched_state[name]), name
    assert torch.equal(plain_rng[0], watched_rng[0])
    assert np.array_equal(plain_rng[1], watched_rng[1]) and plain_rng[2] == watched_rng[2]
    # Right around each measurement: modes, gradients, RNG and inference mode as they were.
    sanity = ["validation_epoch_end"] if num_sanity_val_steps else []
    assert [hook for hook, _ in before.seen] == sanity + ["train_start"] + ["validation_epoch_end"] * 3
    for (_, look_before), (_, look_after) in zip(before.seen, after.seen):
        assert_same_look(look_before, look_after)


# ---------------------------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*over-fitting alert")
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resume_continues_the_history(tmp_path: Path) -> None:
    train, val = loaders()  # unshuffled and without dropout: the run is deterministic

    pl.seed_everything(0)
    whole = monitor()
    make_trainer(tmp_path / "whole", max_epochs=4, callbacks=[whole]).fit(Classifier(), train, val)

    pl.seed_everything(0)
    first = monitor()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(
        tmp_path / "parts", max_epochs=2, callbacks=[first, checkpoint], enable_checkpointing=True
    ).fit(Classifier(), train, val)
    assert [r["epoch"] for r in first.history] == [0, 1, 2]

    pl.seed_everything(123)  # a different seed: everything needed must come from the checkpoint
    resumed = monitor()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        tmp_path / "parts", max_epochs=4, callbacks=[resumed, checkpoint], enable_checkpointing=True
    )
    trainer.fit(Classifier(), train, val, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))

    assert without_timing(resumed.history) == without_timing(whole.history)
    assert resumed.tracker.state_dict() == whole.tracker.state_dict()
    assert torch.equal(resumed.state_dict()["inputs"], whole.state_dict()["inputs"])
    # Both parts of the interrupted run appended to one history file, which equals the whole run's.
    parts = read_history(tmp_path / "parts" / HISTORY_FILENAME)
    assert without_timing(parts) == without_timing(read_history(tmp_path / "whole" / HISTORY_FILENAME))
    assert [r["epoch"] for r in parts] == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# Other loggers, every_n_epochs, reference mode
# ---------------------------------------------------------------------------------------------


def test_csv_logger_gets_the_scalars_every_n_epochs(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon = monitor(every_n_epochs=2)
    logger = CSVLogger(str(tmp_path), name="csv", version=0)
    trainer = make_trainer(tmp_path, max_epochs=4, logger=logger, callbacks=[mon])
    trainer.fit(Classifier(), *loaders())

    assert [r["epoch"] for r in mon.history] == [0, 2, 4]
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    rows = [row for row in table if row.get("interactions/complexity")]
    # Each measurement logged once, at the step of Lightning's own metrics of its epoch.
    val_steps = {int(row["epoch"]) + 1: int(row["step"]) for row in table if row.get("val_loss")}
    assert [int(row["step"]) for row in rows] == [0, val_steps[2], val_steps[4]]
    assert [r["step"] for r in mon.history] == [0, val_steps[2], val_steps[4]]
    # Each measured epoch's record carries that epoch's losses as Lightning logged them.
    for name in ("train_loss", "val_loss"):
        logged = {int(row["epoch"]) + 1: float(row[name]) for row in table if row.get(name)}
        assert [r[name] for r in mon.history] == [None] + [pytest.approx(logged[e]) for e in (2, 4)]
    for row, record in zip(rows, mon.history):
        for tag, value in (
            ("interactions/complexity", record["complexity"]),
            ("interactions/phase", record["phase"]),
            ("interactions/noise_level", record["noise_level"]),
        ):
            assert float(row[tag]) == pytest.approx(value, rel=1e-9)
        for k in range(1, FEATURES + 1):
            assert float(row[f"interactions/order_{k}"]) == pytest.approx(record["strength"][k - 1], rel=1e-9)
            assert float(row[f"interactions/shape/order_{k}"]) == pytest.approx(
                record["shape"][k - 1], rel=1e-9
            )
    assert [r["epoch"] for r in read_history(Path(logger.log_dir) / HISTORY_FILENAME)] == [0, 2, 4]


def test_no_logger_validation_every_second_epoch_without_sanity_check(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon, snapshots = monitor(), Snapshots()
    trainer = make_trainer(
        tmp_path, max_epochs=4, callbacks=[mon, snapshots], num_sanity_val_steps=0, check_val_every_n_epoch=2
    )
    model = Classifier()
    train, val = loaders()
    trainer.fit(model, train, val)

    assert [r["epoch"] for r in mon.history] == [0, 2, 4]  # measured where validation ran
    for record in mon.history:
        assert_record_matches(record, recompute(Classifier(), snapshots.weights[record["epoch"]], mon))
    assert set(TAGS) <= set(trainer.callback_metrics)
    assert [r["epoch"] for r in read_history(tmp_path / HISTORY_FILENAME)] == [0, 2, 4]
    # A validation run outside fitting is not a measurement.
    trainer.validate(model, val, verbose=False)
    assert [r["epoch"] for r in mon.history] == [0, 2, 4]


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_first_measurement_of_a_run_resumed_without_monitor_state(tmp_path: Path) -> None:
    train, val = loaders()
    pl.seed_everything(0)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(tmp_path, max_epochs=2, callbacks=[checkpoint], enable_checkpointing=True).fit(
        Classifier(), train, val
    )
    mon = monitor()
    make_trainer(tmp_path, max_epochs=3, callbacks=[mon]).fit(
        Classifier(), train, val, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    assert [r["epoch"] for r in mon.history] == [2, 3]  # the first measurement is after 2 epochs, not 0


def test_reference_mode_fits_the_previous_shape_to_the_current_interactions(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon, snapshots = monitor(prediction="reference"), Snapshots()
    make_trainer(tmp_path, max_epochs=2, callbacks=[mon, snapshots]).fit(Classifier(), *loaders())

    history = mon.history
    assert history[0]["noise_level"] is None and history[0]["theory_error"] is None
    for previous, record in zip(history, history[1:]):
        current = recompute(Classifier(), snapshots.weights[record["epoch"]], mon)
        # The reference is the current measurement without its residue, as the record's strength.
        predictor = shape_predictor("reference", reference=drop_residue(current.I_and, current.I_or, 0.01))
        fit = fit_noise_level(torch.tensor(previous["shape"], dtype=torch.float64), predictor)
        assert record["noise_level"] == pytest.approx(fit.s, rel=1e-4)
        assert record["theory_error"] == pytest.approx(fit.error, rel=1e-4, abs=1e-9)
        # The record says which shape its prediction is for, so figures pair them correctly.
        assert record["fitted_epoch"] == previous["epoch"] and record["fitted_shape"] == previous["shape"]


def test_accessors_before_fitting() -> None:
    mon = monitor()
    assert mon.samples is None and mon.last_interactions is None
    with pytest.raises(RuntimeError, match="no samples yet"):
        mon.measure(None, None, 0)


def test_given_samples_are_used_as_they_are(tmp_path: Path) -> None:
    x, y = classification_data(3, seed=9)
    mon = monitor(samples=(x, y))
    pl.seed_everything(0)
    make_trainer(tmp_path, max_epochs=1, callbacks=[mon]).fit(Classifier(), *loaders())
    assert torch.equal(mon.state_dict()["inputs"], x) and torch.equal(mon.state_dict()["targets"], y)
    assert [r["num_samples"] for r in mon.history] == [3, 3]


@pytest.mark.parametrize("progress_bar", [True, False])
def test_progress_is_shown_for_a_slow_measurement(tmp_path: Path, monkeypatch, capfd, progress_bar) -> None:
    monkeypatch.setattr(progress_module, "PROGRESS_AFTER_S", -1.0)  # every measurement counts as slow
    pl.seed_everything(0)
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[monitor()], enable_progress_bar=progress_bar)
    trainer.fit(Classifier(), *loaders())
    err = capfd.readouterr().err
    # Trainer(enable_progress_bar=False) silences the monitor's bar too.
    assert ("interactions (epoch 0)" in err and "interactions (epoch 1)" in err) == progress_bar
    # One bar covers both stages of a measurement, the untrained model's (epoch 0) included.
    for stage in ("forward passes", "extraction"):
        assert (f"interactions (epoch 0): {stage}" in err) == progress_bar


def test_a_slow_first_measurement_says_how_long_and_what_shortens_it(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(progress_module, "SLOW_MEASUREMENT_S", -1.0)  # every measurement counts as slow
    pl.seed_everything(0)
    with caplog.at_level("INFO"):
        make_trainer(tmp_path, max_epochs=2, callbacks=[monitor()]).fit(Classifier(), *loaders())
    notes = [r.getMessage() for r in caplog.records if "the first measurement took" in r.getMessage()]
    assert len(notes) == 1  # said once, after the first measurement only
    assert f"{NUM_SAMPLES} samples, {FEATURES} players" in notes[0] and "lower num_samples" in notes[0]


# ---------------------------------------------------------------------------------------------
# Clear errors, and a NaN output that skips a sample
# ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_error_without_validation_data_or_samples(tmp_path: Path) -> None:
    train, _ = loaders()
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[monitor()])
    with pytest.raises(ValueError, match="needs validation data"):
        trainer.fit(Classifier(), train)
    assert trainer.global_step == 0


def test_error_for_a_masker_that_does_not_fit(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[monitor(features=FEATURES + 1)])
    with pytest.raises(ValueError, match="features"):
        trainer.fit(Classifier(), *loaders())
    assert trainer.global_step == 0


class _TooManyPlayers(Masker):
    """A custom masker that does not check its number of players itself."""

    num_players = 21  # above the engine's limit of 20 players (2^21 forward passes per sample)

    def validate(self, inputs):
        pass

    def select_players(self, inputs, seed=0):
        return {}

    def apply(self, inputs, players, masks, out=None):
        return inputs[:, None].expand(-1, masks.shape[0], *inputs.shape[1:])


def test_error_for_too_many_players_at_construction() -> None:
    with pytest.raises(ValueError, match="21 players need 2\\^21 .* the limit is 20 players"):
        InteractionMonitor(_TooManyPlayers())
    with pytest.raises(ValueError, match="21 players"):
        InteractionMonitor(FeatureMasker(num_features=21))  # a built-in masker refuses them itself


def test_nan_output_skips_the_sample_and_training_goes_on(tmp_path: Path) -> None:
    marker = 123.0
    x, y = classification_data(4, seed=5)
    x[2, 4] = marker  # sample 2 gives NaN once feature 0 is masked; the others stay finite
    pl.seed_everything(0)
    mon, snapshots = monitor(samples=(x, y)), Snapshots()
    trainer = make_trainer(tmp_path, max_epochs=2, callbacks=[mon, snapshots])
    with pytest.warns(RuntimeWarning, match="skipped sample"):
        trainer.fit(Classifier(nan_marker=marker), *loaders())
    assert trainer.current_epoch == 2
    assert [r["epoch"] for r in mon.history] == [0, 1, 2]
    for record in mon.history:
        expected = recompute(
            Classifier(nan_marker=marker), snapshots.weights[record["epoch"]], mon, rows=[0, 1, 3]
        )
        assert record["num_samples"] == 3
        assert_record_matches(record, expected)
        assert all(math.isfinite(value) for value in record["strength"])


def test_mid_epoch_validation_is_not_a_measurement(tmp_path: Path) -> None:
    """With val_check_interval=0.5 validation runs twice per epoch; only the epoch end measures."""
    pl.seed_everything(0)
    mon, snapshots = monitor(), Snapshots()
    trainer = make_trainer(tmp_path, max_epochs=2, val_check_interval=0.5, callbacks=[mon, snapshots])
    trainer.fit(Classifier(), *loaders())
    assert [record["epoch"] for record in mon.history] == [0, 1, 2]
    for record in mon.history[1:]:
        expected = recompute(Classifier(), snapshots.weights[record["epoch"]], mon)
        assert record["complexity"] == pytest.approx(expected.complexity, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Training samples: a second monitor with split="train"
# ---------------------------------------------------------------------------------------------


def test_a_validation_and_a_training_monitor_in_one_trainer(tmp_path: Path) -> None:
    pl.seed_everything(0)
    val_monitor, train_monitor = monitor(), monitor(split="train")
    assert train_monitor.log_prefix == "interactions/train"
    assert val_monitor.state_key != train_monitor.state_key
    logger = CSVLogger(str(tmp_path), name="csv", version=0)
    trainer = make_trainer(
        tmp_path,
        max_epochs=2,
        logger=logger,
        callbacks=[val_monitor, train_monitor],
        enable_checkpointing=False,
    )
    train, val = loaders(shuffle=True)  # a shuffled training loader: the draw must not depend on it
    trainer.fit(Classifier(), train, val)

    # The training monitor measured training samples with their training labels, drawn in data order.
    x, y = train.dataset.tensors
    chosen = train_monitor.samples.indices
    assert torch.equal(train_monitor.samples.inputs, x[chosen]) and torch.equal(
        train_monitor.samples.targets, y[chosen]
    )
    assert torch.equal(chosen, draw_indices(len(x), NUM_SAMPLES, seed=0))
    assert_rows_of(val_monitor.samples.inputs, val.dataset.tensors[0])
    # Its own metrics, history file and checkpoint state.
    assert [r["epoch"] for r in train_monitor.history] == [0, 1, 2]
    assert "interactions/train/complexity" in trainer.callback_metrics
    assert float(trainer.callback_metrics["interactions/train/complexity"]) == pytest.approx(
        train_monitor.history[-1]["complexity"]
    )
    assert float(trainer.callback_metrics["interactions/complexity"]) == pytest.approx(
        val_monitor.history[-1]["complexity"]
    )
    log_dir = Path(logger.log_dir)
    train_file = log_dir / "interaction_history_interactions_train.jsonl"
    assert [r["complexity"] for r in read_history(train_file)] == [
        r["complexity"] for r in train_monitor.history
    ]
    assert [r["complexity"] for r in read_history(log_dir / HISTORY_FILENAME)] == [
        r["complexity"] for r in val_monitor.history
    ]
    assert (log_dir / "interaction_reference_interactions_train.pt").is_file()
    trainer.save_checkpoint(tmp_path / "both.ckpt")
    saved = torch.load(tmp_path / "both.ckpt", weights_only=False)["callbacks"]
    assert {val_monitor.state_key, train_monitor.state_key} <= set(saved)
    assert torch.equal(saved[train_monitor.state_key]["indices"], chosen)


def test_split_is_checked() -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('val', 'train'\), got 'test'"):
        monitor(split="test")
