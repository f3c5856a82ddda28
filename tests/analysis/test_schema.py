"""The measurement record's schema: build_record makes exactly its keys; old and new formats differ."""

from __future__ import annotations

import json

import pytest
import torch

from lightning_interactions.analysis.history import append_record, read_history
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record
from lightning_interactions.analysis.schema import RECORD_VERSION, MeasurementRecord


def test_build_record_makes_exactly_the_schema_keys() -> None:
    I_and = torch.tensor([[0.0, 1.0, 0.5, 0.25]], dtype=torch.float64)
    record = build_record(3, I_and, torch.zeros_like(I_and), torch.zeros(1), PhaseTracker(), step=29)
    assert list(record) == list(MeasurementRecord.__annotations__)  # same keys, same order
    assert record["version"] == RECORD_VERSION
    json.dumps(record)  # JSON as it is


def test_a_history_without_versions_reads_as_version_1(tmp_path) -> None:
    path = tmp_path / "interaction_history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0})
    append_record(path, {"epoch": 1, "complexity": 1.5, "version": RECORD_VERSION})
    assert [record["complexity"] for record in read_history(path)] == [2.0, 1.5]


def test_a_record_of_a_newer_format_is_refused_with_what_to_do(tmp_path) -> None:
    path = tmp_path / "interaction_history.jsonl"
    append_record(path, {"epoch": 0, "complexity": 2.0, "version": RECORD_VERSION})
    append_record(path, {"epoch": 1, "complexity": 1.5, "version": RECORD_VERSION + 1})
    with pytest.raises(
        ValueError, match=rf"line 2: a record of format version {RECORD_VERSION + 1} .*upgrade"
    ):
        read_history(path)
