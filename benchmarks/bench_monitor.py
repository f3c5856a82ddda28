"""Benchmark: the InteractionMonitor's wall time per measurement against the bare forward passes.

A measurement of the monitor runs the model on all ``2^n`` masked versions of each of its
samples, extracts the AND-OR interactions, fits the two-phase theory and logs scalars, figures
and its history file. Nothing can be faster than the forward passes themselves: the *floor* is
the same model on the same masked inputs, built beforehand, in the same chunks of
``batch_size`` (1024) inputs, with the same output function (log-odds of the target class),
under ``torch.inference_mode()`` in eval mode. Its outputs are checked to equal the monitor's.

Two cases, each trained by a Lightning ``Trainer`` (TensorBoard logger, no progress bar) with
the monitor among its callbacks:

* ``digits MLP``: the demo (``lightning_interactions.demos.demo``): MLP 64-256-256-10 on 300 noisy
  8x8 digits, the monitor as the demo builds it (2x2 patches, 8 players, 16 samples, q 0.04);
* ``CNN 3x32x32``: a convolutional network of about 2 M parameters on synthetic 3x32x32
  images (class templates plus noise, no download), ``PatchMasker(8, num_players=10)`` and
  the monitor's defaults otherwise (16 samples, chunks of 1024).

Inside the ``Trainer``, a callback re-runs the monitor's own measurement
(``InteractionMonitor.measure``, exactly what its hooks call) and the floor, repetitions
interleaved and the monitor's state restored after each, once on the untrained model (epoch
0, before the first training epoch) and once on the briefly trained one (after the last
epoch); times are medians. Timers wrapped around the monitor's parts (its masker, forward
hooks on the model, the engine's own stage timings, the record, the loggers and the history
files) break each measurement down. Finally it times training epochs with and without the
monitor (same model, data and seeds) and prints their ratio.

Targets (issues 6 and 14): the monitor at most 1.5x (trained) and 3x (untrained) the floor per
measurement for the CNN at its defaults (PASS / FAIL, exit status 0 / 1); for the MLP only the ratio.

Run:
    .venv/bin/python benchmarks/bench_monitor.py               # 1 thread; 6-8 min on the shared 2-CPU box
    .venv/bin/python benchmarks/bench_monitor.py --quick       # 13-25 s there (the CNN on 1 sample)
    .venv/bin/python benchmarks/bench_monitor.py --threads 2 [--repeats 5] [--only cnn] [--profile 25]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import functools
import io
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402

import lightning_interactions.analysis.record as record_module  # noqa: E402
import lightning_interactions.callbacks.measurement as measurement_module  # noqa: E402
import lightning_interactions.callbacks.publishing as publishing_module  # noqa: E402
import lightning_interactions.callbacks.run_log as run_log_module  # noqa: E402
from lightning_interactions import demos as demo  # noqa: E402
from lightning_interactions.callbacks.monitor import InteractionMonitor  # noqa: E402
from lightning_interactions.engine.outputs import resolve_output  # noqa: E402
from lightning_interactions.masking import PatchMasker  # noqa: E402

# Issue 6 (trained) and issue 14 (untrained: a dense optimum, solved through the row-space dual).
TARGET_RATIO = {"untrained": 3.0, "trained": 1.5}
BATCH_SIZE = 1024  # the monitor's default chunk of masked inputs
NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------------
# Models and data
# ---------------------------------------------------------------------------------------------


class Classifier(pl.LightningModule):
    """A network with cross-entropy and Adam; logs ``train_loss`` and ``val_loss`` per epoch."""

    def __init__(self, net: nn.Module, lr: float = 1e-3) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("val_loss", loss, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def cnn_32x32() -> nn.Module:
    """Three conv-BN-ReLU-pool blocks (16, 32, 64 channels) and a 2048-wide head: about 2.1 M parameters.

    Most parameters sit in the head, which keeps the forward cost per image low enough for 16
    measured samples (16,384 forward passes) on one CPU thread.
    """
    layers: list[nn.Module] = []
    channels = 3
    for width in (16, 32, 64):
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    layers += [nn.Flatten(), nn.Linear(channels * 4 * 4, 2048), nn.ReLU(), nn.Linear(2048, NUM_CLASSES)]
    return nn.Sequential(*layers)


def synthetic_images(count: int, seed: int) -> tuple[Tensor, Tensor]:
    """``count`` 3x32x32 images in [0, 1]: a smooth template per class (seed 0) plus uniform noise."""
    templates = torch.rand(NUM_CLASSES, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    templates = nn.functional.interpolate(templates, size=(32, 32), mode="bilinear", align_corners=False)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NUM_CLASSES, (count,), generator=generator)
    noise = torch.rand(count, 3, 32, 32, generator=generator)
    return 0.6 * templates[labels] + 0.4 * noise, labels


@dataclass
class Case:
    """One benchmarked setting: how to build the module, the loaders and the monitor."""

    name: str
    description: str
    module: Callable[[], pl.LightningModule]
    loaders: Callable[[], tuple[DataLoader, DataLoader]]
    monitor: Callable[[], InteractionMonitor]
    epochs: int
    target: bool  # whether the 1.5x target applies


def digits_case(epochs: int) -> Case:
    """The demo's model, data and monitor (``DemoSettings`` defaults)."""
    settings = demo.DemoSettings()
    data = demo.load_digits_split(settings.train_size, settings.val_size, settings.label_noise, settings.seed)

    def loaders() -> tuple[DataLoader, DataLoader]:
        generator = torch.Generator().manual_seed(settings.seed + 2)
        train = TensorDataset(data["x_train"], data["y_train"])
        val = TensorDataset(data["x_val"], data["y_val"])
        return (
            DataLoader(train, batch_size=settings.batch_size, shuffle=True, generator=generator),
            DataLoader(val, batch_size=256),
        )

    def monitor() -> InteractionMonitor:
        masker = PatchMasker(patch_size=settings.patch_size, num_players=settings.num_players)
        return InteractionMonitor(
            masker, num_samples=settings.num_samples, q_ratio=settings.q_ratio, seed=settings.seed
        )

    return Case(
        name="digits MLP",
        description=(
            f"demo MLP 64-{settings.hidden}-{settings.hidden}-10, {settings.train_size} noisy digits "
            f"(batch {settings.batch_size}), {settings.num_players} players "
            f"({settings.patch_size}x{settings.patch_size} patches), {settings.num_samples} samples"
        ),
        module=lambda: demo.DigitsClassifier(hidden=settings.hidden, optimizer="adam", lr=settings.lr),
        loaders=loaders,
        monitor=monitor,
        epochs=epochs,
        target=False,
    )


def cnn_case(epochs: int, num_samples: int, train_size: int, val_size: int) -> Case:
    """The CNN on synthetic 3x32x32 images with 10 patch players and the monitor's defaults."""
    x_train, y_train = synthetic_images(train_size, seed=1)
    x_val, y_val = synthetic_images(val_size, seed=2)

    def loaders() -> tuple[DataLoader, DataLoader]:
        generator = torch.Generator().manual_seed(2)
        return (
            DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, generator=generator),
            DataLoader(TensorDataset(x_val, y_val), batch_size=256),
        )

    return Case(
        name="CNN 3x32x32",
        description=(
            f"CNN 3x32x32 ({sum(p.numel() for p in cnn_32x32().parameters()):,} parameters), {train_size} "
            f"synthetic images (batch 64), 10 players (8x8 patches), {num_samples} samples"
        ),
        module=lambda: Classifier(cnn_32x32()),
        loaders=loaders,
        monitor=lambda: InteractionMonitor(
            PatchMasker(patch_size=8, num_players=10), num_samples=num_samples
        ),
        epochs=epochs,
        target=True,
    )


# ---------------------------------------------------------------------------------------------
# Timers around the monitor's parts
# ---------------------------------------------------------------------------------------------


class Probe:
    """Wraps the monitor's parts in timers that count only during a timed measurement.

    ``calls`` gets one dict per ``measure`` call: ``total`` and the seconds of every part.
    """

    def __init__(self) -> None:
        self.active = False
        self.parts: dict[str, float] = defaultdict(float)
        self.calls: list[dict[str, Any]] = []
        self.last_v: Tensor | None = None
        self._undo: list[Callable[[], None]] = []
        self._forward_start = 0.0
        self.source = "hook"  # who called the measurement: "hook" (the monitor itself) or the bench

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        # functools.wraps keeps the signature visible (the engine looks for apply's ``out=``).
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return fn(*args, **kwargs)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.parts[name] += time.perf_counter() - start

        return wrapper

    def patch(self, owner: Any, attr: str, replacement: Callable[..., Any]) -> None:
        own = attr in vars(owner)
        original = vars(owner)[attr] if own else None
        setattr(owner, attr, replacement)
        self._undo.append(lambda: setattr(owner, attr, original) if own else delattr(owner, attr))

    def install(self, monitor: InteractionMonitor, trainer: pl.Trainer, module: nn.Module) -> None:
        """Wrap everything a measurement calls; ``remove`` undoes it."""
        measure = monitor.measure

        @functools.wraps(measure)
        def timed_measure(trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
            self.parts, self.active = defaultdict(float), True
            start = time.perf_counter()
            try:
                measure(trainer, pl_module, epoch)
            finally:
                self.active = False
                record = monitor.history[-1] if monitor.history else {}
                self.calls.append(
                    {
                        "source": self.source,
                        "epoch": epoch,
                        "total": time.perf_counter() - start,
                        "record_seconds": record.get("seconds", float("nan")),
                        **self.parts,
                    }
                )

        compute = measurement_module.compute_interactions

        @functools.wraps(compute)
        def timed_compute(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = compute(*args, **kwargs)
            if self.active:
                self.parts["compute_interactions"] += time.perf_counter() - start
                self.parts["engine_forward_s"] += result.timings["forward_s"]
                self.parts["engine_extraction_s"] += result.timings["extraction_s"]
                self.last_v = result.v.detach().clone()
            return result

        self.patch(monitor, "measure", timed_measure)
        self.patch(measurement_module, "compute_interactions", timed_compute)
        self.patch(monitor.masker, "apply", self.timed("masking", monitor.masker.apply))
        self.patch(measurement_module, "build_record", self.timed("record", measurement_module.build_record))
        fit_noise = record_module.noise_fit_fields
        self.patch(record_module, "noise_fit_fields", self.timed("theory_fit", fit_noise))
        publish = run_log_module.publish_measurement
        self.patch(run_log_module, "publish_measurement", self.timed("log", publish))
        self.patch(run_log_module, "append_record", self.timed("history", run_log_module.append_record))
        self.patch(run_log_module, "save_reference", self.timed("history", run_log_module.save_reference))
        for name in ("figure_measured_vs_predicted", "figure_shape_heatmap"):
            self.patch(publishing_module, name, self.timed("figure_build", getattr(publishing_module, name)))
        for logger in trainer.loggers:
            self.patch(logger, "log_metrics", self.timed("scalars", logger.log_metrics))
        for writer in [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]:
            self.patch(writer, "add_figure", self.timed("figure_write", writer.add_figure))
            self.patch(writer, "add_custom_scalars", self.timed("scalars", writer.add_custom_scalars))
            self.patch(writer, "flush", self.timed("flush", writer.flush))
        handles = [
            module.register_forward_pre_hook(lambda *_: self._start_forward()),
            module.register_forward_hook(lambda *_: self._end_forward()),
        ]
        self._undo.extend(handle.remove for handle in handles)

    def _start_forward(self) -> None:
        self._forward_start = time.perf_counter()

    def _end_forward(self) -> None:
        if self.active:
            self.parts["model_forward"] += time.perf_counter() - self._forward_start

    def remove(self) -> None:
        while self._undo:
            self._undo.pop()()


def breakdown(call: dict[str, Any]) -> dict[str, float]:
    """Exclusive parts of one measurement, in seconds; they add up to its total."""
    get = call.get
    masking, forward = get("masking", 0.0), get("model_forward", 0.0)
    parts = {
        "masking (masker.apply)": masking,
        "model forward": forward,
        "engine rest (output fn, checks, copies)": get("engine_forward_s", 0.0) - masking - forward,
        "extraction (+ per-sample strength)": get("engine_extraction_s", 0.0),
        "strength + theory fit (build_record)": get("record", 0.0),
        "TB scalars": get("scalars", 0.0),
        "figures (build + render/write)": get("figure_build", 0.0) + get("figure_write", 0.0),
        "TB flush": get("flush", 0.0),
        "history files (jsonl + .pt)": get("history", 0.0),
    }
    parts["other (gather, RNG, metrics dict)"] = call["total"] - sum(parts.values())
    return parts


# ---------------------------------------------------------------------------------------------
# The floor: bare forward passes of the same masked inputs
# ---------------------------------------------------------------------------------------------


def floor_chunks(samples: int, num_masks: int) -> list[tuple[int, int, int, int]]:
    """Chunks of at most ``BATCH_SIZE`` inputs: whole samples when their masks fit, else mask ranges."""
    if num_masks <= BATCH_SIZE:
        step = BATCH_SIZE // num_masks
        return [(s, min(s + step, samples), 0, num_masks) for s in range(0, samples, step)]
    return [
        (s, s + 1, m, min(m + BATCH_SIZE, num_masks))
        for s in range(samples)
        for m in range(0, num_masks, BATCH_SIZE)
    ]


def build_floor(monitor: InteractionMonitor, module: nn.Module) -> Callable[[], Tensor]:
    """A function running the bare forward passes on the monitor's masked inputs, built here once."""
    assert monitor.samples is not None and monitor.samples.targets is not None
    inputs, targets, players = monitor.samples.inputs, monitor.samples.targets, monitor.samples.players
    samples, num_masks = inputs.shape[0], 2**monitor.masker.num_players
    masks = torch.arange(num_masks)
    output_fn = resolve_output(monitor.output)
    prebuilt = []
    with torch.inference_mode():
        for s0, s1, m0, m1 in floor_chunks(samples, num_masks):
            rows = {key: value[s0:s1] for key, value in players.items()}
            masked = monitor.masker.apply(inputs[s0:s1], rows, masks[m0:m1]).flatten(0, 1)
            chunk_targets = targets[s0:s1].repeat_interleave(m1 - m0)
            prebuilt.append((s0, s1, m0, m1, masked.contiguous(), chunk_targets))

    def floor() -> Tensor:
        v = torch.empty(samples, num_masks, dtype=torch.float64)
        flags = [m.training for m in module.modules()]
        module.eval()
        try:
            with torch.inference_mode():
                for s0, s1, m0, m1, masked, chunk_targets in prebuilt:
                    values = output_fn(module(masked), chunk_targets)
                    v[s0:s1, m0:m1] = values.double().reshape(s1 - s0, m1 - m0)
        finally:
            for m, flag in zip(module.modules(), flags):
                m.training = flag
        return v

    return floor


# ---------------------------------------------------------------------------------------------
# The callbacks that time things inside the Trainer
# ---------------------------------------------------------------------------------------------


def snapshot(monitor: InteractionMonitor) -> dict[str, Any]:
    """What a measurement changes in the monitor (history, phase tracker, reference): its state."""
    return copy.deepcopy(monitor.state_dict())


def restore(monitor: InteractionMonitor, state: dict[str, Any]) -> None:
    """Put back the history, tracker and reference of ``state``; the samples stay (they never change)."""
    samples = {key: monitor.state_dict()[key] for key in ("inputs", "targets", "players")}
    monitor.load_state_dict({**copy.deepcopy(state), **samples})


def _check_recorded(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Fail loudly if a timed measurement was skipped (the monitor only warns) instead of recorded."""
    if len(after["history"]) != len(before["history"]) + 1:
        raise AssertionError("the monitor skipped a timed measurement (see its warning): nothing to time")


@dataclass
class Repeats:
    """Interleaved timings of one setting (untrained or trained)."""

    label: str
    epoch: int
    floor: list[float] = field(default_factory=list)
    monitor: list[float] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    max_abs_diff: float = float("nan")


class Bench(pl.Callback):
    """Placed before the monitor: times its measurement and the floor, untrained and trained.

    Each setting's monitor times are the measurement its own hook made (epoch 0 at train start,
    the last epoch after its validation) plus ``repeats[label]`` re-runs from the same state;
    the floor runs once more than that, alternating with them.
    """

    def __init__(self, monitor: InteractionMonitor, repeats: dict[str, int], profile: int) -> None:
        self.monitor, self.repeats, self.profile = monitor, repeats, profile
        self.probe = Probe()
        self.results: list[Repeats] = []
        self.profile_text = ""
        self._before_last: dict[str, Any] | None = None
        self._before_first: dict[str, Any] | None = None

    @property
    def natural(self) -> list[dict[str, Any]]:
        """The measurements the monitor's hooks made during training."""
        return [call for call in self.probe.calls if call["source"] == "hook"]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs before the monitor's own on_train_start (epoch 0), so that one is timed as well.
        self.probe.install(self.monitor, trainer, pl_module)
        self._before_first = snapshot(self.monitor)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 0 and self._before_first is not None:
            self._time("untrained", 0, self._before_first, trainer, pl_module)
            self._before_first = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == trainer.max_epochs:
            self._before_last = snapshot(self.monitor)  # the monitor measures right after this

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._before_last is not None:
            self._time("trained", trainer.max_epochs, self._before_last, trainer, pl_module)
            if self.profile:
                self._profile(trainer, pl_module, self._before_last)
        self.probe.remove()

    def _time(
        self, label: str, epoch: int, before: dict[str, Any], trainer: pl.Trainer, module: pl.LightningModule
    ) -> None:
        after = snapshot(self.monitor)
        hook_call = self.probe.calls[-1]  # the hook's own measurement of this epoch, just made
        assert hook_call["epoch"] == epoch and hook_call["source"] == "hook"
        _check_recorded(before, after)
        v_hook = self.probe.last_v
        result = Repeats(label, epoch, monitor=[hook_call["total"]], calls=[hook_call])
        floor = build_floor(self.monitor, module)
        floor()  # warm-up (the monitor, which has just measured, is warm too)
        result.floor.append(self._floor_time(floor))
        self.probe.source = "bench"
        for repeat in range(self.repeats[label]):
            # Alternate the order, so that neither side always follows the other.
            for side in ("monitor", "floor") if repeat % 2 == 0 else ("floor", "monitor"):
                if side == "floor":
                    result.floor.append(self._floor_time(floor))
                else:
                    restore(self.monitor, before)
                    self.monitor.measure(trainer, module, epoch)
                    _check_recorded(before, snapshot(self.monitor))
                    result.monitor.append(self.probe.calls[-1]["total"])
                    result.calls.append(self.probe.calls[-1])
        self.probe.source = "hook"
        v_floor = floor()
        for v in (v_hook, self.probe.last_v):
            assert v is not None
            diff = float((v - v_floor).abs().max())
            result.max_abs_diff = (
                diff if result.max_abs_diff != result.max_abs_diff else max(diff, result.max_abs_diff)
            )
            if not torch.allclose(v, v_floor, rtol=1e-5, atol=1e-5):
                raise AssertionError(f"the floor's outputs differ from the monitor's ({diff:.3g})")
        restore(self.monitor, after)
        self.results.append(result)

    @staticmethod
    def _floor_time(floor: Callable[[], Tensor]) -> float:
        start = time.perf_counter()
        floor()
        return time.perf_counter() - start

    def _profile(self, trainer: pl.Trainer, module: pl.LightningModule, before: dict[str, Any]) -> None:
        after = snapshot(self.monitor)
        restore(self.monitor, before)
        profiler = cProfile.Profile()
        self.probe.source = "bench"
        profiler.enable()
        self.monitor.measure(trainer, module, trainer.max_epochs)
        profiler.disable()
        self.probe.source = "hook"
        restore(self.monitor, after)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(self.profile)
        self.profile_text = text.getvalue()


class EpochTimer(pl.Callback):
    """Placed last: wall time from each training epoch's start to its end (validation included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def fit(case: Case, callbacks: list[pl.Callback], out: str, name: str) -> pl.LightningModule:
    """Train ``case`` for its epochs with ``callbacks`` (seeded: same weights and batches every time)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    pl.seed_everything(0, verbose=False)
    module = case.module()
    train, val = case.loaders()
    trainer = pl.Trainer(
        max_epochs=case.epochs,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(save_dir=out, name=name),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(module, train, val)
    return module


# ---------------------------------------------------------------------------------------------
# Running and printing
# ---------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f} ms"


def run_case(case: Case, repeats: dict[str, int], out: str, profile: int) -> bool:
    """Benchmark one case and print its table; returns whether it meets the target (True if none)."""
    print(f"== {case.name}: {case.description}; {case.epochs} training epoch(s) ==")
    without_before = EpochTimer()
    fit(case, [without_before], out, f"{case.name}-plain-1")
    monitor = case.monitor()
    bench, with_timer = Bench(monitor, repeats, profile), EpochTimer()
    module = fit(case, [bench, monitor, with_timer], out, f"{case.name}-monitor")
    without_after = EpochTimer()
    fit(case, [without_after], out, f"{case.name}-plain-2")

    num_masks = 2**monitor.masker.num_players
    assert monitor.samples is not None
    inputs = monitor.samples.inputs
    print(
        f"{inputs.shape[0]} samples x {num_masks} masks = {inputs.shape[0] * num_masks} masked inputs per "
        f"measurement, chunks of {BATCH_SIZE}; {sum(p.numel() for p in module.parameters()):,} parameters"
    )
    print(
        "medians of: the hook's own measurement + "
        + ", ".join(f"{count} re-run(s) {label}" for label, count in repeats.items())
        + ", interleaved with one floor run more"
    )
    header = f"{'per measurement':<42}" + "".join(
        f"{r.label + ' (epoch ' + str(r.epoch) + ')':>22}" for r in bench.results
    )
    print(header)
    medians = {r.label: (statistics.median(r.floor), statistics.median(r.monitor)) for r in bench.results}
    print(
        f"{'floor (bare forward passes + log-odds)':<42}"
        + "".join(f"{ms(f):>22}" for f, _ in medians.values())
    )
    print(
        f"{'monitor (InteractionMonitor.measure)':<42}" + "".join(f"{ms(m):>22}" for _, m in medians.values())
    )
    print(f"{'monitor / floor':<42}" + "".join(f"{m / f:>21.2f}x" for f, m in medians.values()))
    print(
        f"{'  fastest repeat: monitor / floor':<42}"
        + "".join(f"{min(r.monitor) / min(r.floor):>21.2f}x" for r in bench.results)
    )
    print(f"{'  max |v_monitor - v_floor|':<42}" + "".join(f"{r.max_abs_diff:>22.1e}" for r in bench.results))
    print("breakdown of the monitor's measurement (median over its runs of each part; share of its median):")
    parts_by_setting = []
    for r in bench.results:
        rows = [breakdown(call) for call in r.calls]
        parts_by_setting.append({key: statistics.median(row[key] for row in rows) for key in rows[0]})
    for key in parts_by_setting[0]:
        cells = "".join(
            f"{ms(parts[key]):>14} {parts[key] / medians[r.label][1]:6.1%}"
            for parts, r in zip(parts_by_setting, bench.results)
        )
        print(f"  {key:<40}{cells}")
    fits = [statistics.median(c.get("theory_fit", 0.0) for c in r.calls) for r in bench.results]
    label = "  of which theory fit (noise_fit_fields)"
    print(f"  {label:<40}" + "".join(f"{ms(f):>14} {'':6}" for f in fits))
    record = [statistics.median(c["record_seconds"] for c in r.calls) for r in bench.results]
    label = 'record["seconds"] (engine + gather)'
    print(f"  {label:<40}" + "".join(f"{ms(s):>14} {'':6}" for s in record))
    natural = ", ".join(f"epoch {c['epoch']} {c['total'] * 1e3:.0f} ms" for c in bench.natural)
    print(f"measurements during training (as the hooks ran them): {natural}")

    plain = without_before.seconds + without_after.seconds
    plain_median, with_median = statistics.median(plain), statistics.median(with_timer.seconds)
    print(
        f"training epoch (train + validation): without monitor {plain_median:.3f} s (median of {len(plain)}: "
        + ", ".join(f"{s:.3f}" for s in plain)
        + f"), with monitor {with_median:.3f} s (median of {len(with_timer.seconds)}: "
        + ", ".join(f"{s:.3f}" for s in with_timer.seconds)
        + f"); with / without = {with_median / plain_median:.2f}x"
    )
    ok = True
    if case.target:
        for label, (floor, monitor_time) in medians.items():
            passed = monitor_time / floor <= TARGET_RATIO[label]
            ok &= passed
            print(
                f"target ({label}): monitor <= {TARGET_RATIO[label]}x floor per measurement: "
                f"{monitor_time / floor:.2f}x -> {'PASS' if passed else 'FAIL'}"
            )
    if bench.profile_text:
        print(f"cProfile of one trained measurement (top {profile} by own time):")
        print(bench.profile_text.strip())
    print()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer CNN samples, epochs, repeats")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0: the machine's default settings)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="re-runs of the trained measurement (default 2, quick 1)"
    )
    parser.add_argument(
        "--untrained-repeats",
        type=int,
        default=None,
        help="re-runs of the untrained one (default: MLP as --repeats, CNN 0: one takes minutes)",
    )
    parser.add_argument("--only", choices=("mlp", "cnn"), default=None, help="run one case only")
    parser.add_argument("--profile", type=int, default=0, help="cProfile top N of a CNN measurement")
    parser.add_argument("--out", default=None, help="keep the TensorBoard logs here (default: a temp dir)")
    args = parser.parse_args(argv)

    if args.threads:  # 0 leaves the defaults, as users run
        torch.set_num_threads(args.threads)
    trained = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*over-fitting alert.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"load average {load} on {os.cpu_count()} CPUs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); float32 models on the CPU"
    )
    print()

    cases = []
    if args.only in (None, "mlp"):
        cases.append(digits_case(epochs=3 if args.quick else 10))
    if args.only in (None, "cnn"):
        if args.quick:
            cases.append(cnn_case(epochs=1, num_samples=1, train_size=256, val_size=128))
        else:
            cases.append(cnn_case(epochs=2, num_samples=16, train_size=2048, val_size=512))
    start, ok = time.perf_counter(), True
    with tempfile.TemporaryDirectory() as temp:
        for case in cases:
            untrained = args.untrained_repeats
            if untrained is None:
                untrained = 0 if case.target else trained
            repeats = {"untrained": untrained, "trained": trained}
            ok &= run_case(case, repeats, args.out or temp, args.profile if case.target else 0)
    if args.quick and args.only != "mlp":
        print("(--quick measures the CNN on 1 sample, not the default 16: its PASS/FAIL is indicative)")
    print(f"total wall time {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
