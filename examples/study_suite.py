"""Does the alert hold across architectures, and which stopping rule keeps a good model? The suite.

Trains six architectures (``_study_tasks.py``: an MLP, a plain CNN, a residual CNN with
BatchNorm, a transformer encoder, a 1-D CNN on MNIST-1D, a PointNet), each with flipped training
labels, the plain CNN a second time with SGD and weight decay, and a control (the MLP with clean
labels), 5 seeds each, with ``InteractionMonitor`` measuring 16 validation samples and 16
training samples after every epoch. After every epoch it also evaluates the model on the whole
training set (its labels, flipped ones included), the clean validation set and a clean held-out
test set, and keeps each measured sample's strength by order, the training samples' losses and
which of their labels were flipped (``_study_record.py``). Per run it prints whether phase 1 was
seen, the onset and the alert, the transition window of the loss gap (``analysis.transition``),
the best validation-loss epoch, the phase-2 theory fit error, and where each stopping rule
(``analysis.stopping``) would have stopped and how good the model it kept is; then the summary
across runs; then the comparison of the gap rule, the alert and the interaction-based candidates
(``_study_rules.py``, ``analysis.candidates``; thresholds chosen on seeds 0-1, reported on the
others) and the per-sample memorisation scores (docs/alert_study.md).

Everything a run measured goes to ``OUT/<task>-seed<k>/run.json``; ``--from OUT`` evaluates saved
runs again without training (the rules are pure functions of what a run recorded).

Run: .venv/bin/python examples/study_suite.py --out study-suite --jobs 2     # 40 runs
     .venv/bin/python examples/study_suite.py --from study-suite            # the tables again
     .venv/bin/python examples/study_suite.py --quick                       # 2 epochs of each task
     .venv/bin/python examples/study_suite.py --tasks mlp_clean --out study-suite  # add runs to a suite
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import torch
from _study_record import Evaluation, SampleLog
from _study_rules import FIT_SEEDS, comparison_report
from _study_tasks import TASKS, Task

from lightning_interactions import InteractionMonitor
from lightning_interactions.analysis.phases import PhaseTracker, phase1_of, replay_tracker
from lightning_interactions.analysis.replay import EpochFit, replay_errors
from lightning_interactions.analysis.stopping import AlertRule, PatienceRule, stopped_epoch
from lightning_interactions.analysis.transition import transition_window
from lightning_interactions.demos import Classifier, TensorDataModule

SLACK = 2  # epochs either side of the transition window that still count as "in the window"
NEAR_BEST = 0.05  # a kept model within 5% of the run's best validation loss counts as good
STOPPING_RULES = {
    "EarlyStopping(val_loss, patience=5)": lambda: PatienceRule("val_loss", patience=5),
    "EarlyStopping(val_loss, patience=10)": lambda: PatienceRule("val_loss", patience=10),
    "stop at the alert": AlertRule,
    "EarlyStopping(complexity, patience=3)": lambda: PatienceRule("complexity", patience=3),
    "InteractionEarlyStopping(patience=5)": lambda: PatienceRule(
        "val_loss", patience=5, armed_by="overfit_alert"
    ),
    "InteractionEarlyStopping(patience=10)": lambda: PatienceRule(
        "val_loss", patience=10, armed_by="overfit_alert"
    ),
}


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    """A history record without its signed strength (the salient lists stay: a candidate reads them)."""
    return {key: value for key, value in record.items() if key != "signed"}


def train_run(task_name: str, seed: int, out: Path, quick: bool = False) -> dict[str, Any]:
    """Train one task with one seed, and return (and save) everything it measured (one CPU thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_run(task_name, seed, out, quick)
    finally:
        torch.set_num_threads(threads)


def _train_run(task_name: str, seed: int, out: Path, quick: bool) -> dict[str, Any]:
    task: Task = TASKS[task_name]
    data = task.data(seed, task.label_noise)
    epochs = task.quick_epochs if quick else task.epochs
    samples = 4 if quick else 16
    directory = out / f"{task.name}-seed{seed}"
    L.seed_everything(seed, verbose=False)
    model = Classifier(task.network(), optimizer=task.optimizer, lr=task.lr, weight_decay=task.weight_decay)
    masker = task.masker(data)
    monitors = [
        InteractionMonitor(masker, num_samples=samples, seed=seed, log_figures=False),
        InteractionMonitor(masker, num_samples=samples, seed=seed, split="train", log_figures=False),
    ]
    clean = task.clean_train_labels(seed)
    sample_log = SampleLog(
        {"val": monitors[0], "train": monitors[1]}, data["x_train"], data["y_train"], clean
    )
    evaluation = Evaluation(data)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        default_root_dir=str(directory),
        callbacks=[*monitors, sample_log, evaluation],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    datamodule = TensorDataModule(
        data["x_train"], data["y_train"], data["x_val"], data["y_val"], batch_size=task.batch_size, seed=seed
    )
    begin = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    replay = monitors[0].replay
    run = {
        "task": task.name,
        "architecture": task.architecture,
        "seed": seed,
        "label_noise": task.label_noise,
        "optimizer": task.optimizer,
        "weight_decay": task.weight_decay,
        "seconds": time.perf_counter() - begin,
        "metrics": evaluation.rows,
        "history": [_strip(record) for record in monitors[0].history],
        "train_history": [_strip(record) for record in monitors[1].history],
        "replay": [] if replay is None else [[fit.epoch, fit.s, fit.error] for fit in replay.fits],
        **sample_log.result(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run.json").write_text(json.dumps(run) + "\n")
    return run


def _alert(history: Sequence[dict[str, Any]], gap_rise: float | None, **settings: Any) -> PhaseTracker:
    return replay_tracker(history, PhaseTracker(gap_rise=gap_rise, wait_for_losses=True, **settings))


def _inside(epoch: int | None, window: tuple[int, int] | None) -> bool:
    return epoch is not None and window is not None and window[0] - SLACK <= epoch <= window[1] + SLACK


def evaluate_run(run: dict[str, Any]) -> dict[str, Any]:
    """One run's row: phase 1, onset, alert (this release's rule and the rise alone), the transition
    window, the best epoch, the phase-2 fit error, and where each stopping rule stops."""
    metrics = {row["epoch"]: row for row in run["metrics"]}
    epochs = sorted(metrics)
    window = evaluate_window(run)
    tracker = _alert(run["history"], gap_rise=0.05)
    rise_only = _alert(run["history"], gap_rise=None)
    best = min(epochs, key=lambda e: metrics[e]["val_loss"])
    fits = [EpochFit(*fit) for fit in run["replay"]]
    records = [
        {
            "epoch": record["epoch"],
            "val_loss": metrics[record["epoch"]]["val_loss"],
            "complexity": record["complexity"],
            "overfit_alert": tracker.alert_epoch is not None and record["epoch"] >= tracker.alert_epoch,
        }
        for record in run["history"]
        if record["epoch"] in metrics
    ]
    stops = {}
    for name, make in STOPPING_RULES.items():
        stop = stopped_epoch(make(), records)
        kept_best = min((e for e in epochs if 1 <= e <= stop), key=lambda e: metrics[e]["val_loss"])
        stops[name] = {
            "epoch": stop,
            "val_excess": metrics[stop]["val_loss"] / metrics[best]["val_loss"] - 1,
            "val_excess_checkpoint": metrics[kept_best]["val_loss"] / metrics[best]["val_loss"] - 1,
            "test_loss": metrics[stop]["test_loss"],
            "test_acc": metrics[stop]["test_acc"],
            "checkpoint_epoch": kept_best,
            "test_acc_checkpoint": metrics[kept_best]["test_acc"],
        }

    return {
        "task": run["task"],
        "seed": run["seed"],
        "label_noise": run["label_noise"],
        "phase1_seen": tracker.phase1_seen,
        "phase1_fall": phase1_of(run["history"])["fall"],
        "onset": tracker.onset_epoch,
        "rise": tracker.rise_epoch,
        "alert": tracker.alert_epoch,
        "alert_rise_only": rise_only.alert_epoch,
        "window": window,
        "alert_in_window": _inside(tracker.alert_epoch, window),
        "rise_only_in_window": _inside(rise_only.alert_epoch, window),
        "high_order_share_0": sum(run["history"][0]["shape"][2:]),
        "best_epoch": best,
        "best_val_loss": metrics[best]["val_loss"],
        "best_test_loss": metrics[best]["test_loss"],
        "best_test_acc": metrics[best]["test_acc"],
        "fit_error_phase2": replay_errors(fits, tracker.onset_epoch)[0] if fits else None,
        "stops": stops,
    }


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, spec)
    if isinstance(value, tuple | list):
        return "-".join(str(v) for v in value)
    return str(value)


def alert_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per run: phase 1, onset, rise, alert, the window and whether the alert is in it."""
    header = (
        f"{'task':<12}{'seed':>5}{'share3@0':>9}{'phase 1':>8}{'fall':>6}{'onset':>7}{'rise':>6}{'alert':>7}"
        f"{'window':>9}{'in':>5}{'rise-only':>11}{'in':>5}{'best val':>10}{'fit err p2':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['task']:<12}{r['seed']:>5}{r['high_order_share_0']:>9.3f}{_fmt(r['phase1_seen']):>8}"
            f"{r['phase1_fall']:>6.0%}"
            f"{_fmt(r['onset']):>7}{_fmt(r['rise']):>6}{_fmt(r['alert']):>7}{_fmt(r['window']):>9}"
            f"{_fmt(r['alert_in_window']):>5}{_fmt(r['alert_rise_only']):>11}{_fmt(r['rise_only_in_window']):>5}"
            f"{r['best_epoch']:>10}{_fmt(r['fit_error_phase2']):>12}"
        )
    return "\n".join(lines)


SHORT_NAMES = ("val p5", "val p10", "alert", "cplx p3", "IES p5", "IES p10")


def stops_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per run and rule: the stop epoch and the kept weights' validation loss above the run's best."""
    names = dict(zip(STOPPING_RULES, SHORT_NAMES))
    header = f"{'task':<12}{'seed':>5}" + "".join(f"{names[name]:>13}" for name in STOPPING_RULES)
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = "".join(
            f"{stop['epoch']:>5} {stop['val_excess']:>+6.0%} "
            for stop in (r["stops"][name] for name in STOPPING_RULES)
        )
        lines.append(f"{r['task']:<12}{r['seed']:>5}{cells}")
    return "\n".join(lines)


def _median(stops: Sequence[dict[str, Any]], key: str) -> float:
    return sorted(stop[key] for stop in stops)[len(stops) // 2]


def _accuracy_change(stops: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], key: str) -> float:
    """Mean test accuracy of the kept models minus that of each run's best-validation epoch."""
    return sum(stop[key] - row["best_test_acc"] for stop, row in zip(stops, rows)) / len(stops)


def stopping_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per rule, across runs: how often the kept model is within 5% of the best validation loss."""
    header = (
        f"{'rule':<40}{'within 5%':>10}{'+ckpt':>7}{'val excess':>11}{'+ckpt':>7}"
        f"{'test acc':>9}{'+ckpt':>7}{'epoch':>7}"
    )
    lines = [header, "-" * len(header)]
    for name in STOPPING_RULES:
        stops = [r["stops"][name] for r in rows]
        count = len(stops)

        near = sum(s["val_excess"] <= NEAR_BEST for s in stops)
        near_ckpt = sum(s["val_excess_checkpoint"] <= NEAR_BEST for s in stops)
        excess = _median(stops, "val_excess"), _median(stops, "val_excess_checkpoint")
        accuracy = (
            _accuracy_change(stops, rows, "test_acc"),
            _accuracy_change(stops, rows, "test_acc_checkpoint"),
        )
        lines.append(
            f"{name:<40}{f'{near}/{count}':>10}{f'{near_ckpt}/{count}':>7}{excess[0]:>+11.1%}{excess[1]:>+7.1%}"
            f"{accuracy[0]:>+9.3f}{accuracy[1]:>+7.3f}{int(_median(stops, 'epoch')):>7}"
        )
    return "\n".join(lines)


def sensitivity(runs: Sequence[dict[str, Any]]) -> str:
    """Alerts inside the window for neighbouring settings of the gap rule (gap_rise x gap_patience)."""
    runs = [run for run in runs if run["label_noise"] > 0]
    windows = [evaluate_window(run) for run in runs]
    lines = ["alerts inside the window for other settings, runs with flipped labels (rows: gap_rise;"]
    lines.append("columns: gap_patience 1 2 3):")
    for rise in (0.02, 0.05, 0.10):
        counts = []
        for patience in (1, 2, 3):
            trackers = [_alert(run["history"], rise, gap_patience=patience) for run in runs]
            counts.append(sum(_inside(t.alert_epoch, w) for t, w in zip(trackers, windows)))
        lines.append(f"  {rise:.2f}: " + " ".join(f"{c:>2}/{len(runs)}" for c in counts))
    return "\n".join(lines)


def evaluate_window(run: dict[str, Any]) -> tuple[int, int] | None:
    """The transition window of a run's loss gap (losses on the whole training and validation sets)."""
    rows = sorted(run["metrics"], key=lambda row: row["epoch"])
    return transition_window([r["epoch"] for r in rows], [r["val_loss"] - r["train_loss"] for r in rows])


def verdict(rows: Sequence[dict[str, Any]]) -> str:
    """The alert's hit rate, with and without phase 1, against the rise alone; the control apart."""
    lines = []
    flipped = [r for r in rows if r["label_noise"] > 0]
    for label, part in (
        ("runs with flipped labels", flipped),
        ("with phase 1", [r for r in flipped if r["phase1_seen"]]),
        ("without phase 1", [r for r in flipped if not r["phase1_seen"]]),
        ("clean-label control", [r for r in rows if r["label_noise"] == 0]),
    ):
        if part:
            hits = sum(r["alert_in_window"] for r in part)
            old = sum(r["rise_only_in_window"] for r in part)
            lines.append(
                f"alert inside the transition window +-{SLACK} epochs, {label}: {hits}/{len(part)} "
                f"({hits / len(part):.0%}); the complexity's rise alone (0.1.0.dev rule): {old}/{len(part)}"
            )
    later = sorted(r["best_epoch"] - r["alert"] for r in rows if r["alert"] is not None)
    if later:
        median = later[len(later) // 2]
        lines.append(f"best validation epoch minus alert: {later[0]} to {later[-1]} epochs, median {median}")
    return "\n".join(lines)


def report(runs: Sequence[dict[str, Any]], fit_seeds: Sequence[int] = FIT_SEEDS) -> list[dict[str, Any]]:
    """Evaluate and print the runs; returns the rows."""
    rows = [evaluate_run(run) for run in runs]
    print(alert_table(rows))
    print()
    print(verdict(rows))
    print(sensitivity(runs))
    print()
    print("stopping rules: where each stops and what it keeps. Kept: the weights at the stop, and")
    print("(+ckpt) the best validation checkpoint up to it. within 5%: runs whose kept model's validation")
    print("loss is within 5% of the run's best; val excess: its median excess; test acc: mean difference")
    print("from the test accuracy of the run's best-validation epoch; epoch: the median stop.")
    print(stopping_table(rows))
    print()
    print("per run: the stop epoch and the excess validation loss of the weights there; the rules:")
    for name, short in zip(STOPPING_RULES, SHORT_NAMES):
        print(f"  {short:<8} {name}")
    print(stops_table(rows))
    print()
    print(comparison_report(runs, rows, fit_seeds))
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The suite's options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("study-suite"), help="directory for all runs")
    parser.add_argument("--from", dest="saved", type=Path, default=None, help="evaluate saved runs only")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS), help="tasks")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds")
    parser.add_argument(
        "--fit-seeds", type=int, nargs="+", default=list(FIT_SEEDS), help="seeds the thresholds are chosen on"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU thread each)")
    parser.add_argument("--quick", action="store_true", help="2 epochs of each task, seed 0, 4 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = [0]
    return args


def load_runs(directory: Path) -> list[dict[str, Any]]:
    """The runs saved under ``directory``, in task then seed order."""
    runs = [json.loads(path.read_text()) for path in sorted(directory.glob("*-seed*/run.json"))]
    order = list(TASKS)
    return sorted(
        runs, key=lambda run: (order.index(run["task"]) if run["task"] in order else 99, run["seed"])
    )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Train (or load) the runs, print the tables, and return the rows."""
    args = parse_args(argv)
    if args.saved is not None:
        return report(load_runs(args.saved), args.fit_seeds)
    jobs = [(task, seed) for task in args.tasks for seed in args.seeds]
    runs = []
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = [pool.submit(train_run, task, seed, args.out, args.quick) for task, seed in jobs]
            for future in futures:
                runs.append(future.result())
                print(f"{runs[-1]['task']} seed {runs[-1]['seed']}: {runs[-1]['seconds']:.0f} s", flush=True)
    else:
        for task, seed in jobs:
            runs.append(train_run(task, seed, args.out, args.quick))
            print(f"{runs[-1]['task']} seed {runs[-1]['seed']}: {runs[-1]['seconds']:.0f} s", flush=True)
    rows = report(runs, args.fit_seeds)
    (args.out / "suite.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
