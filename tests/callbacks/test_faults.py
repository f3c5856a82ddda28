"""InteractionMonitor when a measurement fails: ``on_error="warn"`` skips it, ``"raise"`` stops the run.

A tiny classifier misbehaves only on the monitor's masked batches (larger than any training or
validation batch) and only at chosen measurement epochs: it raises, returns NaN or infinity
everywhere, or returns the wrong shape. Every expectation is written down independently of the
monitor: which epochs were measured follows from the schedule of faults, the phase tracker's state
from replaying the kept complexities through a fresh tracker, and "training was not changed" from
a run without the monitor.
"""

from __future__ import annotations

import random
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers.processes import distributed_free_env, run_in_own_group
from helpers.trainers import quiet_trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import demos
from lightning_interactions.analysis import record as record_module
from lightning_interactions.analysis.history import HISTORY_FILENAME, read_history
from lightning_interactions.analysis.phases import PhaseTracker, replay_tracker
from lightning_interactions.callbacks import run_log as run_log_module
from lightning_interactions.callbacks.faults import FaultPolicy
from lightning_interactions.callbacks.monitor import InteractionMonitor, MeasurementError, MeasurementWarning
from lightning_interactions.engine import _setup as setup_checks
from lightning_interactions.masking import FeatureMasker
from lightning_interactions.reporting.report_command import report_run
from lightning_interactions.reporting.run_report import OfflineError

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
DDP_TIMEOUT_S = 300  # normally well under a minute; a hang is what the DDP test looks for
FEATURES = 4  # 16 masked inputs per sample
BATCH = 8  # training and validation batches; the monitor's are 3 * 16 = 48
STEPS = 2  # limit_train_batches
EPOCHS = 3
FAULTS = ("raise", "nan", "inf", "shape")
# The exception a fault gives inside compute_interactions (NaN/inf raise nothing: no sample is kept).
CAUSES = {"raise": RuntimeError, "nan": None, "inf": None, "shape": ValueError}


class Faulty(demos.Classifier):
    """A small MLP (batch norm, dropout) that misbehaves on masked batches at the epochs in ``fail_at``.

    The measurement epoch is ``global_step // STEPS``: the monitor measures after every completed
    epoch, and at fit start (epoch 0).
    """

    def __init__(self, fault: str = "raise", fail_at: tuple[int, ...] = (), dropout: float = 0.0) -> None:
        super().__init__(optimizer="sgd", lr=0.2)
        self.net = nn.Sequential(
            nn.Linear(FEATURES, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(dropout), nn.Linear(8, 2)
        )
        self.fault, self.fail_at = fault, set(fail_at)
        self.masked_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if x.shape[0] <= BATCH or self.global_step // STEPS not in self.fail_at:
            return out
        self.masked_calls += 1
        torch.rand(3)  # a failing measurement that used the global RNG must still leave it as it was
        random.random()
        if self.fault == "raise":
            raise RuntimeError(f"forward exploded on a batch of {x.shape[0]}")
        if self.fault in ("nan", "inf"):
            return torch.full_like(out, float(self.fault))
        return out[:, :, None].expand(-1, -1, 3)  # (N, 2, 3): not logits of shape (N, C)


def loaders(shuffle: bool = False) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS * BATCH + 16, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    n = STEPS * BATCH
    return (
        DataLoader(TensorDataset(x[:n], y[:n]), batch_size=BATCH, shuffle=shuffle),
        DataLoader(TensorDataset(x[n:], y[n:]), batch_size=BATCH),
    )


def monitor(**kwargs: Any) -> InteractionMonitor:
    kwargs.setdefault("num_samples", 3)
    kwargs.setdefault("log_figures", False)
    return InteractionMonitor(FeatureMasker(num_features=FEATURES), **kwargs)


def make_trainer(root: Path, callbacks: list[Callback], **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = dict(
        max_epochs=EPOCHS,
        limit_train_batches=STEPS,
        logger=CSVLogger(str(root), name="csv", version=0),
        enable_checkpointing=True,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    return quiet_trainer(root, callbacks=callbacks, **{**options, **kwargs})


def fit_recording_warnings(trainer: pl.Trainer, model: pl.LightningModule, **kwargs: Any) -> list[str]:
    """Fit; return the messages of the warnings about measurements (the monitor's and the engine's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, *loaders(**kwargs))
    texts = [str(w.message) for w in caught]
    about = [t for t in texts if "compute_interactions" in t or "InteractionMonitor" in t]
    return [t for t in about if "over-fitting alert" not in t]


def replayed_tracker(history: list[dict[str, Any]], mon: InteractionMonitor) -> dict[str, Any]:
    """A fresh tracker fed the kept measurements (complexity, then losses), as the monitor's should be."""
    tracker = PhaseTracker(margin=mon.tracker.margin, patience=mon.tracker.patience, wait_for_losses=True)
    return replay_tracker(history, tracker).state_dict()


def assert_warning_says(message: str, epoch: int, cause: str) -> None:
    assert message.startswith(f"InteractionMonitor: the measurement at epoch {epoch} failed"), message
    assert cause in message, message
    assert "was skipped and training goes on" in message and 'on_error="raise"' in message, message
    assert message.endswith("not warned about again until the measurement succeeds"), message


# ---------------------------------------------------------------------------------------------
# on_error="warn": one warning per kind of failure in a row, training and checkpoints go on
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
def test_warn_skips_each_failing_measurement_and_training_goes_on(tmp_path: Path, fault: str) -> None:
    pl.seed_everything(0)
    mon = monitor()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=-1)
    trainer = make_trainer(tmp_path, [mon, checkpoints])
    model = Faulty(fault, fail_at=(0, 2))
    messages = fit_recording_warnings(trainer, model)

    assert model.masked_calls >= 2  # the fault did fire, at both epochs
    assert trainer.current_epoch == EPOCHS and trainer.global_step == EPOCHS * STEPS
    # One warning per failing measurement (epoch 1 succeeded in between), naming its epoch and cause.
    assert len(messages) == 2, messages
    cause = {"raise": "RuntimeError: forward exploded", "shape": "ValueError: log_odds expects logits"}
    expected = cause.get(fault, "no sample gave finite outputs")
    assert_warning_says(messages[0], 0, expected)
    assert_warning_says(messages[1], 2, expected)
    # The measurements that succeeded are recorded, in memory, on disk and in the checkpoints.
    assert [r["epoch"] for r in mon.history] == [1, 3]
    on_disk = read_history(Path(trainer.logger.log_dir) / HISTORY_FILENAME)
    assert [r["epoch"] for r in on_disk] == [1, 3]
    assert [r["strength"] for r in on_disk] == [r["strength"] for r in mon.history]
    assert mon.tracker.state_dict() == replayed_tracker(mon.history, mon)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt", "epoch=2-step=6.ckpt", "last.ckpt"]
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"][mon.state_key]
    assert [r["epoch"] for r in saved["history"]] == [1, 3]
    # The metrics of the last successful measurement stay for EarlyStopping / ModelCheckpoint.
    assert float(trainer.callback_metrics["interactions/complexity"]) == pytest.approx(
        mon.history[-1]["complexity"]
    )


def test_a_failure_in_the_middle_of_the_forward_passes_changes_nothing(tmp_path: Path) -> None:
    """Dropout, batch norm and a shuffled loader: a failing monitor leaves training bit-identical."""

    class Probe(Callback):
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def look(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            modes = [m.training for m in pl_module.modules()]
            rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
            self.seen.append((modes, rng, torch.is_inference_mode_enabled()))

        on_train_start = look

        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.look(trainer, pl_module)

    def train(with_monitor: bool, root: Path) -> tuple[Faulty, Any, list[Callback]]:
        pl.seed_everything(0)
        # The fault comes after a first forward pass of the measurement (the engine probes two masks).
        model = Faulty("raise", fail_at=(0, 1, 2, 3), dropout=0.3)
        callbacks = [Probe(), monitor(batch_size=16), Probe()] if with_monitor else []
        trainer = make_trainer(root, callbacks, logger=False, enable_checkpointing=False)
        trainer.fit(model, *loaders(shuffle=True))
        return model, (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()), callbacks

    plain, plain_rng, _ = train(False, tmp_path / "plain")
    with pytest.warns(MeasurementWarning) as record:
        watched, watched_rng, (before, mon, after) = train(True, tmp_path / "watched")
    # Every measurement failed the same way: one warning for the first, the rest quiet; at fit end
    # one note that nothing was measured, with that first failure.
    notes = [str(w.message) for w in record if issubclass(w.category, MeasurementWarning)]
    assert len(notes) == 2 and "no measurement succeeded" in notes[1]
    assert "forward exploded on a batch of" in notes[1]
    assert watched.masked_calls == EPOCHS + 1 and mon.history == []
    for name, value in plain.state_dict().items():  # parameters and batch-norm statistics
        assert torch.equal(value, watched.state_dict()[name]), name
    assert torch.equal(plain_rng[0], watched_rng[0])
    assert np.array_equal(plain_rng[1], watched_rng[1]) and plain_rng[2] == watched_rng[2]
    # Right around each failing measurement: the same modes, RNG states and inference mode.
    assert len(before.seen) == len(after.seen) == EPOCHS + 1
    for (modes_a, rng_a, inf_a), (modes_b, rng_b, inf_b) in zip(before.seen, after.seen):
        assert modes_a == modes_b and inf_a == inf_b
        assert torch.equal(rng_a[0], rng_b[0]) and np.array_equal(rng_a[1], rng_b[1]) and rng_a[2] == rng_b[2]
    assert before.seen[0][0][0] is True  # at fit start the module trains: the check is not vacuous


def test_a_failing_masker_is_skipped(tmp_path: Path) -> None:
    class BrokenMasker(FeatureMasker):
        broken = False

        def apply(self, inputs: torch.Tensor, players: Any, masks: torch.Tensor) -> torch.Tensor:
            if BrokenMasker.broken:
                raise IndexError("masker lost its players")
            return super().apply(inputs, players, masks)

    class BreakDuringEpoch(Callback):
        """The masker fails for the measurement after the second epoch only."""

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            BrokenMasker.broken = trainer.current_epoch == 1

    pl.seed_everything(0)
    mon = InteractionMonitor(BrokenMasker(num_features=FEATURES), num_samples=3, log_figures=False)
    trainer = make_trainer(tmp_path, [BreakDuringEpoch(), mon], enable_checkpointing=False)
    messages = fit_recording_warnings(trainer, Faulty())
    assert len(messages) == 1
    assert_warning_says(messages[0], 2, "IndexError: masker lost its players")
    assert [r["epoch"] for r in mon.history] == [0, 1, 3]


@pytest.mark.parametrize("check_memory", [True, False])
def test_a_measurement_too_large_for_memory_is_a_failed_measurement(
    tmp_path: Path, monkeypatch, check_memory: bool
) -> None:
    # The device seems to have 1 KiB: every measurement is refused before it runs, unless the
    # monitor was told not to check.
    monkeypatch.setattr(setup_checks, "available_memory", lambda device: 1024)
    pl.seed_everything(0)
    mon = monitor(check_memory=check_memory)
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    model = Faulty()
    messages = fit_recording_warnings(trainer, model)
    assert trainer.current_epoch == EPOCHS
    if check_memory:
        # Refused the same way at every epoch: said once, and once more at fit end that nothing
        # was measured.
        assert len(messages) == 2, messages
        assert_warning_says(messages[0], 0, "MeasurementMemoryError: this measurement needs about")
        assert "no measurement succeeded" in messages[1] and "MeasurementMemoryError" in messages[1]
        assert mon.history == []
    else:
        assert messages == []
        assert [r["epoch"] for r in mon.history] == list(range(EPOCHS + 1))


def test_a_run_that_measured_nothing_says_so_at_fit_end_and_in_its_report(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon = monitor()
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    # Every measurement fails after the fit-start probe (two inputs) passed.
    messages = fit_recording_warnings(trainer, Faulty("raise", fail_at=tuple(range(EPOCHS + 1))))
    assert trainer.current_epoch == EPOCHS and mon.history == []
    assert "no measurement succeeded" in messages[-1] and "forward exploded" in messages[-1]
    history = next(tmp_path.rglob(HISTORY_FILENAME))
    assert read_history(history) == []
    with pytest.raises(
        OfflineError, match="every measurement of the run failed. The first error: .*forward exploded"
    ):
        report_run(tmp_path)


def test_a_failing_record_leaves_the_tracker_as_it_was(tmp_path: Path, monkeypatch) -> None:
    """The record's last step fails after the phase tracker has been updated: the update is undone."""
    real = record_module.signed_strength
    calls = []

    def flaky(I_and: torch.Tensor, I_or: torch.Tensor) -> Any:
        calls.append(1)
        if len(calls) in (2, 3):  # the measurements of epochs 1 and 2
            raise FloatingPointError("signed strength overflowed")
        return real(I_and, I_or)

    monkeypatch.setattr(record_module, "signed_strength", flaky)
    pl.seed_everything(0)
    mon = monitor(alert_patience=1)
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    messages = fit_recording_warnings(trainer, Faulty())
    assert len(messages) == 1  # epochs 1 and 2 failed the same way in a row: said once
    assert_warning_says(messages[0], 1, "FloatingPointError: signed strength overflowed")
    assert [r["epoch"] for r in mon.history] == [0, 3]
    assert mon.tracker.state_dict() == replayed_tracker(mon.history, mon)
    assert [r["epoch"] for r in read_history(Path(trainer.logger.log_dir) / HISTORY_FILENAME)] == [0, 3]


def test_a_repeated_failure_is_warned_once_until_a_measurement_succeeds(tmp_path: Path) -> None:
    """Epochs 0 and 1 fail the same way (quiet the second time), 2 succeeds, 3 fails: warned again."""
    pl.seed_everything(0)
    mon = monitor()
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    model = Faulty("raise", fail_at=(0, 1, 3))
    messages = fit_recording_warnings(trainer, model)
    assert model.masked_calls >= 3  # the fault fired at all three epochs
    assert len(messages) == 2, messages
    assert_warning_says(messages[0], 0, "RuntimeError: forward exploded on a batch of")
    assert_warning_says(messages[1], 3, "RuntimeError: forward exploded on a batch of")
    assert [r["epoch"] for r in mon.history] == [2]


class Unreadable(Faulty):
    """A model whose forward returns a dict with its logits under ``key``; its steps read ``self.net``."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def forward(self, x: torch.Tensor) -> Any:
        return {self.key: self.net(x), "features": x}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))


def test_a_model_output_without_logits_stops_the_fit_at_its_start_with_the_fix(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon = monitor()
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    model = Unreadable("scores")
    with pytest.raises(ValueError, match="InteractionMonitor cannot measure this model") as raised:
        trainer.fit(model, *loaders())
    message = str(raised.value)
    assert "TypeError: log_odds: found no logits in the model output" in message
    assert "a dict with keys 'scores', 'features'" in message
    assert "pass output=lambda out, targets: ..." in message
    assert trainer.global_step == 0 and mon.history == []
    # The two fixes: the logits under "logits", or an output function that finds them.
    for key, output in (("logits", "log_odds"), ("scores", lambda out, targets: out["scores"][:, 1])):
        pl.seed_everything(0)
        mon = monitor(output=output)
        trainer = make_trainer(tmp_path / key, [mon], enable_checkpointing=False)
        assert fit_recording_warnings(trainer, Unreadable(key)) == []
        assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3]


def test_the_fault_policy_repeats_a_new_kind_and_raise_always_raises() -> None:
    trainer = type("Trainer", (), {"global_rank": 0, "world_size": 1})()
    policy = FaultPolicy("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy.report(trainer, 0, error=RuntimeError("out of range at index 3"))
        policy.report(trainer, 1, error=RuntimeError("out of range at index 17"))  # numbers differ only
        policy.report(trainer, 2, error=ValueError("out of range at index 17"))  # another type
        policy.report(trainer, 3, problem="no sample gave finite outputs")  # another message
        policy.report(trainer, 4, error=RuntimeError("x"), what="writing or logging the measurement")
        policy.succeeded()  # resets the measurement's memory, not the logging's
        policy.report(trainer, 5, problem="no sample gave finite outputs")
        policy.report(trainer, 6, error=RuntimeError("x"), what="writing or logging the measurement")
    epochs = [int(re.search(r"at epoch (\d+)", str(w.message)).group(1)) for w in caught]
    assert epochs == [0, 2, 3, 4, 5]
    raising = FaultPolicy("raise")
    for epoch in (0, 1):
        with pytest.raises(MeasurementError, match=f"at epoch {epoch} failed with RuntimeError: x"):
            raising.report(trainer, epoch, error=RuntimeError("x"))


class FailingLogger(CSVLogger):
    """A logger that cannot take the monitor's metrics (a full disk, a lost connection)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if any(name.startswith("interactions/") for name in metrics):
            raise OSError("no space left on device")
        super().log_metrics(metrics, step)


def test_a_failing_logger_keeps_the_measurements(tmp_path: Path) -> None:
    pl.seed_everything(0)
    mon = monitor()
    logger = FailingLogger(str(tmp_path), name="csv", version=0)
    trainer = make_trainer(tmp_path, [mon], logger=logger, enable_checkpointing=False)
    messages = fit_recording_warnings(trainer, Faulty())
    # The logger fails the same way at every measurement: said once, at the first.
    assert len(messages) == 1, messages
    start = "InteractionMonitor: writing or logging the measurement at epoch 0 failed with OSError"
    assert messages[0].startswith(start), messages[0]
    assert "kept in the monitor's history and checkpoints" in messages[0]
    assert messages[0].endswith("until writing or logging the measurement succeeds"), messages[0]
    assert trainer.current_epoch == EPOCHS
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3]
    # The history file is written before the loggers are called: it has every measurement, with losses.
    on_disk = read_history(Path(logger.log_dir) / HISTORY_FILENAME)
    assert [r["epoch"] for r in on_disk] == [0, 1, 2, 3]
    assert all(r["train_loss"] is not None for r in on_disk[1:])


def test_a_history_file_that_cannot_be_written_keeps_the_measurements_in_memory(
    tmp_path: Path, monkeypatch
) -> None:
    real = run_log_module.append_record

    def refuse_epoch_1(path: Any, record: dict[str, Any]) -> None:
        if record["epoch"] == 1 and record.get("record") is None:
            raise PermissionError("read-only file system")
        real(path, record)

    monkeypatch.setattr(run_log_module, "append_record", refuse_epoch_1)
    pl.seed_everything(0)
    mon = monitor()
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    messages = fit_recording_warnings(trainer, Faulty())
    assert len(messages) == 1 and "PermissionError: read-only file system" in messages[0]
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3]
    assert [r["epoch"] for r in read_history(Path(trainer.logger.log_dir) / HISTORY_FILENAME)] == [0, 2, 3]


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_a_failing_replay_at_fit_end(tmp_path: Path, monkeypatch, on_error: str) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("replay divided by zero")

    monkeypatch.setattr(run_log_module, "replay_run", broken)
    pl.seed_everything(0)
    mon = monitor(on_error=on_error)
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    start = "InteractionMonitor: the replay and summary of the run at epoch 3 failed with ZeroDivisionError"
    if on_error == "raise":
        with pytest.raises(MeasurementError, match=start):
            trainer.fit(Faulty(), *loaders())
        return
    messages = fit_recording_warnings(trainer, Faulty())
    assert len(messages) == 1 and messages[0].startswith(start), messages
    assert "the history is complete without them" in messages[0]
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3]


def test_the_models_own_warnings_pass_as_they_are(tmp_path: Path) -> None:
    class Chatty(Faulty):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > BATCH:
                warnings.warn("chatty model saw a big batch", UserWarning, stacklevel=1)
            return super().forward(x)

    pl.seed_everything(0)
    mon = monitor(batch_size=16)  # several chunks, so several warnings, at each of the 4 measurements
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's usual: once per location
        trainer.fit(Chatty(), *loaders())
    chatty = [w for w in caught if "chatty model" in str(w.message)]
    # Python's registry of shown warnings is reset by every warnings.catch_warnings, so "once" holds
    # per measurement at best; the warning keeps its category and where it came from.
    assert 1 <= len(chatty) <= EPOCHS + 1
    assert all(w.filename == __file__ and w.category is UserWarning for w in chatty)
    assert [r["epoch"] for r in mon.history] == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# on_error="raise": the run stops with the epoch and the cause
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
def test_raise_stops_the_run_with_a_clear_message(tmp_path: Path, fault: str) -> None:
    pl.seed_everything(0)
    mon = monitor(on_error="raise")
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    with pytest.raises(
        MeasurementError, match="^InteractionMonitor: the measurement at epoch 1 failed"
    ) as info:
        trainer.fit(Faulty(fault, fail_at=(1,)), *loaders())
    cause = CAUSES[fault]
    if cause is None:
        assert info.value.__cause__ is None and "no sample gave finite outputs" in str(info.value)
    else:
        assert isinstance(info.value.__cause__, cause)
        assert f"{cause.__name__}: {info.value.__cause__}" in str(info.value)
    assert [r["epoch"] for r in mon.history] == [0]
    assert trainer.global_step == STEPS  # stopped right after the first epoch's validation


def test_raise_on_a_failing_logger(tmp_path: Path) -> None:
    pl.seed_everything(0)
    logger = FailingLogger(str(tmp_path), name="csv", version=0)
    trainer = make_trainer(tmp_path, [monitor(on_error="raise")], logger=logger, enable_checkpointing=False)
    with pytest.raises(MeasurementError, match="logging the measurement at epoch 0 failed with OSError"):
        trainer.fit(Faulty(), *loaders())


def test_on_error_is_validated() -> None:
    with pytest.raises(ValueError, match=r"on_error must be one of \('warn', 'raise'\), got 'ignore'"):
        monitor(on_error="ignore")


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    [
        ("output", "log-odd", ValueError, "unknown output 'log-odd'"),
        ("output", 3, TypeError, "output must be a name or a callable"),
        ("tol", 0.0, ValueError, "tol must be a finite number > 0"),
        ("tol", float("nan"), ValueError, "tol must be a finite number > 0"),
        ("q_ratio", -0.1, ValueError, "q_ratio must be a finite number >= 0"),
        ("batch_size", 0, ValueError, "batch_size must be an int >= 1"),
        ("batch_size", 2.5, ValueError, "batch_size must be an int >= 1"),
        ("num_samples", 0, ValueError, "num_samples must be an integer >= 1"),
        ("every_n_epochs", True, ValueError, "every_n_epochs must be an integer >= 1"),
        ("prediction", "posterior", ValueError, "prediction must be one of"),
        ("alert_margin", -1, ValueError, "margin must be a finite number >= 0"),
        ("alert_patience", 0, ValueError, "patience must be an integer >= 1"),
        ("alert_gap_rise", -0.5, ValueError, "gap_rise must be a finite number >= 0"),
        ("alert_gap_rise", "5%", ValueError, "gap_rise must be a finite number >= 0"),
        ("log_prefix", "", ValueError, "log_prefix must be a non-empty string"),
        ("seed", 1.5, TypeError, "seed must be an integer"),
        ("stop_on_alert", "yes", TypeError, "stop_on_alert must be True or False"),
        ("log_figures", None, TypeError, "log_figures must be True or False"),
        ("check_memory", 1, TypeError, "check_memory must be True or False"),
        ("batch_split", "x", TypeError, "batch_split must be a callable"),
        (
            "samples",
            [1, 2, 3],
            ValueError,
            "samples must be inputs (a tensor or a dict of tensors) or a pair",
        ),
        ("samples", torch.zeros(2, 5), ValueError, "features"),  # the masker does not fit them
    ],
)
def test_every_argument_is_checked_at_construction(
    argument: str, value: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        InteractionMonitor(FeatureMasker(num_features=4), **{argument: value})


def test_arguments_after_the_masker_are_keyword_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        InteractionMonitor(FeatureMasker(num_features=4), 8)  # type: ignore[misc]


def test_configuration_errors_are_raised_before_training_even_with_warn(tmp_path: Path) -> None:
    features = 5  # the masker expects 5 features, the data has 4
    mon = InteractionMonitor(FeatureMasker(num_features=features), num_samples=2, on_error="warn")
    trainer = make_trainer(tmp_path, [mon], enable_checkpointing=False)
    x = torch.randn(16, 4)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=BATCH)
    with pytest.raises(ValueError, match="features"):
        trainer.fit(Faulty(), data, data)
    assert trainer.global_step == 0 and mon.history == []


# ---------------------------------------------------------------------------------------------
# DDP: a measurement that fails on one process only must not leave the others waiting
# ---------------------------------------------------------------------------------------------

DDP_SCRIPT = '''
"""Two CPU processes (gloo); the model raises on rank 1's masked batches at measurement epoch 1."""
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions import FeatureMasker, InteractionMonitor


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        if x.shape[0] > 8 and self.global_rank == 1 and self.global_step == 2:
            raise RuntimeError("rank 1 alone exploded")
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2)


if __name__ == "__main__":
    root, on_error = Path(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(1)
    pl.seed_everything(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    monitor = InteractionMonitor(FeatureMasker(num_features=4), num_samples=4, on_error=on_error)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, limit_train_batches=2,
        logger=CSVLogger(str(root), name="csv", version=0), callbacks=[monitor],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(root), num_sanity_val_steps=0,
    )
    trainer.fit(Net(), DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),
                DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8))
    (root / f"history_rank{trainer.global_rank}.txt").write_text(str([r["epoch"] for r in monitor.history]))
'''


def launch_ddp(tmp_path: Path, on_error: str) -> tuple[int, str]:
    """Run the DDP script in its own process group; kill the group if it hangs (the failure checked)."""
    script = tmp_path / "ddp_faults_script.py"
    script.write_text(DDP_SCRIPT)
    env = distributed_free_env(PYTHONPATH=str(REPO), MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    command = [sys.executable, str(script), str(tmp_path), on_error]
    return run_in_own_group(command, tmp_path, env, tmp_path / "ddp.log", DDP_TIMEOUT_S)


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_ddp_failure_on_one_rank(tmp_path: Path, on_error: str) -> None:
    code, log = launch_ddp(tmp_path, on_error)
    start = "InteractionMonitor: the measurement at epoch 1 failed"
    if on_error == "warn":
        assert code == 0, log[-4000:]
        # One warning, from the process that knows the cause; both processes skipped that epoch.
        assert log.count(start) == 1, log[-4000:]
        assert (
            f"{start} on rank 1 with RuntimeError: rank 1 alone exploded; the measurement was skipped" in log
        )
        for rank in (0, 1):
            assert (tmp_path / f"history_rank{rank}.txt").read_text() == "[0, 2]"
    else:
        # Both processes stop (none waits for the other): rank 1 with the cause, rank 0 naming rank 1.
        assert code != 0
        assert f"MeasurementError: {start} on rank 1 with RuntimeError: rank 1 alone exploded" in log, log[
            -4000:
        ]
        assert f"MeasurementError: {start} on rank 1 (that process reports the cause)" in log, log[-4000:]
