"""The extraction at the machine's default thread settings against one thread, idle and beside a busy process.

Users run with the defaults: torch's OpenMP pool and the OpenBLAS pools of SciPy and NumPy each
take every core. The package's tables were measured with one thread (``OMP_NUM_THREADS=1``).
This script times ``and_or_interactions`` on the same values under each setting, every setting in
a fresh child process (so that "defaults" are a new process's defaults), the settings taken in
turn at every repeat so that machine noise hits them alike, and prints each one's median against
the one-thread time of the same block:

* ``one thread``: ``OMP_NUM_THREADS=1`` and ``OPENBLAS_NUM_THREADS=1``, as the tables were measured;
* ``defaults, as shipped``: no setting; the extraction pins its own threads
  (``extraction/_threads.py``, ``EXTRACTION_THREADS``);
* ``defaults, uncontrolled``: no setting, and ``EXTRACTION_THREADS = None`` (the extraction
  before it controlled its threads);
* ``defaults, 2 threads``: the extraction pinned to 2 threads in each pool;
* ``defaults, torch Cholesky``: as shipped, but with torch's Cholesky instead of SciPy's.

With ``--busy`` the same block runs again beside a process that keeps one core busy.

Values: 16 samples of a trained digits MLP at n = 10 (the extraction benchmark's), and 16 planted
sparse vectors at n = 10 (``--values planted``).

Run::

    .venv/bin/python benchmarks/bench_threads.py            # idle and busy blocks, 3 repeats (~6-10 min)
    .venv/bin/python benchmarks/bench_threads.py --quick    # n = 8, idle only, 2 repeats (~1 min)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "one thread": {"env": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, "threads": "none"},
    "defaults, as shipped": {"env": {}, "threads": "shipped"},
    "defaults, uncontrolled": {"env": {}, "threads": "none"},
    "defaults, 2 threads": {"env": {}, "threads": "2"},
    "defaults, torch Cholesky": {"env": {}, "threads": "shipped", "torch_cholesky": True},
}
BASELINE = "one thread"


def make_values(kind: str, n: int, path: Path) -> None:
    """Write the benchmark's values ``(16, 2^n)`` float64 to ``path`` (made once, in this process)."""
    import torch

    sys.path.insert(0, str(HERE))
    if kind == "mlp":
        from bench_extraction import trained_digits_mlp, values_on_masks

        model, images, targets = trained_digits_mlp()
        values = values_on_masks(model, images, targets, n)
    else:
        from lightning_interactions.extraction.transforms import inverse_and_interactions

        generator = torch.Generator().manual_seed(0)
        dividends = torch.zeros(16, 2**n, dtype=torch.float64)
        for row in range(16):
            chosen = torch.randperm(2**n - 1, generator=generator)[:6] + 1
            dividends[row, chosen] = torch.randn(6, generator=generator, dtype=torch.float64) * 2
        values = inverse_and_interactions(dividends) + 0.02 * torch.randn(
            16, 2**n, generator=generator, dtype=torch.float64
        )
    torch.save(values, path)


def child(path: str, threads: str, torch_cholesky: bool, calls: int) -> None:
    """Time ``calls`` extractions of the saved values after one warm-up; print JSON."""
    import torch

    import lightning_interactions.extraction._cholesky as cholesky
    import lightning_interactions.extraction._threads as threads_module
    from lightning_interactions.extraction.and_or import and_or_interactions

    if threads == "none":
        threads_module.EXTRACTION_THREADS = None
    elif threads != "shipped":
        threads_module.EXTRACTION_THREADS = int(threads)
    if torch_cholesky:
        cholesky._dpotrf = None
    values = torch.load(path)
    and_or_interactions(values)  # warm-up: allocator, libraries, thread pools
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = and_or_interactions(values)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": times, "gap": float(result.gap.max()), "threads": torch.get_num_threads()}))


def run_setting(name: str, path: Path, calls: int) -> dict:
    setting = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env.update(setting["env"])
    command = [sys.executable, __file__, "--child", str(path), setting["threads"], str(calls)]
    if setting.get("torch_cholesky"):
        command.append("--torch-cholesky")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spin(stop: multiprocessing.synchronize.Event) -> None:
    """Keep one core busy until told to stop (a second job on the machine)."""
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run_block(label: str, path: Path, repeats: int, calls: int) -> None:
    samples: dict[str, list[float]] = {name: [] for name in SETTINGS}
    gaps: dict[str, float] = {}
    for _ in range(repeats):
        for name in SETTINGS:  # in turn, so that noise hits every setting alike
            measured = run_setting(name, path, calls)
            samples[name].extend(measured["seconds"])
            gaps[name] = max(gaps.get(name, 0.0), measured["gap"])
    base = statistics.median(samples[BASELINE])
    print(f"\n{label}: median of {repeats} x {calls} calls per setting")
    print(f"{'setting':<26} | {'median':>8} | {'vs one thread':>13} | {'largest gap':>11} | all (s)")
    for name, times in samples.items():
        median = statistics.median(times)
        spread = " ".join(f"{t:.2f}" for t in times)
        print(f"{name:<26} | {median:7.2f}s | {median / base:12.2f}x | {gaps[name]:11.4f} | {spread}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", choices=("mlp", "planted"), default="mlp")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per child process")
    parser.add_argument("--no-busy", action="store_true", help="skip the block beside a busy process")
    parser.add_argument("--quick", action="store_true", help="n = 8, 2 repeats, idle only")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.calls, args.no_busy = 8, 2, 1, True
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs; values: {args.values}, 16 samples at n = {args.n}")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_threads_{os.getpid()}.pt"
    make_values(args.values, args.n, path)
    try:
        run_block("idle", path, args.repeats, args.calls)
        if not args.no_busy:
            stop = multiprocessing.Event()
            busy = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
            busy.start()
            try:
                run_block("beside one busy process", path, args.repeats, args.calls)
            finally:
                stop.set()
                busy.join()
    finally:
        path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], "--torch-cholesky" in sys.argv, int(sys.argv[4]))
    else:
        sys.exit(main())
