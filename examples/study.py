"""How robust is the over-fitting onset across runs and optimisers? The demo over seeds and optimisers.

Repeats the demo (``lightning_interactions.demos.demo``: an MLP on 300 digits with 25% random labels,
watched by ``InteractionMonitor``) for every seed and optimiser, and prints one row per run: the
phase-2 onset (complexity minimum), the alert epoch, the epoch of the smallest loss gap
(validation minus training loss), its transition window (``analysis.transition``) and whether
the alert fell inside it (+-2 epochs), the epochs of the lowest validation and held-out test loss,
and the mean reference-mode fit error over phase 2. The rows go to ``OUT/study.json`` too; each
run's logs and report are in ``OUT/<optimiser>-seed<k>``.

Run: .venv/bin/python examples/study.py --out study-runs
     .venv/bin/python examples/study.py --out study-runs --seeds 0 1 2 --optimizers sgd adam
     .venv/bin/python examples/study.py --quick   # one short run (seed 0, Adam, 3 epochs)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_interactions.analysis.transition import transition_window
from lightning_interactions.demos.demo import DemoSettings, run_demo

LEARNING_RATES = {"adam": 1e-3, "sgd": 5e-2}
COLUMNS = (
    ("optimizer", "{:<10}"),
    ("seed", "{:>4}"),
    ("onset", "{:>6}"),
    ("alert", "{:>6}"),
    ("gap min", "{:>8}"),
    ("window", "{:>8}"),
    ("in", "{:>4}"),
    ("val min", "{:>8}"),
    ("test min", "{:>9}"),
    ("fit err p2", "{:>11}"),
    ("wall s", "{:>7}"),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The study's options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("study-runs"), help="directory for all runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds")
    parser.add_argument(
        "--optimizers", nargs="+", choices=sorted(LEARNING_RATES), default=["sgd", "adam"], help="optimisers"
    )
    parser.add_argument("--epochs", type=int, default=50, help="epochs per run")
    parser.add_argument("--sgd-lr", type=float, default=LEARNING_RATES["sgd"], help="SGD learning rate")
    parser.add_argument("--adam-lr", type=float, default=LEARNING_RATES["adam"], help="Adam learning rate")
    parser.add_argument("--num-players", type=int, default=8, help="players per image")
    parser.add_argument("--samples", type=int, default=16, help="validation images measured per run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    quick = "one short run that shows the pipeline works: seed 0, Adam, 3 epochs, 4 samples of 6 players"
    parser.add_argument("--quick", action="store_true", help=quick)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.optimizers, args.epochs, args.samples, args.num_players = [0], ["adam"], 3, 4, 6
    return args


def run_one(args: argparse.Namespace, optimizer: str, seed: int) -> dict[str, Any]:
    """One demo run; returns its row of the table."""
    lr = args.sgd_lr if optimizer == "sgd" else args.adam_lr
    settings = DemoSettings(
        out=args.out / f"{optimizer}-seed{seed}",
        epochs=args.epochs,
        num_players=args.num_players,
        num_samples=args.samples,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        threads=args.threads,
        quiet=True,
    )
    begin = time.perf_counter()
    summary = run_demo(settings)
    window = loss_gap_window(summary)
    alert = summary["alert_epoch"]
    return {
        "optimizer": optimizer,
        "lr": lr,
        "seed": seed,
        "onset": summary["onset_epoch"],
        "alert": summary["alert_epoch"],
        "gap min": summary["loss_gap_min_epoch"],
        "window": None if window is None else f"{window[0]}-{window[1]}",
        "in": None
        if window is None or alert is None
        else ("yes" if window[0] - 2 <= alert <= window[1] + 2 else "no"),
        "val min": summary["val_loss_min_epoch"],
        "test min": summary["test_loss_min_epoch"],
        "fit err p2": summary["theory_error_phase2"],
        "wall s": time.perf_counter() - begin,
    }


def loss_gap_window(summary: dict[str, Any]) -> tuple[int, int] | None:
    """The transition window of the run's loss gap (``analysis.transition``), from the logged losses."""
    epochs = [
        e
        for e in summary["epochs"]
        if summary["train_loss"].get(e) is not None and summary["val_loss"].get(e) is not None
    ]
    gaps = [summary["val_loss"][e] - summary["train_loss"][e] for e in epochs]
    return transition_window(epochs, gaps)


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return spec.format("-")
    if isinstance(value, float):
        return spec.format(f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}")
    return spec.format(str(value))


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table."""
    header = "".join(spec.format(name) for name, spec in COLUMNS)
    lines = [header, "-" * len(header)]
    lines += ["".join(_cell(row[name], spec) for name, spec in COLUMNS) for row in rows]
    return "\n".join(lines)


def verdict(rows: Sequence[dict[str, Any]]) -> str:
    """How many runs meet the study's two criteria: the alert inside the loss gap's transition window
    (widened by 2 epochs each side), and a phase-2 fit error of at most 0.10."""
    inside = [r for r in rows if r["in"] == "yes"]
    fitted = [r for r in rows if r["fit err p2"] is not None and r["fit err p2"] <= 0.10]
    alerts = [r for r in rows if r["alert"] is not None]
    return (
        f"alert fired in {len(alerts)}/{len(rows)} runs; inside the transition window +-2 epochs in "
        f"{len(inside)}/{len(rows)}; phase-2 fit error <= 0.10 in {len(fitted)}/{len(rows)}"
    )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the study, print the table and a one-line verdict, write ``study.json``."""
    args = parse_args(argv)
    rows = []
    for optimizer in args.optimizers:
        for seed in args.seeds:
            rows.append(run_one(args, optimizer, seed))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    print(verdict(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "study.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
