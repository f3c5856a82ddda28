"""Benchmark: masked forward passes against bare forward passes of the same number of inputs.

Measuring interactions of ``n`` players costs ``2^n`` forward passes per sample, one per
masked input. This script checks how much building the masked inputs adds on top of those
forward passes, for three small models with n = 10 players (1024 masked inputs per sample):

* an MLP on 1x8x8 images (digits-like, values in 0..16), players = 10 of the 16 2x2 patches;
* a CNN on 1x28x28 images, players = 10 of the 16 7x7 patches;
* a CNN on 3x32x32 images, players = 10 of the 16 8x8 patches.

Inputs are random (timings do not depend on the weights or the data). For each model it
times, side by side with interleaved repetitions and the median of several repeats:

* ``bare``: the model forward + the log-odds output on batches that were built beforehand
  (the same chunk sizes as below, so the same number of forward inputs);
* ``masked``: ``PatchMasker.select_players`` + ``PatchMasker.apply`` in chunks of
  ``--batch-size`` masked inputs + the same forward + log-odds, written out by hand;
* ``build``: the masking alone (select + apply, no forward);
* ``engine``: :func:`lightning_interactions.engine.compute.masked_outputs`, the package's own loop
  (includes its input checks and a probe pass), when that function is available.

Everything runs under ``torch.inference_mode()`` with the model in eval mode. Times are
printed per original sample (all 2^n masked inputs) and per masked input, with the ratio of
each route to ``bare``; the medians come first, then the fastest repeat (less sensitive to other
load on a shared machine).

Run:
    .venv/bin/python benchmarks/bench_forward.py              # 1 thread
    .venv/bin/python benchmarks/bench_forward.py --quick
    .venv/bin/python benchmarks/bench_forward.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning_interactions.engine.outputs import log_odds  # noqa: E402
from lightning_interactions.masking import PatchMasker  # noqa: E402

try:  # written concurrently with this benchmark; time it when it is there
    from lightning_interactions.engine.compute import masked_outputs  # noqa: E402
except ImportError:  # pragma: no cover - depends on the state of the package
    masked_outputs = None

NUM_PLAYERS = 10
NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------------
# Models and data
# ---------------------------------------------------------------------------------------------


def mlp_8x8() -> nn.Module:
    """A 3-layer MLP on 1x8x8 images (the size of scikit-learn's digits)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 128), nn.ReLU(),
        nn.Linear(128, NUM_CLASSES),
    )


def cnn_28x28() -> nn.Module:
    """A small CNN on 1x28x28 images: two strided convolutions and a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(),  # 12x12
        nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),  # 5x5
        nn.Flatten(), nn.Linear(16 * 5 * 5, NUM_CLASSES),
    )


def cnn_32x32() -> nn.Module:
    """A small CNN on 3x32x32 images: two strided convolutions and a linear head."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(),  # 14x14
        nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),  # 6x6
        nn.Flatten(), nn.Linear(16 * 6 * 6, NUM_CLASSES),
    )


# name, model factory, image shape (C, H, W), patch size, input scale
CASES = [
    ("MLP 1x8x8", mlp_8x8, (1, 8, 8), 2, 16.0),
    ("CNN 1x28x28", cnn_28x28, (1, 28, 28), 7, 1.0),
    ("CNN 3x32x32", cnn_32x32, (3, 32, 32), 8, 1.0),
]


# ---------------------------------------------------------------------------------------------
# The routes
# ---------------------------------------------------------------------------------------------


def chunks(batch: int, num_masks: int, batch_size: int) -> list[tuple[int, int, int]]:
    """``(sample, mask_start, mask_stop)``: each chunk holds ``batch_size`` masks of one sample."""
    starts = range(0, num_masks, batch_size)
    return [(s, m, min(m + batch_size, num_masks)) for s in range(batch) for m in starts]


def masked_route(model, masker, x, targets, batch_size, forward=True) -> torch.Tensor:
    """Select players, build every masked input chunk by chunk, and (optionally) run the model."""
    batch, num_masks = x.shape[0], 2**masker.num_players
    masks = torch.arange(num_masks)
    out = torch.empty(batch, num_masks, dtype=torch.float64)
    with torch.inference_mode():
        players = masker.select_players(x, seed=0)
        for s, m0, m1 in chunks(batch, num_masks, batch_size):
            rows = {key: value[s : s + 1] for key, value in players.items()}
            masked = masker.apply(x[s : s + 1], rows, masks[m0:m1]).flatten(0, 1)
            if forward:
                t = targets[s].expand(m1 - m0)
                out[s, m0:m1] = log_odds(model(masked), t).double()
    return out


def bare_route(model, prebuilt, targets) -> torch.Tensor:
    """The same forward passes and outputs on masked inputs that were built beforehand."""
    batch = targets.shape[0]
    out = torch.empty(batch, prebuilt[0][3].shape[0] * (len(prebuilt) // batch), dtype=torch.float64)
    with torch.inference_mode():
        for s, m0, m1, inputs in prebuilt:
            out[s, m0:m1] = log_odds(model(inputs), targets[s].expand(m1 - m0)).double()
    return out


def engine_route(model, masker, x, targets, batch_size) -> torch.Tensor:
    """The package's own loop over chunks."""
    return masked_outputs(model, x, targets, masker=masker, output="log_odds", batch_size=batch_size, seed=0)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def interleaved_times(fns: dict, repeats: int) -> dict:
    """Seconds of every call of every function, repetitions interleaved across functions."""
    for fn in fns.values():
        fn()  # warm up
    samples: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one sample, fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--samples", type=int, default=None, help="samples per model (default 4, quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 7, quick 3)")
    parser.add_argument("--batch-size", type=int, default=1024, help="masked inputs per forward pass")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    samples = args.samples or (1 if args.quick else 4)
    repeats = args.repeats or (3 if args.quick else 7)
    num_masks = 2**NUM_PLAYERS
    total = samples * num_masks
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs (threads beyond the idle CPUs distort times)")
    print(f"torch {torch.__version__}, float32 models, {torch.get_num_threads()} thread(s), n={NUM_PLAYERS} "
          f"players, {samples} sample(s) x {num_masks} masks = {total} forward inputs per route, "
          f"chunks of {args.batch_size}, median of {repeats} interleaved repeats")
    if masked_outputs is None:
        print("lightning_interactions.engine.compute.masked_outputs not found: the engine route is skipped")
    print()
    header = (f"{'model':<12} {'route':<7} | {'per sample':>11} {'per input':>10} | {'vs bare':>8} | "
              f"{'min/sample':>11} {'vs bare':>8}")
    print(header)
    print("-" * len(header))

    generator = torch.Generator().manual_seed(0)
    for name, factory, shape, patch, scale in CASES:
        torch.manual_seed(0)
        model = factory().eval()
        x = torch.rand(samples, *shape, generator=generator) * scale
        targets = torch.randint(0, NUM_CLASSES, (samples,), generator=generator)
        masker = PatchMasker(patch_size=patch, num_players=NUM_PLAYERS)

        # the bare route's inputs: exactly the masked inputs, built once, outside the timing
        players = masker.select_players(x, seed=0)
        masks = torch.arange(num_masks)
        prebuilt = []
        for s, m0, m1 in chunks(samples, num_masks, args.batch_size):
            rows = {key: value[s : s + 1] for key, value in players.items()}
            prebuilt.append((s, m0, m1, masker.apply(x[s : s + 1], rows, masks[m0:m1]).flatten(0, 1)))

        routes = {
            "bare": lambda model=model, prebuilt=prebuilt, t=targets: bare_route(model, prebuilt, t),
            "masked": lambda model=model, masker=masker, x=x, t=targets: masked_route(
                model, masker, x, t, args.batch_size
            ),
            "build": lambda model=model, masker=masker, x=x, t=targets: masked_route(
                model, masker, x, t, args.batch_size, forward=False
            ),
        }
        if masked_outputs is not None:
            routes["engine"] = lambda model=model, masker=masker, x=x, t=targets: engine_route(
                model, masker, x, t, args.batch_size
            )

        # sanity: every route that computes outputs computes the same ones
        reference = routes["bare"]()
        for route in ("masked", "engine"):
            if route in routes:
                got = routes[route]()
                assert torch.allclose(got, reference, rtol=1e-5, atol=1e-5), (name, route)

        times = interleaved_times(routes, repeats)
        medians = {route: statistics.median(values) for route, values in times.items()}
        for route, seconds in medians.items():
            fastest = min(times[route])
            print(f"{name:<12} {route:<7} | {seconds / samples * 1e3:8.2f} ms {seconds / total * 1e6:7.2f} us"
                  f" | {seconds / medians['bare']:7.2f}x | {fastest / samples * 1e3:8.2f} ms "
                  f"{fastest / min(times['bare']):7.2f}x")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
