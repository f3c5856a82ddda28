"""The command line: a tiny real demo run (every output file and summary key), its errors, the parser."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lightning_interactions.cli import build_parser, main

TINY = [
    "--epochs", "3", "--num-players", "4", "--num-samples", "4", "--train-size", "60",
    "--val-size", "40", "--hidden", "16", "--threads", "1",
]  # fmt: skip

KEYS = {
    "onset_epoch",
    "alert_epoch",
    "complexity_min_epoch",
    "loss_gap_min_epoch",
    "val_loss_min_epoch",
    "test_loss_min_epoch",
    "theory_error_phase2",
    "theory_error_all",
    "theory_mode",
    "complexity",
    "shape",
    "train_loss",
    "val_loss",
    "test_loss",
    "report_png",
    "tensorboard_dir",
    "tensorboard_command",
    "wall_time_s",
    "settings",
}


def _scalars(log_dir):
    """Every scalar tag of the TensorBoard event files in ``log_dir``: tag -> {step: value}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("demo") / "run"
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    code = main(["demo", "--out", str(out), *TINY])
    assert torch.equal(torch.get_rng_state(), rng)  # the demo seeds its own generators
    assert torch.get_num_threads() == threads
    return code, out


def test_demo_writes_every_output(tiny_run, capsys):
    code, out = tiny_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert KEYS <= set(summary)
    assert (out / "interaction_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Interaction report" in (out / "summary.md").read_text()
    log_dir = out / "tensorboard"
    assert summary["tensorboard_dir"] == str(log_dir)
    assert (log_dir / "interaction_history.jsonl").is_file()
    assert (log_dir / "interaction_reference.pt").is_file()
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert summary["epochs"] == [0, 1, 2, 3]
    assert summary["settings"]["num_players"] == 4 and len(summary["shape"]["3"]) == 4


def test_demo_summary_agrees_with_its_logs(tiny_run):
    _, out = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    scalars = _scalars(out / "tensorboard")
    train_tag = next(t for t in scalars if "train" in t and "loss" in t)
    val_tag = next(t for t in scalars if "val" in t and "loss" in t)
    train = {int(e): v for e, v in summary["train_loss"].items() if v is not None}
    val = {int(e): v for e, v in summary["val_loss"].items() if v is not None}
    assert sorted(train) == [1, 2, 3] and sorted(val) == [1, 2, 3]
    # Lightning logs epoch-level metrics at the epoch's last global step: compare the values in order.
    assert [train[e] for e in (1, 2, 3)] == pytest.approx(list(scalars[train_tag].values()), rel=1e-6)
    assert [val[e] for e in (1, 2, 3)] == pytest.approx(list(scalars[val_tag].values()), rel=1e-6)
    gaps = {e: val[e] - train[e] for e in train}
    assert summary["loss_gap_min_epoch"] == min(gaps, key=gaps.get)
    assert summary["val_loss_min_epoch"] == min(val, key=val.get)
    test = {int(e): v for e, v in summary["test_loss"].items()}
    assert summary["test_loss_min_epoch"] == min(test, key=test.get)
    # complexity = sum_k k shape(k), and its minimum, from the history file's own shapes
    lines = [json.loads(line) for line in (out / "tensorboard" / "interaction_history.jsonl").open()]
    shapes = {r["epoch"]: r["shape"] for r in lines if r.get("record") != "losses"}
    complexity = {e: sum((k + 1) * s for k, s in enumerate(shape)) for e, shape in shapes.items()}
    for epoch, value in complexity.items():
        assert summary["complexity"][str(epoch)] == pytest.approx(value)
    assert summary["complexity_min_epoch"] == min(complexity, key=complexity.get)
    if summary["onset_epoch"] is None:
        assert summary["theory_error_phase2"] is None and summary["alert_epoch"] is None
    else:
        assert 0 <= summary["theory_error_phase2"] <= 2


def test_demo_prints_its_summary(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), *TINY, "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    for text in ("phase-2 onset", "loss gap", "theory fit error", "interaction_report.png",
                 f"tensorboard --logdir {out}", "wall time"):  # fmt: skip
        assert text in printed


def test_demo_is_deterministic(tmp_path):
    pytest.importorskip("sklearn")
    runs = []
    for name in ("a", "b"):
        assert main(["demo", "--out", str(tmp_path / name), *TINY, "--epochs", "2"]) == 0
        runs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert runs[0]["shape"] == runs[1]["shape"]
    assert runs[0]["train_loss"] == runs[1]["train_loss"]


def test_demo_without_scikit_learn_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["demo", "--out", str(tmp_path / "run"), *TINY]) == 1
    assert "pip install scikit-learn" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_demo_reports_bad_settings(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), *TINY, "--patch-size", "3"]) == 1
    assert "not divisible by the patch size" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), *TINY, "--num-samples", "100"]) == 1
    assert "validation images" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), *TINY, "--train-size", "1500", "--val-size", "500"]) == 1
    assert "exceeds the 1797 digits" in capsys.readouterr().err
    bad_options = (["--epochs", "0"], ["--num-players", "0"], ["--label-noise", "1.5"], ["--optimizer", "x"])
    for bad in bad_options:
        with pytest.raises(SystemExit) as raised:
            main(["demo", "--out", str(tmp_path), *bad])
        assert raised.value.code == 2


def test_parser_defaults_and_usage(capsys):
    assert main([]) == 2
    usage = capsys.readouterr().err
    assert "demo" in usage and "report" in usage and "analyze" in usage
    demo = build_parser().parse_args(["demo", "--out", "x"])
    assert (demo.epochs, demo.num_players, demo.num_samples, demo.optimizer) == (50, 8, 16, "adam")
    report = build_parser().parse_args(["report", "logs"])
    assert str(report.logdir) == "logs" and report.out is None


@pytest.mark.parametrize("command", ["demo", "report", "analyze"])
def test_module_entry_point_runs(command):
    done = subprocess.run(
        [sys.executable, "-m", "lightning_interactions", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--out" in done.stdout
