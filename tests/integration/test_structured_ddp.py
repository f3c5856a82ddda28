"""Dict samples of different lengths under DDP on the CPU: two processes (gloo) measure what one does.

The validation batches are dicts padded each to its own length by the loader's collate function
(what ``DataCollatorWithPadding`` does); the samples, in groups of one length, are drawn from the
whole dataset on rank 0, broadcast, and shared between the two processes. The untrained model's
measurement (epoch 0, the same seeded weights everywhere) must equal the engine's on the same
samples in this process.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import torch
from helpers.processes import distributed_free_env, run_in_own_group

from lightning_interactions.engine.compute import compute_interactions
from lightning_interactions.engine.structured import SampleSet

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300

SCRIPT = '''
"""Train a tiny token classifier with InteractionMonitor on dict batches; ``script.py OUT DEVICES``."""
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_interactions import InteractionMonitor, TokenMasker

PAD, MASK, VOCAB, NUM_SAMPLES = 0, 1, 20, 5


def examples(lengths, seed):
    """Unpadded examples, as a tokenized dataset holds them."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {"input_ids": torch.randint(2, VOCAB, (length,), generator=generator),
         "labels": int(torch.randint(0, 2, (1,), generator=generator))}
        for length in lengths
    ]


def pad_each_batch(items):
    """What DataCollatorWithPadding does: pad to the batch's own longest example."""
    width = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), width), PAD)
    for row, item in enumerate(items):
        ids[row, : len(item["input_ids"])] = item["input_ids"]
    labels = torch.tensor([item["labels"] for item in items])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        weights = attention_mask[..., None].float()
        return self.head((self.embed(input_ids) * weights).sum(1) / weights.sum(1).clamp(min=1.0))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])

    def validation_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        self.log("val_loss", loss, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def run(root, devices):
    pl.seed_everything(0)
    model = Net()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    monitor = InteractionMonitor(
        TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=3), num_samples=NUM_SAMPLES,
        log_figures=False, on_error="raise",
    )
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_epochs=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(root), callbacks=[monitor],
    )
    train = DataLoader(examples([6, 7] * 4, seed=1), batch_size=2, collate_fn=pad_each_batch)
    val = DataLoader(examples([4, 6, 9, 5, 7, 3], seed=2), batch_size=2, collate_fn=pad_each_batch)
    trainer.fit(model, train, val)
    if trainer.is_global_zero:
        # No training step comes after the last measurement: these are its weights.
        final = {k: v.clone() for k, v in model.state_dict().items()}
        saved = {"history": monitor.history, "state": monitor.state_dict()}
        saved.update(initial=initial, final=final)
        torch.save(saved, Path(root, "result.pt"))


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
'''


def load_script(tmp_path: Path) -> tuple[Path, ModuleType]:
    path = tmp_path / "ddp_tokens_script.py"
    path.write_text(SCRIPT)
    spec = importlib.util.spec_from_file_location("ddp_tokens_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def measure_alone(module: ModuleType, weights: dict, samples: SampleSet, state: dict):
    """The measurement of ``samples`` with the monitor's players and targets, in this process."""
    model = module.Net()
    model.load_state_dict(weights)
    masker = module.TokenMasker(mask_token_id=module.MASK, pad_token_id=module.PAD, num_players=3)
    return compute_interactions(model, samples, state["targets"], masker=masker, players=state["players"])


def test_dict_samples_of_different_lengths_under_ddp_match_one_process(tmp_path: Path) -> None:
    path, module = load_script(tmp_path)
    out = tmp_path / "ddp"
    out.mkdir()
    pythonpath = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = distributed_free_env(PYTHONPATH=pythonpath, MASTER_ADDR="127.0.0.1")
    code, output = run_in_own_group(
        [sys.executable, str(path), str(out), "2"], tmp_path, env, tmp_path / "ddp.log", TIMEOUT_S
    )
    assert code == 0, output[-4000:]

    result = torch.load(out / "result.pt", weights_only=False)
    history, state = result["history"], result["state"]
    assert [r["epoch"] for r in history] == [0, 1]
    samples = SampleSet.from_state(state["inputs"])
    assert len(samples) == module.NUM_SAMPLES and len(samples.groups) > 1  # lengths kept apart
    # The untrained model's measurement, as this process makes it on the same samples and players.
    alone = measure_alone(module, result["initial"], samples, state)
    assert history[0]["num_samples"] == module.NUM_SAMPLES
    # The record's strength by order is the mean over samples, residue removed, as the engine's.
    measured = torch.tensor(history[0]["strength"], dtype=torch.float64)
    torch.testing.assert_close(measured, alone.mean_strength.double(), rtol=1e-4, atol=1e-6)
    # Sample by sample: the last measurement's interactions, gathered from both processes in
    # sample order, against this process's on the final weights.
    alone = measure_alone(module, result["final"], samples, state)
    # Each process solves its share as one batch: the certified optima agree to the interior
    # point's precision, not bit for bit; a sample in the wrong place would be off by its whole size.
    torch.testing.assert_close(state["reference"]["I_and"], alone.I_and, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(state["reference"]["I_or"], alone.I_or, rtol=1e-3, atol=1e-5)
    assert float(alone.I_and.abs().amax()) > 1e-2  # the comparison is not one of zeros
