"""The command line: a tiny real demo run (every output file and summary key), its errors, the parser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    # One named version per run (optimizer, learning rate, seed), so that runs compare in TensorBoard.
    log_dir = out / "tensorboard" / "adam-lr0.001-seed0"
    assert summary["tensorboard_dir"] == str(log_dir)
    assert (log_dir / "interaction_history.jsonl").is_file()
    assert (log_dir / "interaction_reference.pt").is_file()
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert summary["epochs"] == [0, 1, 2, 3]
    assert summary["settings"]["num_players"] == 4 and len(summary["shape"]["3"]) == 4


def test_demo_summary_agrees_with_its_logs(tiny_run):
    _, out = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    log_dir = Path(summary["tensorboard_dir"])
    scalars = _scalars(log_dir)
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
    lines = [json.loads(line) for line in (log_dir / "interaction_history.jsonl").open()]
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


# ---------------------------------------------------------------------------------------------
# --version, defaults in help, the console script's imports, report's output folder
# ---------------------------------------------------------------------------------------------


def test_version(capsys):
    import lightning_interactions

    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"lightning-interactions {lightning_interactions.__version__}"


def _subparsers(parser):
    import argparse

    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices


def test_every_help_text_shows_the_default():
    parser = build_parser()
    for name, command in _subparsers(parser).items():
        formatter = command._get_formatter()
        for action in command._actions:
            if not action.option_strings or action.default in (None, False, "==SUPPRESS=="):
                continue  # positionals, required options, flags and --help have no default to show
            shown = formatter._expand_help(action)  # the help text as --help prints it
            assert "default" in shown, (name, action.option_strings, shown)
    demo_help = " ".join(_subparsers(parser)["demo"].format_help().split())
    assert "training epochs (default: 50)" in demo_help and "(default: adam 1e-3, sgd 1e-2)" in demo_help
    assert "(default: LOGDIR itself)" in " ".join(_subparsers(parser)["report"].format_help().split())


MODEL_SOURCE = '''
import torch


class Net(torch.nn.Module):
    """A linear classifier on 4x4 one-channel images, constructible without arguments."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.linear(x.flatten(1))
'''


def test_console_script_imports_the_module_from_the_current_directory(tmp_path):
    """Regression: ``--module pkg:Class`` worked under ``python -m`` only (sys.path[0] differs)."""
    script = Path(sys.executable).with_name("lightning-interactions")
    if not script.is_file():
        pytest.skip("the console script is not installed in this environment")
    pytest.importorskip("matplotlib")
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "mypkg" / "model.py").write_text(MODEL_SOURCE)
    (project / "ckpt").mkdir()
    for epoch in (0, 1):  # state dicts of Net: its one Linear(16, 3) is called "linear"
        torch.manual_seed(epoch)
        state = {f"linear.{key}": value for key, value in torch.nn.Linear(16, 3).state_dict().items()}
        torch.save(state, project / "ckpt" / f"epoch={epoch}.pt")
    generator = torch.Generator().manual_seed(0)
    torch.save((torch.rand(4, 1, 4, 4, generator=generator), torch.tensor([0, 1, 2, 0])), project / "x.pt")
    arguments = ["analyze", "--checkpoints", "ckpt", "--out", "out", "--module", "mypkg.model:Net",
                 "--samples", "x.pt", "--num-samples", "2", "--num-players", "4"]  # fmt: skip
    done = subprocess.run([str(script), *arguments], cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((project / "out" / "summary.json").read_text())["epochs"] == [0, 1]


def test_report_writes_into_the_folder_it_is_given(tiny_run, tmp_path, capsys):
    import shutil

    _, out = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    for name in ("summary.json", "summary.md", "interaction_report.png"):
        (run / name).unlink()
    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["command"] == "report" and (run / "summary.md").is_file()
    history = Path(summary["history_file"])
    assert history.parent != run and not (history.parent / "summary.json").exists()
    assert f"summary: {run / 'summary.md'}" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The printed summary says what is known: no unconfirmed onset, no repeated epoch
# ---------------------------------------------------------------------------------------------


def _summary(complexity, share, alert=None, onset=None):
    epochs = sorted(complexity)
    return {
        "epochs": epochs, "complexity": complexity, "high_order_share": share,
        "complexity_min_epoch": min(complexity, key=complexity.get), "alert_epoch": alert,
        "onset_epoch": onset, "loss_gap_min_epoch": 1, "val_loss_min_epoch": 2,
        "alert_minus_loss_gap_min": None if alert is None else alert - 1, "theory_mode": "online",
        "online_prediction": "prior", "online_theory_error_mean": 0.05,
        "online_theory_error_phase2": None, "summary_md": "run/summary.md",
    }  # fmt: skip


def test_format_summary_with_an_alert_names_three_distinct_epochs():
    from lightning_interactions.reporting.summary import format_summary

    summary = _summary({0: 2.154, 2: 1.113, 3: 1.2, 6: 1.4}, {0: 0.349, 2: 0.004, 3: 0.01, 6: 0.171}, 6, 2)
    lines = format_summary(summary).splitlines()
    assert lines[:4] == [
        "complexity (mean order): epoch 0 2.154 -> minimum 1.113 at epoch 2 -> epoch 6 1.400",
        "share of orders >= 3: epoch 0 0.349, epoch 2 0.004, epoch 6 0.171",
        "phase-2 onset (complexity minimum): epoch 2; over-fitting alert fired at epoch 6",
        "loss gap (val - train) smallest at epoch 1; validation loss lowest at epoch 2; "
        "alert - gap minimum = +5 epochs",
    ]


def test_format_summary_without_an_alert_says_the_onset_is_not_confirmed():
    from lightning_interactions.reporting.summary import format_summary

    text = format_summary(_summary({0: 2.154, 1: 1.5, 2: 1.113}, {0: 0.349, 1: 0.1, 2: 0.004}))
    lines = text.splitlines()
    # The minimum is the last epoch: named once, in both lines.
    assert lines[0] == "complexity (mean order): epoch 0 2.154 -> epoch 2 1.113 (the minimum)"
    assert lines[1] == "share of orders >= 3: epoch 0 0.349, epoch 2 0.004"
    assert lines[2].startswith("phase-2 onset: not confirmed, no over-fitting alert yet (the lowest ")
    assert "at epoch 2, becomes the onset once the complexity rises above it" in lines[2]
    assert "n/a" not in lines[2] and "alert - gap" not in lines[3]


def test_format_summary_with_the_minimum_at_the_first_epoch():
    from lightning_interactions.reporting.summary import format_summary

    text = format_summary(_summary({0: 1.0, 1: 1.3, 2: 1.6}, {0: 0.01, 1: 0.1, 2: 0.2}, 2, 0))
    assert text.splitlines()[:2] == [
        "complexity (mean order): epoch 0 1.000 (the minimum) -> epoch 2 1.600",
        "share of orders >= 3: epoch 0 0.010, epoch 2 0.200",
    ]


def test_demo_with_more_loggers_logs_the_same_scalars_and_figures(tmp_path):
    pytest.importorskip("sklearn")
    import csv

    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), *TINY, "--logger", "csv"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    scalars = _scalars(Path(summary["tensorboard_dir"]))
    (metrics,) = (out / "csv").glob("*/metrics.csv")
    rows = [row for row in csv.DictReader(metrics.open()) if row.get("interactions/complexity")]
    tensorboard = scalars["interactions/complexity"]
    logged = {int(row["step"]): float(row["interactions/complexity"]) for row in rows}
    assert logged == pytest.approx(tensorboard)
    assert list(metrics.parent.glob("figures/interactions.key_epochs.untrained/*.png"))
