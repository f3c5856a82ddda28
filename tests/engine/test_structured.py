"""Samples with several fields (dicts and tuples of tensors) and samples of different lengths.

Checked against literal loops: every masked copy built by hand, the model called on it alone.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lightning_interactions import InteractionMonitor, TokenMasker, masked_outputs
from lightning_interactions.callbacks.sampling import default_batch_split, draw_from_loader, split_given
from lightning_interactions.engine.structured import SampleSet, call_model, masked_field_of

PAD, MASK, VOCAB = 0, 1, 20


class MeanOfAttended(nn.Module):
    """Embeds tokens, averages the attended ones: padding only matters if it is attended."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(VOCAB, 6)
        self.head = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        weights = attention_mask.float()[..., None]
        pooled = (self.embed(input_ids) * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.head(pooled)


def log_odds_by_hand(logits: Tensor, label: int) -> float:
    z = logits.double().tolist()
    others = [value for k, value in enumerate(z) if k != label]
    return z[label] - math.log(sum(math.exp(value) for value in others))


def literal_v(
    model: nn.Module, ids: Tensor, attention: Tensor, label: int, positions: list[int]
) -> list[float]:
    """``v(T)`` for every mask of one unpadded sample: absent players become the mask token."""
    n, values = len(positions), []
    for mask in range(2**n):
        copy = ids.clone()
        for bit, position in enumerate(positions):
            if not mask >> bit & 1:
                copy[position] = MASK
        with torch.no_grad():
            values.append(log_odds_by_hand(model(copy[None], attention[None])[0], label))
    return values


def sentence_batches(lengths: list[list[int]], seed: int = 0) -> list[dict[str, Tensor]]:
    """Batches padded each to its own length, as DataCollatorWithPadding makes them."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for batch_lengths in lengths:
        width = max(batch_lengths)
        ids = torch.full((len(batch_lengths), width), PAD)
        attention = torch.zeros(len(batch_lengths), width, dtype=torch.long)
        for row, length in enumerate(batch_lengths):
            ids[row, :length] = torch.randint(2, VOCAB, (length,), generator=generator)
            attention[row, :length] = 1
        labels = torch.randint(0, 3, (len(batch_lengths),), generator=generator)
        batches.append({"input_ids": ids, "attention_mask": attention, "labels": labels})
    return batches


def test_dict_samples_padded_per_batch_equal_the_literal_loop_on_each_unpadded_sample() -> None:
    model = MeanOfAttended().eval()
    batches = sentence_batches([[5, 7], [9, 4]])
    samples = SampleSet.from_batches([{k: v for k, v in b.items() if k != "labels"} for b in batches])
    labels = torch.cat([b["labels"] for b in batches])
    assert [group.main.shape[1] for group in samples.groups] == [7, 9]  # never concatenated
    masker = TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=3)
    v = masked_outputs(model, samples, labels, masker=masker, seed=3)
    players = masker.select_players_with(samples.groups[0].main, samples.groups[0].companions(), 3)
    # The second group draws with the next seed, so that groups of one shape get other positions.
    players2 = masker.select_players_with(samples.groups[1].main, samples.groups[1].companions(), 4)
    positions = torch.cat([players["positions"], players2["positions"]]).tolist()
    rows = [(g, r) for g, group in enumerate(samples.groups) for r in range(group.size)]
    for index, (g, r) in enumerate(rows):
        group = samples.groups[g]
        length = int(group.fields["attention_mask"][r].sum())
        assert max(positions[index]) < length  # padding is never a player
        ids = group.fields["input_ids"][r, :length]
        attention = group.fields["attention_mask"][r, :length]
        expected = literal_v(model, ids, attention, int(labels[index]), positions[index])
        torch.testing.assert_close(v[index], torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-5)


def test_a_model_that_attends_to_padding_gives_another_v() -> None:
    """The check above can fail: without its attention mask the same model reads the padding."""
    model = MeanOfAttended().eval()
    batch = sentence_batches([[4, 9]])[0]
    masker = TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=3)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    right = masked_outputs(model, inputs, batch["labels"], masker=masker)
    everything = {"input_ids": batch["input_ids"], "attention_mask": torch.ones_like(batch["attention_mask"])}
    wrong = masked_outputs(
        model, everything, batch["labels"], masker=masker, players=masker.select_players(batch["input_ids"])
    )
    assert (right[0] - wrong[0]).abs().max() > 1e-3  # the short sample had padding
    torch.testing.assert_close(right[1], wrong[1])  # the long one had none


def test_tuple_samples_are_passed_positionally_and_the_masked_field_can_be_named() -> None:
    model = MeanOfAttended().eval()
    batch = sentence_batches([[6, 6]])[0]
    masker = TokenMasker(mask_token_id=MASK, num_players=2, players=[1, 4])
    as_dict = masked_outputs(
        model,
        {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
        batch["labels"],
        masker=masker,
    )
    as_tuple = masked_outputs(
        model, (batch["input_ids"], batch["attention_mask"]), batch["labels"], masker=masker
    )
    torch.testing.assert_close(as_dict, as_tuple)
    swapped = masked_outputs(
        lambda mask, ids: model(ids, mask),
        (batch["attention_mask"], batch["input_ids"]),
        batch["labels"],
        masker=masker,
        masked_field=1,
    )
    torch.testing.assert_close(as_dict, swapped)


def test_forward_fn_calls_the_model_in_any_other_way() -> None:
    model = MeanOfAttended().eval()
    batch = sentence_batches([[6, 6]])[0]
    masker = TokenMasker(mask_token_id=MASK, num_players=2, players=[0, 2])
    expected = masked_outputs(
        model, (batch["input_ids"], batch["attention_mask"]), batch["labels"], masker=masker
    )
    # The model gets the ids alone; the attention mask comes from the closure.
    calls: list[int] = []

    def forward_fn(net: nn.Module, ids: Tensor) -> Tensor:
        calls.append(ids.shape[0])
        return net(ids, torch.ones_like(ids))

    got = masked_outputs(model, batch["input_ids"], batch["labels"], masker=masker, forward_fn=forward_fn)
    torch.testing.assert_close(got, expected)  # no padding here, so the all-ones mask is right
    assert sum(calls) == 2 + 2 * 2**2  # the probe's two inputs, then every masked copy once


def test_the_masked_field_is_found_by_its_name_or_the_error_says_how_to_name_it() -> None:
    ids, mask = torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3)
    assert masked_field_of({"attention_mask": mask, "input_ids": ids}, None) == "input_ids"
    assert masked_field_of({"pixel_values": torch.zeros(2, 3, 4, 4)}, None) == "pixel_values"
    assert masked_field_of((mask, ids), None) == 0
    with pytest.raises(ValueError, match=r"none of .*'input_ids'.* is a key.*masked_field='tokens'"):
        masked_field_of({"tokens": ids, "lengths": ids}, None)
    with pytest.raises(ValueError, match="several fields could be masked"):
        masked_field_of({"input_ids": ids, "pixel_values": mask}, None)
    with pytest.raises(ValueError, match=r"masked_field='ids' is not a key.*\['input_ids'\]"):
        masked_field_of({"input_ids": ids}, "ids")


def test_default_batch_split_keeps_every_input_field_and_leaves_the_labels_out() -> None:
    batch = sentence_batches([[3, 5]])[0]
    inputs, targets = default_batch_split(batch)
    assert sorted(inputs) == ["attention_mask", "input_ids"] and torch.equal(targets, batch["labels"])
    # A Hugging Face name: the fields go to the model as keyword arguments.
    image, label = default_batch_split({"pixel_values": torch.zeros(2, 1, 4, 4), "labels": torch.ones(2)})
    assert list(image) == ["pixel_values"] and image["pixel_values"].shape == (2, 1, 4, 4)
    # A plain name: that tensor alone, positionally, as before dict samples were kept whole.
    x = torch.zeros(2, 5)
    inputs, _ = default_batch_split({"x": x, "index": torch.arange(2), "y": torch.ones(2)})
    assert inputs is x
    inputs, _ = default_batch_split({"image": x, "points": torch.zeros(2, 3), "label": torch.ones(2)})
    assert inputs is x
    with pytest.raises(ValueError, match=r"keys \['tokens', 'lengths', 'labels'\].*masked_field='tokens'"):
        default_batch_split({"tokens": torch.ones(2, 3), "lengths": torch.ones(2), "labels": torch.ones(2)})


def test_the_draw_keeps_batches_of_different_lengths_apart_in_data_order() -> None:
    batches = sentence_batches([[3, 5], [8], [2, 6, 4]])
    samples, targets, chosen = draw_from_loader(batches, default_batch_split, num_samples=4, seed=1)
    assert chosen.tolist() == sorted(chosen.tolist()) and len(samples) == 4
    flat = [(b, r) for b, batch in enumerate(batches) for r in range(batch["input_ids"].shape[0])]
    rows = [
        samples.groups[g].take(torch.tensor([r]))
        for g in range(len(samples.groups))
        for r in range(samples.groups[g].size)
    ]
    for index, group in zip(chosen.tolist(), rows):
        b, r = flat[index]
        assert torch.equal(group.main[0], batches[b]["input_ids"][r])  # unpadded beyond its batch
        assert torch.equal(targets[len([i for i in chosen.tolist() if i < index])], batches[b]["labels"][r])


def test_samples_survive_a_checkpoint_loaded_with_weights_only(tmp_path: Any) -> None:
    batches = sentence_batches([[3, 5], [8]])
    given, _ = split_given(
        SampleSet.from_batches([{k: v for k, v in b.items() if k != "labels"} for b in batches])
    )
    torch.save({"inputs": given.to_state()}, tmp_path / "state.pt")
    loaded = SampleSet.from_state(torch.load(tmp_path / "state.pt", weights_only=True)["inputs"])
    assert [g.fields.keys() for g in loaded.groups] == [g.fields.keys() for g in given.groups]
    for mine, theirs in zip(loaded.groups, given.groups):
        assert all(torch.equal(mine.fields[k], theirs.fields[k]) for k in mine.fields)


def test_call_model_passes_dicts_as_keywords_and_tuples_positionally() -> None:
    seen = {}

    def model(*args: Any, **kwargs: Any) -> Tensor:
        seen.update(args=len(args), kwargs=sorted(kwargs))
        return torch.zeros(1)

    call_model(model, {"a": torch.ones(1), "b": torch.ones(1)})
    assert seen == {"args": 0, "kwargs": ["a", "b"]}
    call_model(model, (torch.ones(1), torch.ones(1)))
    assert seen == {"args": 2, "kwargs": []}


class TextClassifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = MeanOfAttended()

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.net(input_ids, attention_mask)

    def _loss(self, batch: dict[str, Tensor]) -> Tensor:
        attention = batch.get("attention_mask", torch.ones_like(batch["input_ids"]))
        return nn.functional.cross_entropy(self(batch["input_ids"], attention), batch["labels"])

    def training_step(self, batch: dict[str, Tensor], _index: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: dict[str, Tensor], _index: int) -> None:
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(
    monitor: InteractionMonitor,
    val: list[dict[str, Tensor]],
    tmp_path: Any,
    model: L.LightningModule | None = None,
) -> L.Trainer:
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor])
    trainer.fit(
        model or TextClassifier(),
        DataLoader(sentence_batches([[5, 6]] * 3, seed=7), batch_size=None),
        DataLoader(val, batch_size=None),
    )
    return trainer


def test_the_monitor_measures_per_batch_padded_dict_batches(tmp_path: Any) -> None:
    val = sentence_batches([[3, 6], [9, 7], [5, 4]], seed=2)
    monitor = InteractionMonitor(
        TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=3), num_samples=4, log_figures=False
    )
    fit(monitor, val, tmp_path)
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    assert isinstance(monitor.samples.inputs, SampleSet) and len(monitor.samples.inputs.groups) > 1


def test_a_model_that_needs_a_field_the_batches_lack_stops_the_fit_at_its_start(tmp_path: Any) -> None:
    val = [{"input_ids": b["input_ids"], "labels": b["labels"]} for b in sentence_batches([[3, 6], [9, 7]])]
    monitor = InteractionMonitor(
        TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=2), num_samples=2
    )
    with pytest.raises(ValueError, match=r"attention_mask.*forward_fn=") as raised:
        fit(monitor, val, tmp_path)
    assert "cannot measure this model" in str(raised.value)
    assert monitor.history == []


def test_a_batch_split_that_returns_no_pair_stops_the_fit_at_its_start(tmp_path: Any) -> None:
    val = sentence_batches([[3, 6], [9, 7]])
    monitor = InteractionMonitor(
        TokenMasker(mask_token_id=MASK, pad_token_id=PAD, num_players=2),
        num_samples=2,
        batch_split=lambda batch: {"input_ids": batch["input_ids"]},
    )
    with pytest.raises(ValueError, match=r"batch_split must return a pair \(inputs, targets\), got dict"):
        fit(monitor, val, tmp_path)


def test_dict_samples_given_to_the_monitor_are_split_like_dict_batches() -> None:
    batch = sentence_batches([[3, 5]])[0]
    given, targets = split_given(batch)
    assert given.groups[0].names == ["input_ids", "attention_mask"]
    assert torch.equal(targets, batch["labels"])


def test_a_probe_that_runs_out_of_memory_on_two_samples_retries_with_one() -> None:
    """A masked layer is probed on two copies of the first sample; out of memory, on one."""
    from lightning_interactions import FeatureMapMasker

    class TightMemory(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(2 * 4 * 4, 3)

        def forward(self, x: Tensor) -> Tensor:
            maps = self.features(x)
            if maps.shape[0] > 2 and maps.shape[0] < 16:  # only the probe's 2 x 2 copies
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.head(maps.flatten(1))

    model = TightMemory()
    x, y = torch.randn(2, 1, 4, 4), torch.tensor([0, 2])
    v = masked_outputs(model, x, y, masker=FeatureMapMasker("features.1", 2, num_players=2))
    assert v.shape == (2, 4) and bool(torch.isfinite(v).all())


def test_a_mask_token_outside_the_embedding_stops_the_fit_at_its_start(tmp_path: Any) -> None:
    """Without vocab_size the masker cannot know; the fit-start check runs the empty coalition."""
    val = sentence_batches([[3, 6], [9, 7]])
    monitor = InteractionMonitor(TokenMasker(mask_token_id=VOCAB + 5, pad_token_id=PAD, num_players=2))
    with pytest.raises(ValueError, match=r"cannot measure this model.*IndexError.*index out of range"):
        fit(monitor, val, tmp_path)
    assert monitor.history == []
