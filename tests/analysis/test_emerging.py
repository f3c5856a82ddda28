"""Issue 13: the salient interactions a record keeps, the emerging and discarded ones, their report.

Checked against literal definitions: the top K by |I| after residue removal, growth of |I| since
the onset relative to |v(N) - v(empty)|, and on planted models (a tabular AND rule; the token
example's AND{1,4} and OR{2,6}).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_interactions.analysis.emerging import (
    compare_run,
    discarded_interactions,
    emerging_interactions,
)
from lightning_interactions.analysis.history import append_record, read_history
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record
from lightning_interactions.analysis.salient import listed_value
from lightning_interactions.analysis.strength import drop_residue
from lightning_interactions.engine import compute_interactions
from lightning_interactions.masking import FeatureMasker
from lightning_interactions.reporting.run_report import write_run_report


def _literal_top(I_and: torch.Tensor, I_or: torch.Tensor, k: int) -> list[list[tuple]]:
    """Every nonzero (kind, players, value) after residue removal, by |I| (AND, then mask, on ties)."""
    I_and, I_or = drop_residue(I_and, I_or, 0.01)
    n = I_and.shape[1].bit_length() - 1
    out = []
    for row in range(I_and.shape[0]):
        items = [
            (kind, [i for i in range(n) if mask >> i & 1], float(table[row, mask]))
            for kind, table in (("and", I_and), ("or", I_or))
            for mask in range(1, 2**n)
            if table[row, mask] != 0
        ]
        out.append(sorted(items, key=lambda item: -abs(item[2]))[:k])
    return out


def test_record_keeps_the_top_k_after_residue_removal_and_round_trips(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    I_and = torch.randn(3, 16, generator=generator, dtype=torch.float64)
    I_or = torch.randn(3, 16, generator=generator, dtype=torch.float64)
    I_and[:, 5] = 1e-12  # residue: never listed
    record = build_record(0, I_and, I_or, torch.zeros(3), PhaseTracker(), salient_top_k=4)
    expected = _literal_top(I_and, I_or, 4)
    clean_and, clean_or = drop_residue(I_and, I_or, 0.01)
    assert record["salient_top_k"] == 4
    for row, entries in enumerate(record["salient"]):
        assert [(kind, players) for kind, players, _, _ in entries] == [(k, p) for k, p, _ in expected[row]]
        assert [order for _, players, order, _ in entries] == [len(p) for _, p, _ in expected[row]]
        assert [v for *_, v in entries] == pytest.approx([v for *_, v in expected[row]], rel=1e-5)
        # The sample's whole interaction strength, after residue removal.
        span = float(clean_and[row, 1:].abs().sum() + clean_or[row, 1:].abs().sum())
        assert record["output_span"][row] == pytest.approx(span, rel=1e-5)
    path = tmp_path / "interaction_history.jsonl"
    append_record(path, record)
    assert read_history(path)[0]["salient"] == record["salient"]


def test_listed_value_knows_complete_lists_and_bounds_full_ones() -> None:
    record = {
        "salient_top_k": 2,
        "salient": [[["and", [0, 1], 2, 3.0], ["or", [1], 1, -1.0]], [["and", [0], 1, 2.0]]],
    }
    assert listed_value(record, 0, "and", [0, 1]) == (3.0, 3.0)
    assert listed_value(record, 0, "or", [0]) == (None, 1.0)  # full list: at most the 2nd |I|
    assert listed_value(record, 1, "or", [0]) == (0.0, 0.0)  # complete list: zero


class _Planted(nn.Module):
    """Epoch 0: a triple product (order 3); 1: main effects only; 2: main effects + 3 * x1 * x3."""

    def __init__(self, stage: int) -> None:
        super().__init__()
        self.stage = stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = 0.5 * x.sum(dim=1)
        extra = {0: 2.0 * x[:, 0] * x[:, 1] * x[:, 2], 1: 0.0, 2: 3.0 * x[:, 1] * x[:, 3]}[self.stage]
        return (main + extra)[:, None]


def _planted_history() -> tuple[list[dict], dict]:
    inputs = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 0.5, 1.5]])
    masker = FeatureMasker(num_features=4)
    tracker = PhaseTracker(patience=1)
    history, onset = [], None
    for epoch in range(3):
        result = compute_interactions(
            _Planted(epoch), inputs, masker=masker, output="regression", q_ratio=0.0
        )
        history.append(build_record(epoch, result.I_and, result.I_or, result.gap, tracker))
        if tracker.min_epoch == epoch:
            onset = {"epoch": epoch, "I_and": result.I_and, "I_or": result.I_or}
    return history, onset


def test_planted_tabular_rule_emerges_and_the_triple_is_discarded() -> None:
    history, onset = _planted_history()
    assert history[-1]["onset_epoch"] == 1 and history[-1]["alert_epoch"] == 2
    for full in (onset, None):  # exact onset values, then the records' lists alone
        emerging = emerging_interactions(history, full)
        top = {(c.sample, c.kind, tuple(c.players)) for c in emerging if c.order >= 2}
        # The planted product x1 * x3 is one AND (or, equally sparse, one OR) interaction of {1, 3}.
        assert {(s, players) for s, _, players in top} == {(0, (1, 3)), (1, (1, 3))}
        assert emerging[0].order == 2
        for change in emerging[:2]:
            row = change.sample
            span = abs(history[-1]["output_span"][row])
            growth = (abs(change.value_to) - 0.0) / span
            if full is None and change.value_from is None:
                # The onset record's list was full of residue-sized values (which ones depends on
                # the solver's route: SciPy's or torch's Cholesky): {1, 3} is not in it, so its
                # onset value is unknown and the growth a lower bound (the module's docstring).
                assert 0.0 < change.change <= growth
                continue
            assert change.value_from == pytest.approx(0.0, abs=1e-9)
            assert change.change == pytest.approx(growth, rel=1e-4)
        discarded = discarded_interactions(history, full)
        assert {tuple(c.players) for c in discarded if c.order >= 2} == {(0, 1, 2)}


def test_summary_lists_the_emerging_interactions(tmp_path: Path) -> None:
    history, onset = _planted_history()
    summary = write_run_report(history, None, tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["emerging_interactions"] == summary["emerging_interactions"]
    first = saved["emerging_interactions"][0]
    assert set(first) == {"sample", "kind", "players", "order", "value_onset", "value_end", "growth"}
    assert first["players"] == [1, 3] and first["order"] == 2
    assert {tuple(e["players"]) for e in saved["discarded_interactions"] if e["order"] >= 2} == {(0, 1, 2)}
    assert saved["interactions_compared"]["onset_epoch"] == 1
    assert compare_run(history, onset).markdown().count("{1, 3}") == 2


def test_token_example_emerging_interactions_are_the_planted_ones(monkeypatch, tmp_path: Path) -> None:
    """Since the untrained model (epoch 0), the interactions of order >= 2 that grew most are the
    planted AND{1,4} on the AND family and OR{2,6} on the OR family."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "examples"))
    tokens = importlib.import_module("token_rules")
    result = tokens.main(["--epochs", "5", "--out", str(tmp_path)])
    history = result["monitor"].history
    emerging = emerging_interactions(history, onset_epoch=0, limit=100)
    half = history[-1]["num_samples"] // 2
    for sample in range(2 * half):
        mine = [c for c in emerging if c.sample == sample]
        planted = ("and", list(tokens.AND_POSITIONS)) if sample < half else ("or", list(tokens.OR_POSITIONS))
        assert (mine[0].kind, mine[0].players) == planted, f"sample {sample}: {mine[:3]}"
    saved = list(tmp_path.rglob("interaction_samples.pt"))
    assert saved, "the run log saves the measured samples beside the history"
