"""The words of a run: the markdown summary (``summary.md``, TensorBoard text) and the printed one.

Example:
    >>> history = [{"epoch": e, "complexity": c, "num_players": 4} for e, c in enumerate([3.0, 2.0, 2.5])]
    >>> print(summary_text(history, None, None, None).splitlines()[3])
    - **Over-fitting alert:** no alert: the complexity has not risen clearly above its minimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_interactions.analysis.losses import loss_gap_minimum, loss_rows
from lightning_interactions.analysis.phases import phase1_of
from lightning_interactions.analysis.replay import EpochFit, replay_errors
from lightning_interactions.analysis.transition import onset_and_turn

__all__ = ["summary_text", "format_summary", "phase1_sentence"]

History = Sequence[Mapping[str, Any]]

_MEANING = (
    "The alert marks the onset of over-fitted features: the epoch after which the network starts "
    "to learn more complex (higher-order) interactions again, which the two-phase theory ties to "
    "the widening of the gap between training and validation loss. It is not the best epoch to "
    "stop training: the validation loss often keeps falling for a while after it."
)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _run_line(history: History) -> str:
    first, last = history[0], history[-1]
    setup = f"{len(history)} measurement(s), epochs {int(first['epoch'])} to {int(last['epoch'])}"
    if last.get("num_players") is not None:
        setup += f", {int(last['num_players'])} players"
    if last.get("num_samples") is not None:
        setup += f", {int(last['num_samples'])} samples"
    return f"- **Run:** {setup}."


def _alert_line(alert_epoch: int | None, onset_epoch: int | None, rise_epoch: int | None = None) -> str:
    if alert_epoch is None and rise_epoch is not None:
        alert = (
            f"no alert: the complexity rose above its minimum by epoch {rise_epoch}, but the loss gap "
            "(validation minus training) has not widened since"
        )
    elif alert_epoch is None:
        alert = "no alert: the complexity has not risen clearly above its minimum"
    elif onset_epoch is None:
        alert = f"fired at epoch {alert_epoch}"
    else:
        alert = f"fired at epoch {alert_epoch}; phase 2 began at epoch {onset_epoch}, the complexity minimum"
    return f"- **Over-fitting alert:** {alert}."


def phase1_sentence(info: Mapping[str, Any]) -> str:
    """Whether phase 1 was seen, in words, from :func:`~lightning_interactions.analysis.phases.phase1_of`.

    Example:
        >>> phase1_sentence({"seen": False, "fall": 0.02, "first_epoch": 0, "first_complexity": 1.39,
        ...                  "min_epoch": 1, "min_complexity": 1.36})[:60]
        'phase 1 not seen: the complexity fell only 2% from epoch 0 ('
    """
    where = (
        f"from epoch {info['first_epoch']} ({info['first_complexity']:.3f}) to its minimum "
        f"{info['min_complexity']:.3f} at epoch {info['min_epoch']}"
    )
    if info["seen"]:
        shed = "as the untrained network shed its high orders"
        return f"phase 1 seen: the complexity fell {info['fall']:.0%} {where}, {shed}"
    return (
        f"phase 1 not seen: the complexity fell only {max(info['fall'], 0.0):.0%} {where}; the untrained "
        "network was already low-order, so the alert marks over-fitting after task learning (docs/theory.md)"
    )


def _replay_line(replay_fits: Sequence[EpochFit], onset_epoch: int | None) -> str:
    phase2, overall = replay_errors(replay_fits, onset_epoch)
    text = (
        f"- **Reference replay** (reference: epoch {replay_fits[-1].epoch}; fit error = L1 between shapes): "
    )
    if onset_epoch is None:
        text += "no phase 2 yet; "
    else:
        text += f"mean error over phase 2 (epochs >= {onset_epoch}) {_fmt(phase2, '.3g')}; "
    return text + f"over all other epochs {_fmt(overall, '.3g')}."


def _turn_line(history: History) -> str | None:
    """The complexity's onset beside the start of the loss gap's transition window (the paper's
    claim that phase 2 starts where over-fitting does, measured on this run); None without losses."""
    found = onset_and_turn(history)
    if found["turn"] is None:
        return None
    difference = found["onset_minus_turn"]
    if difference == 0:
        when = "at the same epoch as"
    else:
        when = f"{abs(difference)} epoch(s) {'earlier' if difference < 0 else 'later'} than"
    first, last = found["window"]
    return (
        f"- **Onset and the loss gap's turn:** the complexity minimum (epoch {found['onset']}) came {when} "
        f"the start of the loss gap's transition window (epochs {first} to {last})."
    )


def _best_validation(history: History) -> tuple[int, float] | None:
    """The measured epoch of the lowest validation loss, and that loss (None: no validation loss)."""
    losses = [(int(r["epoch"]), float(r["val_loss"])) for r in history if r.get("val_loss") is not None]
    losses = [(epoch, loss) for epoch, loss in losses if math.isfinite(loss)]  # a diverged epoch is no best
    return min(losses, key=lambda item: item[1]) if losses else None


def summary_text(
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    alert_epoch: int | None,
    onset_epoch: int | None,
) -> str:
    """A short markdown summary of a monitored run.

    ``alert_epoch`` and ``onset_epoch`` are the phase tracker's (None: no alert). ``replay_fits`` is
    the reference replay (:func:`lightning_interactions.analysis.replay.replay_run`) or None.
    """
    if not history:
        raise ValueError("the history is empty: nothing to report")
    rise_epoch = history[-1].get("rise_epoch")
    lines = [
        "## Interaction report",
        "",
        _run_line(history),
        _alert_line(alert_epoch, onset_epoch, rise_epoch),
    ]
    lines.append(f"- **Phase 1:** {phase1_sentence(phase1_of(history))}.")
    complexities = [(int(r["epoch"]), float(r["complexity"])) for r in history]
    low_epoch, low = min(complexities, key=lambda item: item[1])
    lines.append(
        f"- **Complexity (mean order):** minimum {low:.4g} at epoch {low_epoch}; "
        f"final {complexities[-1][1]:.4g} at epoch {complexities[-1][0]}."
    )
    best = _best_validation(history)
    if best is not None:
        lines.append(f"- **Validation loss:** lowest at epoch {best[0]} ({best[1]:.4g}); keep that model.")
    turn = _turn_line(history)
    if turn is not None:
        lines.append(turn)
    gap_epoch = loss_gap_minimum(history)
    if gap_epoch is not None:
        gap = min(val - train for _, train, val in loss_rows(history))
        lines.append(f"- **Loss gap (val - train):** smallest at epoch {gap_epoch} ({gap:.4g}).")
    if replay_fits:
        lines.append(_replay_line(replay_fits, onset_epoch))
    gaps = [float(r["max_gap"]) for r in history if r.get("max_gap") is not None]
    if gaps:
        lines.append(f"- **Extraction:** largest certified gap {max(gaps):.3g}.")
    lines += ["", _MEANING]
    return "\n".join(lines) + "\n"


def _theory_line(summary: Mapping[str, Any]) -> str:
    if summary["theory_mode"] == "reference":
        return (
            f"theory fit error (reference replay, ref. epoch {summary['reference_epoch']}, L1 between "
            f"shapes): mean over phase 2 {_fmt(summary['theory_error_phase2'])}, over all epochs "
            f"{_fmt(summary['theory_error_all'])}"
        )
    return (
        "theory fit error: no reference interactions, so no reference replay; online "
        f"({summary['online_prediction']} mode) fit error mean "
        f"{_fmt(summary['online_theory_error_mean'])}, "
        f"over phase 2 {_fmt(summary['online_theory_error_phase2'])}"
    )


def _where(summary: Mapping[str, Any]) -> list[str]:
    lines = [summary["reference_note"]] if summary.get("reference_note") else []
    if summary.get("report_png"):
        lines.append(f"report: {summary['report_png']}")
    if summary.get("report_html"):
        lines.append(f"dashboard page (opens offline): {summary['report_html']}")
    lines.append(f"summary: {summary['summary_md']} and summary.json")
    if summary.get("tensorboard_dir"):
        lines.append(f"TensorBoard logs: {summary['tensorboard_dir']}")
        lines.append(f"open them with: {summary['tensorboard_command']}")
    if summary.get("wall_time_s") is not None:
        lines.append(f"wall time: {summary['wall_time_s']:.1f} s")
    return lines


def _epochs_line(summary: Mapping[str, Any]) -> list[str]:
    """The complexity and high-order share at the first epoch, the complexity minimum and the last.

    An epoch that is two of these at once (the minimum at the first or last epoch) appears once.
    """
    epochs, complexity, share = summary["epochs"], summary["complexity"], summary["high_order_share"]
    low = summary["complexity_min_epoch"]
    points = list(dict.fromkeys([epochs[0], low, epochs[-1]]))

    def point(epoch: int) -> str:
        if epoch != low:
            return f"epoch {epoch} {complexity[epoch]:.3f}"
        if epoch in (epochs[0], epochs[-1]):
            return f"epoch {epoch} {complexity[epoch]:.3f} (the minimum)"
        return f"minimum {complexity[epoch]:.3f} at epoch {epoch}"

    shares = ", ".join(f"epoch {e} {share[e]:.3f}" for e in points)
    return [f"complexity (mean order): {' -> '.join(map(point, points))}", f"share of orders >= 3: {shares}"]


def _onset_line(summary: Mapping[str, Any]) -> str:
    alert, onset, rise = summary["alert_epoch"], summary["onset_epoch"], summary.get("rise_epoch")
    if alert is None and rise is not None:
        return (
            f"phase-2 onset: the complexity rose above its minimum by epoch {rise}; no over-fitting alert: "
            "the loss gap has not widened since"
        )
    if alert is None:
        return (
            "phase-2 onset: not confirmed, no over-fitting alert yet (the lowest complexity so far, at "
            f"epoch {summary['complexity_min_epoch']}, becomes the onset once the complexity rises above it)"
        )
    risen = f"; risen by epoch {rise}" if rise is not None and rise != alert else ""
    return (
        f"phase-2 onset (complexity minimum): epoch {_fmt(onset, 'd')}{risen}; over-fitting alert fired at "
        f"epoch {alert}"
    )


def _loss_line(summary: Mapping[str, Any]) -> str:
    line = (
        f"loss gap (val - train) smallest at epoch {_fmt(summary['loss_gap_min_epoch'], 'd')}; validation "
        f"loss lowest at epoch {_fmt(summary['val_loss_min_epoch'], 'd')}"
    )
    if summary.get("alert_minus_loss_gap_min") is not None:
        line += f"; alert - gap minimum = {summary['alert_minus_loss_gap_min']:+d} epochs"
    return line


def format_summary(summary: Mapping[str, Any]) -> str:
    """The short printed summary of a run (demo, report or analyze), from its ``summary.json`` fields.

    Example:
        >>> summary = {"epochs": [0, 1, 2], "complexity": {0: 2.0, 1: 1.5, 2: 1.2},
        ...            "high_order_share": {0: 0.3, 1: 0.1, 2: 0.05}, "complexity_min_epoch": 2,
        ...            "alert_epoch": None, "onset_epoch": None, "loss_gap_min_epoch": 1,
        ...            "val_loss_min_epoch": 2, "alert_minus_loss_gap_min": None, "theory_mode": "online",
        ...            "online_prediction": "prior", "online_theory_error_mean": 0.05,
        ...            "online_theory_error_phase2": None, "summary_md": "run/summary.md"}
        >>> for line in format_summary(summary).splitlines()[:4]:
        ...     print(line.replace(" (the lowest", "\\n    (the lowest"))
        complexity (mean order): epoch 0 2.000 -> epoch 2 1.200 (the minimum)
        share of orders >= 3: epoch 0 0.300, epoch 2 0.050
        phase-2 onset: not confirmed, no over-fitting alert yet
            (the lowest complexity so far, at epoch 2, becomes the onset once the complexity rises above it)
        loss gap (val - train) smallest at epoch 1; validation loss lowest at epoch 2
    """
    lines = [*_epochs_line(summary)]
    if summary.get("phase1") is not None:
        lines.append(phase1_sentence(summary["phase1"]))
    lines += [_onset_line(summary), _loss_line(summary)]
    if summary.get("test_loss_min_epoch") is not None:
        lines.append(f"held-out test loss lowest at epoch {summary['test_loss_min_epoch']}")
    lines.append(_theory_line(summary))
    return "\n".join(lines + _where(summary))
