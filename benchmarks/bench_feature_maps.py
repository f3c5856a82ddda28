"""Benchmark: masking a hidden layer's feature map (FeatureMapMasker) against masking the pixels.

With :class:`~lightning_interactions.masking.PatchMasker` every one of the ``2^n`` masked images
of a sample runs through the whole network. With
:class:`~lightning_interactions.masking.FeatureMapMasker` the layers before the masked layer run
once per sample and only the layers after it run ``2^n`` times, so the speed-up is at most the
time of the whole network over that of the layers after the masked layer, on the same chunk of
inputs (the ``ceiling`` column, timed on bare chunks in the same alternation).

The network: a CNN on 1x32x32 images, four 3x3 convolutions (16, 32, 64, 64 channels) with ReLU
and one 2x2 max-pool after the second, then a linear head to 10 classes (random weights, seed
0; the weights do not change the time). Routes, each a call of ``masked_outputs`` (forward
passes, player choice and probe pass included; no extraction), chunks of 1024 masked inputs:

* ``(a) pixels``: ``PatchMasker(8)``, 10 of the image's 16 patches of 8x8 pixels;
* ``(b) after conv 2``: ``FeatureMapMasker`` at the ReLU after the second convolution (32x32x32,
  before the pool), 10 of its 16 regions of 8x8;
* ``(b) after conv 3``: ``FeatureMapMasker`` at the ReLU after the third convolution (64x16x16),
  10 of its 16 regions of 4x4.

Each region covers about the image area of a pixel patch, so the routes measure comparable
players. Repetitions alternate between the routes, so that load from other processes on a
shared machine hits all of them alike; each time is the best of ``--repeats`` (3; 2 with
``--quick``) after one untimed warm-up call. Everything runs twice in the same process: at torch's
default thread settings, then after ``torch.set_num_threads(1)``. The full coalition (nothing masked) is the
unmasked image on every route, so those outputs are checked to agree before timing (exit
status 1 if they do not).

Run:
    .venv/bin/python benchmarks/bench_feature_maps.py            # 16 samples, n = 10
    .venv/bin/python benchmarks/bench_feature_maps.py --quick    # 2 samples, n = 8, best of 2 (under 30 s)
    .venv/bin/python benchmarks/bench_feature_maps.py --samples 8 --repeats 5 [--batch-size 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning_interactions.engine.compute import masked_outputs  # noqa: E402
from lightning_interactions.masking import FeatureMapMasker, Masker, PatchMasker  # noqa: E402

NUM_CLASSES = 10
IMAGE = (1, 32, 32)
BATCH_SIZE = 1024  # the engine's default chunk of masked inputs


def make_cnn() -> nn.Sequential:
    """Four conv-ReLU layers (16, 32, 64, 64 channels), a max-pool after the second, a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # 0
        nn.ReLU(),  # 1
        nn.Conv2d(16, 32, 3, padding=1),  # 2
        nn.ReLU(),  # 3: (b) after conv 2, 32x32x32
        nn.MaxPool2d(2),  # 4
        nn.Conv2d(32, 64, 3, padding=1),  # 5
        nn.ReLU(),  # 6: (b) after conv 3, 64x16x16
        nn.Conv2d(64, 64, 3, padding=1),  # 7
        nn.ReLU(),  # 8
        nn.Flatten(),  # 9
        nn.Linear(64 * 16 * 16, NUM_CLASSES),  # 10
    ).eval()


# route name, layer index in the Sequential (None: the pixels), patch size on what is masked
ROUTES = [("(a) pixels", None, 8), ("(b) after conv 2", 3, 8), ("(b) after conv 3", 6, 4)]


def multiply_adds(model: nn.Sequential, image: Tensor) -> list[int]:
    """Multiply-adds of every module of ``model`` on one image (convolutions and linear layers only).

    ReLU, pooling and flattening cost little next to them; they are counted as zero.
    """
    counts: list[int] = []
    x = image
    with torch.inference_mode():
        for module in model:
            y = module(x)
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                counts.append(y.numel() * (module.in_channels // module.groups) * kh * kw)
            elif isinstance(module, nn.Linear):
                counts.append(y.numel() * module.in_features)
            else:
                counts.append(0)
            x = y
    return counts


def describe_layers(model: nn.Sequential, image: Tensor) -> None:
    """Where each masked layer sits: modules and convolutions before and after it, its output shape."""
    macs = multiply_adds(model, image)
    total = sum(macs)
    print(
        f"model: {len(model)} modules, {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{total / 1e6:.1f} M multiply-adds per image"
    )
    with torch.inference_mode():
        for name, index, patch in ROUTES:
            if index is None:
                print(
                    f"  {name:<17} the input {tuple(image.shape[1:])}, {patch}x{patch} patches: all "
                    f"{len(model)} modules run on every masked image"
                )
                continue
            shape = tuple(model[: index + 1](image).shape[1:])
            convs_before = sum(isinstance(m, nn.Conv2d) for m in model[: index + 1])
            convs_after = sum(isinstance(m, nn.Conv2d) for m in model[index + 1 :])
            before = sum(macs[: index + 1])
            print(
                f"  {name:<17} model[{index}] ({type(model[index]).__name__}) output {shape}, "
                f"{patch}x{patch} regions: {index + 1} modules ({convs_before} conv) run once per "
                f"sample, {len(model) - index - 1} ({convs_after} conv + linear) on every masked copy; "
                f"{100 * before / total:.0f}% of the multiply-adds before it"
            )


def bare_passes(model: nn.Sequential, chunk: int) -> dict[str, Callable[[], Tensor]]:
    """One chunk of the bare network, and of the layers after each masked layer on its feature maps.

    Only the layers after the masked layer run 2^n times, so ``whole / after`` bounds the speed-up
    of route (b) from above (masking and the once-per-sample prefix cost it something). It is timed
    rather than taken from the multiply-adds: at 32x32 the early, thin layers move far more memory
    per multiply-add than the later ones.
    """
    images = torch.rand(chunk, *IMAGE, generator=torch.Generator().manual_seed(2))
    passes: dict[str, Callable[[], Tensor]] = {"whole": lambda: model(images)}
    with torch.inference_mode():
        for name, index, _ in ROUTES:
            if index is not None:
                maps, after = model[: index + 1](images), model[index + 1 :]
                passes[name] = lambda maps=maps, after=after: after(maps)
    return {f"bare {name}": inference(fn) for name, fn in passes.items()}


def inference(fn: Callable[[], Tensor]) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.inference_mode():
            return fn()

    return run


def make_masker(index: int | None, patch: int, num_players: int) -> Masker:
    if index is None:
        return PatchMasker(patch_size=patch, num_players=num_players)
    return FeatureMapMasker(str(index), patch_size=patch, num_players=num_players)


def best_times(fns: dict[str, Callable[[], Tensor]], repeats: int) -> dict[str, list[float]]:
    """Seconds of every call, repetitions alternating across the routes after one warm-up call each."""
    for fn in fns.values():
        fn()  # first-call allocations and kernel choices stay out of the timing
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run_setting(
    label: str,
    routes: dict[str, Callable[[], Tensor]],
    bare: dict[str, Callable[[], Tensor]],
    repeats: int,
    inputs: int,
) -> None:
    # The bare chunks take their turn in the same alternation as the routes.
    times = best_times({**routes, **bare}, repeats)
    best = {name: min(values) for name, values in times.items()}
    pixels = best["(a) pixels"]
    print(f"\n{label}: {torch.get_num_threads()} thread(s), best of {repeats} (alternating)")
    header = (
        f"{'route':<17} | {'best':>8} | {'per masked input':>16} | {'all repeats (s)':<24} | "
        f"{'a/b':>6} | {'ceiling':>7}"
    )
    print(header)
    print("-" * len(header))
    for name in routes:
        ratio = ceiling = ""
        if name != "(a) pixels":
            ratio = f"{pixels / best[name]:5.2f}x"
            ceiling = f"{best['bare whole'] / best[f'bare {name}']:5.2f}x"
        every = " ".join(f"{value:.3f}" for value in times[name])
        print(
            f"{name:<17} | {best[name]:7.3f}s | {best[name] / inputs * 1e6:13.1f} us | {every:<24} | "
            f"{ratio:>6} | {ceiling:>7}"
        )
    chunk = " / ".join(f"{name[5:]} {seconds * 1e3:.1f} ms" for name, seconds in best.items() if name in bare)
    print(f"bare chunk (best): {chunk}; ceiling = whole / the layers after the masked layer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 samples, n = 8, best of 2 (a smoke run)")
    parser.add_argument("--samples", type=int, default=None, help="samples (default 16, quick 2)")
    parser.add_argument("--players", type=int, default=None, help="players n (default 10, quick 8)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repetitions per route (default 3, quick 2)"
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="masked inputs per forward pass")
    args = parser.parse_args(argv)
    samples = args.samples or (2 if args.quick else 16)
    n = args.players or (8 if args.quick else 10)
    repeats = args.repeats or (2 if args.quick else 3)

    model = make_cnn()
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(samples, *IMAGE, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (samples,), generator=generator)
    inputs = samples * 2**n

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs; torch {torch.__version__}, float32")
    print(
        f"{samples} samples x 2^{n} masks = {inputs} masked inputs per route, chunks of {args.batch_size}, "
        "masked_outputs (log-odds, no extraction)"
    )
    describe_layers(model, x[:1])

    routes: dict[str, Callable[[], Tensor]] = {}
    for name, index, patch in ROUTES:
        masker = make_masker(index, patch, n)
        routes[name] = lambda masker=masker: masked_outputs(
            model, x, y, masker=masker, batch_size=args.batch_size
        )

    # Nothing masked is the image itself on every route: the full coalition's outputs agree.
    full = {name: fn()[:, -1] for name, fn in routes.items()}
    gap = max(float((value - full["(a) pixels"]).abs().max()) for value in full.values())
    print(f"full coalition, max |v_b - v_a| over samples and routes: {gap:.1e}")
    if gap > 1e-4:
        print("FAIL: the routes disagree on the unmasked images")
        return 1

    bare = bare_passes(model, min(args.batch_size, inputs))
    run_setting("default threads", routes, bare, repeats, inputs)
    # The same process at one thread: no second import, same model and inputs.
    torch.set_num_threads(1)
    run_setting("one thread", routes, bare, repeats, inputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
