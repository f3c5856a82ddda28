"""After-the-fact reports: re-render a monitored run (``report``) or measure saved checkpoints (``analyze``).

Both end in :func:`write_run_report`, which the demo uses too: from a history (the monitor's
records) and, when known, the interactions of the last measurement, it replays the run in
reference mode (:func:`lightning_interactions.analysis.theory.replay`), draws the report PNG
(:func:`lightning_interactions.reporting.report.write_report_png`) and writes ``summary.md`` and
``summary.json``.

Example:
    >>> history = [{"epoch": e, "complexity": c, "shape": [0.5, 0.5], "num_players": 2}
    ...            for e, c in enumerate([1.6, 1.4, 1.5])]
    >>> run_numbers(history, None)["complexity_min_epoch"]
    1
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from lightning_interactions.reporting import report
from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    REFERENCE_FILENAME,
    append_record,
    load_reference,
    read_history,
    save_reference,
)
from lightning_interactions.analysis.theory import EpochFit, replay, shape_predictor

__all__ = [
    "REPORT_FILENAME",
    "OfflineError",
    "reference_beside",
    "find_history",
    "run_numbers",
    "write_run_report",
    "write_summary_json",
    "format_summary",
    "report_run",
    "checkpoint_files",
    "history_from_checkpoints",
]

REPORT_FILENAME = "interaction_report.png"
History = Sequence[Mapping[str, Any]]


class OfflineError(Exception):
    """A problem with the files given to ``report`` or ``analyze``."""


# ---------------------------------------------------------------------------------------------
# The reference interactions (the last measurement's), saved by the monitor next to the history
# ---------------------------------------------------------------------------------------------


def reference_beside(history_path: Path, last_epoch: int) -> tuple[dict[str, Tensor] | None, str]:
    """The interactions saved next to a history file if they are the last measurement's; and why not.

    Returns ``(reference or None, note)``.
    """
    path = Path(history_path).with_name(REFERENCE_FILENAME)
    if not path.is_file():
        return None, f"no {REFERENCE_FILENAME} next to the history"
    saved = load_reference(path)
    if int(saved.get("epoch", -1)) != int(last_epoch):
        return None, f"{path.name} holds epoch {saved.get('epoch')}, not the last measured epoch {last_epoch}"
    return {"I_and": saved["I_and"], "I_or": saved["I_or"]}, f"reference interactions from {path}"


# ---------------------------------------------------------------------------------------------
# Numbers of a run
# ---------------------------------------------------------------------------------------------


def _replay(
    history: History, reference: Mapping[str, Tensor]
) -> tuple[list[EpochFit], dict[int, list[float]]]:
    """Reference-mode fits of every record against ``reference``, and the predicted shapes."""
    records = [dict(record) for record in history]
    records[-1].update({"I_and": reference["I_and"], "I_or": reference["I_or"]})
    fits = replay(records, reference="last")
    predictor = shape_predictor("reference", reference=(reference["I_and"], reference["I_or"]))
    return fits, {fit.epoch: predictor(fit.s).tolist() for fit in fits}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _first_min(history: History, key: Callable[[Mapping[str, Any]], float | None]) -> int | None:
    rows = [(int(r["epoch"]), key(r)) for r in history]
    rows = [(e, v) for e, v in rows if v is not None and math.isfinite(v)]
    return min(rows, key=lambda row: row[1])[0] if rows else None


def _high_order_share(record: Mapping[str, Any]) -> float:
    """Share of strength in the orders ``k >= 3``."""
    return float(sum(record["shape"][2:]))


def _phase2_error(
    fits: Sequence[EpochFit], onset: int | None
) -> tuple[float | None, float | None]:
    """Mean replay fit error over phase 2 (epochs >= onset) and over all epochs, reference left out."""
    others = list(fits[:-1])
    phase2 = None if onset is None else _mean([f.error for f in others if f.epoch >= onset])
    return phase2, _mean([f.error for f in others])


def _val_loss(record: Mapping[str, Any]) -> float | None:
    value = record.get("val_loss")
    return None if value is None else float(value)


def run_numbers(history: History, reference: Mapping[str, Tensor] | None) -> dict[str, Any]:
    """The measured numbers of a run: epochs of the alert, complexity and loss-gap minima, fit errors."""
    if not history:
        raise OfflineError("the history is empty: nothing to report")
    alert, onset = report.alert_epochs(history)
    complexity_min = _first_min(history, lambda r: float(r["complexity"]))
    gap_min = report.loss_gap_minimum(history)
    numbers: dict[str, Any] = {
        "num_measurements": len(history),
        "epochs": [int(r["epoch"]) for r in history],
        "num_players": history[-1].get("num_players"),
        "alert_epoch": alert,
        "onset_epoch": onset,
        "complexity_min_epoch": complexity_min,
        "loss_gap_min_epoch": gap_min,
        "val_loss_min_epoch": _first_min(history, _val_loss),
        "alert_minus_loss_gap_min": None if alert is None or gap_min is None else alert - gap_min,
        "onset_minus_loss_gap_min": None if onset is None or gap_min is None else onset - gap_min,
        "complexity": {int(r["epoch"]): float(r["complexity"]) for r in history},
        "high_order_share": {int(r["epoch"]): _high_order_share(r) for r in history},
        "shape": {int(r["epoch"]): list(r["shape"]) for r in history},
        "train_loss": {int(r["epoch"]): r.get("train_loss") for r in history},
        "val_loss": {int(r["epoch"]): r.get("val_loss") for r in history},
        "max_gap": max((float(r["max_gap"]) for r in history if r.get("max_gap") is not None), default=None),
    }
    numbers.update(_theory_numbers(history, reference, onset))
    return numbers


def _theory_numbers(
    history: History, reference: Mapping[str, Tensor] | None, onset: int | None
) -> dict[str, Any]:
    online = [float(r["theory_error"]) for r in history if r.get("theory_error") is not None]
    online_phase2 = [
        float(r["theory_error"])
        for r in history
        if r.get("theory_error") is not None and onset is not None and int(r["epoch"]) >= onset
    ]
    numbers: dict[str, Any] = {
        "online_prediction": history[-1].get("prediction"),
        "online_theory_error_mean": _mean(online),
        "online_theory_error_phase2": _mean(online_phase2),
        "online_noise_level": {int(r["epoch"]): r.get("noise_level") for r in history},
    }
    if reference is None or len(history) < 2:
        numbers.update(theory_mode="online", theory_error_phase2=None, theory_error_all=None, replay=None)
        return numbers
    fits, _ = _replay(history, reference)
    phase2, overall = _phase2_error(fits, onset)
    numbers.update(
        theory_mode="reference",
        reference_epoch=fits[-1].epoch,
        theory_error_phase2=phase2,
        theory_error_all=overall,
        replay={fit.epoch: {"s": fit.s, "error": fit.error} for fit in fits},
    )
    return numbers


# ---------------------------------------------------------------------------------------------
# Writing the report
# ---------------------------------------------------------------------------------------------


def write_summary_json(out: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (non-finite numbers as null) into ``out``."""
    path = Path(out) / "summary.json"
    path.write_text(json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def write_run_report(
    history: History,
    reference: Mapping[str, Tensor] | None,
    out: Path,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Replay, draw and summarise a run into ``out``; returns the summary (also in ``summary.json``).

    With ``reference`` (the last measurement's ``I_and``/``I_or``) the figures and the fit errors
    come from the reference replay; without it, from the records' own online fits, and the summary
    says so (``theory_mode`` is ``"online"`` and ``theory_error_phase2`` is None).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = run_numbers(history, reference)
    fits, predicted = (None, None)
    if numbers["theory_mode"] == "reference":
        fits, predicted = _replay(history, reference)
    alert, onset = numbers["alert_epoch"], numbers["onset_epoch"]
    text = report.summary_text(history, fits, alert, onset)
    if fits is None:
        text += (
            "\nNo reference interactions of the last measurement were given, so there is no reference "
            "replay: the figures show the records' online fits (prediction mode "
            f"{numbers['online_prediction']!r}).\n"
        )
    (out / "summary.md").write_text(text)
    summary: dict[str, Any] = dict(extra or {})
    summary.update(numbers)
    summary["summary_md"] = str(out / "summary.md")
    if report.matplotlib_available():
        summary["report_png"] = report.write_report_png(history, fits, predicted, out / REPORT_FILENAME)
    else:
        summary["report_png"] = None
    write_summary_json(out, summary)
    return summary


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_summary(summary: Mapping[str, Any]) -> str:
    """The short printed summary of a run (demo, report or analyze)."""
    alert, onset, gap = summary["alert_epoch"], summary["onset_epoch"], summary["loss_gap_min_epoch"]
    epochs = summary["epochs"]
    complexity = summary["complexity"]
    low = summary["complexity_min_epoch"]
    lines = [
        f"complexity (mean order): epoch {epochs[0]} {complexity[epochs[0]]:.3f} -> minimum "
        f"{complexity[low]:.3f} at epoch {low} -> epoch {epochs[-1]} {complexity[epochs[-1]]:.3f}",
        "share of orders >= 3: epoch {} {:.3f}, epoch {} {:.3f}, epoch {} {:.3f}".format(
            epochs[0], summary["high_order_share"][epochs[0]], low, summary["high_order_share"][low],
            epochs[-1], summary["high_order_share"][epochs[-1]],
        ),
        f"phase-2 onset (complexity minimum): epoch {_fmt(onset, 'd')}; over-fitting alert fired at "
        f"epoch {_fmt(alert, 'd')}",
        f"loss gap (val - train) smallest at epoch {_fmt(gap, 'd')}; validation loss lowest at epoch "
        f"{_fmt(summary['val_loss_min_epoch'], 'd')}; alert - gap minimum = "
        f"{_fmt(summary['alert_minus_loss_gap_min'], '+d')} epochs",
    ]
    if summary.get("test_loss_min_epoch") is not None:
        lines.append(f"held-out test loss lowest at epoch {summary['test_loss_min_epoch']}")
    if summary["theory_mode"] == "reference":
        lines.append(
            f"theory fit error (reference replay, ref. epoch {summary['reference_epoch']}, L1 between "
            f"shapes): mean over phase 2 {_fmt(summary['theory_error_phase2'])}, over all epochs "
            f"{_fmt(summary['theory_error_all'])}"
        )
    else:
        lines.append(
            "theory fit error: no reference interactions, so no reference replay; online "
            f"({summary['online_prediction']} mode) fit error mean "
            f"{_fmt(summary['online_theory_error_mean'])}, "
            f"over phase 2 {_fmt(summary['online_theory_error_phase2'])}"
        )
    lines += _where(summary)
    return "\n".join(lines)


def _where(summary: Mapping[str, Any]) -> list[str]:
    lines = [summary["reference_note"]] if summary.get("reference_note") else []
    if summary.get("report_png"):
        lines.append(f"report: {summary['report_png']}")
    lines.append(f"summary: {summary['summary_md']} and summary.json")
    if summary.get("tensorboard_dir"):
        lines.append(f"TensorBoard logs: {summary['tensorboard_dir']}")
        lines.append(f"open them with: {summary['tensorboard_command']}")
    if summary.get("wall_time_s") is not None:
        lines.append(f"wall time: {summary['wall_time_s']:.1f} s")
    return lines


# ---------------------------------------------------------------------------------------------
# report LOGDIR
# ---------------------------------------------------------------------------------------------


def find_history(logdir: Path) -> Path:
    """The ``interaction_history.jsonl`` under ``logdir`` (searched recursively; the newest if several)."""
    logdir = Path(logdir)
    if logdir.is_file() and logdir.name == HISTORY_FILENAME:
        return logdir
    if not logdir.is_dir():
        raise OfflineError(f"{logdir} is not a directory")
    found = sorted(logdir.rglob(HISTORY_FILENAME), key=lambda p: (p.stat().st_mtime, str(p)))
    if not found:
        raise OfflineError(
            f"no {HISTORY_FILENAME} under {logdir}: was the run trained with InteractionMonitor?"
        )
    return found[-1]


def report_run(logdir: Path, out: Path | None = None) -> dict[str, Any]:
    """Re-render the figures and summary of a monitored run from its history file.

    The reference replay uses the ``reference_interactions.pt`` next to the history when there is
    one (the demo writes it); otherwise the report shows the online fits and says so.
    """
    path = find_history(Path(logdir))
    history = read_history(path)
    if not history:
        raise OfflineError(f"{path} holds no measurement")
    reference, note = reference_beside(path, int(history[-1]["epoch"]))
    extra = {"command": "report", "history_file": str(path), "reference_note": note}
    return write_run_report(history, reference, Path(out) if out else path.parent, extra=extra)


# ---------------------------------------------------------------------------------------------
# analyze: measure saved checkpoints
# ---------------------------------------------------------------------------------------------


_EPOCH = re.compile(r"epoch[=_-]?(\d+)")


def checkpoint_files(directory: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the ``.pt``/``.pth``/``.ckpt`` files in ``directory``, in epoch order.

    The epoch is read from ``epoch=N`` (or ``epoch_N``, ``epochN``) in the file name; files
    without one are numbered by their sorted position.
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
        numbered.append((int(match.group(1)) if match else index, path))
    epochs = [e for e, _ in numbered]
    if len(set(epochs)) != len(epochs):
        raise OfflineError(f"two checkpoints in {directory} have the same epoch number")
    return sorted(numbered)


Loader = Callable[[Path], nn.Module]
LossFn = Callable[[nn.Module], tuple[Optional[float], Optional[float]]]


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
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Measure every checkpoint on the same samples and players; returns the history and last interactions.

    Each record has the fields of the monitor's records (prior-mode online fit, phase and alert from
    a :class:`~lightning_interactions.analysis.phases.PhaseTracker`), so the same report applies.
    """
    from lightning_interactions.engine.compute import compute_interactions
    from lightning_interactions.analysis.phases import PhaseTracker

    masker.validate(inputs)
    players = masker.select_players(inputs, seed=seed)
    tracker = PhaseTracker(margin=alert_margin, patience=alert_patience)
    history: list[dict[str, Any]] = []
    last: dict[str, Tensor] = {}
    for epoch, path in checkpoints:
        model = load(path)
        result = compute_interactions(
            model, inputs, targets, masker, output=output, q_ratio=q_ratio, players=players
        )
        if result.num_samples == 0:
            raise OfflineError(f"no sample gave finite outputs for {path}")
        record = _record(epoch, result.I_and, result.I_or, result.gap, tracker)
        if losses is not None:
            record["train_loss"], record["val_loss"] = losses(model)
        history.append(record)
        last = {"I_and": result.I_and, "I_or": result.I_or}
    return history, last


def _record(epoch: int, I_and: Tensor, I_or: Tensor, gap: Tensor, tracker: Any) -> dict[str, Any]:
    """A history record as the monitor writes it (prior-mode online fit)."""
    from lightning_interactions.analysis.strength import (
        complexity,
        per_sample_strength,
        signed_strength,
        strength_shape,
    )
    from lightning_interactions.analysis.theory import fit_noise_level

    n = I_and.shape[1].bit_length() - 1
    strength = per_sample_strength(I_and, I_or).mean(dim=0)
    shape = strength_shape(strength)
    value = float(complexity(shape))
    predictor = shape_predictor("prior", n=n)
    fit = fit_noise_level(shape, predictor)
    phase = tracker.update(epoch, value)
    return {
        "epoch": epoch,
        "num_samples": I_and.shape[0],
        "num_players": n,
        "strength": strength.tolist(),
        "shape": shape.tolist(),
        "complexity": value,
        "prediction": "prior",
        "noise_level": fit.s,
        "theory_error": fit.error,
        "predicted_shape": predictor(fit.s).tolist(),
        "fitted_epoch": epoch,
        "fitted_shape": shape.tolist(),
        "phase": phase,
        "overfit_alert": int(tracker.alert),
        "max_gap": float(gap.max()),
        "signed": {key: v.tolist() for key, v in signed_strength(I_and, I_or).items()},
        "train_loss": None,
        "val_loss": None,
    }


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A plain state dict of the demo's MLP from a saved one (Lightning checkpoint, ``net.`` prefix)."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {key[4:] if key.startswith("net.") else key: value for key, value in state.items()}


def load_demo_mlp(path: Path) -> nn.Module:
    """The demo's MLP with the weights of ``path`` (a state dict; its hidden width is read off it)."""
    from lightning_interactions.demos.demo import build_mlp

    state = _strip_prefix(torch.load(path, map_location="cpu", weights_only=True))
    if "1.weight" not in state:
        raise OfflineError(f"{path} is not a state dict of the demo's MLP (no '1.weight'); pass --module")
    model = build_mlp(int(state["1.weight"].shape[0]))
    model.load_state_dict(state)
    return model.eval()


def module_loader(spec: str) -> Loader:
    """A loader for ``module.path:ClassName``: ``load_from_checkpoint`` for ``.ckpt``, else a state dict."""
    import importlib

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


def draw_samples(
    inputs: Tensor, targets: Tensor | None, num_samples: int, seed: int
) -> tuple[Tensor, Tensor | None]:
    """The samples the monitor would draw from these validation samples with this seed.

    ``num_samples`` of the first ``POOL_FACTOR * num_samples``, chosen by a seeded permutation
    and kept in order, as :class:`~lightning_interactions.InteractionMonitor` draws them.
    """
    from lightning_interactions.callbacks.monitor import POOL_FACTOR

    pool = inputs[: POOL_FACTOR * num_samples]
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(pool.shape[0], generator=generator)[:num_samples].sort().values
    return pool[chosen], None if targets is None else targets[: pool.shape[0]][chosen]


def _cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def digits_source(
    num_samples: int, seed: int, train_size: int, val_size: int, label_noise: float
) -> tuple[Tensor, Tensor, LossFn]:
    """The demo's digits split: measured samples, their labels, and a loss function on the full split."""
    from lightning_interactions.demos.demo import load_digits_split

    data = load_digits_split(train_size, val_size, label_noise, seed)
    inputs, targets = draw_samples(data["x_val"], data["y_val"], num_samples, seed)

    def losses(model: nn.Module) -> tuple[float | None, float | None]:
        train = _cross_entropy(model, data["x_train"], data["y_train"])
        return train, _cross_entropy(model, data["x_val"], data["y_val"])

    return inputs, targets, losses


def samples_source(path: Path, num_samples: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """Samples from a file saved with ``torch.save((inputs, targets))`` (or inputs alone)."""
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
    history, last = history_from_checkpoints(
        checkpoints, load, inputs, targets, masker, q_ratio=q_ratio, seed=seed, losses=losses
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history_path = out / HISTORY_FILENAME
    history_path.unlink(missing_ok=True)
    for record in history:
        append_record(history_path, record)
    save_reference(out / REFERENCE_FILENAME, history[-1]["epoch"], last["I_and"], last["I_or"])
    info = {"command": "analyze", "checkpoints": [str(p) for _, p in checkpoints], **(extra or {})}
    info["history_file"] = str(history_path)
    return write_run_report(history, last, out, extra=info)
