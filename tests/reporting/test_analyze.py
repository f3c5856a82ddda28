"""The analyze command (reporting/analyze.py) on real checkpoints: each one measured again, in
epoch order as the monitor numbers epochs, from plain state dicts and Lightning modules; errors.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    read_history,
)
from lightning_interactions.cli import main
from lightning_interactions.demos import build_mlp, load_digits_split
from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.masking import PatchMasker
from lightning_interactions.reporting.analyze import checkpoint_files
from lightning_interactions.reporting.run_report import OfflineError


def test_checkpoint_files_in_epoch_order(tmp_path):
    # Lightning's epoch=0.ckpt holds the weights after one epoch: the monitor's epoch 1.
    for name in ("epoch=10.pt", "epoch=2.pt", "epoch=0-step=9.ckpt", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [(e, p.name) for e, p in checkpoint_files(tmp_path)] == [
        (1, "epoch=0-step=9.ckpt"), (2, "epoch=2.pt"), (10, "epoch=10.pt")]  # fmt: skip
    (tmp_path / "epoch_2.pth").write_bytes(b"")
    with pytest.raises(OfflineError, match="same epoch"):
        checkpoint_files(tmp_path)
    with pytest.raises(OfflineError, match="is not a directory"):
        checkpoint_files(tmp_path / "epoch=10.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OfflineError, match="no checkpoint"):
        checkpoint_files(empty)


ANALYZE = ["--num-players", "3", "--num-samples", "3", "--train-size", "30", "--val-size", "20"]


def _save_checkpoints(directory):
    """Three MLPs of width 6 (different seeds) as the demo saves them; returns them by epoch."""
    directory.mkdir()
    models = {}
    for epoch in (0, 1, 2):
        torch.manual_seed(epoch)
        models[epoch] = build_mlp(6).eval()
        torch.save(models[epoch].state_dict(), directory / f"epoch={epoch:03d}.pt")
    return models


def test_analyze_measures_each_checkpoint(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    models = _save_checkpoints(tmp_path / "ckpt")
    out = tmp_path / "analysis"
    assert main(["analyze", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out), *ANALYZE]) == 0
    history = read_history(out / HISTORY_FILENAME)
    assert [r["epoch"] for r in history] == [0, 1, 2]

    # The samples the monitor would draw: 3 of the first 4 * 3 validation digits, seeded permutation.
    data = load_digits_split(30, 20, 0.25, 0)
    chosen = torch.randperm(12, generator=torch.Generator().manual_seed(0))[:3].sort().values
    x, y = data["x_val"][chosen], data["y_val"][chosen]
    masker = PatchMasker(patch_size=2, num_players=3)
    players = masker.select_players(x, seed=0)
    for record in history:
        model = models[record["epoch"]]
        direct = compute_interactions(model, x, y, masker=masker, players=players)
        assert record["shape"] == pytest.approx(direct.strength_shape.tolist(), abs=1e-9)
        assert record["complexity"] == pytest.approx(sum((k + 1) * s for k, s in enumerate(record["shape"])))
        with torch.no_grad():
            val = nn.functional.cross_entropy(model(data["x_val"]), data["y_val"]).item()
            train = nn.functional.cross_entropy(model(data["x_train"]), data["y_train"]).item()
        assert record["val_loss"] == pytest.approx(val) and record["train_loss"] == pytest.approx(train)
    reference = torch.load(out / "interaction_reference.pt", weights_only=True)
    assert reference["epoch"] == 2
    last = compute_interactions(models[2], x, y, masker=masker, players=players)
    assert torch.allclose(reference["I_and"], last.I_and) and torch.allclose(reference["I_or"], last.I_or)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "analyze" and summary["theory_mode"] == "reference"
    assert summary["epochs"] == [0, 1, 2] and (out / "interaction_report.png").is_file()
    assert "theory fit error" in capsys.readouterr().out
    # The analysis is itself a run that `report` re-renders.
    assert main(["report", str(out), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["complexity"] == summary["complexity"] and again["theory_mode"] == "reference"


def test_analyze_a_lightning_module(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from lightning_interactions.demos import DigitsClassifier

    (tmp_path / "ckpt").mkdir()
    modules = {}
    for epoch in (1, 2):
        torch.manual_seed(epoch)
        modules[epoch] = DigitsClassifier()
        torch.save(modules[epoch].state_dict(), tmp_path / "ckpt" / f"epoch={epoch}.pt")
    out = tmp_path / "analysis"
    spec = "lightning_interactions.demos:DigitsClassifier"
    args = ["analyze", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out), "--module", spec]
    assert main([*args, *ANALYZE]) == 0
    history = read_history(out / HISTORY_FILENAME)
    data = load_digits_split(30, 20, 0.25, 0)
    with torch.no_grad():
        val = nn.functional.cross_entropy(modules[2](data["x_val"]), data["y_val"]).item()
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["val_loss"] == pytest.approx(val)


def test_analyze_errors(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    base = ["analyze", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(tmp_path / "o"), *ANALYZE]
    assert main(base) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main([*base, "--module", "no_such_module:Model"]) == 1
    assert "cannot import" in capsys.readouterr().err
    torch.save({"weight": torch.zeros(2)}, tmp_path / "ckpt" / "epoch=1.pt")
    assert main(base) == 1
    assert "not a state dict of the demo's MLP" in capsys.readouterr().err


def test_analyze_lightning_checkpoints(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_interactions.demos import DigitsClassifier

    data = load_digits_split(30, 20, 0.25, 0)
    loader = DataLoader(TensorDataset(data["x_train"], data["y_train"]), batch_size=10)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    trainer = pl.Trainer(max_epochs=2, callbacks=[saver], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")  # fmt: skip
    pl.seed_everything(0, verbose=False)
    trainer.fit(DigitsClassifier(hidden=6), loader, loader)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch=0.ckpt", "epoch=1.ckpt"]
    out = tmp_path / "analysis"
    spec = "lightning_interactions.demos:DigitsClassifier"
    args = ["analyze", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out), "--module", spec]
    assert main([*args, *ANALYZE]) == 0
    history = read_history(out / HISTORY_FILENAME)
    final = DigitsClassifier.load_from_checkpoint(tmp_path / "ckpt" / "epoch=1.ckpt").eval()
    assert final.hparams.hidden == 6
    with torch.no_grad():
        val = nn.functional.cross_entropy(final(data["x_val"]), data["y_val"]).item()
    # Lightning's epoch=0.ckpt holds the weights after one epoch: epochs count completed epochs.
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["val_loss"] == pytest.approx(val)


def test_analyze_numbers_lightning_checkpoints_as_the_monitor_numbers_epochs(tmp_path):
    """Lightning's epoch=0.ckpt is the monitor's epoch 1: analyze measures it as the monitor did."""
    pytest.importorskip("sklearn")
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_interactions import InteractionMonitor
    from lightning_interactions.demos import DigitsClassifier, TensorDataModule

    data = load_digits_split(30, 20, 0.25, 0)
    pl.seed_everything(0)
    monitor = InteractionMonitor(PatchMasker(patch_size=2, num_players=3), num_samples=3, log_figures=False)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[monitor, saver],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    datamodule = TensorDataModule(
        data["x_train"], data["y_train"], data["x_val"], data["y_val"], batch_size=16
    )
    trainer.fit(DigitsClassifier(hidden=16), datamodule=datamodule)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "epoch=0-step=2.ckpt",
        "epoch=1-step=4.ckpt",
    ]

    out = tmp_path / "analysis"
    spec = "lightning_interactions.demos:DigitsClassifier"
    args = ["analyze", "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out), "--module", spec]
    assert main([*args, *ANALYZE]) == 0
    analyzed = {r["epoch"]: r for r in read_history(out / HISTORY_FILENAME)}
    assert sorted(analyzed) == [1, 2]
    for record in monitor.history[1:]:
        assert analyzed[record["epoch"]]["shape"] == pytest.approx(record["shape"], abs=1e-6)
