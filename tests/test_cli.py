"""The command line: a tiny real demo run, its summary, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lightning_interactions.cli import build_parser, main

TINY = ["--epochs", "2", "--num-players", "4", "--num-samples", "3", "--hidden", "16", "--threads", "1"]

KEYS = {
    "epochs",
    "complexity_init",
    "complexity_trained",
    "shapes",
    "max_gap",
    "timings",
    "strength",
    "accuracy",
    "num_players",
    "num_samples",
    "samples_kept",
}


def test_demo_writes_a_summary(tmp_path, capsys):
    pytest.importorskip("sklearn")
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    assert torch.equal(torch.get_rng_state(), rng)  # the demo seeds its own generators
    assert torch.get_num_threads() == threads

    summary = json.loads((out / "summary.json").read_text())
    assert KEYS <= set(summary)
    assert summary["epochs"] == 2 and summary["num_players"] == 4 and summary["num_samples"] == 3
    for name in ("init", "trained"):
        shape, strength = summary["shapes"][name], summary["strength"][name]
        assert len(shape) == 4 and sum(shape) == pytest.approx(1.0)
        # shape = A(k) / sum_j A(j), complexity = sum_k k shape(k), from the summary's own raw A(k)
        assert shape == pytest.approx([a / sum(strength) for a in strength])
        complexity = sum((k + 1) * s for k, s in enumerate(shape))
        assert summary[f"complexity_{name}"] == pytest.approx(complexity)
        assert summary["samples_kept"][name] == [0, 1, 2]
    gaps = summary["max_gap_by_measurement"]
    assert summary["max_gap"] == max(gaps.values()) and 0 <= summary["max_gap"] <= 0.01 + 1e-9
    assert {"train_s", "measure_init_s", "measure_trained_s", "total_s"} <= set(summary["timings"])
    assert summary["accuracy"]["train"] > summary["accuracy"]["val_init"]  # two epochs do learn

    printed = capsys.readouterr().out
    for text in ("strength by order", "complexity", "certified extraction gap", "wall time", "summary.json"):
        assert text in printed


def test_demo_is_deterministic(tmp_path):
    pytest.importorskip("sklearn")
    runs = []
    for name in ("a", "b"):
        assert main(["demo", "--out", str(tmp_path / name), *TINY]) == 0
        runs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert runs[0]["shapes"] == runs[1]["shapes"]
    assert runs[0]["final_train_loss"] == runs[1]["final_train_loss"]


def test_demo_without_scikit_learn_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["demo", "--out", str(tmp_path / "run"), *TINY]) == 1
    assert "pip install scikit-learn" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_demo_reports_bad_settings(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["demo", "--out", str(tmp_path), *TINY, "--patch-size", "3"]) == 1
    assert "not divisible by the patch size" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), *TINY, "--num-samples", "100000"]) == 1
    assert "validation images" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["demo", "--out", str(tmp_path), "--num-players", "0"])
    assert raised.value.code == 2


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err
    assert build_parser().parse_args(["demo", "--out", "x"]).num_players == 10


def test_module_entry_point_runs():
    done = subprocess.run(
        [sys.executable, "-m", "lightning_interactions", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--out" in done.stdout
