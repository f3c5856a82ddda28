"""The speed targets as users run the package, measured side by side in one run, as one table.

Three comparisons, each between runs made in this one invocation (ratios, since the machine is
shared and its speed moves):

* **threads**: ``and_or_interactions`` on 16 samples of a trained digits MLP at n = 10, at the
  default thread settings (the extraction pins its own threads) against one thread
  (``OMP_NUM_THREADS=1``), each in fresh child processes, idle and beside a busy process
  (``bench_threads.py``). Targets: at most 1.3x idle, 1.5x beside the busy process.
* **monitor**: the monitor's time beyond its measurements against the measurements on a 20-epoch
  digits run with a ``TensorBoardLogger``, at the default thread settings and at one thread
  (``bench_overhead.py``). Target: at most 0.5x.
* **top of the range**: the extraction of 4 samples of the trained MLP at n = 14 against n = 12,
  at one thread and at the defaults, every sample certified within 1% (``bench_scaling.py
  --ratio``). Target: at most 6.25x.

Exit status 1 if any target fails. Takes about 5 minutes on an idle 2-core CPU.

Run::

    .venv/bin/python benchmarks/bench_targets.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead  # noqa: E402 (the benchmarks beside this one)
import bench_scaling  # noqa: E402
import bench_threads  # noqa: E402

Row = tuple[str, str, str, float, float]  # what, setting, measured, ratio, limit


def threads_rows(repeats: int) -> list[Row]:
    """Defaults (as shipped) against one thread, idle and beside one busy process."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "values.pt"
        bench_threads.make_values("mlp", 10, path)
        for label, limit, busy in (("idle", 1.3, False), ("beside a busy process", 1.5, True)):
            stop = multiprocessing.Event()
            spinner = multiprocessing.Process(target=bench_threads.spin, args=(stop,), daemon=True)
            if busy:
                spinner.start()
            try:
                times: dict[str, list[float]] = {"one thread": [], "defaults, as shipped": []}
                for _ in range(repeats):
                    for name in times:  # in turn, so that noise hits both alike
                        times[name].extend(bench_threads.run_setting(name, path, calls=2)["seconds"])
            finally:
                stop.set()
                if busy:
                    spinner.join()
            one, shipped = (statistics.median(times[name]) for name in times)
            measured = f"{shipped:.2f} s against {one:.2f} s"
            rows.append(
                (
                    "extraction, n = 10, 16 samples",
                    f"defaults vs one thread, {label}",
                    measured,
                    shipped / one,
                    limit,
                )
            )
    return rows


def monitor_rows(repeats: int) -> list[Row]:
    """The monitor's time beyond its measurements against them, at the defaults and at one thread."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = []
    for name, threads in (("defaults", None), ("one thread", 1)):
        got = bench_overhead.measure(20, repeats, threads)
        measured = f"beyond {got['beyond']:.2f} s, measurements {got['measurements']:.2f} s"
        rows.append(("monitor, digits MLP, 20 epochs", name, measured, got["ratio"], bench_overhead.TARGET))
    return rows


def scaling_rows(repeats: int) -> tuple[list[Row], list[str]]:
    """n = 14 against n = 12, and the runs whose samples were not certified within tol."""
    args = bench_scaling._parse(["--ratio", "--repeats", str(repeats)])
    runs = bench_scaling.ratio_runs(args, epochs=20)
    if runs is None:
        return [
            ("extraction, n = 14 vs 12, 4 samples", "a child failed", "see above", float("inf"), 6.25)
        ], []
    rows = []
    for threads, name in bench_scaling.RATIO_SETTINGS.items():
        small, large = (statistics.median(runs["times"][threads, n]) for n in bench_scaling.RATIO_NS)
        measured = f"{large:.2f} s against {small:.2f} s"
        rows.append(
            ("extraction, n = 14 vs 12, 4 samples", name, measured, large / small, bench_scaling.TARGET_RATIO)
        )
    return rows, runs["uncertified"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting (medians)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"load average {load} on {os.cpu_count()} CPUs; torch {torch.__version__}; medians of {args.repeats}"
    )
    rows = threads_rows(args.repeats) + monitor_rows(args.repeats)
    scaling, uncertified = scaling_rows(args.repeats)
    rows += scaling
    print("\n| what | setting | measured | ratio | target | |")
    print("|---|---|---|---|---|---|")
    passed = not uncertified
    for what, setting, measured, ratio, limit in rows:
        ok = ratio <= limit
        passed &= ok
        print(
            f"| {what} | {setting} | {measured} | {ratio:.2f}x | <= {limit:g}x | {'PASS' if ok else 'FAIL'} |"
        )
    print(f"\nevery sample certified within 1% at n = 12 and 14: {'yes' if not uncertified else uncertified}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
