"""Command line: ``lightning-interactions demo`` (or ``python -m lightning_interactions demo``).

``demo`` is a small real run of the engine on scikit-learn's bundled digits (no download): it
trains a small MLP with plain torch (seeded, CPU), measures the AND-OR interactions of the
log-odds of the true class on a few validation images (patch players, baseline zeros) at
initialisation and after training, prints the strength by order, the complexity, the certified
extraction gap and the wall time, and writes ``summary.json`` into ``--out``.

Usage::

    python -m lightning_interactions demo --out demo-run
    python -m lightning_interactions demo --out demo-run --epochs 40 --num-players 8 --threads 1

Example:
    >>> args = build_parser().parse_args(["demo", "--out", "run"])
    >>> args.command, args.epochs, args.num_players
    ('demo', 20, 10)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from lightning_interactions.engine import InteractionResult

__all__ = ["build_parser", "main", "run_demo"]

PROG = "lightning-interactions"


class CliError(Exception):
    """An error to report on stderr with exit status 1, without a traceback."""


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per task (``demo`` for now)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Measure AND-OR interactions of a network and their strength by order."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train a small MLP on scikit-learn's digits and measure its interactions at init and trained",
        description=(
            "Train a small MLP on scikit-learn's bundled digits (plain torch, seeded, CPU), measure the "
            "AND-OR interactions of the log-odds of the true class on validation images at "
            "initialisation and after training, print strength by order, complexity, certified "
            "gap and wall time, and write summary.json into --out."
        ),
    )
    demo.add_argument("--out", required=True, type=Path, help="directory for summary.json (created)")
    demo.add_argument("--epochs", type=_non_negative_int, default=20, help="training epochs (default 20)")
    demo.add_argument(
        "--num-players", type=_positive_int, default=10, help="patch players per image (default 10)"
    )
    demo.add_argument(
        "--num-samples", type=_positive_int, default=16, help="validation images measured (default 16)"
    )
    demo.add_argument(
        "--patch-size", type=_positive_int, default=2, help="patch side in pixels of the 8x8 images"
    )
    demo.add_argument("--hidden", type=_positive_int, default=128, help="width of the two hidden layers")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split, weights, batches and players")
    demo.add_argument(
        "--q-ratio", type=_non_negative_float, default=0.04, help="error box of the extraction (default 0.04)"
    )
    demo.add_argument(
        "--batch-size", type=_positive_int, default=1024, help="masked inputs per forward pass (default 1024)"
    )
    demo.add_argument(
        "--threads", type=_positive_int, default=None, help="torch CPU threads for the run"
    )
    demo.set_defaults(func=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success).

    Example:
        >>> main([])  # no command: the usage goes to stderr
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        args.func(args)
    except CliError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------


def _load_digits(seed: int) -> dict[str, torch.Tensor]:
    """Digits as (N, 1, 8, 8) float32 in [0, 1]; a seeded 70/30 train/validation split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise CliError(
            "the demo needs scikit-learn for its bundled digits data set: pip install scikit-learn "
            "(or pip install 'lightning-interactions[dev]')"
        ) from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.7 * len(labels))
    train, val = order[:cut], order[cut:]
    return {"x_train": images[train], "y_train": labels[train], "x_val": images[val], "y_val": labels[val]}


def _mlp(hidden: int, seed: int) -> torch.nn.Module:
    """A 3-layer MLP 64 -> hidden -> hidden -> 10, initialised from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10),
        )


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def _train(model: torch.nn.Module, data: dict[str, torch.Tensor], epochs: int, lr: float, seed: int) -> float:
    """Plain Adam on cross-entropy, batches of 32 in a seeded order; returns the last epoch's mean loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed + 1)
    x, y = data["x_train"], data["y_train"]
    loss_mean = float("nan")
    model.train()
    for _ in range(epochs):
        total, count = 0.0, 0
        for batch in torch.randperm(len(y), generator=generator).split(32):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(batch), count + len(batch)
        loss_mean = total / count
    model.eval()
    return loss_mean


def _measure(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, players: Any
) -> InteractionResult:
    from lightning_interactions.engine import compute_interactions
    from lightning_interactions.masking import PatchMasker

    masker = PatchMasker(patch_size=args.patch_size, num_players=args.num_players)
    try:
        masker.validate(x)
    except ValueError as error:
        raise CliError(str(error)) from error
    return compute_interactions(
        model,
        x,
        y,
        masker,
        output="log_odds",
        batch_size=args.batch_size,
        q_ratio=args.q_ratio,
        players=players,
        seed=args.seed,
    )


def _row(label: str, values: Sequence[float], width: int = 7) -> str:
    return f"  {label:<16}" + "".join(f"{v:>{width}.3f}" for v in values)


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    """Train, measure at init and trained, print the comparison, write ``summary.json``; return it."""
    previous_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _run_demo(args)
    finally:
        torch.set_num_threads(previous_threads)


def _run_demo(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    import lightning_interactions.engine  # noqa: F401  (imported up front: not part of a measurement's time)
    data = _load_digits(args.seed)
    if args.num_samples > len(data["y_val"]):
        raise CliError(f"--num-samples {args.num_samples} exceeds the {len(data['y_val'])} validation images")
    x_eval, y_eval = data["x_val"][: args.num_samples], data["y_val"][: args.num_samples]
    model = _mlp(args.hidden, args.seed)
    model.eval()
    n = args.num_players
    grid = (8 // args.patch_size) ** 2
    print(
        f"digits: {len(data['y_train'])} train / {len(data['y_val'])} validation images (8x8); "
        f"MLP 64-{args.hidden}-{args.hidden}-10, seed {args.seed}, {torch.get_num_threads()} torch thread(s)"
    )
    print(
        f"measuring: log-odds of the true class on {args.num_samples} validation images, "
        f"{n} players = {args.patch_size}x{args.patch_size} patches (of {grid}) drawn per image, "
        f"baseline zeros, 2^{n} = {2**n} masked inputs per image, q_ratio {args.q_ratio}"
    )

    t0 = time.perf_counter()
    init = _measure(model, x_eval, y_eval, args, players=None)
    t1 = time.perf_counter()
    acc_init = _accuracy(model, data["x_val"], data["y_val"])
    loss = _train(model, data, args.epochs, args.lr, args.seed)
    t2 = time.perf_counter()
    # The same players as at initialisation, so the two measurements compare like with like.
    trained = _measure(model, x_eval, y_eval, args, players=init.players)
    t3 = time.perf_counter()
    acc_train = _accuracy(model, data["x_train"], data["y_train"])
    acc_val = _accuracy(model, data["x_val"], data["y_val"])
    total = time.perf_counter() - start

    print(
        f"training: {args.epochs} epochs of Adam (lr {args.lr}) in {t2 - t1:.2f} s; last epoch loss "
        f"{loss:.4f}; accuracy train {acc_train:.3f}, validation {acc_val:.3f} (at init {acc_init:.3f})"
    )
    print("strength by order, shape A(k) / sum_j A(j):")
    print(f"  {'order k':<16}" + "".join(f"{k:>7d}" for k in range(1, n + 1)))
    print(_row("init", init.shape.tolist()))
    print(_row("trained", trained.shape.tolist()))
    print(f"complexity (mean order): init {init.complexity:.3f} -> trained {trained.complexity:.3f}")
    print(
        f"certified extraction gap, max over samples: init {init.max_gap:.2e}, trained "
        f"{trained.max_gap:.2e}; samples kept: init {init.num_samples}, trained {trained.num_samples} "
        f"of {args.num_samples}"
    )
    for name, result, seconds in (("init", init, t1 - t0), ("trained", trained, t3 - t2)):
        print(
            f"measurement {name}: {seconds:.2f} s (masked forward passes "
            f"{result.timings['forward_s']:.2f} s, extraction {result.timings['extraction_s']:.2f} s)"
        )
    print(f"wall time: {total:.2f} s")

    summary = {
        "command": "demo",
        "epochs": args.epochs,
        "seed": args.seed,
        "num_players": n,
        "num_samples": args.num_samples,
        "patch_size": args.patch_size,
        "hidden": args.hidden,
        "lr": args.lr,
        "q_ratio": args.q_ratio,
        "threads": torch.get_num_threads(),
        "train_size": len(data["y_train"]),
        "val_size": len(data["y_val"]),
        "final_train_loss": loss,
        "accuracy": {"val_init": acc_init, "train": acc_train, "val": acc_val},
        "complexity_init": init.complexity,
        "complexity_trained": trained.complexity,
        "shapes": {"init": init.shape.tolist(), "trained": trained.shape.tolist()},
        "strength": {"init": init.mean_strength.tolist(), "trained": trained.mean_strength.tolist()},
        "max_gap": max(init.max_gap, trained.max_gap),
        "max_gap_by_measurement": {"init": init.max_gap, "trained": trained.max_gap},
        "samples_kept": {"init": init.sample_indices.tolist(), "trained": trained.sample_indices.tolist()},
        "timings": {
            "train_s": t2 - t1,
            "measure_init_s": t1 - t0,
            "measure_trained_s": t3 - t2,
            "measure_init": dict(init.timings),
            "measure_trained": dict(trained.timings),
            "total_s": total,
        },
        "torch_version": torch.__version__,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}")
    return summary
