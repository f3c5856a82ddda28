"""Smoke tests of the benchmark scripts, and checks of the reference routes they compare against.

The scripts run as subprocesses in their smallest settings (a few seconds each); what they print
is checked line by line. The dense matrices and the shapiq adapter of ``bench_transforms.py``
are checked against the definitions of theory.md, entry by entry.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script: str, *args: str, timeout: float = 120.0) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


# ---------------------------------------------------------------------------------------------
# The scripts run and print their tables
# ---------------------------------------------------------------------------------------------


def test_gpu_check_quick_on_cpu():
    out = _run("gpu_check.py", "--device", "cpu", "--quick", "--threads", "1")
    assert "device cpu" in out
    paths = [line for line in out.splitlines() if "max |v_cpu - v_cpu|" in line]
    assert len(paths) == 3 and all(line.endswith("ok") for line in paths), paths  # every input path ran
    header = [line for line in out.splitlines() if line.split()[:3] == ["n", "inputs", "masked/s"]]
    assert len(header) == 2  # the live table and the summary
    live, summary = out.split("Summary")
    rows = [line.split() for line in live.splitlines() if line.split()[:1] in (["6"], ["8"])]
    assert [row[0] for row in rows] == ["6", "8"]
    assert all(row[-2:] == ["extraction", "pending"] for row in rows), rows  # passes first, for every n
    assert "n=6:" in live and "n=8:" in live  # then the extractions, one line each
    rows = [line.split() for line in summary.splitlines() if line.split()[:1] in (["6"], ["8"])]
    assert [row[0] for row in rows] == ["6", "8"]
    for row in rows:
        assert row[-1] == "ok", row
        masked, bare = (float(cell.replace(",", "")) for cell in row[2:4])
        assert masked > 0 and bare > 0
        # cells: n, inputs, masked/s, bare/s, ratio, transforms (value unit), extraction (value unit), gap
        assert row[6] in ("us", "ms", "s") and row[8] in ("us", "ms", "s"), row
        assert float(row[9]) <= 0.01  # the extraction's certified gap at its default tolerance
    assert "2 of 2 sizes complete" in out


def test_bench_gram_smallest_run():
    out = _run("bench_gram.py", "--n", "6", "8", "--k", "24", "96", "--repeats", "1")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["6"], ["8"])]
    assert [(row[0], row[1]) for row in rows] == [("6", "24"), ("6", "96"), ("8", "24"), ("8", "96")]
    # Both routes' Gram matrices agreed (a row says MISMATCH otherwise), and the ratios are numbers.
    assert "MISMATCH" not in out
    assert all(float(row[-1]) > 0 for row in rows)


def test_bench_monitor_quick_mlp():
    out = _run("bench_monitor.py", "--quick", "--only", "mlp", "--threads", "1", timeout=300.0)
    assert "== digits MLP" in out and "monitor / floor" in out
    # The floor and the monitor computed the same outputs, for the untrained and the trained model.
    line = next(line for line in out.splitlines() if "max |v_monitor - v_floor|" in line)
    assert [float(x) for x in line.split()[-2:]] == [0.0, 0.0]


def test_bench_overhead_measures_a_short_run():
    sys.path.insert(0, BENCHMARKS)  # bench_overhead imports bench_monitor beside it
    try:
        got = _load("bench_overhead").measure(epochs=2, repeats=1, threads=1)
    finally:
        sys.path.remove(BENCHMARKS)
    assert got["bare"] > 0 and got["measurements"] > 0
    assert got["beyond"] == pytest.approx(got["monitored"] - got["bare"] - got["measurements"])
    assert got["ratio"] == pytest.approx(got["beyond"] / got["measurements"])


def test_bench_feature_maps_quick():
    out = _run("bench_feature_maps.py", "--quick")
    assert "FAIL" not in out  # the routes agreed on the unmasked images
    rows = [line.split("|") for line in out.splitlines() if line.startswith("(b) after conv")]
    assert len(rows) == 4  # two masked layers, at the default threads and at one thread
    assert all(float(row[4].strip().rstrip("x")) > 0 for row in rows)


def test_gpu_check_budget_stops_and_says_so(capsys):
    # No time at all: nothing is measured, every size says why, and the run still returns 0.
    gpu_check = _load("gpu_check")
    assert gpu_check.main(["--device", "cpu", "--quick", "--budget-s", "0", "--sizes", "4", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped:") == 4  # two sizes, in the live table and the summary
    assert "Extraction" in out and "n=4:" not in out  # nothing to extract
    assert "0 of 2 sizes complete" in out


def test_gpu_check_estimates_skip_what_cannot_fit():
    gpu_check = _load("gpu_check")
    done = {"n": 10, "repeats": 3, "masked_s": 1.0, "bare_s": 0.5, "transforms_s": 0.01}
    assert gpu_check.estimate_passes([], 12) is None
    assert gpu_check.estimate_passes([done], 12) == pytest.approx(1.5 * 3 * 4 + 5 * 0.01 * 2.2**2)
    assert gpu_check.estimate_extraction([done], 12) is None
    assert gpu_check.estimate_extraction([dict(done, extraction_s=2.0)], 11) == pytest.approx(7.0)


def test_bench_scaling_smallest_run():
    out = _run(
        "bench_scaling.py",
        "--min-n",
        "8",
        "--max-n",
        "8",
        "--untrained",
        "--samples",
        "2",
        "--min-seconds",
        "0",
    )
    lines = out.splitlines()
    assert any(line.split()[:2] == ["n", "stage"] for line in lines)
    stages = {line.split()[1]: line.split() for line in lines if line.split()[:1] == ["8"]}
    assert set(stages) == {"forward", "transforms", "extraction"}
    for stage, row in stages.items():
        # cells: n, stage, time (value unit), time per n*2^n (value "ns"), peak MiB, notes
        assert row[3] in ("us", "ms", "s") and row[5] == "ns", (stage, row)
        assert float(row[4]) > 0.0 and float(row[6]) >= 0.0
    assert "2x256 inputs" in out
    assert "max gap" in " ".join(stages["extraction"])
    assert "Fitted time ~ (n 2^n)^k" in out


# ---------------------------------------------------------------------------------------------
# bench_scaling's arithmetic
# ---------------------------------------------------------------------------------------------


def test_fit_exponent_and_estimate():
    scaling = _load("bench_scaling")
    linear = {n: 3e-9 * n * 2**n for n in range(8, 17)}
    slope, used = scaling._fit_exponent(linear, from_n=10)
    assert used == list(range(10, 17)) and slope == pytest.approx(1.0)
    squared = {n: (n * 2**n) ** 2 for n in range(8, 17)}
    assert scaling._fit_exponent(squared, from_n=10)[0] == pytest.approx(2.0)
    assert scaling._fit_exponent({8: 1.0, 9: 2.0}, from_n=10) is None
    doubling = {10: 1.0, 12: 4.0}  # x2 per player
    assert scaling._estimate(doubling, 14) == pytest.approx(16.0)
    assert scaling._estimate({10: 1.0}, 12) is None


# ---------------------------------------------------------------------------------------------
# bench_transforms' reference routes against the definitions
# ---------------------------------------------------------------------------------------------


def _subsets(mask: int):
    sub = mask
    while True:
        yield sub
        if sub == 0:
            return
        sub = (sub - 1) & mask


def test_dense_matrices_match_the_definitions():
    transforms = _load("bench_transforms")
    n = 5
    full = 2**n - 1
    m_and = transforms.dense_and_matrix(n, torch.float64)
    m_or = transforms.dense_or_matrix(n, torch.float64, m_and.clone())
    want_and = torch.zeros(2**n, 2**n, dtype=torch.float64)
    want_or = torch.zeros(2**n, 2**n, dtype=torch.float64)
    for S in range(2**n):
        for T in _subsets(S):
            sign = (-1) ** (bin(S).count("1") - bin(T).count("1"))
            want_and[S, T] = sign
            if S:  # OR: I(S) = -sum_{T subset of S} (-1)^{|S|-|T|} v(N \ T) for nonempty S
                want_or[S, full ^ T] -= sign
    want_or[0, 0] = 1.0  # I(empty) = v(empty)
    assert torch.equal(m_and, want_and)
    assert torch.equal(m_or, want_or)


def test_shapiq_adapter_maps_coalitions_to_bitmasks():
    pytest.importorskip("shapiq")
    transforms = _load("bench_transforms")
    n = 4
    # v(T) = 1 when players 0 and 2 are both present: one Moebius coefficient, at mask 0b0101.
    values = torch.tensor([[float(T & 0b0101 == 0b0101) for T in range(2**n)]], dtype=torch.float64)
    moebius = transforms.shapiq_to_masks(
        transforms.shapiq_moebius_computer(values[0].numpy(), n)("Moebius"), n
    )
    assert moebius.tolist() == [1.0 if S == 0b0101 else 0.0 for S in range(2**n)]
    # A random game: shapiq's Moebius agrees with the butterfly, and a wrong reference is caught.
    values = torch.randn(3, 2**n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = transforms.and_interactions(values)
    seconds, games, repeats = transforms.time_shapiq(values, expected, repeats=2, budget_s=5.0)
    assert seconds > 0 and games == 3 and repeats == 2
    wrong = expected.clone()
    wrong[1, 5] += 1e-3
    with pytest.raises(AssertionError, match="shapiq and the butterfly differ"):
        transforms.time_shapiq(values, wrong, repeats=1, budget_s=5.0)


def test_shapiq_timing_scales_a_partial_batch():
    pytest.importorskip("shapiq")
    transforms = _load("bench_transforms")
    values = torch.randn(16, 2**6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # A budget of about one game: fewer games are timed and the time is scaled to the batch.
    seconds, games, repeats = transforms.time_shapiq(values, transforms.and_interactions(values), 3, 1e-9)
    assert games == 1 and repeats == 1 and math.isfinite(seconds) and seconds > 0
