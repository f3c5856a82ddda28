"""The over-fitting alert in words: the one-line warning, and the note logged at the alert's step.

Both ask the :class:`~lightning_interactions.analysis.phases.PhaseTracker` that fired the alert
for its rule (threshold, rise, loss-gap confirmation); nothing here re-derives it. The monitor
logs them; the dashboard shows the note.

Example:
    >>> from lightning_interactions.analysis.phases import PhaseTracker
    >>> tracker = PhaseTracker(gap_rise=None)
    >>> history = [{"epoch": e, "complexity": c} for e, c in enumerate([2.0, 1.2, 1.4, 1.5])]
    >>> _ = [tracker.update(r["epoch"], r["complexity"]) for r in history]
    >>> alert_message(tracker, 3)[:60]
    'InteractionMonitor: over-fitting alert at epoch 3: the compl'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_interactions.analysis.phases import PhaseTracker

__all__ = ["alert_message", "alert_text"]

History = Sequence[Mapping[str, Any]]
Record = Mapping[str, Any]


def _confirmation(tracker: PhaseTracker) -> str:
    """How the loss gap confirmed the alert, or why it did not have to."""
    if tracker.gap_rise is None:
        return "The loss gap is not consulted (alert_gap_rise=None)."
    if not tracker.gaps:
        return "No training and validation losses were logged, so the rise alone fired the alert."
    epoch, gap = int(tracker.gaps[-1][0]), tracker.gaps[-1][1]
    text = (
        f"The validation-minus-training loss gap has grown since: averaged over {tracker.gap_window} "
        f"measured epochs it rose above its smallest value by more than {tracker.gap_rise:.0%} of the "
        f"validation loss on the last {tracker.gap_patience} of them, and is still rising (gap "
        f"{gap:+.4g} at epoch {epoch}"
    )
    if gap < 0:
        text += "; still negative: the validation loss is below the training loss, but catching up"
    return text + ")."


def _phase1_note(history: History, tracker: PhaseTracker) -> str:
    if tracker.phase1_seen:
        untrained = float(history[0]["complexity"])
        return f"Phase 1 was seen: the complexity first fell from {untrained:.4g} (untrained) to that low."
    return (
        "Phase 1 was not seen: the untrained network already had few high-order interactions, so the "
        "complexity minimum is near the start and the rise came with task learning; the loss gap is "
        "what dates the over-fitting here."
    )


def alert_message(tracker: PhaseTracker, epoch: int) -> str:
    """The one-line warning printed when the alert fires."""
    text = (
        f"InteractionMonitor: over-fitting alert at epoch {epoch}: the complexity rose above its minimum "
        f"(epoch {tracker.onset_epoch}) by epoch {tracker.rise_epoch}"
    )
    if tracker.gap_rise is not None and tracker.gaps:
        text += " and the validation-minus-training loss gap has grown since"
    text += "; phase 2, the learning of higher-order interactions, began at the minimum"
    if not tracker.phase1_seen:
        text += " (no phase 1: the untrained network was already low-order)"
    return text


def alert_text(record: Record, history: History, tracker: PhaseTracker) -> str:
    """The markdown note logged at the alert's step: what fired, and why."""
    onset = next(r for r in history if r["epoch"] == record["onset_epoch"])
    low, threshold = float(onset["complexity"]), tracker.threshold()
    rises = ", ".join(f"{float(r['complexity']):.4g} (epoch {r['epoch']})" for r in tracker.rise(history))
    return (
        f"**Over-fitting alert at epoch {record['epoch']}.** The complexity (mean order of the "
        f"interactions) had its minimum {low:.4g} at epoch {onset['epoch']}; {tracker.patience} "
        f"measurement(s) in a row then rose above {threshold:.4g} (the minimum plus {tracker.margin:.0%}): "
        f"{rises}. {_confirmation(tracker)} By the two-phase theory, phase 2 began at epoch "
        f"{onset['epoch']}: the network started to learn higher-order interactions again, the ones tied "
        f"to over-fitting. {_phase1_note(history, tracker)} This is not the best epoch to stop; keep the "
        "best model by validation loss."
    )
