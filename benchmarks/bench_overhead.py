"""Benchmark: the monitor's time beyond its measurements, on a 20-epoch digits run, against the measurements.

A monitored fit costs the training itself, the measurements (forward passes and extraction,
each record's ``seconds``) and everything else the monitor does: records, theory fits, the
history file, the loggers, the figures and the work at fit end. This script times the same
seeded fit (the demo's MLP, data and validation monitor, a ``TensorBoardLogger``, the Trainer of
``bench_monitor.fit``) without and with the monitor, in alternation, and prints

    beyond = (fit with monitor) - (fit without) - (sum of the measurements' seconds)

against the measurements, at the default thread settings and at one thread (torch and BLAS).
Target: beyond at most 0.5x the measurements (PASS / FAIL; exit status 1 on a FAIL).

Run::

    .venv/bin/python benchmarks/bench_overhead.py             # 3 repeats per setting (~3-4 min)
    .venv/bin/python benchmarks/bench_overhead.py --repeats 1 --epochs 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_monitor import digits_case, fit  # noqa: E402 (the benchmarks' shared Trainer and case)

TARGET = 0.5


def one_fit(epochs: int, monitored: bool, out: str) -> tuple[float, float]:
    """``(wall seconds of the fit, seconds of its measurements)``."""
    case = digits_case(epochs)
    monitor = case.monitor() if monitored else None
    start = time.perf_counter()
    fit(case, [monitor] if monitor else [], out, "monitored" if monitored else "bare")
    wall = time.perf_counter() - start
    if monitor is None:
        return wall, 0.0
    return wall, sum(float(record["seconds"]) for record in monitor.history)


def measure(epochs: int, repeats: int, threads: int | None) -> dict[str, float]:
    """Medians over ``repeats`` of the bare fit, the monitored fit and its measurements."""
    bare, full, measurements = [], [], []
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        # limits=None sets nothing: the BLAS pools keep their defaults.
        with threadpool_limits(limits=threads), tempfile.TemporaryDirectory() as out:
            for _ in range(repeats):
                bare.append(one_fit(epochs, False, out)[0])
                wall, seconds = one_fit(epochs, True, out)
                full.append(wall)
                measurements.append(seconds)
    finally:
        torch.set_num_threads(previous)
    # Each monitored fit against the bare fit just before it: the machine's speed drifts less within a pair.
    beyond = [full[i] - bare[i] - measurements[i] for i in range(repeats)]
    result = {
        "bare": statistics.median(bare),
        "monitored": statistics.median(full),
        "measurements": statistics.median(measurements),
        "beyond": statistics.median(beyond),
    }
    result["ratio"] = statistics.median(b / m for b, m in zip(beyond, measurements))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"digits MLP, {args.epochs} epochs, median of {args.repeats}; torch {torch.__version__}")
    print(f"{'threads':<22}{'bare fit':>10}{'monitored':>11}{'measure':>10}{'beyond':>9}{'ratio':>8}  target")
    passed = True
    settings = (("defaults", None), ("one thread", 1))
    for name, threads in settings:
        row = measure(args.epochs, args.repeats, threads)
        label = f"{name} ({torch.get_num_threads() if threads is None else threads})"
        ok = row["ratio"] <= TARGET
        passed &= ok
        print(
            f"{label:<22}{row['bare']:>9.2f}s{row['monitored']:>10.2f}s{row['measurements']:>9.2f}s"
            f"{row['beyond']:>8.2f}s{row['ratio']:>7.2f}x  <= {TARGET}x {'PASS' if ok else 'FAIL'}",
            flush=True,
        )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
