"""Benchmark: butterfly AND / OR transforms against a dense ``2^n x 2^n`` product and shapiq.

The reference code of the paper's group computes interactions by building the dense Moebius
matrix (one for AND, one for OR) and multiplying it with the vector of values; shapiq (1.4)
computes the exact Moebius transform (the AND interactions) of a game with
``ExactComputer(game, n_players)("Moebius")``, a loop over every subset of every coalition
(``3^n`` terms). This script measures both against
:func:`lightning_interactions.extraction.transforms.and_interactions` and
:func:`~lightning_interactions.extraction.transforms.or_interactions`, side by side in one run:

* time per call for n = 8, 10, 12, 14 (``--sizes``), batch 1 and 16. The dense time is the
  matrix product alone, with the matrix already built and cached (the most favourable case for
  the dense route); the time to build the two matrices is printed separately. Repetitions of
  the four torch routes are interleaved, and each time is the median of several repeats, so that
  a noisy shared machine affects every column alike;
* shapiq's exact Moebius transform of the same values, handed to it as a game that looks the
  values up in a table (evaluated before timing, so only the transform is timed; a fresh
  ``ExactComputer`` per game since it caches results). A batch of 16 is 16 games one after
  another; when they take longer than ``--shapiq-budget-s``, timing stops after the game that
  reaches it and the time is scaled to the whole batch (the table says how many were timed).
  Every shapiq result is checked against the butterfly (shapiq's interaction lookup mapped to
  our bitmask order);
* the largest n each route handles within a memory budget (8 GiB by default), from the memory
  each one needs: the dense route needs ``4^n * itemsize`` bytes for one matrix plus the data,
  the butterfly a few copies of ``batch * 2^n`` values (the number of copies is measured);
* a real butterfly run (AND and OR, batch 1) at n = 20 (``--target-big-n``) and at the largest
  n that fits, capped at ``--max-run-n`` and only when the time extrapolated from the small sizes
  is under ``--max-run-seconds``; time and peak resident memory measured in a child process.

It ends with PASS / FAIL for the targets: the AND transform at least 1000x faster than shapiq's
exact Moebius transform at n = 12, both transforms at least 20x faster than the dense matrix
product at n = 12 (every batch size measured), and n = 20 run within the memory budget.

Run:
    .venv/bin/python benchmarks/bench_transforms.py             # full table, 1 thread
    .venv/bin/python benchmarks/bench_transforms.py --quick     # a fast variant (< 1 minute)
    .venv/bin/python benchmarks/bench_transforms.py --threads 2 [--sizes 8 10 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning_interactions.extraction.transforms import and_interactions, or_interactions  # noqa: E402

GiB = 2**30
TARGET_N = 12
TARGET_SPEEDUP = 20.0
TARGET_SHAPIQ_SPEEDUP = 1000.0


# ---------------------------------------------------------------------------------------------
# The dense reference route
# ---------------------------------------------------------------------------------------------


def dense_and_matrix(n: int, dtype: torch.dtype) -> torch.Tensor:
    """``M[S, T] = (-1)^{|S|-|T|}`` if ``T`` is a subset of ``S``, else 0 (the Moebius matrix).

    Built as the n-fold Kronecker power of ``[[1, 0], [-1, 1]]`` (rows ``S``, columns ``T``, one
    factor per bit), which needs 1.25 matrices of memory at the peak instead of several int64
    ones: at n = 14 one matrix is 2 GiB in float64. The test suite checks it against the
    definition entry by entry.
    """
    factor = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=dtype)
    matrix = torch.ones(1, 1, dtype=dtype)
    for _ in range(n):
        matrix = torch.kron(factor, matrix)
    return matrix


def dense_or_matrix(n: int, dtype: torch.dtype, and_matrix: torch.Tensor | None = None) -> torch.Tensor:
    """OR matrix: ``-M[S, N \\ T]`` for nonempty ``S``; the row of the empty set reads ``v(empty)``."""
    moebius = dense_and_matrix(n, dtype) if and_matrix is None else and_matrix
    out = moebius.flip(1)  # column T of the OR matrix is column N \ T of the Moebius matrix
    out.neg_()  # in place: one more 2^n x 2^n copy would be 2 GiB at n = 14
    out[0] = 0
    out[0, 0] = 1
    return out


def dense_apply(matrix: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values @ matrix^T``: one matrix-vector product per batch row."""
    return values @ matrix.T


# ---------------------------------------------------------------------------------------------
# shapiq's exact Moebius transform
# ---------------------------------------------------------------------------------------------


def shapiq_game(values: np.ndarray, n: int):
    """A shapiq game (``(coalitions, n)`` bool matrix -> values) that looks ``values`` up by bitmask."""
    weights = 1 << np.arange(n, dtype=np.int64)  # player i present <=> bit i of the mask

    def game(coalitions: np.ndarray) -> np.ndarray:
        return values[coalitions.astype(np.int64) @ weights]

    return game


def shapiq_exact_computer():
    """shapiq's ``ExactComputer`` class, or None without shapiq (a development extra).

    Imported on first use: shapiq pulls in scikit-learn and more, seconds on a loaded machine.
    """
    try:
        from shapiq.game_theory.exact import ExactComputer
    except ImportError:
        return None
    return ExactComputer


def shapiq_moebius_computer(values: np.ndarray, n: int):
    """A fresh ``ExactComputer`` with the game already evaluated (so that only the transform is timed)."""
    return shapiq_exact_computer()(shapiq_game(values, n), n_players=n, evaluate_game=True)


def shapiq_to_masks(result, n: int) -> np.ndarray:
    """shapiq's interaction values in our order: entry ``S`` (a bitmask) of a ``2^n`` vector."""
    out = np.zeros(2**n)
    for players, position in result.interaction_lookup.items():
        out[sum(1 << int(i) for i in players)] = result.values[position]
    return out


def time_shapiq(
    values: torch.Tensor, expected: torch.Tensor, repeats: int, budget_s: float, tol: float = 1e-9
) -> tuple[float, int, int]:
    """Seconds per batch of shapiq's exact Moebius, one game per row, checked against ``expected``.

    The first game is computed untimed and checked (a warm-up). Then the batch is timed game by
    game, ``repeats`` times (the median is kept), within ``budget_s`` of timed work: the first
    repeat stops after the game that reaches the budget (its games are then scaled up to the
    whole batch), and a further repeat runs only while the budget leaves room for one. Every
    result is checked. Returns ``(seconds per batch, games timed per repeat, repeats)``.
    """
    batch, size = values.shape
    n = size.bit_length() - 1
    table = values.double().numpy()
    _check_shapiq(shapiq_to_masks(shapiq_moebius_computer(table[0], n)("Moebius"), n), expected[0], n, 0, tol)
    games, spent, totals = batch, 0.0, []
    for repeat in range(repeats):
        elapsed = 0.0
        for row in range(games):
            computer = shapiq_moebius_computer(table[row], n)
            start = time.perf_counter()
            result = computer("Moebius")
            elapsed += time.perf_counter() - start
            _check_shapiq(shapiq_to_masks(result, n), expected[row], n, row, tol)
            if repeat == 0 and elapsed >= budget_s:
                games = row + 1
                break
        totals.append(elapsed * batch / games)
        spent += elapsed
        if spent + elapsed > budget_s:  # one more repeat would not fit
            break
    return statistics.median(totals), games, len(totals)


def _check_shapiq(got: np.ndarray, expected: torch.Tensor, n: int, row: int, tol: float) -> None:
    want = expected.double().numpy()
    scale = float(np.abs(want).max()) + 1.0
    error = float(np.abs(got - want).max())
    assert error <= tol * scale, f"shapiq and the butterfly differ at n={n}, row {row}: {error:.3g}"


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def _calibrate(fn, min_seconds: float) -> int:
    """Number of calls per measurement so that one measurement lasts about ``min_seconds``."""
    fn()  # warm up
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= 1 << 16:
            return calls
        calls = max(calls * 2, int(calls * min_seconds / max(elapsed, 1e-9)) + 1)


def interleaved_medians(fns: dict, repeats: int, min_seconds: float) -> dict:
    """Median seconds per call of every function, repetitions interleaved across functions."""
    calls = {name: _calibrate(fn, min_seconds) for name, fn in fns.items()}
    samples: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(times) for name, times in samples.items()}


def time_both_routes(
    values: torch.Tensor, m_and: torch.Tensor, m_or: torch.Tensor, repeats: int, min_seconds: float
) -> dict:
    """Interleaved median times of the fast and dense AND / OR routes on ``values``."""
    return interleaved_medians(
        {
            "and_fast": lambda: and_interactions(values),
            "and_dense": lambda: dense_apply(m_and, values),
            "or_fast": lambda: or_interactions(values),
            "or_dense": lambda: dense_apply(m_or, values),
        },
        repeats,
        min_seconds,
    )


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:6.1f}x" if ratio < 10 else f"{ratio:6.0f}x"


def _fmt_bytes(count: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


# ---------------------------------------------------------------------------------------------
# Peak memory of one butterfly call, in a child process
# ---------------------------------------------------------------------------------------------

_CHILD = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, {root!r})
from lightning_interactions.extraction.transforms import and_interactions, or_interactions


def status(key):
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(key):
                return int(line.split()[1]) * 1024


torch.set_num_threads({threads})
n, dtype = {n}, getattr(torch, {dtype!r})
fn = {{"and": and_interactions, "or": or_interactions}}[{kind!r}]
fn(torch.randn(1, 2**10, dtype=dtype))  # warm up
try:  # Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) to the current one
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before, peak_of = status("VmRSS"), lambda: status("VmHWM")
except OSError:  # fall back to the process peak; only meaningful well above the import peak
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
values = torch.randn(1, 2**n, dtype=dtype)
start = time.perf_counter()
out = fn(values)
elapsed = time.perf_counter() - start
peak = peak_of()
print(json.dumps({{"seconds": elapsed, "peak_bytes": peak - before, "process_peak_bytes": peak,
                  "finite": bool(out.isfinite().all())}}))
"""


def butterfly_child_run(kind: str, n: int, dtype: torch.dtype, threads: int) -> dict:
    """Run one butterfly call at ``n`` in a fresh process; return its time and peak memory."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    code = _CHILD.format(root=root, threads=threads, n=n, dtype=str(dtype).split(".")[-1], kind=kind)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats, small big-n run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 7, quick 3)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="n to time (default 8 10 12 14; quick 8 10 12)"
    )
    parser.add_argument("--memory-gib", type=float, default=8.0, help="memory budget for the largest n")
    parser.add_argument(
        "--max-run-n", type=int, default=None, help="cap for the real big-n run (26; quick 22)"
    )
    parser.add_argument("--max-run-seconds", type=float, default=10.0, help="skip the big-n run if slower")
    parser.add_argument(
        "--target-big-n", type=int, default=20, help="n of the real run checked against the memory budget"
    )
    parser.add_argument(
        "--shapiq-budget-s",
        type=float,
        default=None,
        help="seconds of timed shapiq work per table cell; fewer games beyond it (default 40; quick 4)",
    )
    parser.add_argument("--no-shapiq", action="store_true", help="leave shapiq out even if installed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    sizes = args.sizes or ([8, 10, 12] if args.quick else [8, 10, 12, 14])
    batches = [1, 16]
    repeats = args.repeats or (3 if args.quick else 7)
    min_seconds = 0.01 if args.quick else 0.05
    max_run_n = args.max_run_n or (22 if args.quick else 26)
    budget = args.memory_gib * GiB
    shapiq_budget = args.shapiq_budget_s or (4.0 if args.quick else 40.0)
    use_shapiq = not args.no_shapiq and shapiq_exact_computer() is not None
    tol = 1e-9 if dtype == torch.float64 else 1e-3

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs (threads beyond the idle CPUs distort times)")
    print(
        f"torch {torch.__version__}, {args.dtype}, {torch.get_num_threads()} thread(s), "
        f"median of {repeats} interleaved repeats"
    )
    print("dense = values @ M^T with the 2^n x 2^n matrix M prebuilt (build time shown apart)")
    if use_shapiq:
        print(
            f"shapiq {_shapiq_version()}: ExactComputer(game, n)('Moebius') per game (= AND interactions), "
            f"game values looked up from a table and evaluated before timing;\n"
            f"  batch 16 = 16 games one after another (games timed shown when fewer, scaled to 16); "
            f"ratio = shapiq / AND fast"
        )
    else:
        print("shapiq: not installed (pip install -e .[dev]) or --no-shapiq: its columns are left out")
    print()
    header = (
        f"{'n':>3} {'batch':>5} | {'AND fast':>11} {'AND dense':>11} {'ratio':>7} | "
        f"{'OR fast':>11} {'OR dense':>11} {'ratio':>7} | {'shapiq Moebius':>14} {'games':>5} "
        f"{'ratio':>7} | {'build M_and+M_or':>16}"
    )
    print(header)
    print("-" * len(header))

    ratios: dict = {}
    shapiq_ratios: dict = {}
    generator = torch.Generator().manual_seed(0)
    for n in sizes:
        start = time.perf_counter()
        m_and = dense_and_matrix(n, dtype)
        m_or = dense_or_matrix(n, dtype, m_and)
        build = time.perf_counter() - start
        for batch in batches:
            values = torch.randn(batch, 2**n, generator=generator, dtype=dtype)
            # sanity: both routes compute the same thing
            for fast, dense in ((and_interactions, m_and), (or_interactions, m_or)):
                expected = dense_apply(dense, values)
                scale = float(expected.abs().max()) + 1.0
                assert torch.allclose(fast(values), expected, rtol=0, atol=tol * scale), (n, batch)
            medians = time_both_routes(values, m_and, m_or, repeats, min_seconds)
            r_and = medians["and_dense"] / medians["and_fast"]
            r_or = medians["or_dense"] / medians["or_fast"]
            ratios[(n, batch)] = (r_and, r_or)
            shapiq_cells = f"{'-':>14} {'-':>5} {'-':>7}"
            if use_shapiq:
                seconds, games, _ = time_shapiq(values, and_interactions(values), repeats, shapiq_budget, tol)
                shapiq_ratios[(n, batch)] = seconds / medians["and_fast"]
                shapiq_cells = f"{_fmt_time(seconds):>14} {games:>5} {_fmt_ratio(shapiq_ratios[(n, batch)])}"
            print(
                f"{n:>3} {batch:>5} | {_fmt_time(medians['and_fast'])} {_fmt_time(medians['and_dense'])} "
                f"{_fmt_ratio(r_and)} | {_fmt_time(medians['or_fast'])} {_fmt_time(medians['or_dense'])} "
                f"{_fmt_ratio(r_or)} | {shapiq_cells} | {_fmt_time(build):>16}",
                flush=True,
            )
        del m_and, m_or

    # ----- memory: largest n within the budget -----
    print(f"\nLargest n within {args.memory_gib:g} GiB ({args.dtype}, computed from memory need):")
    probe_n = 22
    copies, probe_seconds = {}, {}
    for kind in ("and", "or"):
        run = butterfly_child_run(kind, probe_n, dtype, args.threads)
        copies[kind] = max(1.0, run["peak_bytes"] / (2**probe_n * itemsize))
        probe_seconds[kind] = run["seconds"]
    print(
        f"  butterfly peak memory measured at n={probe_n}, batch 1: "
        f"AND {copies['and']:.1f}x, OR {copies['or']:.1f}x the size of one value vector (input included)"
    )
    for batch in batches:
        dense_n = max(n for n in range(1, 40) if (4**n + 2 * batch * 2**n) * itemsize <= budget)
        line = (
            f"  batch {batch:>2}: dense needs 4^n*{itemsize} B (one matrix) + 2*batch*2^n*{itemsize} B"
            f" -> n <= {dense_n} ({_fmt_bytes((4**dense_n + 2 * batch * 2**dense_n) * itemsize)})"
        )
        print(line)
        for kind in ("and", "or"):
            per_n = copies[kind] * batch * itemsize
            fast_n = max(n for n in range(1, 60) if per_n * 2**n <= budget)
            print(
                f"            {kind.upper():>3} butterfly needs ~{copies[kind]:.1f}*batch*2^n*{itemsize} B"
                f" -> n <= {fast_n} ({_fmt_bytes(per_n * 2**fast_n)})"
            )

    # ----- the target size, run for real -----
    big = args.target_big_n
    print(f"\nReal butterfly run, batch 1, at n={big} (peak resident memory of a fresh child process):")
    big_runs = {}
    for kind in ("and", "or"):
        run = butterfly_child_run(kind, big, dtype, args.threads)
        big_runs[kind] = run
        print(
            f"  {kind.upper():>3} n={big}: {run['seconds']:.3f} s, peak {_fmt_bytes(run['peak_bytes'])} "
            f"above the process before the call, {_fmt_bytes(run['process_peak_bytes'])} for the whole "
            f"process (torch included), finite={run['finite']}"
        )
    print(f"  dense at n={big} would need {_fmt_bytes(4**big * itemsize)} for one matrix")

    # ----- a real butterfly run at the largest n -----
    fast_n1 = {k: max(n for n in range(1, 60) if copies[k] * 2**n * itemsize <= budget) for k in copies}
    print(f"\nReal butterfly run, batch 1, at the largest n that fits, capped at n={max_run_n}:")
    for kind in ("and", "or"):
        n_run = min(fast_n1[kind], max_run_n)
        # O(n 2^n) from the run at probe_n, with a margin of 2 for noise
        estimate = 2 * probe_seconds[kind] * (n_run * 2**n_run) / (probe_n * 2**probe_n)
        if estimate > args.max_run_seconds:
            need = _fmt_bytes(copies[kind] * 2**n_run * itemsize)
            print(
                f"  {kind.upper():>3} n={n_run}: not run, estimated up to {estimate:.1f} s "
                f"> {args.max_run_seconds:g} s; fits by computation ({need})"
            )
            continue
        run = butterfly_child_run(kind, n_run, dtype, args.threads)
        note = "" if n_run == fast_n1[kind] else f" (largest that fits is n={fast_n1[kind]}, by computation)"
        print(
            f"  {kind.upper():>3} n={n_run}: {run['seconds']:.2f} s (estimated {estimate / 2:.2f} s), "
            f"peak {_fmt_bytes(run['peak_bytes'])}, "
            f"finite={run['finite']}{note}"
        )
    dense_at = (4**max_run_n) * itemsize
    print(f"  dense at n={max_run_n} would need {_fmt_bytes(dense_at)} for one matrix")

    return _report_targets(args, batches, ratios, shapiq_ratios, use_shapiq, big_runs, budget)


def _report_targets(args, batches, ratios, shapiq_ratios, use_shapiq, big_runs, budget) -> int:
    """Print one PASS / FAIL line per target and the overall verdict; return the exit status."""
    ok = True
    print(
        f"\nTarget: AND transform >= {TARGET_SHAPIQ_SPEEDUP:g}x faster than shapiq's exact Moebius "
        f"at n={TARGET_N}"
    )
    if not use_shapiq:
        print("  not measured (shapiq left out)")
    elif not any(key[0] == TARGET_N for key in shapiq_ratios):
        print(f"  not measured (n={TARGET_N} not among --sizes)")
    else:
        for batch in batches:
            ratio = shapiq_ratios[(TARGET_N, batch)]
            passed = ratio >= TARGET_SHAPIQ_SPEEDUP
            ok &= passed
            print(f"  batch {batch:>2}: {ratio:.0f}x -> {'PASS' if passed else 'FAIL'}")

    print(f"Target: both transforms >= {TARGET_SPEEDUP:g}x faster than the dense product at n={TARGET_N}")
    if not any(key[0] == TARGET_N for key in ratios):
        print(f"  not measured (n={TARGET_N} not among --sizes)")
    else:
        for batch in batches:
            r_and, r_or = ratios[(TARGET_N, batch)]
            passed = min(r_and, r_or) >= TARGET_SPEEDUP
            ok &= passed
            print(f"  batch {batch:>2}: AND {r_and:.0f}x, OR {r_or:.0f}x -> {'PASS' if passed else 'FAIL'}")

    big = args.target_big_n
    print(f"Target: n={big} within {args.memory_gib:g} GiB (batch 1, whole-process peak, measured)")
    for kind, run in big_runs.items():
        passed = run["finite"] and run["process_peak_bytes"] <= budget
        ok &= passed
        print(
            f"  {kind.upper():>3}: {_fmt_bytes(run['process_peak_bytes'])} -> {'PASS' if passed else 'FAIL'}"
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _shapiq_version() -> str:
    try:
        from importlib.metadata import version

        return version("shapiq")
    except Exception:  # noqa: BLE001 - only for the header line
        return "(version unknown)"


if __name__ == "__main__":
    raise SystemExit(main())
