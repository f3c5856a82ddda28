"""The report command (reporting/report_command.py) on a run written as the monitor writes it: the
run rendered again from its history, with or without a reference, and its errors.
"""

from __future__ import annotations

import json

import pytest
import torch

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    append_record,
    save_reference,
)
from lightning_interactions.analysis.theory import reference_shape
from lightning_interactions.cli import main

# A reference measurement of two samples over n = 3 players, and the noise levels of the earlier epochs.
I_AND = torch.tensor([[0.0, 1.0, 0.5, 0.8, 0.2, 0.1, 0.3, 0.9], [0.0, 0.3, 1.0, 0.2, 0.6, 0.7, 0.1, 0.4]])
I_OR = torch.tensor([[0.0, 0.2, 0.1, 0.0, 0.3, 0.0, 0.1, 0.5], [0.0, 0.0, 0.4, 0.1, 0.0, 0.2, 0.3, 0.2]])
LEVELS = {0: 0.05, 1: 2.0, 2: 1.0, 3: 0.4, 4: 0.1}
COMPLEXITY = {0: 2.0, 1: 1.2, 2: 1.0, 3: 1.3, 4: 1.4, 5: 1.6}
LOSSES = {1: (2.0, 2.1), 2: (1.5, 1.5), 3: (1.0, 1.2), 4: (0.6, 1.1), 5: (0.3, 1.3)}


def _history_file(directory):
    """A history written as the monitor writes it: shapes from the theory at known noise levels."""
    path = directory / "lightning_logs" / "version_0" / HISTORY_FILENAME
    for epoch, c in COMPLEXITY.items():
        s = LEVELS.get(epoch, 0.0)
        shape = reference_shape(I_AND, I_OR, s).tolist() if epoch in LEVELS else None
        if shape is None:  # the reference epoch: its own shape
            shape = reference_shape(I_AND, I_OR, 0.0).tolist()
        record = {"epoch": epoch, "shape": shape, "strength": shape, "complexity": c,
                  "num_players": 3, "num_samples": 2, "prediction": "prior", "noise_level": None,
                  "theory_error": None, "predicted_shape": None, "phase": 1,
                  "overfit_alert": int(epoch >= 4), "max_gap": 0.001}  # fmt: skip
        append_record(path, record)
        if epoch in LOSSES:
            train, val = LOSSES[epoch]
            append_record(path, {"epoch": epoch, "record": "losses", "train_loss": train, "val_loss": val})
    return path


def test_report_replays_a_run_from_its_history(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _history_file(tmp_path)
    save_reference(path.with_name("interaction_reference.pt"), 5, I_AND, I_OR)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # The alert fired at epoch 4; the complexity minimum before it is epoch 2.
    assert (summary["alert_epoch"], summary["onset_epoch"], summary["complexity_min_epoch"]) == (4, 2, 2)
    assert summary["loss_gap_min_epoch"] == 2  # val - train: 0.1, 0.0, 0.2, 0.5, 1.0
    assert summary["val_loss_min_epoch"] == 4
    assert summary["theory_mode"] == "reference" and summary["reference_epoch"] == 5
    # The shapes were made by the theory at known levels: the replay finds them, with no error left.
    for epoch, s in LEVELS.items():
        assert summary["replay"][str(epoch)]["s"] == pytest.approx(s, rel=1e-3)
    assert summary["theory_error_phase2"] == pytest.approx(0.0, abs=1e-5)
    assert (tmp_path / "out" / "interaction_report.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "reference interactions from" in printed and "phase-2 onset" in printed


def test_report_without_reference_says_so(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _history_file(tmp_path)
    assert main(["report", str(tmp_path)]) == 0  # writes into the folder given
    assert not (path.parent / "summary.json").exists()  # not where the logger put the history
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["theory_mode"] == "online" and summary["theory_error_phase2"] is None
    assert "no interaction_reference.pt" in capsys.readouterr().out
    assert "no reference replay" in (tmp_path / "summary.md").read_text()


def test_report_ignores_a_reference_of_another_epoch(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _history_file(tmp_path)
    save_reference(path.with_name("interaction_reference.pt"), 3, I_AND, I_OR)
    assert main(["report", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["theory_mode"] == "online"
    assert "not the last measured epoch 5" in capsys.readouterr().out


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "no interaction_history.jsonl" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "is not a directory" in capsys.readouterr().err
