"""Benchmark: how time and peak memory grow with the number of players n, stage by stage.

For n = 8 .. 16 players (``--quick``: 8 .. 12) and a fixed small model, the digits MLP on 1x8x8
images (64 -> 128 -> 128 -> 10, trained for a few seconds on scikit-learn's digits; players are
n of the 16 2x2 patches, output the log-odds of the true class), it measures on ``--samples``
held-out images (default 4):

* ``forward``: :func:`lightning_interactions.engine.compute.masked_outputs`, the ``samples * 2^n``
  masked forward passes;
* ``transforms``: :func:`~lightning_interactions.extraction.transforms.and_interactions` and
  :func:`~lightning_interactions.extraction.transforms.or_interactions` of those values (one call each);
* ``extraction``: :func:`lightning_interactions.extraction.and_or.and_or_interactions` of the same values
  (column generation over an interior-point master, to a certified gap of 1%).

Each stage at each n runs in a fresh child process (torch pinned to ``--threads``): it warms up
on a 4-player problem, resets the kernel's peak resident size of the process
(``/proc/self/clear_refs``, Linux), runs the stage once and reports the peak resident memory
above the resident size just before the call, then repeats the call (until ``--min-seconds``,
at most 5 times) for a median time. A fresh process is needed because memory freed by an
earlier stage and kept by the allocator would be reused unseen. This is resident memory of the
whole process, so it counts torch's CPU allocations and everything else. Where ``clear_refs``
is not available, it falls back to ``ru_maxrss`` minus the resident size before the call.

Every time is also divided by ``n * 2^n``: a column that stays flat means O(n 2^n). At the end
the exponent ``k`` of ``time ~ (n 2^n)^k`` is fitted per stage over the five largest sizes it
measured, none below n = 10 (below that, fixed costs dominate), with the growth of time and peak
memory per extra player over the same sizes. The forward passes are O(2^n) by nature (``2^n`` inputs per
sample), so their column falls like ``1/n``.

Extraction can be slow at the largest n: each extraction child is stopped after
``--extraction-max-s`` seconds, and a size whose time extrapolated from the two sizes before it
exceeds that cap is skipped; the output says which.

``--ratio`` measures only the extraction at n = 14 against n = 12 on the same trained model and
samples: child processes in turn (n = 12, then 14; one thread, then the machine's default thread
settings; ``--repeats`` times), the median time of each, their ratio with PASS / FAIL against
6.25x at each setting, and whether every sample of every run is certified within tol (1%).

``--targets`` then checks issue 14's targets for the trained network: the extraction's growth per
player over n = 10..14 (from the table) at most x2.5, and in a second setup of 16 held-out
samples the extraction at n = 12 within 6 s and at n = 14 within 2 GiB of peak memory (PASS / FAIL).

Run:
    .venv/bin/python benchmarks/bench_scaling.py             # n = 8 .. 16, 1 thread
    .venv/bin/python benchmarks/bench_scaling.py --quick     # n = 8 .. 12
    .venv/bin/python benchmarks/bench_scaling.py --threads 2 [--samples 4] [--extraction-max-s 300]
    .venv/bin/python benchmarks/bench_scaling.py --min-n 10 --max-n 14 --targets   # issue 14
    .venv/bin/python benchmarks/bench_scaling.py --ratio [--repeats 3]   # n = 14 against n = 12
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

# The package is imported by the child processes only, each the part its stage needs: the engine
# pulls in torchmetrics and scipy (seconds of import on a loaded machine), the transforms do not.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

STAGES = ("forward", "transforms", "extraction")
MAX_REPEATS = 5
FIT_FROM_N = 10
MiB = 2**20


# ---------------------------------------------------------------------------------------------
# The model and its data
# ---------------------------------------------------------------------------------------------


def digits_mlp() -> nn.Module:
    """The 3-layer MLP on 1x8x8 images used throughout the benchmarks."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def prepare(path: str, samples: int, epochs: int, seed: int = 0) -> str:
    """Train the MLP on digits, save it and the held-out samples; return a one-line description.

    With ``epochs=0`` (or without scikit-learn) the model keeps its random weights and the images
    are random in the digits' range [0, 1] (no scikit-learn import, which takes seconds).
    """
    torch.manual_seed(seed)
    model = digits_mlp()
    images, targets = torch.rand(1400, 1, 8, 8), torch.randint(0, 10, (1400,))
    source = "random images"
    if epochs > 0:
        try:
            from sklearn.datasets import load_digits

            features, labels = load_digits(return_X_y=True)
            images = torch.tensor(features / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
            targets = torch.tensor(labels)
            source = "scikit-learn digits"
        except ImportError:
            source, epochs = "random images (scikit-learn missing)", 0
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = 1200
    for _ in range(epochs):
        order = torch.randperm(train)
        for start in range(0, train, 64):
            batch = order[start : start + 64]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), targets[batch]).backward()
            optimiser.step()
    model.eval()
    held_out = slice(train + 100, train + 100 + samples)  # after the training images
    torch.save({"state": model.state_dict(), "images": images[held_out], "targets": targets[held_out]}, path)
    trained = f"trained {epochs} epochs" if epochs else "untrained (random weights)"
    return f"MLP 64-128-128-10 ({trained}), {samples} held-out samples from {source}"


# ---------------------------------------------------------------------------------------------
# Child process: one stage at one n
# ---------------------------------------------------------------------------------------------


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _peak_meter():
    """Reset the peak resident size; return ``(resident before, function giving the peak now)``."""
    try:  # Linux: writing 5 to clear_refs sets VmHWM (the peak) back to the current VmRSS
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return _status_bytes("VmRSS"), lambda: _status_bytes("VmHWM")
    except OSError:  # the process-lifetime peak; only the import is before, so still close
        try:
            before = _status_bytes("VmRSS")
        except (OSError, KeyError):
            before = 0
        factor = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return before, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * factor


def run_stage(stage: str, n: int, workdir: str, batch_size: int, min_seconds: float) -> dict:
    """Time one stage at ``n`` in this process and measure its peak memory; return a JSON-able dict."""
    data = torch.load(os.path.join(workdir, "setup.pt"), weights_only=True)
    model = digits_mlp()
    model.load_state_dict(data["state"])
    model.eval()
    images, targets = data["images"], data["targets"]
    values_path = os.path.join(workdir, f"v_{n}.pt")

    def forward(players: int) -> torch.Tensor:
        from lightning_interactions.engine.compute import masked_outputs
        from lightning_interactions.masking import PatchMasker

        masker = PatchMasker(patch_size=2, num_players=players)
        return masked_outputs(
            model, images, targets, masker=masker, output="log_odds", batch_size=batch_size, seed=0
        )

    if stage == "forward":
        work, warm_up = (lambda: forward(n)), (lambda: forward(4))
    else:
        v = torch.load(values_path, weights_only=True)
        small = torch.randn(v.shape[0], 16, dtype=v.dtype, generator=torch.Generator().manual_seed(0))
        if stage == "transforms":
            from lightning_interactions.extraction.transforms import and_interactions, or_interactions

            work = lambda: (and_interactions(v), or_interactions(v))  # noqa: E731
            warm_up = lambda: (and_interactions(small), or_interactions(small))  # noqa: E731
        else:
            from lightning_interactions.extraction.and_or import and_or_interactions

            work, warm_up = (lambda: and_or_interactions(v)), (lambda: and_or_interactions(small))
    warm_up()

    before, peak_of = _peak_meter()
    start = time.perf_counter()
    out = work()
    times = [time.perf_counter() - start]
    peak = peak_of() - before
    while sum(times) < min_seconds and len(times) < MAX_REPEATS:
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)

    report = {"seconds": statistics.median(times), "repeats": len(times), "peak_bytes": max(peak, 0)}
    if stage == "forward":
        torch.save(out, values_path)
        report["finite"] = bool(torch.isfinite(out).all())
    elif stage == "extraction":
        report["max_gap"] = float(out.gap.max())
        report["rounds"] = int(out.rounds)
        report["gaps"] = [float(gap) for gap in out.gap.flatten()]
    return report


# ---------------------------------------------------------------------------------------------
# Parent: one child per stage and n
# ---------------------------------------------------------------------------------------------


def _child(
    args: argparse.Namespace, stage: str, n: int, workdir: str, timeout: float, threads: int | None = None
) -> dict:
    """Run one stage in a fresh process (torch on ``threads``, default ``--threads``; 0: the
    machine's defaults); ``{"error": ...}`` if it failed or ran past ``timeout``."""
    threads = args.threads if threads is None else threads
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        stage,
        "--n",
        str(n),
        "--workdir",
        workdir,
        "--threads",
        str(threads),
        "--batch-size",
        str(args.batch_size),
        "--min-seconds",
        str(args.min_seconds),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else dict(os.environ)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed (exit {done.returncode}): {last[:120]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _estimate(times: dict[int, float], n: int) -> float | None:
    """Time at ``n`` extrapolated from the growth between the two largest sizes measured below it."""
    known = sorted(m for m in times if m < n)
    if len(known) < 2:
        return None
    a, b = known[-2], known[-1]
    per_step = (times[b] / times[a]) ** (1.0 / (b - a))
    return times[b] * per_step ** (n - b)


def _fit_exponent(times: dict[int, float], from_n: int = FIT_FROM_N) -> tuple[float, list[int]] | None:
    """Least-squares slope of ``log time`` against ``log(n 2^n)`` over the sizes from ``from_n``."""
    sizes = sorted(n for n in times if n >= from_n)
    if len(sizes) < 2:
        return None
    xs = [math.log(n * 2**n) for n in sizes]
    ys = [math.log(times[n]) for n in sizes]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return slope, sizes


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 8 .. 12, fewer training epochs")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0: the machine's default settings)"
    )
    parser.add_argument("--min-n", type=int, default=8)
    parser.add_argument(
        "--max-n", type=int, default=None, help="largest n (default 16; quick 12; at most 16)"
    )
    parser.add_argument("--samples", type=int, default=4, help="samples measured at once (default 4)")
    parser.add_argument("--batch-size", type=int, default=1024, help="masked inputs per forward chunk")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 20; quick 5)")
    parser.add_argument("--untrained", action="store_true", help="skip training (random weights)")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="repeat a stage up to this long")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="also check issue 14's targets: growth per player, 16 samples at n = 12 and at n = 14",
    )
    parser.add_argument(
        "--ratio",
        action="store_true",
        help="only the extraction at n = 14 against n = 12, at one thread and at the defaults",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="--ratio: child processes per setting (default 3)"
    )
    parser.add_argument(
        "--extraction-max-s",
        type=float,
        default=None,
        help="stop an extraction after this many seconds; skip larger n (default 300; quick 60)",
    )
    # Internal: run one stage in this process (used by the parent for each child).
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.max_n is None:
        args.max_n = 12 if args.quick else 16
    if not 4 <= args.min_n <= args.max_n <= 16:
        parser.error("need 4 <= --min-n <= --max-n <= 16 (16 patches of 2x2 on an 8x8 image)")
    if args.extraction_max_s is None:
        args.extraction_max_s = 60.0 if args.quick else 300.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:  # 0 leaves the defaults, as users run
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(run_stage(args.child, args.n, args.workdir, args.batch_size, args.min_seconds)))
        return 0

    epochs = 0 if args.untrained else (args.epochs if args.epochs is not None else (5 if args.quick else 20))
    sizes = list(range(args.min_n, args.max_n + 1))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"load average {load} on {os.cpu_count()} CPUs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s){'' if args.threads else ' (defaults)'}"
    )
    if args.ratio:
        return 0 if _check_ratio(args, epochs) else 1
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as workdir:
        print(prepare(os.path.join(workdir, "setup.pt"), args.samples, epochs))
        print(
            f"players: n of the 16 2x2 patches; forward chunks of {args.batch_size} masked inputs; "
            f"one fresh child process per stage and n"
        )
        print(
            "time: median of up to 5 runs (first run included); peak: resident memory above the "
            "process just before the call (VmHWM after clear_refs)\n"
        )
        header = (
            f"{'n':>3} {'stage':<11} {'time':>10} {'per n*2^n':>10} {'peak MiB':>9}  notes (x: time over the "
            f"previous n; O(n 2^n) would be (n/(n-1))*2)"
        )
        print(header)
        print("-" * len(header))
        times: dict[str, dict[int, float]] = {stage: {} for stage in STAGES}
        peaks: dict[str, dict[int, float]] = {stage: {} for stage in STAGES}
        stop_extraction = ""
        for n in sizes:
            for stage in STAGES:
                if stage != "forward" and n not in times["forward"]:
                    blank = f"{n:>3} {stage:<11} {'-':>10} {'-':>10} {'-':>9}"
                    print(f"{blank}  skipped: no values (forward failed)")
                    continue
                timeout = 600.0
                if stage == "extraction":
                    estimate = _estimate(times[stage], n)
                    if not stop_extraction and estimate is not None and estimate > args.extraction_max_s:
                        stop_extraction = (
                            f"skipped: estimated {estimate:.0f} s from the growth at n={n - 1} "
                            f"> --extraction-max-s {args.extraction_max_s:g}"
                        )
                    if stop_extraction:
                        print(f"{n:>3} {stage:<11} {'-':>10} {'-':>10} {'-':>9}  {stop_extraction}")
                        continue
                    timeout = args.extraction_max_s
                run = _child(args, stage, n, workdir, timeout)
                if "error" in run:
                    print(f"{n:>3} {stage:<11} {'-':>10} {'-':>10} {'-':>9}  {run['error']}", flush=True)
                    if stage == "extraction":
                        stop_extraction = f"skipped: n={n} {run['error']}"
                    continue
                seconds = run["seconds"]
                times[stage][n], peaks[stage][n] = seconds, run["peak_bytes"] / MiB
                notes = [f"{run['repeats']} run(s)"]
                if n - 1 in times[stage]:
                    notes.append(f"x{seconds / times[stage][n - 1]:.2f} (O(n2^n): x{2 * n / (n - 1):.2f})")
                if stage == "forward":
                    rate = args.samples * 2**n / seconds
                    notes.append(f"{args.samples}x{2**n} inputs, {rate:,.0f} inputs/s")
                    if not run["finite"]:
                        notes.append("NON-FINITE outputs")
                if stage == "extraction":
                    notes.append(f"max gap {run['max_gap']:.4f}, {run['rounds']} rounds")
                per = seconds / (n * 2**n) * 1e9
                print(
                    f"{n:>3} {stage:<11} {_fmt_time(seconds):>10} {per:>7.1f} ns {peaks[stage][n]:>9.1f}  "
                    + ", ".join(notes),
                    flush=True,
                )

    print(
        f"\nFitted time ~ (n 2^n)^k over the 5 largest sizes measured from n={FIT_FROM_N} "
        f"(k = 1: O(n 2^n); k = 2: quadratic); growth per extra player over the same sizes"
    )
    for stage in STAGES:
        measured = times[stage]
        fit = _fit_exponent(measured, max(FIT_FROM_N, max(measured, default=0) - 4))
        if fit is None:
            print(f"  {stage:<11} not enough sizes >= {FIT_FROM_N} measured")
            continue
        slope, used = fit
        span = used[-1] - used[0]
        growth = (measured[used[-1]] / measured[used[0]]) ** (1 / span)
        # Peaks under half a MiB are page noise; the growth is taken from the first size above it.
        visible = [m for m in used if peaks[stage][m] >= 0.5]
        memory = "n/a (under 0.5 MiB)"
        if len(visible) >= 2:
            ratio = peaks[stage][visible[-1]] / peaks[stage][visible[0]]
            memory = f"x{ratio ** (1 / (visible[-1] - visible[0])):.2f} (n = {visible[0]}..{visible[-1]})"
        print(
            f"  {stage:<11} k = {slope:.2f} (n = {used[0]}..{used[-1]}): time x{growth:.2f} per player "
            f"(O(n 2^n): about x2.1), peak memory {memory} per player (O(2^n): x2)"
        )
    if stop_extraction:
        print(f"  extraction beyond the sizes above: {stop_extraction}")
    if args.targets:
        return 0 if _check_targets(args, times["extraction"], epochs) else 1
    return 0


# Issue 14's targets for a trained network, one CPU thread.
TARGET_GROWTH = 2.5  # extraction time per extra player over n = 10..14
TARGET_SECONDS_12 = 6.0  # 16 samples at n = 12
TARGET_PEAK_14 = 2 * 1024  # MiB, 16 samples at n = 14
TARGET_SAMPLES = 16


def _check_targets(args: argparse.Namespace, extraction: dict[int, float], epochs: int) -> bool:
    """Print PASS / FAIL for the growth (from the table above) and two 16-sample runs; all passed?"""
    network = "trained network" if epochs else "UNTRAINED network: the targets are for a trained one"
    count = args.threads or torch.get_num_threads()
    threads = f"{count} thread{'s' if count > 1 else ''}{'' if args.threads else ' (defaults)'}"
    print(f"\nTargets (issue 14, {network}, {threads}; the targets assume 1):")
    verdicts: list[bool] = []

    def verdict(passed: bool, text: str) -> None:
        verdicts.append(passed)
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")

    if 10 in extraction and 14 in extraction:
        growth = (extraction[14] / extraction[10]) ** (1 / 4)
        verdict(
            growth <= TARGET_GROWTH,
            f"extraction growth per player over n = 10..14 ({args.samples} samples): "
            f"x{growth:.2f} <= x{TARGET_GROWTH}",
        )
    else:
        verdict(False, "extraction growth per player over n = 10..14: not measured at both ends")
    with tempfile.TemporaryDirectory(prefix="bench_scaling_targets_") as workdir:
        print("  " + prepare(os.path.join(workdir, "setup.pt"), TARGET_SAMPLES, epochs))
        for n, limit in ((12, f"in <= {TARGET_SECONDS_12:g} s"), (14, f"within {TARGET_PEAK_14} MiB")):
            forward = _child(args, "forward", n, workdir, 600.0)
            run = (
                forward
                if "error" in forward
                else _child(args, "extraction", n, workdir, args.extraction_max_s)
            )
            if "error" in run:
                verdict(False, f"{TARGET_SAMPLES} samples at n = {n}: {run['error']}")
                continue
            seconds, peak = run["seconds"], run["peak_bytes"] / MiB
            passed = seconds <= TARGET_SECONDS_12 if n == 12 else peak <= TARGET_PEAK_14
            verdict(
                passed,
                f"{TARGET_SAMPLES} samples at n = {n} {limit}: {_fmt_time(seconds)}, peak {peak:.0f} MiB, "
                f"max gap {run['max_gap']:.4f}, {run['rounds']} rounds",
            )
    return all(verdicts)


# The top of the range: the extraction at n = 14 within 6.25x its time at n = 12 (x2.5 per extra
# player, the growth target above), on the same trained model and samples, each certified.
RATIO_SMALL, RATIO_LARGE = 12, 14
RATIO_NS = (RATIO_SMALL, RATIO_LARGE)
TARGET_RATIO = 6.25
# A sample counts as certified within tol when its gap is at most the extraction's default tol.
TOL = 0.01


RATIO_SETTINGS = {1: "one thread", 0: "default thread settings"}


def ratio_runs(args: argparse.Namespace, epochs: int) -> dict | None:
    """Extraction at n = 14 and n = 12 in interleaved child processes (``--repeats`` of each, n =
    12 then 14, one thread then the defaults, in turn). Returns ``{"times", "notes",
    "uncertified"}`` keyed by ``(threads, n)``, or None (said why) when a child failed."""
    times: dict[tuple[int, int], list[float]] = {
        key: [] for key in itertools.product(RATIO_SETTINGS, RATIO_NS)
    }
    notes: dict[tuple[int, int], set[str]] = {key: set() for key in times}
    uncertified: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_scaling_ratio_") as workdir:
        print(prepare(os.path.join(workdir, "setup.pt"), args.samples, epochs))
        for n in RATIO_NS:
            forward = _child(args, "forward", n, workdir, 600.0)
            if "error" in forward:
                print(f"  n = {n}: forward {forward['error']}")
                return None
        print(
            f"extraction of the same {args.samples} samples at n = {RATIO_SMALL} and n = {RATIO_LARGE}, "
            f"one child process per run, {args.repeats} runs each, interleaved\n"
        )
        for repeat, threads, n in itertools.product(range(args.repeats), RATIO_SETTINGS, RATIO_NS):
            run = _child(args, "extraction", n, workdir, args.extraction_max_s, threads=threads)
            if "error" in run:
                print(f"  run {repeat + 1}, {RATIO_SETTINGS[threads]}, n = {n}: {run['error']}")
                return None
            times[threads, n].append(run["seconds"])
            notes[threads, n].add(f"{run['rounds']} rounds")
            bad = [gap for gap in run["gaps"] if not gap <= TOL]
            if bad:
                uncertified.append(f"n = {n}, {RATIO_SETTINGS[threads]}: gaps {bad}")
            print(
                f"  run {repeat + 1}, {RATIO_SETTINGS[threads]:<23} n = {n}: {_fmt_time(run['seconds']):>9}, "
                f"{run['rounds']} rounds, max gap {run['max_gap']:.4f}",
                flush=True,
            )
    return {"times": times, "notes": notes, "uncertified": uncertified}


def _check_ratio(args: argparse.Namespace, epochs: int) -> bool:
    """:func:`ratio_runs`, then the medians, the ratio and PASS / FAIL per setting."""
    runs = ratio_runs(args, epochs)
    if runs is None:
        return False
    times, notes, uncertified = runs["times"], runs["notes"], runs["uncertified"]
    print(f"\nTarget: extraction at n = {RATIO_LARGE} within {TARGET_RATIO:g}x its time at n = {RATIO_SMALL}")
    verdicts = []
    for threads, name in RATIO_SETTINGS.items():
        small, large = (statistics.median(times[threads, n]) for n in RATIO_NS)
        ratio = large / small
        verdicts.append(ratio <= TARGET_RATIO)
        print(
            f"  {'PASS' if verdicts[-1] else 'FAIL'}  {name}: n = {RATIO_SMALL} {_fmt_time(small)} "
            f"({', '.join(sorted(notes[threads, RATIO_SMALL]))}), n = {RATIO_LARGE} {_fmt_time(large)} "
            f"({', '.join(sorted(notes[threads, RATIO_LARGE]))}): x{ratio:.2f} (target <= x{TARGET_RATIO:g}; "
            f"medians of {args.repeats})"
        )
    verdicts.append(not uncertified)
    print(
        f"  {'PASS' if not uncertified else 'FAIL'}  every sample certified within tol {TOL:g} in every run"
        + "".join(f"\n        not certified: {line}" for line in uncertified)
    )
    return all(verdicts)


if __name__ == "__main__":
    raise SystemExit(main())
