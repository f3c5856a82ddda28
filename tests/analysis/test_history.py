"""The history file: appended line by line, read back with losses merged, robust to a cut line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lightning_interactions.analysis.history import (
    append_record,
    load_reference,
    read_history,
    save_reference,
)


def test_records_round_trip_and_losses_merge(tmp_path) -> None:
    path = tmp_path / "sub" / "history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0, "train_loss": None})
    append_record(path, {"epoch": 1, "complexity": 1.5, "train_loss": None})
    append_record(path, {"epoch": 1, "record": "losses", "train_loss": 0.7, "val_loss": 0.9})
    assert read_history(path) == [
        {"epoch": 0, "complexity": 2.0, "train_loss": None},
        {"epoch": 1, "complexity": 1.5, "train_loss": 0.7, "val_loss": 0.9},
    ]


def test_non_finite_values_become_null_and_each_line_is_json(tmp_path) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, {"epoch": 0, "noise_level": math.inf, "shape": [0.5, math.nan]})
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"epoch": 0, "noise_level": None, "shape": [0.5, None]}


def test_a_line_cut_by_a_crash_is_ignored(tmp_path) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 1, "compl')
    with pytest.warns(RuntimeWarning, match="unreadable line"):
        assert read_history(path) == [{"epoch": 0, "complexity": 2.0}]


def test_reference_is_replaced_atomically_and_loads_back(tmp_path) -> None:
    path = tmp_path / "reference.pt"
    save_reference(path, 1, torch.ones(2, 4), torch.zeros(2, 4))
    save_reference(path, 2, torch.full((2, 4), 3.0), torch.ones(2, 4))
    loaded = load_reference(path)
    assert loaded["epoch"] == 2
    assert torch.equal(loaded["I_and"], torch.full((2, 4), 3.0))
    assert torch.equal(loaded["I_or"], torch.ones(2, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["reference.pt"]
