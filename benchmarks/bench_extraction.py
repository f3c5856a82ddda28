"""Benchmark: the certified AND-OR extraction against the exact LP and the reference SGD procedure.

Values come from a small MLP trained for a few seconds on scikit-learn's digits (bundled), with
n random 2x2 patches of each 8x8 validation image as players and the log-odds of the true class
as output, the setting of theory.md section 3. For n = 8, 10 and 12 it prints, side by side in
one run:

* ours: ``and_or_interactions`` on 16 samples (median of ``--repeats``; one run at n = 12),
  time for all 16 and per sample, objective relative to the optimum, certified gap;
* HiGHS: the exact LP (``exact_extraction_optimum`` of ``tests/helpers/oracles.py``) per sample,
  where it finishes in minutes: all 16 samples at n = 8, ``--lp-samples-10`` (2) at n = 10,
  none at n = 12;
* SGD: the paper group's procedure (``benchmarks/sgd_reference.py``: dense matrices, SGD with
  momentum, 10,000 iterations, lr 1e-5 decaying to 1e-6) at its own defaults, on the first
  ``--sgd-samples-N`` samples run as one batch (time per sample = batch time / samples);
* SGD at equal wall time: the same, given ours' time per sample (times the batch size), with
  its iteration count set from the iterations per second of the default run and the lr
  schedule compressed to it; the loop also stops on time;
* with ``--tuned``: SGD at a tuned lr (both budgets), labelled as such; see ``TUNED_LR``.

The optimum: HiGHS's where it ran, elsewhere our certificate's lower bound (ratios against the
bound overstate the distance to the optimum by at most our certified gap, about 1%).

Targets (issue 6): within 1% of the optimum at every n; at least 30x faster per sample than the
exact LP at n = 10; better objective than SGD at equal wall time on every sample at every n;
and, kept from issue 2, 16 samples at n = 10 in under 1 s. Each line ends with PASS or FAIL;
the exit status is 1 if any fails.

Run:
    .venv/bin/python benchmarks/bench_extraction.py [--threads 1] [--quick] [--sizes 8 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # helpers.oracles: the exact LP

from helpers.oracles import exact_extraction_optimum  # noqa: E402
from sgd_reference import (  # noqa: E402
    SOURCE_ITERATIONS,
    SOURCE_LR,
    fast_objective,
    reference_matrices,
    sgd_extraction,
)

from lightning_interactions.engine.outputs import log_odds  # noqa: E402
from lightning_interactions.extraction.and_or import and_or_interactions  # noqa: E402
from lightning_interactions.masking import PatchMasker  # noqa: E402

SAMPLES = 16
# Tuned learning rates, chosen by hand from sweeps run once on this benchmark's values (numbers in
# benchmarks/README.md): the best median objective of {1e-6, 3e-6, 1e-5, 3e-5} after 10,000
# iterations on the 16 samples at n = 8 and on the 4 SGD samples at n = 10; at n = 12, where 1e-5
# climbs above its starting point, the better of {1e-6, 3e-7} on sample 0 after 10,000 iterations
# (1e-5 and 3e-6 were already far behind after 1,000).
TUNED_LR = {8: 3e-5, 10: 3e-6, 12: 3e-7}


def trained_digits_mlp(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A 3-layer MLP trained for 30 epochs on 1200 digits; returns it and 16 held-out samples."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    images = torch.tensor(features / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    targets = torch.tensor(labels)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(30):
        order = torch.randperm(1200)
        for start in range(0, 1200, 64):
            batch = order[start : start + 64]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), targets[batch]).backward()
            optimiser.step()
    model.eval()
    return model, images[1300 : 1300 + SAMPLES], targets[1300 : 1300 + SAMPLES]


def values_on_masks(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, n: int
) -> torch.Tensor:
    """Log-odds of the true class on all ``2^n`` maskings of each image (float64)."""
    masker = PatchMasker(patch_size=2, num_players=n)
    players = masker.select_players(images, seed=n)
    masks = torch.arange(2**n)
    with torch.inference_mode():
        masked = masker.apply(images, players, masks).reshape(-1, 1, 8, 8)
        logits = model(masked).double()
    return log_odds(logits, targets.repeat_interleave(2**n)).view(len(images), 2**n)


def time_ours(values: torch.Tensor, repeats: int) -> tuple[float, object]:
    """Median wall time of ``and_or_interactions`` on the whole batch, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = and_or_interactions(values)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _row(n: int, method: str, samples: int, per_sample: float, total: float, ratios, note: str) -> None:
    ratios = [float(r) for r in ratios]
    median = statistics.median(ratios) if ratios else float("nan")
    worst = max(ratios) if ratios else float("nan")
    print(
        f"{n:>3} | {method:<24} | {samples:>3} | {per_sample * 1e3:>10.1f} ms | {total:>8.2f} s | "
        f"{median:>8.4f} | {worst:>8.4f} | {note}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0: the machine's default settings)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of ours at n <= 10 (1 above)")
    parser.add_argument("--lp-samples-8", type=int, default=SAMPLES)
    parser.add_argument("--lp-samples-10", type=int, default=2)
    parser.add_argument("--sgd-samples-8", type=int, default=SAMPLES)
    parser.add_argument("--sgd-samples-10", type=int, default=4)
    parser.add_argument("--sgd-samples-12", type=int, default=1, help="10,000 iterations take minutes each")
    parser.add_argument("--sgd-lr", type=float, default=SOURCE_LR, help="the source's default 1e-5")
    parser.add_argument("--sgd-iterations", type=int, default=SOURCE_ITERATIONS)
    parser.add_argument("--tuned", action="store_true", help="also run SGD at the tuned lr of TUNED_LR")
    parser.add_argument(
        "--quick", action="store_true", help="n = 8, 10; LP 4 samples at n = 8 only; SGD 4 and 2 samples"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [8, 10], 1
        args.lp_samples_8, args.lp_samples_10 = 4, 0
        args.sgd_samples_8, args.sgd_samples_10 = 4, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:  # 0 leaves the defaults, as users run
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs (threads beyond the idle CPUs distort times)")
    model, images, targets = trained_digits_mlp()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
        f"{'' if args.threads else ' (defaults)'}, {SAMPLES} samples of a digits MLP; "
        f"SGD: lr {args.sgd_lr:g} -> {args.sgd_lr / 10:g}, {args.sgd_iterations} iterations, float32"
    )
    print("obj/opt: objective / optimum (HiGHS where it ran, else our certified lower bound)")
    header = (
        f"{'n':>3} | {'method':<24} | {'smp':>3} | {'time/sample':>13} | {'time all':>10} | "
        f"{'obj/opt':>8} | {'max':>8} | note"
    )
    print(header)
    print("-" * (len(header) + 30))
    lp_counts = {8: args.lp_samples_8, 10: args.lp_samples_10}
    sgd_counts = {8: args.sgd_samples_8, 10: args.sgd_samples_10, 12: args.sgd_samples_12}
    verdicts: list[tuple[str, bool]] = []
    for n in args.sizes:
        values = values_on_masks(model, images, targets, n)
        ours, result = time_ours(values, args.repeats if n <= 10 else 1)
        ours_per_sample = ours / SAMPLES
        optimum = result.lower_bound.clone()
        lp_samples = min(lp_counts.get(n, 0), SAMPLES)
        lp_times = []
        for i in range(lp_samples):
            start = time.perf_counter()
            optimum[i] = exact_extraction_optimum(values[i], float(result.tau[i]))
            lp_times.append(time.perf_counter() - start)
        parts = [f"HiGHS x{lp_samples}"] if lp_samples else []
        parts += [f"bound x{SAMPLES - lp_samples}"] if lp_samples < SAMPLES else []
        reference = " + ".join(parts)
        ours_ratio = result.objective / optimum
        _row(
            n,
            "ours (certified)",
            SAMPLES,
            ours_per_sample,
            ours,
            ours_ratio,
            f"opt: {reference}; max cert. gap {float(result.gap.max()):.1e}, {result.rounds} rounds",
        )
        lp_per_sample = statistics.median(lp_times) if lp_times else float("nan")
        if lp_times:
            _row(
                n,
                "HiGHS exact LP",
                lp_samples,
                lp_per_sample,
                sum(lp_times),
                [1.0] * lp_samples,
                f"ours {lp_per_sample / ours_per_sample:.0f}x faster per sample",
            )

        within = float(result.gap.max()) <= 0.01 and bool((ours_ratio[:lp_samples] <= 1.01).all())
        how = f"HiGHS on {lp_samples}, certificate on all 16" if lp_samples else "certificate on all 16"
        verdicts.append((f"n={n}: within 1% of the optimum ({how})", within))
        if n == 10:
            verdicts.append((f"n=10: 16 samples in under 1 s ({ours:.2f} s)", ours < 1.0))
            if lp_times:
                speedup = lp_per_sample / ours_per_sample
                verdicts.append(
                    (
                        f"n=10: at least 30x faster per sample than the exact LP ({speedup:.0f}x)",
                        speedup >= 30,
                    )
                )

        count = min(sgd_counts.get(n, 1), SAMPLES)
        if count < 1:
            continue
        start = time.perf_counter()
        matrices = reference_matrices(n)
        build = time.perf_counter() - start
        lrs = [("SGD", args.sgd_lr)]
        if args.tuned and n in TUNED_LR:
            lrs.append(("SGD tuned", TUNED_LR[n]))
        sub, tau, opt = values[:count], result.tau[:count], optimum[:count]
        # Where SGD starts (gamma = q = 0, the raw interactions): tells a stall from a divergence.
        start_ratio = statistics.median((fast_objective(sub, sub * 0, sub * 0) / opt).tolist())
        for label, lr in lrs:
            full = sgd_extraction(sub, tau, lr=lr, iterations=args.sgd_iterations, matrices=matrices)
            _row(
                n,
                f"{label} lr={lr:g}",
                count,
                full.seconds / count,
                full.seconds,
                full.objective / opt,
                f"{full.iterations} it. from {start_ratio:.2f} (gamma = q = 0); batch of {count}; "
                f"matrices built once in {build:.2f} s (not timed)",
            )
            # Equal wall time: the batch gets ours' time per sample times its size; the iteration
            # count comes from the rate of the full run, and the schedule is compressed to it.
            budget = ours_per_sample * count
            rate = (full.iterations - 1) / full.seconds
            planned = max(2, int(budget * rate) + 1)
            short = sgd_extraction(sub, tau, lr=lr, iterations=planned, matrices=matrices, time_limit=budget)
            _row(
                n,
                f"{label} equal time",
                count,
                short.seconds / count,
                short.seconds,
                short.objective / opt,
                f"{short.iterations} of {planned} planned it.",
            )
            if label == "SGD":
                better = bool((result.objective[:count] < short.objective).all())
                verdicts.append(
                    (f"n={n}: better objective than SGD at equal wall time on all {count} sample(s)", better)
                )
    print()
    for name, passed in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(passed for _, passed in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
