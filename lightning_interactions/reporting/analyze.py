"""``lightning-interactions analyze``: the interaction dynamics of a run trained without the monitor.

Every checkpoint is measured on the same samples and players, its record built as the monitor
builds it (:func:`~lightning_interactions.analysis.record.build_record`, prior-mode online fit,
the phase tracker's verdict), and the history, the last interactions and the report are written
as for a monitored run.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("epoch=000.pt", "epoch=2.ckpt", "epoch=10.ckpt", "notes.txt"):
    ...     (folder / name).touch()
    >>> [(epoch, path.name) for epoch, path in checkpoint_files(folder)]  # Lightning's .ckpt: epoch + 1
    [(0, 'epoch=000.pt'), (3, 'epoch=2.ckpt'), (11, 'epoch=10.ckpt')]
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    ONSET_FILENAME,
    REFERENCE_FILENAME,
    SAMPLES_FILENAME,
    append_record,
    save_reference,
    save_samples,
)
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record
from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.engine.samples import draw_samples
from lightning_interactions.plot.samples import sample_layout
from lightning_interactions.reporting.run_report import OfflineError, write_run_report

__all__ = [
    "Loader",
    "LossFn",
    "checkpoint_files",
    "history_from_checkpoints",
    "analyze_checkpoints",
    "module_loader",
    "samples_source",
]

Loader = Callable[[Path], nn.Module]
LossFn = Callable[[nn.Module], tuple[Optional[float], Optional[float]]]
_EPOCH = re.compile(r"epoch[=_-]?(\d+)")


def checkpoint_files(directory: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the ``.pt``/``.pth``/``.ckpt`` files in ``directory``, in epoch order.

    The epoch is read from ``epoch=N`` (or ``epoch_N``, ``epochN``) in the file name; files
    without one are numbered by their sorted position. Epochs count completed training epochs,
    as the monitor's do (0 is the untrained model): a Lightning checkpoint ``epoch=N.ckpt`` holds
    the weights after Lightning's epoch ``N`` (counted from 0), so it is epoch ``N + 1``; ``.pt``
    and ``.pth`` state dicts are taken as numbered (the demo saves ``epoch=000.pt`` untrained).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise OfflineError(f"{directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix in (".pt", ".pth", ".ckpt"))
    if not files:
        raise OfflineError(f"no checkpoint (.pt, .pth, .ckpt) in {directory}")
    numbered = []
    for index, path in enumerate(files):
        match = _EPOCH.search(path.stem)
        lightning = match is not None and path.suffix == ".ckpt"
        numbered.append(((int(match.group(1)) + lightning) if match else index, path))
    epochs = [e for e, _ in numbered]
    if len(set(epochs)) != len(epochs):
        raise OfflineError(f"two checkpoints in {directory} have the same epoch number")
    return sorted(numbered)


def history_from_checkpoints(
    checkpoints: Sequence[tuple[int, Path]],
    load: Loader,
    inputs: Tensor,
    targets: Tensor | None,
    masker: Any,
    *,
    output: str = "log_odds",
    q_ratio: float = 0.04,
    seed: int = 0,
    losses: LossFn | None = None,
    alert_margin: float = 0.05,
    alert_patience: int = 2,
    kept: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Measure every checkpoint on the same samples and players; returns the history and last interactions.

    ``kept``, if given, receives ``"onset"`` (the full interactions of the measurement of the
    smallest complexity, as the monitor saves them) and ``"players"``.
    """
    masker.validate(inputs)
    players = masker.select_players(inputs, seed=seed)
    tracker = PhaseTracker(margin=alert_margin, patience=alert_patience, wait_for_losses=losses is not None)
    history: list[dict[str, Any]] = []
    last: dict[str, Tensor] = {}
    kept = {} if kept is None else kept
    kept["players"] = players
    for epoch, path in checkpoints:
        begin = time.perf_counter()
        model = load(path)
        result = compute_interactions(
            model, inputs, targets, masker=masker, output=output, q_ratio=q_ratio, players=players
        )
        if result.num_samples == 0:
            raise OfflineError(f"no sample gave finite outputs for {path}")
        seconds = time.perf_counter() - begin
        record = build_record(epoch, result.I_and, result.I_or, result.gap, tracker, seconds=seconds)
        if losses is not None:
            record["train_loss"], record["val_loss"] = losses(model)
            tracker.add_losses(epoch, record["train_loss"], record["val_loss"])
        history.append(record)
        last = {"I_and": result.I_and, "I_or": result.I_or}
        if tracker.min_epoch == epoch:
            kept["onset"] = {"epoch": epoch, **last}
    return history, last


def module_loader(spec: str) -> Loader:
    """A loader for ``module.path:ClassName``: ``load_from_checkpoint`` for ``.ckpt``, else a state dict."""
    if ":" not in spec:
        raise OfflineError(f"--module must look like package.module:ClassName, got {spec!r}")
    module_name, class_name = spec.split(":", 1)
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise OfflineError(f"cannot import {spec}: {error}") from error

    def load(path: Path) -> nn.Module:
        if path.suffix == ".ckpt" and hasattr(cls, "load_from_checkpoint"):
            return cls.load_from_checkpoint(str(path), map_location="cpu").eval()
        model = cls()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, Mapping) else state)
        return model.eval()

    return load


def samples_source(path: Path, num_samples: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """Samples from a ``torch.save((inputs, targets))`` file (or inputs alone), drawn as the monitor does."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    inputs, targets = (loaded, None) if isinstance(loaded, Tensor) else (loaded[0], loaded[1])
    return draw_samples(inputs, targets, num_samples, seed)


def analyze_checkpoints(
    checkpoints_dir: Path,
    out: Path,
    load: Loader,
    inputs: Tensor,
    targets: Tensor | None,
    masker: Any,
    *,
    losses: LossFn | None = None,
    q_ratio: float = 0.04,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure every checkpoint in ``checkpoints_dir``; write the history, reference and report to ``out``."""
    checkpoints = checkpoint_files(checkpoints_dir)
    kept: dict[str, Any] = {}
    history, last = history_from_checkpoints(
        checkpoints, load, inputs, targets, masker, q_ratio=q_ratio, seed=seed, losses=losses, kept=kept
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history_path = out / HISTORY_FILENAME
    history_path.unlink(missing_ok=True)
    for record in history:
        append_record(history_path, record)
    save_reference(out / REFERENCE_FILENAME, history[-1]["epoch"], last["I_and"], last["I_or"])
    onset = kept["onset"]
    save_reference(out / ONSET_FILENAME, onset["epoch"], onset["I_and"], onset["I_or"])
    layout = sample_layout(masker, inputs)
    save_samples(out / SAMPLES_FILENAME, inputs, targets, kept["players"], layout)
    info = {"command": "analyze", "checkpoints": [str(p) for _, p in checkpoints], **(extra or {})}
    info["history_file"] = str(history_path)
    return write_run_report(history, last, out, extra=info)
