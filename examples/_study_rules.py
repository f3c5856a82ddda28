"""The study suite's comparison of alert rules: the gap rule, the alert, and the interaction candidates.

For every saved run (``study_suite.py``) each rule gives a firing epoch; it is judged against the
loss gap's transition window (inside it, +-2 epochs), against the gap rule alone (lead or lag in
epochs) and, on the clean-label control, by its false alarms (docs/theory.md, section 7). Each
candidate's threshold is chosen on the fit seeds and reported on the others. Then the per-sample
memorisation scores against the flipped labels. Everything is read from the runs' records.

Not an example itself; ``study_suite.py`` imports it from this folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from lightning_interactions.analysis.candidates import (
    false_alarm,
    gap_rule_epoch,
    high_order_share,
    high_order_strength,
    noise_fall_series,
    outlier_share,
    precision_recall,
    roc_auc,
    series,
    specific_share,
    widening_epoch,
)
from lightning_interactions.analysis.phases import PhaseTracker, replay_tracker

__all__ = ["FIT_SEEDS", "GRIDS", "comparison_report", "fire_epoch", "signal"]

FIT_SEEDS = (0, 1)  # thresholds are chosen on these seeds and reported on the others
SLACK = 2
GRIDS: dict[str, tuple[float, ...]] = {
    "noise_fall": (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5),
    "split_divergence": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5),
    "outlier_share": (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2),
    "specific_share": (0.01, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3),
    "train_rise": (0.02, 0.05, 0.1, 0.2, 0.3),
    # A rule that knows nothing: fire at a fixed epoch. What the window test gives for free.
    "fixed epoch": tuple(float(epoch) for epoch in range(3, 16)),
}
FIXED = ("gap rule alone", "shipped alert", "complexity rise alone")
NO_VALIDATION = ("outlier_share", "specific_share", "train_rise")


def _per_epoch(run: dict[str, Any], split: str) -> dict[int, list[list[float]]]:
    return {int(e): rows for e, rows in run.get("sample_strength", {}).get(split, {}).items()}


def signal(run: dict[str, Any], name: str) -> tuple[list[int], list[float | None]]:
    """``(epochs, values)`` of a candidate's series on one run (empty where the run lacks its data)."""
    if name == "noise_fall":
        epochs, levels = series(run["history"], "noise_level")
        return epochs, noise_fall_series(levels)
    if name == "split_divergence":
        train = {int(r["epoch"]): r["complexity"] for r in run.get("train_history", [])}
        pairs = [
            (int(r["epoch"]), train[int(r["epoch"])] - r["complexity"])
            for r in run["history"]
            if r["epoch"] in train
        ]
        return [e for e, _ in pairs], [v for _, v in pairs]
    if name == "outlier_share":
        per_epoch = sorted(_per_epoch(run, "train").items())
        return [e for e, _ in per_epoch], [
            outlier_share([high_order_strength(s) for s in rows]) for _, rows in per_epoch
        ]
    if name == "specific_share":
        labels = run.get("train_samples", {}).get("labels")
        history = [r for r in run.get("train_history", []) if "salient" in r] if labels else []
        return [int(r["epoch"]) for r in history], [
            specific_share(r["salient"], r["output_span"], labels) for r in history
        ]
    raise ValueError(f"no signal {name!r}")


def fire_epoch(run: dict[str, Any], row: dict[str, Any], name: str, theta: float | None = None) -> int | None:
    """Where rule ``name`` fires on ``run`` (``row`` is its evaluated row: the alert and the rise)."""
    if name == "gap rule alone":
        epochs, train = series(run["history"], "train_loss")
        return gap_rule_epoch(epochs, train, series(run["history"], "val_loss")[1])
    if name == "shipped alert":
        return row["alert"]
    if name == "complexity rise alone":
        return row["alert_rise_only"]
    if name == "fixed epoch":
        return int(theta) if int(theta) <= run["history"][-1]["epoch"] else None
    if name == "train_rise":
        history = run.get("train_history", [])
        return (
            replay_tracker(history, PhaseTracker(margin=theta, gap_rise=None)).alert_epoch
            if history
            else None
        )
    return widening_epoch(*signal(run, name), theta)


def _judge(run: dict[str, Any], row: dict[str, Any], fired: int | None, gap: int | None) -> dict[str, Any]:
    window = row["window"]
    metrics = sorted(run["metrics"], key=lambda m: m["epoch"])
    return {
        "fired": fired,
        "inside": fired is not None
        and window is not None
        and window[0] - SLACK <= fired <= window[1] + SLACK,
        "lead": None if fired is None or gap is None else fired - gap,
        "distance": None if fired is None or window is None else abs(fired - window[0]),
        "false_alarm": false_alarm(fired, [m["epoch"] for m in metrics], [m["val_loss"] for m in metrics]),
    }


def _evaluate(runs: Sequence[dict], rows: Sequence[dict], name: str, theta: float | None) -> list[dict]:
    out = []
    for run, row in zip(runs, rows):
        gap = fire_epoch(run, row, "gap rule alone")
        out.append(_judge(run, row, fire_epoch(run, row, name, theta), gap))
    return out


def _median(values: Sequence[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _score(judged: Sequence[dict], runs: Sequence[dict]) -> tuple[int, float]:
    """What the threshold choice maximises: hits minus control false alarms, then the earlier median."""
    hits = sum(j["inside"] for j, r in zip(judged, runs) if r["label_noise"] > 0)
    alarms = sum(j["false_alarm"] for j, r in zip(judged, runs) if r["label_noise"] == 0)
    lead = _median(
        [j["lead"] for j, r in zip(judged, runs) if r["label_noise"] > 0 and j["lead"] is not None]
    )
    return hits - alarms, -(lead if lead is not None else math.inf)


def choose_theta(runs: Sequence[dict], rows: Sequence[dict], name: str) -> float:
    """The grid value with the best :func:`_score` on ``runs`` (the fit seeds); the smaller on ties."""
    return max(GRIDS[name], key=lambda theta: (*_score(_evaluate(runs, rows, name, theta), runs), -theta))


def _summary(judged: Sequence[dict], runs: Sequence[dict]) -> str:
    flipped = [j for j, r in zip(judged, runs) if r["label_noise"] > 0]
    control = [j for j, r in zip(judged, runs) if r["label_noise"] == 0]
    leads = sorted(j["lead"] for j in flipped if j["lead"] is not None)
    lead = "-" if not leads else f"{_median(leads):+.1f} [{leads[0]:+d},{leads[-1]:+d}] n={len(leads)}"
    earlier = sum(value < 0 for value in leads)
    hits = sum(j["inside"] for j in flipped)
    fired = sum(j["fired"] is not None for j in flipped)
    alarms = sum(j["false_alarm"] for j in control)
    fired_control = sum(j["fired"] is not None for j in control)
    distances = [j["distance"] for j in flipped if j["distance"] is not None]
    distance = "-" if not distances else f"{sum(distances) / len(distances):.1f}"
    return (
        f"{hits:>3}/{len(flipped):<3}{fired:>4}/{len(flipped):<3}{lead:>24}{earlier:>4}{distance:>6}"
        f"{alarms:>5}/{len(control):<2}{fired_control:>3}/{len(control):<2}"
    )


def comparison_table(runs: Sequence[dict], rows: Sequence[dict], fit_seeds: Sequence[int] = FIT_SEEDS) -> str:
    """Per rule, on the fit runs and the held-out runs: hits, firings, lead vs the gap rule, control."""
    fit = [i for i, r in enumerate(runs) if r["seed"] in fit_seeds]
    held = [i for i, r in enumerate(runs) if r["seed"] not in fit_seeds]
    part = lambda idx, seq: [seq[i] for i in idx]  # noqa: E731
    head = (
        f"{'in win':>7}{'fired':>8}{'lead: median [range]':>24}{'<0':>4}{'|e-t|':>6}{'false':>8}{'fired':>6}"
    )
    lines = [
        f"fit seeds {sorted(set(fit_seeds))} ({len(fit)} runs) and held-out seeds "
        f"{sorted({runs[i]['seed'] for i in held})} ({len(held)} runs); lead < 0: earlier than the gap rule",
        f"{'rule':<24}{'theta':>7} | fit:{head} | held-out:{head}",
    ]
    lines.append("-" * len(lines[-1]))
    chosen: dict[str, float | None] = {}
    for name in (*FIXED, *GRIDS):
        theta = None if name in FIXED else choose_theta(part(fit, runs), part(fit, rows), name)
        chosen[name] = theta
        judged = _evaluate(runs, rows, name, theta)
        label = name + (" (no val)" if name in NO_VALIDATION else "")
        lines.append(
            f"{label:<24}{'-' if theta is None else f'{theta:g}':>7} |     "
            f"{_summary(part(fit, judged), part(fit, runs))} |          "
            f"{_summary(part(held, judged), part(held, runs))}"
        )
    lines.append(
        "columns: runs with flipped labels inside the gap's window +-2 epochs; runs where the rule fired;"
    )
    lines.append(
        "lead (rule epoch minus gap-rule epoch) median [min,max] over runs where both fired; <0: runs"
    )
    lines += [
        "where it fired earlier; |e-t|: mean distance in epochs from the firing to the gap's turn (the",
        "window's start); control (clean labels): false alarms (fired >5% above the validation loss",
        "still to come) and firings. fixed epoch: fires at epoch theta whatever the run does.",
    ]
    return "\n".join(lines), chosen


def per_run_table(runs: Sequence[dict], rows: Sequence[dict], chosen: dict[str, float | None]) -> str:
    """Per run: the window, the onset next to the gap's turn, and each rule's firing epoch."""
    short = {"gap rule alone": "gap", "shipped alert": "alert", "complexity rise alone": "rise",
             "noise_fall": "noise", "split_divergence": "diverg", "outlier_share": "outlier",
             "specific_share": "specif", "train_rise": "trrise", "fixed epoch": "fixed"}  # fmt: skip
    head = f"{'task':<12}{'seed':>5}{'window':>8}{'onset':>6}{'turn':>5}{'o-t':>5}"
    head += "".join(f"{short[n]:>8}" for n in chosen)
    lines = [head, "-" * len(head)]
    differences: list[int | None] = []
    for run, row in zip(runs, rows):
        window = row["window"]
        onset = (
            min(run["history"], key=lambda r: r["complexity"])["epoch"]
            if row["onset"] is None
            else row["onset"]
        )
        turn = None if window is None else window[0]
        differences.append(None if turn is None else onset - turn)
        diff = "-" if turn is None else f"{onset - turn:+d}"
        cells = "".join(f"{_fmt(fire_epoch(run, row, n, t)):>8}" for n, t in chosen.items())
        span = "-" if window is None else f"{window[0]}-{window[1]}"
        lines.append(f"{run['task']:<12}{run['seed']:>5}{span:>8}{onset:>6}{str(turn):>5}{diff:>5}{cells}")
    lines.append(
        "onset: the alert's onset (the complexity minimum before the rise; the smallest complexity where"
    )
    lines.append("no alert fired); turn: the start of the gap's transition window; o-t: onset minus turn.")
    flipped = sorted(d for d, run in zip(differences, runs) if d is not None and run["label_noise"] > 0)
    if flipped:
        near = sum(abs(d) <= SLACK for d in flipped)
        lines.append(
            f"onset minus turn, runs with flipped labels: median {_median(flipped):+.1f}, "
            f"from {flipped[0]:+d} to {flipped[-1]:+d}; within +-{SLACK} epochs in {near}/{len(flipped)}"
        )
    return "\n".join(lines)


def _scores(run: dict[str, Any], epoch: int) -> tuple[list[float], list[float], list[bool]] | None:
    strength = _per_epoch(run, "train").get(epoch)
    losses = run.get("train_sample_loss", {}).get(str(epoch))
    if strength is None or losses is None:
        return None
    return [high_order_share(s) for s in strength], losses, run["train_samples"]["flipped"]


def _best_f1(scores: Sequence[float], positives: Sequence[bool]) -> float:
    def f1(threshold: float) -> float:
        precision, recall = precision_recall(scores, positives, threshold)
        return 0.0 if not precision or not recall else 2 * precision * recall / (precision + recall)

    return max(sorted(set(scores))[:-1] or [0.0], key=f1)


def _flat(part: Sequence[tuple[list[float], list[bool]]]) -> tuple[list[float], list[bool]]:
    return [s for values, _ in part for s in values], [f for _, flags in part for f in flags]


def _mean_of(scores: Sequence[float], positives: Sequence[bool], want: bool) -> float:
    chosen = [s for s, p in zip(scores, positives) if p is want]
    return sum(chosen) / len(chosen) if chosen else math.nan


def _fmt2(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def memorisation_table(
    runs: Sequence[dict], rows: Sequence[dict], fit_seeds: Sequence[int] = FIT_SEEDS
) -> str:
    """Per-sample memorisation: high-order share vs training loss against the flipped labels."""
    flipped_runs = [(r, w) for r, w in zip(runs, rows) if r["label_noise"] > 0 and r.get("train_samples")]
    if not flipped_runs:
        return "per-sample memorisation: no run recorded its training samples"
    when: dict[str, Callable[[dict, dict], int]] = {
        "gap rule's epoch": lambda r, w: fire_epoch(r, w, "gap rule alone") or r["history"][-1]["epoch"],
        "last epoch": lambda r, w: r["history"][-1]["epoch"],
    }
    lines = [
        "per-sample memorisation, the measured training samples of runs with flipped labels: a score above",
        "the threshold (best F1 on the fit seeds) flags a sample as memorised; AUC: median over runs",
        f"{'read at':<18}{'score':<22}{'flipped/clean mean':>19}{'AUC fit':>9}{'AUC held':>9}"
        f"{'thresh':>8}{'prec held':>10}{'rec held':>9}{'flipped held':>13}",
    ]
    for label, epoch_of in when.items():
        pooled: dict[str, dict[bool, list]] = {k: {True: [], False: []} for k in ("share", "loss")}
        aucs: dict[str, dict[bool, list]] = {k: {True: [], False: []} for k in ("share", "loss")}
        for run, row in flipped_runs:
            scored = _scores(run, epoch_of(run, row))
            if scored is None:
                continue
            fit = run["seed"] in fit_seeds
            for key, values in zip(("share", "loss"), scored[:2]):
                pooled[key][fit].append((values, scored[2]))
                auc = roc_auc(values, scored[2])
                if auc is not None:
                    aucs[key][fit].append(auc)
        for key, name in (("share", "high-order share"), ("loss", "training loss (base)")):
            fit_scores, fit_pos = _flat(pooled[key][True])
            held_scores, held_pos = _flat(pooled[key][False])
            every_scores, every_pos = _flat(pooled[key][True] + pooled[key][False])
            flipped, clean = (_mean_of(every_scores, every_pos, want) for want in (True, False))
            means = f"{flipped:.3f}/{clean:.3f}"
            threshold = _best_f1(fit_scores, fit_pos) if fit_scores else 0.0
            precision, recall = precision_recall(held_scores, held_pos, threshold)
            lines.append(
                f"{label:<18}{name:<22}{means:>19}{_fmt2(_median(aucs[key][True])):>9}"
                f"{_fmt2(_median(aucs[key][False])):>9}{threshold:>8.3f}{_fmt2(precision):>10}"
                f"{_fmt2(recall):>9}{f'{sum(held_pos)}/{len(held_pos)}':>13}"
            )
    return "\n".join(lines)


def comparison_report(
    runs: Sequence[dict], rows: Sequence[dict], fit_seeds: Sequence[int] = FIT_SEEDS
) -> str:
    """The whole comparison: the rules' table, the per-run epochs and the memorisation scores."""
    table, chosen = comparison_table(runs, rows, fit_seeds)
    return "\n\n".join(
        ["alert rules against the loss gap (docs/alert_study.md):", table,
         per_run_table(runs, rows, chosen), memorisation_table(runs, rows, fit_seeds)]
    )  # fmt: skip


def _fmt(epoch: int | None) -> str:
    return "-" if epoch is None else str(epoch)
