"""Command line: ``lightning-interactions demo | report | analyze`` (or ``python -m lightning_interactions``).

This module only parses and dispatches: the demo lives in :mod:`lightning_interactions.demos.demo`,
``report`` and ``analyze`` in :mod:`lightning_interactions.reporting`.

* ``demo --out DIR``: train a small MLP on scikit-learn's digits with ``InteractionMonitor`` in a
  setting that over-fits; write TensorBoard logs, the report PNG and ``summary.json`` into DIR.
* ``report LOGDIR [--out DIR]``: re-render the figures and summary of a monitored run from the
  ``interaction_history.jsonl`` found under LOGDIR, into LOGDIR itself unless ``--out`` is given.
* ``analyze --checkpoints DIR --out DIR2``: measure a run trained without the monitor from its
  saved checkpoints, with the same figures and summary.

The console script and ``python -m lightning_interactions`` behave the same: ``--module
pkg.mod:Class`` is imported from the current directory in both. Every help text shows the
option's default; ``--version`` prints the package's version.

Usage::

    python -m lightning_interactions demo --out demo-run
    python -m lightning_interactions report demo-run
    python -m lightning_interactions analyze --checkpoints run/checkpoints --out run-analysis

Example:
    >>> args = build_parser().parse_args(["demo", "--out", "run"])
    >>> args.command, args.epochs, args.num_players
    ('demo', 50, 8)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

PROG = "lightning-interactions"


class CliError(Exception):
    """An error to report on stderr with exit status 1, without a traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless it has none (None, a flag) or says it.

    Example:
        >>> parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
        >>> _ = parser.add_argument("--epochs", type=int, default=50, help="training epochs")
        >>> _ = parser.add_argument("--out", required=True, help="output directory")
        >>> [" ".join(line.split()) for line in parser.format_help().splitlines() if "--" in line][-2:]
        ['--epochs EPOCHS training epochs (default: 50)', '--out OUT output directory']
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def _add_measure_options(parser: argparse.ArgumentParser, num_samples: int = 16) -> None:
    parser.add_argument(
        "--num-players", type=_positive_int, default=8, help="patch players per image"
    )
    parser.add_argument(
        "--num-samples",
        type=_positive_int,
        default=num_samples,
        help="validation images measured",
    )
    parser.add_argument(
        "--patch-size", type=_positive_int, default=2, help="patch side in pixels of the 8x8 images"
    )
    parser.add_argument(
        "--q-ratio", type=_non_negative_float, default=0.04, help="error box of the extraction"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, samples and players")


def _add_digits_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train-size", type=_positive_int, default=300, help="training digits"
    )
    parser.add_argument(
        "--val-size", type=_positive_int, default=500, help="validation digits"
    )
    parser.add_argument(
        "--label-noise",
        type=_fraction,
        default=0.25,
        help="fraction of training labels replaced by another class",
    )


def _command(commands: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    return commands.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def _add_demo(commands: Any) -> None:
    demo = _command(
        commands,
        "demo",
        help="train a small MLP on digits with InteractionMonitor and write its report",
        description=(
            "Train a small MLP on scikit-learn's bundled digits (a small training set with random "
            "labels, so that it over-fits) with InteractionMonitor under Lightning, on CPU, seeded. "
            "Writes TensorBoard logs, the report PNG, summary.md and summary.json into --out and "
            "prints the phase-2 onset, the loss-gap minimum and the theory fit error."
        ),
    )
    demo.add_argument("--out", required=True, type=Path, help="directory for logs and report (created)")
    demo.add_argument("--epochs", type=_positive_int, default=50, help="training epochs")
    _add_measure_options(demo)
    _add_digits_options(demo)
    demo.add_argument("--hidden", type=_positive_int, default=256, help="width of the two hidden layers")
    demo.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="optimiser")
    demo.add_argument("--lr", type=float, default=None, help="learning rate (default: adam 1e-3, sgd 1e-2)")
    demo.add_argument("--batch-size", type=_positive_int, default=32, help="training batch size")
    demo.add_argument(
        "--threads", type=_positive_int, default=1, help="torch CPU threads for the run"
    )
    demo.add_argument(
        "--logger",
        action="append",
        choices=("csv", "mlflow", "wandb"),
        default=[],
        help="also log to this logger (repeatable): csv, mlflow (sqlite in OUT), wandb (offline, in OUT)",
    )
    demo.add_argument(
        "--save-checkpoints",
        action="store_true",
        help="also save the MLP's state dict after every epoch under OUT/checkpoints (for analyze)",
    )
    demo.set_defaults(func=_run_demo)


def _add_report(commands: Any) -> None:
    report = _command(
        commands,
        "report",
        help="re-render the figures and summary of a monitored run from its history file",
        description=(
            "Find interaction_history.jsonl under LOGDIR (recursively; the newest if several), and "
            "write the report PNG, summary.md and summary.json into LOGDIR (the folder given, not "
            "the one deep inside it that holds the history), or into --out. LOGDIR may also be the "
            "history file itself; then they go next to it. The reference replay uses "
            "interaction_reference.pt next to the history when present."
        ),
    )
    report.add_argument("logdir", type=Path, help="log directory of a run trained with InteractionMonitor")
    report.add_argument("--out", type=Path, default=None, help="output directory (default: LOGDIR itself)")
    report.set_defaults(func=_run_report)


def _add_analyze(commands: Any) -> None:
    analyze = _command(
        commands,
        "analyze",
        help="measure the interaction dynamics of saved checkpoints (a run without the monitor)",
        description=(
            "Load every checkpoint (.pt, .pth, .ckpt) of --checkpoints in epoch order (the epoch is "
            "read from 'epoch=N' in the file name), measure its interactions on the same samples "
            "and players, and write the history, the report PNG, summary.md and summary.json into "
            "--out. Without --module the checkpoints are state dicts of the demo's MLP and the "
            "samples are the demo's digits split, drawn as the monitor draws them; the losses are "
            "then those of each checkpoint on the whole training (noisy labels) and validation "
            "sets, in eval mode (Lightning's train_loss is instead the mean over the epoch's "
            "batches). --samples takes images from a file saved with torch.save((inputs, "
            "targets)); --module a model class, loaded with load_from_checkpoint for .ckpt files "
            "and constructed without arguments for state dicts. Epoch numbers are read from the "
            "file names as they are."
        ),
    )
    analyze.add_argument("--checkpoints", required=True, type=Path, help="directory of checkpoints")
    analyze.add_argument("--out", required=True, type=Path, help="output directory (created)")
    analyze.add_argument(
        "--module",
        default=None,
        help=(
            "package.module:ClassName of the model (LightningModule .ckpt or state dicts), imported "
            "from the current directory as python -m does (default: the demo's MLP)"
        ),
    )
    analyze.add_argument(
        "--samples",
        type=Path,
        default=None,
        help="torch.save'd (inputs, targets) images (default: the demo's digits split)",
    )
    _add_measure_options(analyze)
    _add_digits_options(analyze)
    analyze.set_defaults(func=_run_analyze)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: subcommands ``demo``, ``report`` and ``analyze``."""
    from lightning_interactions import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure AND-OR interactions of a network and their strength by order.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(commands)
    _add_report(commands)
    _add_analyze(commands)
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
# Dispatch
# ---------------------------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> dict[str, Any]:
    from lightning_interactions.demos.demo import DemoError, DemoSettings, run_demo

    lr = args.lr if args.lr is not None else (1e-3 if args.optimizer == "adam" else 1e-2)
    settings = DemoSettings(
        out=args.out,
        epochs=args.epochs,
        num_players=args.num_players,
        num_samples=args.num_samples,
        patch_size=args.patch_size,
        train_size=args.train_size,
        val_size=args.val_size,
        label_noise=args.label_noise,
        hidden=args.hidden,
        optimizer=args.optimizer,
        lr=lr,
        batch_size=args.batch_size,
        seed=args.seed,
        q_ratio=args.q_ratio,
        threads=args.threads,
        save_checkpoints=args.save_checkpoints,
        loggers=("tensorboard", *args.logger),
    )
    try:
        return run_demo(settings)
    except DemoError as error:
        raise CliError(str(error)) from error


def _run_report(args: argparse.Namespace) -> dict[str, Any]:
    from lightning_interactions.reporting.report_command import report_run
    from lightning_interactions.reporting.run_report import OfflineError
    from lightning_interactions.reporting.summary import format_summary

    try:
        summary = report_run(args.logdir, args.out)
    except OfflineError as error:
        raise CliError(str(error)) from error
    print(format_summary(summary))
    return summary


def _run_analyze(args: argparse.Namespace) -> dict[str, Any]:
    from lightning_interactions.demos import sources
    from lightning_interactions.demos.demo import DemoError
    from lightning_interactions.masking import PatchMasker
    from lightning_interactions.reporting import analyze
    from lightning_interactions.reporting.run_report import OfflineError
    from lightning_interactions.reporting.summary import format_summary

    try:
        if args.module:
            _import_from_current_directory()
        load = analyze.module_loader(args.module) if args.module else sources.load_demo_mlp
        losses = None
        if args.samples is not None:
            inputs, targets = analyze.samples_source(args.samples, args.num_samples, args.seed)
        else:
            inputs, targets, losses = sources.digits_source(
                args.num_samples, args.seed, args.train_size, args.val_size, args.label_noise
            )
        masker = PatchMasker(patch_size=args.patch_size, num_players=args.num_players)
        summary = analyze.analyze_checkpoints(
            args.checkpoints,
            args.out,
            load,
            inputs,
            targets,
            masker,
            losses=losses,
            q_ratio=args.q_ratio,
            seed=args.seed,
        )
    except (OfflineError, DemoError, ValueError) as error:
        raise CliError(str(error)) from error
    print(format_summary(summary))
    return summary


def _import_from_current_directory() -> None:
    """Put the current directory first on ``sys.path`` if it is not there, as ``python -m`` does.

    The console script's ``sys.path`` starts with the script's own folder instead, so without this
    ``--module mypkg.model:Net`` would import from the current directory only under ``python -m``.
    """
    here = os.getcwd()
    if not any(os.path.abspath(entry or os.curdir) == here for entry in sys.path):
        sys.path.insert(0, here)
