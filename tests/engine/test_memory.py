"""Memory: refusal before any allocation, and retries at half the chunk after a CUDA out-of-memory.

The available memory is monkeypatched, so the refusals do not depend on this machine, and the
out-of-memory errors come from a fake model that raises ``torch.cuda.OutOfMemoryError`` (the class
a CUDA allocation failure raises; since torch 2.5 an alias of the device-generic
``torch.OutOfMemoryError``) above a batch limit, so the retry logic runs on the CPU.
Expected byte counts are written out from their definitions (8 bytes per float64 entry of
``v``, one element plus one boolean keep flag per masked input element).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest
import torch

from lightning_interactions.engine import _forward, _memory, _setup
from lightning_interactions.engine import compute as engine
from lightning_interactions.engine.compute import MeasurementMemoryError, compute_interactions, masked_outputs
from lightning_interactions.masking import FeatureMasker, PatchMasker

GIB = 2**30


class Counting(torch.nn.Module):
    """Records the batch size of every call; raises ``error`` for batches above ``limit``."""

    def __init__(self, inner, limit: int | None = None, error: type[Exception] = torch.cuda.OutOfMemoryError):
        super().__init__()
        self.inner, self.limit, self.error = inner, limit, error
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        if self.limit is not None and x.shape[0] > self.limit:
            raise self.error(f"CUDA out of memory. Tried to allocate {x.shape[0]} inputs (fake)")
        return self.inner(x)


class Polynomial(torch.nn.Module):
    """Row by row arithmetic on 5 features, so its outputs do not depend on the batch they come in."""

    def forward(self, x):
        return torch.sin(x).sum(dim=1) + x.prod(dim=1) + x[:, 0] * x[:, 2] - x[:, 1] * x[:, 3] * x[:, 4]


class CountingMasker(FeatureMasker):
    """A FeatureMasker that counts its select_players and apply calls."""

    supports_out = True  # its apply passes out= on

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.selected = 0
        self.applied = 0

    def select_players(self, inputs, seed=0):
        self.selected += 1
        return super().select_players(inputs, seed)

    def apply(self, inputs, players, masks, out=None):
        self.applied += 1
        return super().apply(inputs, players, masks, out=out)


def _inputs(batch: int, features: int = 5) -> torch.Tensor:
    return torch.randn(batch, features, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def _available(monkeypatch, num_bytes: int | None) -> list[torch.device]:
    """Make the engine see ``num_bytes`` available on every device; returns the devices asked about."""
    asked: list[torch.device] = []

    def fake(device):
        asked.append(device)
        return num_bytes

    monkeypatch.setattr(_setup, "available_memory", fake)
    return asked


# ---------------------------------------------------------------------------------------------
# Refusal before any allocation
# ---------------------------------------------------------------------------------------------


def test_a_measurement_that_does_not_fit_is_refused_before_anything_runs(monkeypatch):
    asked = _available(monkeypatch, 1024)  # 1 KiB: nothing fits
    model, masker = Counting(Polynomial()), CountingMasker(num_features=5)
    with pytest.raises(MeasurementMemoryError) as caught:
        compute_interactions(model, _inputs(4), masker=masker, output="regression", batch_size=64)
    message = str(caught.value)
    assert "only 9.54e-07 GiB is available" in message  # 1024 / 2^30
    for hint in ("lower the number of samples (now 4)", "batch_size (now 64)", "number of players (now 5"):
        assert hint in message
    assert "v table 4 x 2^5 float64" in message and "activations" in message
    assert model.calls == [] and masker.selected == 0 and masker.applied == 0
    assert asked == [torch.device("cpu")]
    # Both a MemoryError and a ValueError, so either kind of handler catches it.
    assert isinstance(caught.value, MemoryError) and isinstance(caught.value, ValueError)


def test_the_forward_estimate_is_exact_at_the_boundary(monkeypatch):
    """masked_outputs needs v, the samples and one chunk: refused one byte short, run at exactly that."""
    batch, n, chunk = 3, 5, 40
    # v: 3 x 2^5 float64; the samples: 3 x 5 float64; one chunk: 40 masked samples of 5 float64 + 5 bools.
    needed = 8 * batch * 2**n + batch * 5 * 8 + chunk * 5 * (8 + 1)
    model = Counting(Polynomial())
    _available(monkeypatch, needed - 1)
    with pytest.raises(MeasurementMemoryError, match=r"needs about"):
        masked_outputs(
            model, _inputs(batch), masker=FeatureMasker(num_features=5), output="regression", batch_size=chunk
        )
    assert model.calls == []
    _available(monkeypatch, needed)
    v = masked_outputs(
        model, _inputs(batch), masker=FeatureMasker(num_features=5), output="regression", batch_size=chunk
    )
    assert v.shape == (batch, 2**n)


def test_the_message_gives_the_numbers_in_gib(monkeypatch):
    # 20 players on one sample: v is 8 MiB, but the extraction's 3^20 interval table and the two
    # partial tables it is built from hold over 2 x 3^20 float64 = 52 GiB; with the rest, above 64 GiB.
    _available(monkeypatch, 64 * GIB)
    model = Counting(lambda z: z.sum(dim=1))
    with pytest.raises(MeasurementMemoryError) as caught:
        compute_interactions(
            model,
            torch.rand(1, 20),
            masker=FeatureMasker(num_features=20),
            output="regression",
            batch_size=16,
        )
    needed, available = re.search(
        r"needs about ([\d.,]+) GiB .* only ([\d.,]+) GiB", str(caught.value)
    ).groups()
    assert float(available) == 64.0
    assert float(needed.replace(",", "")) >= 64.0
    assert "number of players (now 20" in str(caught.value) and model.calls == []


def test_the_player_limit_is_still_checked_first(monkeypatch):
    asked = _available(monkeypatch, 1024)
    with pytest.raises(ValueError, match="max_players=3"):
        compute_interactions(
            Counting(Polynomial()),
            _inputs(2),
            masker=FeatureMasker(num_features=5),
            output="regression",
            max_players=3,
        )
    assert asked == []  # refused before the memory was even looked at


def test_unknown_available_memory_and_check_memory_false_skip_the_check(monkeypatch):
    _available(monkeypatch, None)  # e.g. an MPS device: nothing is known, nothing is refused
    result = compute_interactions(
        Polynomial(), _inputs(2), masker=FeatureMasker(num_features=5), output="regression"
    )
    assert result.num_samples == 2
    asked = _available(monkeypatch, 1024)
    result = compute_interactions(
        Polynomial(),
        _inputs(2),
        masker=FeatureMasker(num_features=5),
        output="regression",
        check_memory=False,
    )
    assert result.num_samples == 2 and asked == []


def test_available_memory_of_the_cpu_is_memavailable():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        line = next(line for line in meminfo if line.startswith("MemAvailable:"))
    expected = int(line.split()[1]) * 1024
    measured = _memory.available_memory(torch.device("cpu"))
    # Other processes allocate in between: within 1 GiB of a second read.
    assert abs(measured - expected) < GIB
    assert _memory.available_memory(torch.device("meta")) is None


_PEAK_SCRIPT = """
import torch
torch.set_num_threads(1)
from lightning_interactions.extraction.and_or import and_or_interactions

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

v = torch.randn({batch}, 2**{n}, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
# Random v is dense and would take the row-space route, which needs far less; the estimate must
# cover the column generation's worst case, so the run is forced through it.
and_or_interactions(v[:1], row_space=False)  # warm up: libraries and allocator arenas are not working memory
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident set size (VmHWM) to the current one
before = status("VmRSS:")
and_or_interactions(v, row_space=False)
print(status("VmHWM:") - before)
"""


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _can_reset_peak(), reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
@pytest.mark.parametrize("n", [6, 8])
def test_the_extraction_estimate_covers_its_measured_peak(n):
    """Random v (the slowest to certify, every candidate column used at n = 6, 8): peak resident memory."""
    batch = 8
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT.format(batch=batch, n=n)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    measured = int(run.stdout.split()[-1])
    estimate = _memory.extraction_bytes(batch, n)
    # Above the peak, not far above it (peaks over repeated runs: 10-17 MiB at n = 6 against 24 MiB
    # estimated, 173-183 MiB at n = 8 against 266 MiB).
    assert 0.2 * estimate < measured <= estimate, (measured, estimate)


# ---------------------------------------------------------------------------------------------
# CUDA out of memory: retry at half the chunk
# ---------------------------------------------------------------------------------------------


def test_an_out_of_memory_chunk_is_retried_at_half_size_and_later_chunks_keep_it(monkeypatch):
    released = []
    monkeypatch.setattr(_forward, "release_cached_memory", lambda: released.append(1))
    x = _inputs(4)  # 4 samples x 2^5 masks = 128 masked inputs
    model = Counting(Polynomial(), limit=20)
    with pytest.warns(
        RuntimeWarning, match=r"chunk of 128 masked inputs; the chunk size was lowered to 16"
    ) as record:
        result = compute_interactions(
            model, x, masker=FeatureMasker(num_features=5), output="regression", batch_size=128
        )
    assert len([w for w in record if "lowered" in str(w.message)]) == 1
    # Probe (2), then 128 -> 64 -> 32 fail and 16 works; the other 7 chunks of 16 run at 16 at once.
    assert model.calls == [2, 128, 64, 32] + [16] * 8
    assert len(released) == 3
    reference = compute_interactions(
        Polynomial(), x, masker=FeatureMasker(num_features=5), output="regression", batch_size=16
    )
    for name in ("v", "I_and", "I_or", "gamma", "q", "strength"):
        assert torch.equal(getattr(result, name), getattr(reference, name)), name


def test_retries_within_one_sample_cover_every_mask_once():
    x = _inputs(2)
    model = Counting(Polynomial(), limit=3)
    with pytest.warns(RuntimeWarning, match="lowered to 2"):
        v = masked_outputs(model, x, masker=FeatureMasker(num_features=5), output="regression", batch_size=8)
    # 8 and 4 fail, then 2 masks at a time: 32 masks per sample in 16 chunks, two samples.
    assert model.calls == [2, 8, 4] + [2] * 32
    reference = masked_outputs(
        Polynomial(), x, masker=FeatureMasker(num_features=5), output="regression", batch_size=2
    )
    assert torch.equal(v, reference)


def test_a_later_failure_lowers_the_size_again():
    """The limit drops mid-run (another process took memory): the size halves again from there."""

    class Shrinking(Counting):
        def forward(self, x):
            if len(self.calls) == 3:
                self.limit = 4
            return super().forward(x)

    model = Shrinking(Polynomial(), limit=16)
    with pytest.warns(RuntimeWarning, match="chunk of 32 masked inputs; the chunk size was lowered to 4"):
        v = masked_outputs(
            model, _inputs(2), masker=FeatureMasker(num_features=5), output="regression", batch_size=32
        )
    # 32 fails, 16 works once, then 16 and 8 fail under the new limit; the 48 masks left go 4 at a time.
    assert model.calls == [2, 32, 16, 16, 8] + [4] * 12
    assert torch.equal(
        v,
        masked_outputs(
            Polynomial(), _inputs(2), masker=FeatureMasker(num_features=5), output="regression", batch_size=4
        ),
    )


def test_an_error_that_is_not_out_of_memory_is_not_retried():
    model = Counting(Polynomial(), limit=20, error=RuntimeError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no retry warning either
        with pytest.raises(RuntimeError, match="fake"):
            compute_interactions(
                model, _inputs(4), masker=FeatureMasker(num_features=5), output="regression", batch_size=128
            )
    assert model.calls == [2, 128]


def test_out_of_memory_on_a_single_input_is_raised_with_a_clear_message():
    model = Counting(Polynomial(), limit=0)  # even one input does not fit
    with pytest.raises(torch.cuda.OutOfMemoryError, match="single masked input") as caught:
        compute_interactions(model, _inputs(2), masker=FeatureMasker(num_features=5), output="regression")
    assert isinstance(caught.value.__cause__, torch.cuda.OutOfMemoryError)
    assert model.calls == [2, 1]  # the probe halves too, then gives up


def test_the_device_generic_error_is_caught_too():
    # torch >= 2.5 (the same class as torch.cuda.OutOfMemoryError there); older torch: the CUDA one.
    error = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    model = Counting(Polynomial(), limit=10, error=error)
    with pytest.warns(RuntimeWarning, match="lowered to 8"):
        masked_outputs(
            model, _inputs(1), masker=FeatureMasker(num_features=5), output="regression", batch_size=32
        )
    assert model.calls == [2, 32, 16, 8, 8, 8, 8]


class BufferRecordingMasker(PatchMasker):
    """A PatchMasker that records the size in bytes of the buffer it is asked to write into."""

    supports_out = True  # its apply passes out= on

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer_bytes: list[int] = []

    def apply(self, inputs, players, masks, out=None):
        if out is not None:
            self.buffer_bytes.append(out.untyped_storage().nbytes())
        return super().apply(inputs, players, masks, out=out)


def test_an_image_masker_with_a_buffer_gives_the_same_values_after_retries_and_a_smaller_buffer():
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)).double()
    labels = torch.tensor([0, 1, 2])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).double()
    masker = BufferRecordingMasker(patch_size=2, num_players=4)
    model = Counting(net, limit=10)
    with pytest.warns(RuntimeWarning, match="lowered to 8"):
        v = masked_outputs(model, images, labels, masker=masker, batch_size=48)
    # 48 (3 samples) and 16 (1 sample) fail, then 8 masks at a time.
    assert model.calls == [2, 48, 16] + [8] * 6
    # The buffer holds 48 masked images of 64 float64, then 24 (the halved size, of which a chunk of
    # whole samples uses 16), then 8.
    assert masker.buffer_bytes == [48 * 64 * 8, 24 * 64 * 8] + [8 * 64 * 8] * 6
    assert torch.equal(v, masked_outputs(net, images, labels, masker=masker, batch_size=8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_available_memory_on_cuda_is_at_most_the_device_total():
    device = torch.device("cuda")
    free, total = torch.cuda.mem_get_info(device)
    available = _memory.available_memory(device)
    assert 0 < available <= total and available >= free // 2


def test_samples_that_do_not_fit_together_are_extracted_in_groups(monkeypatch):
    """Room for the forward passes and two samples' extraction: four samples go two at a time."""
    n, batch = 5, 4
    x = _inputs(batch)
    reference = compute_interactions(
        Polynomial(), x, masker=FeatureMasker(num_features=5), output="regression", check_memory=False
    )
    estimate = _memory.estimate_memory(batch, n, 1024, 5, 8)
    room = max(estimate.forward, estimate.v_table + _memory.extraction_bytes(2, n))
    whole = max(estimate.forward, estimate.v_table + estimate.extraction)  # peak of both stages
    assert room < whole  # all four at once would be refused by the old rule
    _available(monkeypatch, room)
    sizes: list[int] = []
    real = engine.and_or_interactions

    def recording(v, **kwargs):
        sizes.append(v.shape[0])
        return real(v, **kwargs)

    monkeypatch.setattr(engine, "and_or_interactions", recording)
    grouped = compute_interactions(Polynomial(), x, masker=FeatureMasker(num_features=5), output="regression")
    assert sizes == [2, 2]
    # Each sample's LP is its own: the same certified optima, whatever the grouping.
    assert bool((grouped.gap <= 0.01).all())
    torch.testing.assert_close(grouped.objective, reference.objective, rtol=0.02, atol=1e-9)
    assert torch.equal(grouped.v, reference.v) and grouped.I_and.shape == reference.I_and.shape


@pytest.mark.parametrize("model_dtype, element_size", [(torch.float32, 4), (torch.float16, 2)])
def test_the_estimate_counts_inputs_in_the_model_dtype(monkeypatch, model_dtype, element_size) -> None:
    """float64 inputs reach a float32 (float16) model as float32 (float16): 4 (2) bytes an element."""
    seen = []
    real = _setup.estimate_memory

    def spy(*args):
        seen.append(args)
        return real(*args)

    monkeypatch.setattr(_setup, "estimate_memory", spy)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).to(model_dtype)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    _setup.prepare(model, x, torch.tensor([0, 1]), PatchMasker(2, 3), None, "log_odds", 64, 0, None, 20)
    assert seen and seen[-1][3:] == (16, element_size)  # (sample numel, element size)
