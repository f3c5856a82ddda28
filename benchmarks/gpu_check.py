"""GPU check: the interaction engine on a CUDA device, in one run of at most about 5 minutes.

For n = 10, 12, 14, 16 players (8x8 patches of 3x32x32 inputs, a CNN of about 3 million
parameters, ``--samples`` random inputs, default 4) it measures on ``--device`` (default: cuda
if available, else cpu):

* ``masked``: :func:`lightning_interactions.engine.compute.masked_outputs`, the ``samples * 2^n`` masked
  forward passes with :class:`~lightning_interactions.masking.PatchMasker`, in masked inputs
  per second;
* ``bare``: the same model + log-odds on a batch built beforehand, in chunks of the same batch
  size and the same number of inputs, in inputs per second; ``bare/masked`` is the cost of the
  masking and the engine's loop on top of the forward passes;
* ``transforms``: ``and_interactions`` + ``or_interactions`` of the ``(samples, 2^n)`` values;
* ``extraction``: ``and_or_interactions`` of the same values (with its certified gap);
* the peak device memory of each size (``torch.cuda.max_memory_allocated``; on the CPU the peak
  resident size of the process so far).

Before the sizes, a few seconds check the engine's other input paths on the device against the
same measurement on the CPU (``max |v_device - v_cpu|`` over ``max(1, |v_cpu|)``, ok below 1e-2:
cuDNN convolutions run in TF32 by default): dict samples of two
lengths (token ids and an attention mask, kept apart in groups) with ``TokenMasker`` in both
masking modes, and ``FeatureMapMasker`` on a middle ReLU of the CNN (the forward hook).

It runs in two phases: first the passes and transforms of every size, then the extractions,
smallest n first, so that a slow extraction cannot cost the forward-pass numbers of the largest
sizes. Every timing is bracketed by ``torch.cuda.synchronize()``. The whole run has a time guard
(``--budget-s``, default 270 s, counted from the start): a size (or an extraction) whose time
extrapolated from the sizes before would not fit in what is left is skipped, a stage still
running at the budget is interrupted (SIGALRM), and every stage is wrapped so that an error (out
of memory, say) is printed in its row and the run goes on. Rows are printed as soon as they are
done and the compact table again at the end, so whatever ran is on the screen even if the run
is cut short.

Run:
    .venv/bin/python benchmarks/gpu_check.py                       # cuda if available
    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick  # a small check, well under a minute
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import resource
import signal
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lightning_interactions.engine.compute import masked_outputs  # noqa: E402
from lightning_interactions.engine.outputs import log_odds  # noqa: E402
from lightning_interactions.engine.structured import SampleSet  # noqa: E402
from lightning_interactions.extraction.and_or import and_or_interactions  # noqa: E402
from lightning_interactions.extraction.transforms import and_interactions, or_interactions  # noqa: E402
from lightning_interactions.masking import FeatureMapMasker, PatchMasker, TokenMasker  # noqa: E402

PATCH = 8  # 8x8 patches of a 32x32 image: a 4x4 grid, so at most 16 players
NUM_CLASSES = 10
MiB = 2**20


class OutOfTime(Exception):
    """Raised by the alarm when the global time budget runs out in the middle of a stage."""


def cnn(width: int = 64) -> nn.Module:
    """A plain CNN on 3x32x32 inputs; ``width=64`` has about 3.1 million parameters."""
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),  # 16x16
        nn.ReLU(),
        nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),  # 8x8
        nn.ReLU(),
        nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1),  # 4x4
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * w * 16, 8 * w),
        nn.ReLU(),
        nn.Linear(8 * w, NUM_CLASSES),
    )


class TokenModel(nn.Module):
    """Embeddings averaged over the attended tokens, then a linear head: needs the attention mask."""

    def __init__(self, vocabulary: int = 30, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.head = nn.Linear(width, NUM_CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = attention_mask[..., None].to(self.embed.weight.dtype)
        return self.head((self.embed(input_ids) * weights).sum(1) / weights.sum(1).clamp(min=1.0))


def token_batches() -> list[dict[str, torch.Tensor]]:
    """Two batches padded each to its own length (0 is padding, 1 the mask token)."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for lengths in ((5, 8), (11, 6, 9)):
        ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
        for row, length in enumerate(lengths):
            ids[row, :length] = torch.randint(2, 30, (length,), generator=generator)
        batches.append({"input_ids": ids, "attention_mask": (ids != 0).long()})
    return batches


def check_input_paths(model: nn.Module, device: torch.device) -> list[str]:
    """Each input path measured on ``device`` and on the CPU: one line each, ``ok`` or ``FAIL``."""
    torch.manual_seed(0)
    tokens = TokenModel()
    samples = SampleSet.from_batches(token_batches())
    labels = torch.arange(len(samples)) % NUM_CLASSES
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cases = [
        ("dict samples, 2 lengths, [MASK]", tokens, samples, labels, TokenMasker(1, 4, pad_token_id=0)),
        (
            "dict samples, 2 lengths, attention",
            tokens,
            samples,
            labels,
            TokenMasker(num_players=4, pad_token_id=0, masked_as="attention"),
        ),
        ("FeatureMapMasker after conv 2", model, images, labels[:2], FeatureMapMasker("3", 4, num_players=6)),
    ]
    lines = []
    for name, net, inputs, targets, masker in cases:
        try:
            cpu = masked_outputs(copy.deepcopy(net).cpu().float(), inputs, targets, masker=masker)
            here = masked_outputs(net.to(device), inputs, targets, masker=masker).cpu()
            error = float((here - cpu).abs().max())
            lines.append(
                f"  {name}: max |v_{device.type} - v_cpu| {error:.1e}  {'ok' if error < 1e-3 else 'FAIL'}"
            )
        except Exception as raised:  # noqa: BLE001 - reported in its line, the run goes on
            lines.append(f"  {name}: FAIL {type(raised).__name__}: {raised}")
    return lines


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, object]:
    """``(seconds, result)`` of one call, synchronised on both sides."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / MiB:.0f} MiB"
    factor = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * factor / MiB:.0f} MiB RSS"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------------------------
# One size
# ---------------------------------------------------------------------------------------------


def bare_route(model: nn.Module, batch: torch.Tensor, targets: torch.Tensor, total: int) -> None:
    """``total`` inputs through the model and log-odds, in chunks of ``len(batch)`` prebuilt inputs."""
    with torch.inference_mode():
        for start in range(0, total, batch.shape[0]):
            count = min(batch.shape[0], total - start)
            log_odds(model(batch[:count]), targets[:count])


def measure_passes(
    n: int, model: nn.Module, args: argparse.Namespace, device: torch.device, row: dict
) -> None:
    """Masked against bare passes and the transforms at ``n``; fills ``row`` (values in ``row["v"]``).

    Stage by stage, so that a stage cut short leaves the earlier ones in ``row``.
    """
    generator = torch.Generator().manual_seed(n)
    inputs = torch.rand(args.samples, 3, 32, 32, generator=generator).to(device)
    targets = torch.randint(0, NUM_CLASSES, (args.samples,), generator=generator).to(device)
    masker = PatchMasker(patch_size=PATCH, num_players=n)
    total = args.samples * 2**n
    chunk = min(args.batch_size, total)
    prebuilt = torch.rand(chunk, 3, 32, 32, generator=generator).to(device)
    prebuilt_targets = torch.randint(0, NUM_CLASSES, (chunk,), generator=generator).to(device)

    def masked():
        return masked_outputs(
            model, inputs, targets, masker=masker, output="log_odds", batch_size=args.batch_size, seed=0
        )

    reset_peak(device)
    masked_times, bare_times, v = [], [], None
    for _ in range(args.repeats):  # interleaved, so that a slow moment hits both
        seconds, v = timed(masked, device)
        masked_times.append(seconds)
        bare_times.append(timed(lambda: bare_route(model, prebuilt, prebuilt_targets, total), device)[0])
        row["masked_s"], row["bare_s"] = statistics.median(masked_times), statistics.median(bare_times)
    row["masked_rate"], row["bare_rate"] = total / row["masked_s"], total / row["bare_s"]
    row["finite"] = bool(torch.isfinite(v).all())

    transform_times = [timed(lambda: (and_interactions(v), or_interactions(v)), device)[0] for _ in range(5)]
    row["transforms_s"] = statistics.median(transform_times)
    row["v"] = v
    row["peak"] = peak_memory(device)


def measure_extraction(row: dict, device: torch.device) -> None:
    """Time ``and_or_interactions`` of ``row["v"]``; the peak memory becomes the larger of both phases."""
    reset_peak(device)
    seconds, result = timed(lambda: and_or_interactions(row["v"]), device)
    row["extraction_s"], row["gap"], row["rounds"] = seconds, float(result.gap.max()), result.rounds
    row["peak"] = max(row.get("peak", "0 MiB"), peak_memory(device), key=lambda text: float(text.split()[0]))


def estimate_passes(rows: list[dict], n: int) -> float | None:
    """Seconds of the passes and transforms at ``n``, extrapolated from the last size measured.

    The passes grow like ``2^n``, the transforms like ``n 2^n`` (2.2x per player is a margin).
    """
    done = [row for row in rows if "transforms_s" in row]
    if not done:
        return None
    last = done[-1]
    steps = n - last["n"]
    return (last["masked_s"] + last["bare_s"]) * last["repeats"] * 2**steps + 5 * last[
        "transforms_s"
    ] * 2.2**steps


def estimate_extraction(rows: list[dict], n: int) -> float | None:
    """Seconds of the extraction at ``n``: 3.5x per player from the last size where it ran.

    About what ``bench_scaling.py`` measured on a CPU (3 to 4x per player from n = 10 to 14).
    """
    done = [row for row in rows if "extraction_s" in row and row["n"] < n]
    if not done:
        return None
    return done[-1]["extraction_s"] * 3.5 ** (n - done[-1]["n"])


def guarded(stage, row: dict, left: float, device: torch.device, use_alarm: bool) -> None:
    """Run ``stage()`` with an alarm at ``left`` seconds; an overrun or error goes to ``row["notes"]``."""
    if use_alarm:
        signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))
    try:
        stage()
    except OutOfTime:
        row["notes"].append("stopped at the time budget")
    except Exception as error:  # noqa: BLE001 - print what it had and go on
        row["notes"].append(f"error: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:80]}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _fmt_s(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}"


HEADER = (
    f"{'n':>3} {'inputs':>8} {'masked/s':>12} {'bare/s':>12} {'bare/masked':>11} "
    f"{'transforms':>10} {'extraction':>10} {'max gap':>8} {'peak mem':>14}  status"
)


def status(row: dict) -> str:
    """``ok`` when every stage was measured, else what happened (notes joined)."""
    notes = list(row["notes"])
    if "finite" in row and not row["finite"]:
        notes.append("NON-FINITE values")
    if notes:
        return "; ".join(notes)
    return "ok" if "extraction_s" in row else "extraction pending"


def format_row(row: dict) -> str:
    ratio = row["bare_rate"] / row["masked_rate"] if "masked_rate" in row else None
    gap = f"{row['gap']:.4f}" if "gap" in row else "-"
    return (
        f"{row['n']:>3} {row['inputs']:>8} {_fmt_rate(row.get('masked_rate')):>12} "
        f"{_fmt_rate(row.get('bare_rate')):>12} {('-' if ratio is None else f'{ratio:.2f}x'):>11} "
        f"{_fmt_s(row.get('transforms_s')):>10} {_fmt_s(row.get('extraction_s')):>10} {gap:>8} "
        f"{row.get('peak', '-'):>14}  {status(row)}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    parser.add_argument("--quick", action="store_true", help="n = 6, 8, a narrow CNN, 1 sample")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="n (default 10 12 14 16)")
    parser.add_argument("--samples", type=int, default=None, help="inputs measured (default 4; quick 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="masked inputs per chunk (cuda 8192)")
    parser.add_argument("--width", type=int, default=None, help="CNN width (default 64: ~3.1M parameters)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of the passes (default 3)")
    parser.add_argument("--budget-s", type=float, default=270.0, help="global time guard (default 270)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cpu = torch.device(args.device).type == "cpu"
    args.sizes = args.sizes or ([6, 8] if args.quick else [10, 12, 14, 16])
    if any(not 1 <= n <= 16 for n in args.sizes):
        parser.error("sizes must be 1..16 (a 4x4 grid of 8x8 patches)")
    args.samples = args.samples or (1 if args.quick else 4)
    args.batch_size = args.batch_size or (1024 if cpu else 8192)
    args.width = args.width or (8 if args.quick else 64)
    args.repeats = args.repeats or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    start = time.monotonic()
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("FAIL: --device cuda but torch.cuda.is_available() is False")
        return 1

    print(f"torch {torch.__version__}, device {device}", end="")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        print(
            f": {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}, TF32 conv={torch.backends.cudnn.allow_tf32} "
            f"matmul={torch.backends.cuda.matmul.allow_tf32}"
        )
    else:
        print(f": {os.cpu_count()} CPUs, {torch.get_num_threads()} torch thread(s)")
    torch.manual_seed(0)  # the same weights on every run, so that runs can be compared
    model = cnn(args.width).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    print(
        f"CNN width {args.width} ({params / 1e6:.2f}M parameters) on 3x32x32, {PATCH}x{PATCH} patches, "
        f"{args.samples} sample(s), chunks of {args.batch_size}, median of {args.repeats} run(s) of the "
        f"passes, budget {args.budget_s:g} s"
    )

    def alarm(signum, frame):
        raise OutOfTime

    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, alarm)

    try:  # warm up: CUDA context, cuDNN algorithms, the engine's first call
        with torch.inference_mode():
            model(torch.zeros(min(args.batch_size, 2 ** min(args.sizes)), 3, 32, 32, device=device))
        x = torch.zeros(1, 3, 32, 32, device=device)
        masked_outputs(
            model, x, torch.zeros(1, dtype=torch.long, device=device), masker=PatchMasker(PATCH, 4)
        )
        sync(device)
    except Exception as error:  # noqa: BLE001 - reported, then the sizes are tried anyway
        print(f"warm-up failed: {type(error).__name__}: {error}")
    print(f"warm-up done at {time.monotonic() - start:.1f} s")
    print("Input paths (each against the same measurement on the CPU):")
    for line in check_input_paths(model, device):
        print(line, flush=True)
    print()
    print(HEADER)
    print("-" * len(HEADER), flush=True)

    # Phase 1: the passes and transforms of every size, so that a slow extraction cannot cost the
    # forward-pass numbers of the largest sizes. Phase 2: the extractions, smallest n first.
    rows: list[dict] = []
    for n in args.sizes:
        row = {"n": n, "inputs": args.samples * 2**n, "notes": [], "repeats": args.repeats}
        rows.append(row)
        left, guess = args.budget_s - (time.monotonic() - start), estimate_passes(rows, n)
        if left <= 1 or (guess is not None and guess > left):
            need = "" if guess is None else f", passes and transforms estimated {guess:.0f} s"
            row["notes"].append(f"skipped: {left:.0f} s left{need}")
        else:
            stage = lambda n=n, row=row: measure_passes(n, model, args, device, row)  # noqa: E731
            guarded(stage, row, left, device, use_alarm)
            row.setdefault("peak", peak_memory(device))
        print(format_row(row), flush=True)

    print("\nExtraction (and_or_interactions of the values above):", flush=True)
    for row in rows:
        if "v" not in row:
            continue
        left, guess = args.budget_s - (time.monotonic() - start), estimate_extraction(rows, row["n"])
        if left <= 1 or (guess is not None and guess > left):
            need = "" if guess is None else f", estimated {guess:.0f} s"
            row["notes"].append(f"extraction skipped: {left:.0f} s left{need}")
        else:
            guarded(lambda row=row: measure_extraction(row, device), row, left, device, use_alarm)
        del row["v"]
        rounds = f", {row['rounds']} rounds" if "rounds" in row else ""
        print(f"  n={row['n']}: {_fmt_s(row.get('extraction_s'))}{rounds}  {status(row)}", flush=True)

    print(f"\nSummary ({time.monotonic() - start:.1f} s in all, device {device}):")
    print(HEADER)
    for row in rows:
        print(format_row(row))
    complete = sum(status(row) == "ok" for row in rows)
    print(f"{complete} of {len(rows)} sizes complete (every stage measured)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
