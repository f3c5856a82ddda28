"""Benchmark: the two ways of getting a restricted problem's mixed Gram entries, side by side.

A Gram matrix of AND and OR trigger columns needs, for every AND set ``A`` and disjoint OR set
``B`` among the columns, the sum of the row weights over the interval ``A subset of T subset of
N \\ B``. ``lightning_interactions.extraction._gram`` gets them either from a table of all ``3^n``
intervals (a butterfly per interior-point step) or by inclusion-exclusion over the superset and
subset sums (``2^min(|A|, |B|)`` gathered terms per pair, :mod:`._interval_terms`). For random
column sets of low order (orders 1 to ``--max-order``, AND and OR in equal numbers; trained
networks' restricted problems look like this) it times one Gram matrix both ways, in one run,
and prints the time per table entry, the time per term and their ratio: the route switch
``TERMS_PER_TABLE_ENTRY`` should sit near that ratio.

Run:
    .venv/bin/python benchmarks/bench_gram.py [--n 12 14] [--k 144 576 1152] [--batch 4] [--threads 1]
    .venv/bin/python benchmarks/bench_gram.py --quick   # n = 10, 12; k = 144, 576 (a few seconds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning_interactions.extraction import _gram  # noqa: E402
from lightning_interactions.extraction._interval_terms import count_terms  # noqa: E402


def random_columns(
    n: int, k: int, batch: int, max_order: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sets, is_or)`` of ``batch x (k + 1)`` columns: the constant, then random low-order sets."""
    generator = torch.Generator().manual_seed(seed)
    orders = torch.randint(1, max_order + 1, (batch, k), generator=generator)
    keys = torch.rand(batch, k, n, generator=generator)
    # The players with the `order` smallest keys form the set.
    ranks = keys.argsort(dim=2).argsort(dim=2)
    sets = ((ranks < orders[:, :, None]).long() << torch.arange(n)).sum(dim=2)
    is_or = torch.rand(batch, k, generator=generator) < 0.5
    constant = torch.zeros(batch, 1, dtype=torch.long)
    return torch.cat((constant, sets), dim=1), torch.cat((constant.bool(), is_or), dim=1)


def median_time(work, repeats: int) -> float:
    work()  # buffers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(n: int, k: int, args: argparse.Namespace) -> str:
    """One table row: both routes on the same random columns and weights."""
    sets, is_or = random_columns(n, k, args.batch, args.max_order, seed=n * 1000 + k)
    disjoint = (sets[:, :, None] & sets[:, None, :]) == 0
    rows, i, j = (~is_or[:, :, None] & is_or[:, None, :] & disjoint).nonzero(as_tuple=True)
    terms = count_terms(sets[rows, i], sets[rows, j], n)
    weights = torch.rand(args.batch, 2**n, dtype=torch.float64)
    saved = _gram.TERMS_PER_TABLE_ENTRY
    try:
        _gram.TERMS_PER_TABLE_ENTRY = 0.0
        table_plan = _gram._GramPlan(sets, is_or, n)
        _gram.TERMS_PER_TABLE_ENTRY = float("inf")
        terms_plan = _gram._GramPlan(sets, is_or, n)
    finally:
        _gram.TERMS_PER_TABLE_ENTRY = saved
    same = torch.allclose(table_plan.gram(weights), terms_plan.gram(weights), rtol=1e-12, atol=1e-9)
    # Only the part that differs: the 3^n butterfly, or the gathered terms and their placing.
    out = weights.new_empty(args.batch, 3**n)
    scratch = weights.new_empty(_gram.scratch_size(args.batch, n))
    table_s = median_time(lambda: _gram.interval_sums(weights, n, out=out, scratch=scratch), args.repeats)
    table = terms_plan._table

    def by_terms() -> None:
        # The sums, appended negated after the tables (the gather that reads them is shared).
        torch.cat((table.view(-1), terms_plan._terms.sums(table).neg_()))

    terms_s = median_time(by_terms, args.repeats)
    per_entry = table_s / (args.batch * 3**n) * 1e9
    per_term = terms_s / max(terms, 1) * 1e9
    share = terms / (args.batch * 3**n)
    return (
        f"{n:>3} {k:>6} {share:>10.3f} {table_s * 1e3:>8.1f}ms {terms_s * 1e3:>8.1f}ms "
        f"{per_entry:>9.2f} {per_term:>8.2f} {per_entry / per_term:>6.2f}" + ("" if same else "  MISMATCH")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[12, 14])
    parser.add_argument("--k", type=int, nargs="+", default=[144, 576, 1152])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-order", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="n = 10 and 12, k = 144 and 576, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.n, args.k, args.repeats = [10, 12], [144, 576], 3
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, orders 1..{args.max_order}"
    )
    header = (
        ("n", 3),
        ("k", 6),
        ("terms/3^n", 10),
        ("table", 10),
        ("terms", 10),
        ("ns/entry", 9),
        ("ns/term", 8),
    )
    print(" ".join(f"{name:>{width}}" for name, width in header) + "  ratio")
    for n in args.n:
        for k in args.k:
            print(measure(n, k, args))
    print("ratio: time per table entry / time per term; the terms route pays while terms/3^n is below it")
    print(
        "(times of that part alone; the rest of a Gram matrix, its k^2 gather and rank-3 update, is the same)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
