"""Benchmark: the certified AND-OR extraction against the exact LP (scipy's HiGHS).

Values come from a small MLP trained for a few seconds on scikit-learn's digits (bundled), with
n random 2x2 patches of each 8x8 validation image as players and the log-odds of the true class
as output, the setting of theory.md section 3. For n = 8 and 10 it prints, side by side in one
run: the wall time of ``and_or_interactions`` on 16 samples (median of repeats), HiGHS's time per
sample on the same LPs (fewer samples at n = 10, where one solve takes tens of seconds), the
speed-up per sample, our objective against HiGHS's optimum, and our certified gap.

Targets (issue 2): within 1% of the optimum; 16 samples at n = 10 in under 1 s; at least 30x
faster per sample than the exact LP. Each line ends with PASS or FAIL.

Run:
    .venv/bin/python benchmarks/bench_extraction.py [--threads 2] [--lp-samples-10 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_interactions.masking import PatchMasker
from lightning_interactions.outputs import log_odds
from lightning_interactions.reference import exact_extraction_optimum
from lightning_interactions.sparsify import and_or_interactions

SAMPLES = 16


def trained_digits_mlp(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A 3-layer MLP trained for 30 epochs on 1200 digits; returns it and 16 held-out samples."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    images = torch.tensor(features / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    targets = torch.tensor(labels)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
        torch.nn.ReLU(), torch.nn.Linear(128, 10),
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
    masker = PatchMasker(patch_size=2, num_players=n)
    players = masker.select_players(images, seed=n)
    masks = torch.arange(2**n)
    with torch.inference_mode():
        masked = masker.apply(images, players, masks).reshape(-1, 1, 8, 8)
        logits = model(masked).double()
    return log_odds(logits, targets.repeat_interleave(2**n)).view(len(images), 2**n)


def time_ours(values: torch.Tensor, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = and_or_interactions(values)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lp-samples-8", type=int, default=SAMPLES)
    parser.add_argument("--lp-samples-10", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="n = 8 only, 4 LP samples")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, images, targets = trained_digits_mlp()
    sizes = {8: 4 if args.quick else args.lp_samples_8}
    if not args.quick:
        sizes[10] = args.lp_samples_10
    print(f"torch {torch.__version__}, {args.threads} thread(s), {SAMPLES} samples of a digits MLP")
    header = (
        f"{'n':>3} | {'ours 16 smp':>11} {'per smp':>9} | {'HiGHS/smp':>10} {'LP smp':>6} | "
        f"{'speed-up':>8} | {'obj/opt-1 max':>13} | {'cert. gap max':>13} | {'rounds':>6}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for n, lp_samples in sizes.items():
        values = values_on_masks(model, images, targets, n)
        ours, result = time_ours(values, args.repeats)
        lp_times, excess = [], []
        for i in range(lp_samples):
            start = time.perf_counter()
            optimum = exact_extraction_optimum(values[i], float(result.tau[i]))
            lp_times.append(time.perf_counter() - start)
            excess.append(float(result.objective[i]) / optimum - 1.0)
        lp_per_sample = statistics.median(lp_times)
        speedup = lp_per_sample / (ours / SAMPLES)
        print(
            f"{n:>3} | {ours:>9.3f} s {ours / SAMPLES * 1e3:>6.1f} ms | "
            f"{lp_per_sample:>8.2f} s {lp_samples:>6} | {speedup:>7.0f}x | {max(excess):>13.2e} | "
            f"{float(result.gap.max()):>13.2e} | {result.rounds:>6}"
        )
        within = max(excess) <= 0.01 and float(result.gap.max()) <= 0.01
        verdicts.append((f"n={n}: within 1% of the optimum", within))
        if n == 10:
            verdicts.append(("n=10: 16 samples in under 1 s", ours < 1.0))
            verdicts.append(("n=10: at least 30x faster per sample than the exact LP", speedup >= 30))
    print()
    for name, passed in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
