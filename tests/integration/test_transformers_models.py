"""Real Hugging Face models (BERT, ViT, GPT-2 from tiny configs) measured by the engine and the monitor.

Every value the package computes is checked against a literal loop written here: each sample
alone, unpadded, on each of the ``2^n`` masks, masked by hand, run through the model one masked
copy at a time, its log-odds computed by hand in float64. Nothing is downloaded: the tokenizer is
built from a vocabulary file written to ``tmp_path`` and the models from their configs.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: never reach the Hub

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

transformers = pytest.importorskip("transformers")
L = pytest.importorskip("lightning")

from helpers.trainers import quiet_trainer  # noqa: E402

from lightning_interactions import InteractionMonitor, PatchMasker, TokenMasker  # noqa: E402
from lightning_interactions.engine import last_token_log_odds, masked_outputs  # noqa: E402
from lightning_interactions.engine.structured import SampleSet  # noqa: E402

ATOL = 1e-5

# ---------------------------------------------------------------------------------------------
# The literal loop
# ---------------------------------------------------------------------------------------------


def log_odds_by_hand(z: torch.Tensor, y: int) -> float:
    """``z_y - logsumexp_{j != y} z_j`` of one row of logits, in float64."""
    z = z.double()
    others = torch.cat([z[:y], z[y + 1 :]])
    return float(z[y] - torch.logsumexp(others, dim=0))


def unpadded_length(attention: torch.Tensor) -> int:
    """The real length of a right-padded row; fails if the row is not 1...1 0...0."""
    length = int(attention.sum())
    assert bool((attention[:length] == 1).all()) and bool((attention[length:] == 0).all())
    return length


def literal_token_values(call, ids, attention, positions, masked_as, mask_token_id, scalar) -> torch.Tensor:
    """``v`` of one token sample on every mask, each masked copy run alone at the sample's own length.

    ``call(ids (1, l), attention (1, l))`` runs the model; ``scalar(output, l)`` reads one float.
    Bit ``i`` of mask ``T`` set = player ``positions[i]`` present.
    """
    length = unpadded_length(attention)
    values = []
    for T in range(2 ** len(positions)):
        masked_ids = ids[:length].clone()
        masked_attention = torch.ones(length, dtype=attention.dtype)
        for i, position in enumerate(positions):
            if not (T >> i) & 1:
                if masked_as == "mask_token":
                    masked_ids[position] = mask_token_id
                else:
                    masked_attention[position] = 0
        with torch.no_grad():
            values.append(scalar(call(masked_ids[None], masked_attention[None]), length))
    return torch.tensor(values, dtype=torch.float64)


def assert_same_values(package: torch.Tensor, literal: torch.Tensor) -> None:
    assert package.dtype == torch.float64 and package.shape == literal.shape
    torch.testing.assert_close(package, literal, atol=ATOL, rtol=ATOL)
    # A model whose outputs barely move would make the comparison empty.
    assert float((literal.max(dim=1).values - literal.min(dim=1).values).min()) > 1e-2


def samples_in_order(sample_set: SampleSet):
    """``(group, row)`` of every sample of a SampleSet, in sample order."""
    for group in sample_set.groups:
        for row in range(group.size):
            yield group, row


def reconstruct_from_interactions(I_and: torch.Tensor, I_or: torch.Tensor) -> torch.Tensor:
    """``v(T) = sum_{S subset T} I_and(S) + I_or(empty) + sum_{S n T nonempty} I_or(S)``, by loops."""
    size = I_and.shape[1]
    out = torch.zeros(I_and.shape, dtype=torch.float64)
    for b in range(I_and.shape[0]):
        for T in range(size):
            total = float(I_or[b, 0])
            for S in range(size):
                if S & T == S:
                    total += float(I_and[b, S])
                if S & T:
                    total += float(I_or[b, S])
            out[b, T] = total
    return out


def fit_trainer(tmp_path, max_epochs: int, monitor) -> L.Trainer:
    return quiet_trainer(tmp_path, max_epochs=max_epochs, num_sanity_val_steps=0, callbacks=[monitor])


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


# ---------------------------------------------------------------------------------------------
# BERT: a classifier whose forward needs the attention mask; batches padded each to its own length
# ---------------------------------------------------------------------------------------------

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the cat sat on mat a dog ran in park big red sun sky blue "
    "green tree bird sang loud small fish swam deep sea old man read book quiet"
).split()
PAD, CLS, SEP, MASK = 0, 2, 3, 4
# Batches of 4: the longest of each batch differs (6, 8 and 10 words), and every batch has padding.
SENTENCES = [
    "the cat sat on",
    "a dog ran in park",
    "big red sun sky",
    "blue green tree bird sang loud",
    "small fish swam deep sea old man",
    "the old man read a book",
    "quiet bird sang in the green tree sky",
    "a big dog ran",
    "the small cat sat on the mat in the",
    "red fish swam in the deep blue sea",
    "old man read a quiet book in the big park",
    "the sun sky tree",
]


def bert_tokenizer(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n")
    # from_pretrained on a local folder: no download; BertTokenizerFast(vocab_file=...) would ignore
    # the file on transformers 5.
    return transformers.BertTokenizerFast.from_pretrained(str(tmp_path))


def bert_items(tokenizer, sentences=SENTENCES):
    """Unpadded examples as a dataset holds them; the label depends on the words, so training learns."""
    items = []
    for sentence in sentences:
        encoded = tokenizer(sentence)
        label = sum(WORDS.index(word) for word in sentence.split()) % 3
        items.append({**{k: list(v) for k, v in encoded.items()}, "labels": label})
    return items


def bert_loader(tokenizer, items=None, batch_size=4):
    collator = transformers.DataCollatorWithPadding(tokenizer)  # pads each batch to its own longest
    return DataLoader(ListDataset(items or bert_items(tokenizer)), batch_size=batch_size, collate_fn=collator)


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
        # Large weights, so that masking a token moves the log-odds well above the tolerance.
        initializer_range=0.5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForSequenceClassification(config)


class Trained(L.LightningModule):
    """Training and validation steps shared by the modules below: cross-entropy of ``self(**inputs)``."""

    def logits_of(self, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self(**inputs)

    def training_step(self, batch, _index):
        loss = F.cross_entropy(self.logits_of(batch), batch["labels"])
        self.log("train_loss", loss, on_epoch=True, on_step=False, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch, _index):
        loss = F.cross_entropy(self.logits_of(batch), batch["labels"])
        self.log("val_loss", loss, batch_size=len(batch["labels"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class BertClassifier(Trained):
    def __init__(self, bert=None):
        super().__init__()
        self.bert = bert if bert is not None else tiny_bert()

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        # attention_mask is required: a call without it must fail, not silently attend padding.
        return self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits


class BertIgnoringAttentionMask(BertClassifier):
    """The same BERT called without its attention mask: it attends padding."""

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.bert(input_ids=input_ids, token_type_ids=token_type_ids).logits


def bert_literal(bert, ids, attention, positions, label, masked_as="mask_token") -> torch.Tensor:
    """The literal loop on the Hugging Face model itself, token_type_ids left at their default 0."""
    bert.eval()

    def call(masked_ids, masked_attention):
        return bert(input_ids=masked_ids, attention_mask=masked_attention).logits

    def scalar(logits, _length):
        return log_odds_by_hand(logits[0], label)

    return literal_token_values(call, ids, attention, positions, masked_as, MASK, scalar)


def bert_literal_all(bert, sample_set: SampleSet, labels, positions, masked_as="mask_token") -> torch.Tensor:
    rows = []
    for index, (group, row) in enumerate(samples_in_order(sample_set)):
        fields = group.fields
        # The literal call leaves token_type_ids at BERT's default, zeros, which the collator gives too.
        assert not bool(fields.get("token_type_ids", torch.zeros(1)).any())
        rows.append(
            bert_literal(
                bert,
                fields["input_ids"][row],
                fields["attention_mask"][row],
                positions[index].tolist(),
                int(labels[index]),
                masked_as,
            )
        )
    return torch.stack(rows)


def first_batches(loader, count):
    batches = []
    for batch in loader:
        batches.append(dict(batch))
        if len(batches) == count:
            return batches
    raise AssertionError("the loader has fewer batches than asked for")


def test_bert_padded_batch_matches_each_sample_run_alone_unpadded(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    assert (masker.mask_token_id, masker.pad_token_id) == (MASK, PAD)
    batch = first_batches(bert_loader(tokenizer), 1)[0]
    ids, attention, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert bool((attention == 0).any()), "the batch must hold padding for this test to mean anything"
    model = BertClassifier()
    inputs = {"input_ids": ids, "attention_mask": attention}

    v = masked_outputs(model, inputs, labels, masker=masker)

    # The engine's default players are the masker's own choice knowing the attention mask (seed 0).
    positions = masker.select_players_with(ids, {"attention_mask": attention}, seed=0)["positions"]
    literal = bert_literal_all(model.bert, SampleSet.from_structure(inputs), labels, positions)
    assert_same_values(v, literal)


def test_bert_players_are_never_padding_cls_or_sep(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    for batch in bert_loader(tokenizer):
        ids, attention = batch["input_ids"], batch["attention_mask"]
        for seed in range(20):
            positions = masker.select_players_with(ids, {"attention_mask": attention}, seed=seed)["positions"]
            for b in range(ids.shape[0]):
                chosen = positions[b].tolist()
                assert len(set(chosen)) == 4
                # Not padding (inside the real length), not [CLS] (position 0) nor [SEP] (the last real one).
                assert all(0 < p < unpadded_length(attention[b]) - 1 for p in chosen)
                assert not set(ids[b, chosen].tolist()) & {PAD, CLS, SEP, MASK}


def test_bert_samples_of_different_lengths_are_measured_in_groups_without_extra_padding(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    batches = first_batches(bert_loader(tokenizer), 3)
    fields = [{k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")} for b in batches]
    samples = SampleSet.from_batches(fields)
    assert [g.main.shape[1] for g in samples.groups] == [8, 10, 12]
    labels = torch.cat([b["labels"] for b in batches])
    model = BertClassifier()

    v = masked_outputs(model, samples, labels, masker=masker)
    # Chunks of 5 masked inputs split samples' 16 masks across forward passes and reuse one buffer.
    v_small_chunks = masked_outputs(model, samples, labels, masker=masker, batch_size=5)

    # Each group's players are chosen on that group alone, as the masker would on that batch.
    positions = torch.cat(
        # group i draws with seed + i (the engine's rule: groups of one shape get other positions)
        [
            masker.select_players_with(g.main, g.companions(), seed=i)["positions"]
            for i, g in enumerate(samples.groups)
        ]
    )
    literal = bert_literal_all(model.bert, samples, labels, positions)
    assert_same_values(v, literal)
    assert_same_values(v_small_chunks, literal)


def test_bert_monitor_in_a_trainer_on_per_batch_padded_data_measures_the_literal_values(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    loader = bert_loader(tokenizer)
    monitor = InteractionMonitor(masker, num_samples=6, log_figures=False, on_error="raise")
    model = BertClassifier()
    trainer = fit_trainer(tmp_path, 2, monitor)

    trainer.fit(model, train_dataloaders=bert_loader(tokenizer), val_dataloaders=loader)

    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    measured = monitor.samples
    sample_set = measured.inputs
    assert isinstance(sample_set, SampleSet) and len(sample_set) == 6
    lengths = [g.main.shape[1] for g in sample_set.groups]
    assert len(set(lengths)) >= 2, f"the draw should span batches of different lengths, got {lengths}"
    # Every drawn sample keeps the length of the batch it came from: never padded further.
    longest = [max(len(tokenizer(s)["input_ids"]) for s in SENTENCES[i : i + 4]) for i in range(0, 12, 4)]
    index = 0
    for group in sample_set.groups:
        for _ in range(group.size):
            assert group.main.shape[1] == longest[int(measured.indices[index]) // 4]
            index += 1
    positions = measured.players["positions"]
    literal = bert_literal_all(model.bert, sample_set, measured.targets, positions)

    v = masked_outputs(model, sample_set, measured.targets, masker=masker, players=measured.players)
    assert_same_values(v, literal)
    # The monitor's epoch-2 interactions (the trained model: no step after them) explain the
    # literal values within the extraction's error box tau = q_ratio |v(N) - v(empty)|.
    last = monitor.last_interactions
    assert last.epoch == 2 and last.I_and.shape == (6, 16)
    rebuilt = reconstruct_from_interactions(last.I_and, last.I_or)
    tau = 0.04 * (literal[:, -1] - literal[:, 0]).abs()
    assert bool(((rebuilt - literal).abs() <= tau[:, None] + 1e-4).all())


def test_bert_masked_as_attention_matches_the_literal_loop(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=3, masked_as="attention")
    batches = first_batches(bert_loader(tokenizer), 2)
    fields = [{k: b[k] for k in ("input_ids", "attention_mask")} for b in batches]
    samples = SampleSet.from_batches(fields)
    labels = torch.cat([b["labels"] for b in batches])
    model = BertClassifier()

    v = masked_outputs(model, samples, labels, masker=masker)

    positions = torch.cat(
        # group i draws with seed + i (the engine's rule: groups of one shape get other positions)
        [
            masker.select_players_with(g.main, g.companions(), seed=i)["positions"]
            for i, g in enumerate(samples.groups)
        ]
    )
    literal = bert_literal_all(model.bert, samples, labels, positions, masked_as="attention")
    assert_same_values(v, literal)
    # Hiding a token from attention is not the same as replacing it by [MASK].
    as_mask_token = bert_literal_all(model.bert, samples, labels, positions, masked_as="mask_token")
    assert float((literal - as_mask_token).abs().max()) > 1e-3


def test_bert_ignoring_the_attention_mask_differs_and_padding_ids_change_nothing(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    batch = first_batches(bert_loader(tokenizer), 1)[0]
    ids, attention, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    padded = (attention == 0).any(dim=1)
    assert bool(padded.any()) and not bool(padded.all())
    model = BertClassifier()
    players = masker.select_players_with(ids, {"attention_mask": attention}, seed=0)
    inputs = {"input_ids": ids, "attention_mask": attention}
    literal = bert_literal_all(model.bert, SampleSet.from_structure(inputs), labels, players["positions"])

    # The literal loop catches a model that attends padding, on the padded samples only.
    ignoring = masked_outputs(
        BertIgnoringAttentionMask(model.bert), inputs, labels, masker=masker, players=players
    )
    difference = (ignoring - literal).abs().max(dim=1).values
    assert bool((difference[padded] > 1e-3).all())
    torch.testing.assert_close(ignoring[~padded], literal[~padded], atol=ATOL, rtol=ATOL)

    # Whatever ids the padding holds, the correct model never sees them.
    scrambled = ids.clone()
    scrambled[attention == 0] = torch.randint(5, 35, (int((attention == 0).sum()),))
    before = masked_outputs(model, inputs, labels, masker=masker, players=players)
    after = masked_outputs(
        model, {"input_ids": scrambled, "attention_mask": attention}, labels, masker=masker
    )
    torch.testing.assert_close(after, before, atol=1e-6, rtol=1e-6)
    assert_same_values(after, literal)


# ---------------------------------------------------------------------------------------------
# ViT: dict batches {"pixel_values", "labels"}, patches of pixels as players
# ---------------------------------------------------------------------------------------------


class VitClassifier(Trained):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        config = transformers.ViTConfig(
            image_size=8,
            patch_size=4,
            num_channels=1,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=3,
            initializer_range=0.5,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.vit = transformers.ViTForImageClassification(config)

    def forward(self, pixel_values):
        return self.vit(pixel_values=pixel_values).logits


def vit_items(count=16):
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(count, 1, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    return [{"pixel_values": images[i], "labels": labels[i]} for i in range(count)]


def vit_literal(vit, images, labels, patches) -> torch.Tensor:
    """Each image alone on every mask: absent players' 2x2 patches (row-major on a 4x4 grid) set to 0."""
    vit.eval()
    rows = []
    for b in range(images.shape[0]):
        values = []
        for T in range(2 ** patches.shape[1]):
            image = images[b].clone()
            for i, patch in enumerate(patches[b].tolist()):
                if not (T >> i) & 1:
                    r, c = divmod(patch, 4)
                    image[:, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = 0.0
            with torch.no_grad():
                values.append(log_odds_by_hand(vit(pixel_values=image[None]).logits[0], int(labels[b])))
        rows.append(torch.tensor(values, dtype=torch.float64))
    return torch.stack(rows)


def test_vit_dict_samples_match_the_literal_loop():
    masker = PatchMasker(patch_size=2, num_players=4)
    batch = next(iter(DataLoader(ListDataset(vit_items()), batch_size=5)))
    model = VitClassifier()

    # A dict sample: the model is called with pixel_values= as a keyword.
    v = masked_outputs(model, {"pixel_values": batch["pixel_values"]}, batch["labels"], masker=masker)

    patches = masker.select_players(batch["pixel_values"], seed=0)["patches"]
    assert_same_values(v, vit_literal(model.vit, batch["pixel_values"], batch["labels"], patches))


def test_vit_monitor_fit_on_dict_batches_measures_every_epoch(tmp_path):
    masker = PatchMasker(patch_size=2, num_players=4)
    items = vit_items()
    monitor = InteractionMonitor(masker, num_samples=4, log_figures=False, on_error="raise")
    model = VitClassifier()
    trainer = fit_trainer(tmp_path, 2, monitor)

    trainer.fit(
        model,
        train_dataloaders=DataLoader(ListDataset(items), batch_size=8),
        val_dataloaders=DataLoader(ListDataset(items), batch_size=8),
    )

    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    measured = monitor.samples
    # A Hugging Face name: the monitor keeps the dict, and the model gets pixel_values=.
    assert list(measured.inputs) == ["pixel_values"]
    images = measured.inputs["pixel_values"]
    assert images.shape == (4, 1, 8, 8)
    v = masked_outputs(model, images, measured.targets, masker=masker, players=measured.players)
    assert_same_values(v, vit_literal(model.vit, images, measured.targets, measured.players["patches"]))


# ---------------------------------------------------------------------------------------------
# GPT-2 as a classifier on its last token, right padding
# ---------------------------------------------------------------------------------------------

GPT_PAD, GPT_MASK, GPT_BOS = 0, 1, 2
LABEL_TOKENS = [10, 11]


class Gpt2Classifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        config = transformers.GPT2Config(
            n_layer=1,
            n_head=2,
            n_embd=16,
            vocab_size=40,
            n_positions=32,
            initializer_range=0.5,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
        self.gpt2 = transformers.GPT2LMHeadModel(config)

    def forward(self, input_ids, attention_mask):
        return self.gpt2(input_ids=input_ids, attention_mask=attention_mask).logits

    def step(self, batch):
        logits = self(batch["input_ids"], batch["attention_mask"])
        last = batch["attention_mask"].sum(dim=1) - 1
        chosen = logits[torch.arange(len(last)), last][:, LABEL_TOKENS]
        return F.cross_entropy(chosen, batch["labels"])

    def training_step(self, batch, _index):
        return self.step(batch)

    def validation_step(self, batch, _index):
        self.log("val_loss", self.step(batch), batch_size=len(batch["labels"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def gpt2_items(count=12):
    """[BOS] then 4 to 8 ordinary tokens (never PAD, MASK or BOS), label 0 or 1."""
    generator = torch.Generator().manual_seed(2)
    items = []
    for i in range(count):
        length = 4 + i % 5
        body = torch.randint(3, 40, (length,), generator=generator)
        items.append({"input_ids": [GPT_BOS, *body.tolist()], "labels": int(body.sum()) % 2})
    return items


def right_pad(items):
    """Pad a batch to its own longest sequence, on the right, with PAD."""
    longest = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), longest), GPT_PAD)
    attention = torch.zeros(len(items), longest, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item["input_ids"])] = torch.tensor(item["input_ids"])
        attention[row, : len(item["input_ids"])] = 1
    return {
        "input_ids": ids,
        "attention_mask": attention,
        "labels": torch.tensor([i["labels"] for i in items]),
    }


def gpt2_loader(batch_size=4):
    return DataLoader(ListDataset(gpt2_items()), batch_size=batch_size, collate_fn=right_pad)


def gpt2_masker(masked_as):
    # [BOS] is never a player: every position keeps one key to attend to in attention mode.
    if masked_as == "attention":
        return TokenMasker(
            pad_token_id=GPT_PAD, num_players=3, special_token_ids=[GPT_BOS], masked_as=masked_as
        )
    return TokenMasker(
        mask_token_id=GPT_MASK, pad_token_id=GPT_PAD, num_players=3, special_token_ids=[GPT_BOS]
    )


def gpt2_literal(gpt2, sample_set, labels, positions, masked_as):
    gpt2.eval()

    def call(masked_ids, masked_attention):
        return gpt2(input_ids=masked_ids, attention_mask=masked_attention).logits

    def scalar(logits, length, label):
        # The last real token's logits of the two label tokens.
        return log_odds_by_hand(logits[0, length - 1, LABEL_TOKENS], label)

    rows = []
    for index, (group, row) in enumerate(samples_in_order(sample_set)):
        label = int(labels[index])
        rows.append(
            literal_token_values(
                call,
                group.fields["input_ids"][row],
                group.fields["attention_mask"][row],
                positions[index].tolist(),
                masked_as,
                GPT_MASK,
                lambda logits, length, label=label: scalar(logits, length, label),
            )
        )
    return torch.stack(rows)


@pytest.mark.parametrize("pad_token_id", [GPT_PAD, None], ids=["last-by-pad-id", "last-by-attention-mask"])
@pytest.mark.parametrize("masked_as", ["mask_token", "attention"])
def test_gpt2_last_token_log_odds_on_right_padded_batches_match_the_literal_loop(masked_as, pad_token_id):
    masker = gpt2_masker(masked_as)
    batches = first_batches(gpt2_loader(), 2)
    samples = SampleSet.from_batches([{k: b[k] for k in ("input_ids", "attention_mask")} for b in batches])
    assert len(samples.groups) == 2 and bool((samples.groups[0].fields["attention_mask"] == 0).any())
    labels = torch.cat([b["labels"] for b in batches])
    model = Gpt2Classifier()
    output = last_token_log_odds(LABEL_TOKENS, pad_token_id=pad_token_id)

    v = masked_outputs(model, samples, labels, masker=masker, output=output)

    positions = torch.cat(
        # group i draws with seed + i (the engine's rule: groups of one shape get other positions)
        [
            masker.select_players_with(g.main, g.companions(), seed=i)["positions"]
            for i, g in enumerate(samples.groups)
        ]
    )
    # The last real token is a player of some samples: masking it (even hiding it from attention,
    # which zeroes its attention mask) must not move the position the log-odds are read at.
    last = [unpadded_length(g.fields["attention_mask"][r]) - 1 for g, r in samples_in_order(samples)]
    assert any(last[i] in positions[i].tolist() for i in range(len(last)))
    assert_same_values(v, gpt2_literal(model.gpt2, samples, labels, positions, masked_as))


def test_gpt2_monitor_fit_of_one_epoch_completes(tmp_path):
    monitor = InteractionMonitor(
        gpt2_masker("mask_token"),
        num_samples=4,
        output=last_token_log_odds(LABEL_TOKENS, pad_token_id=GPT_PAD),
        log_figures=False,
        on_error="raise",
    )
    trainer = fit_trainer(tmp_path, 1, monitor)
    trainer.fit(Gpt2Classifier(), train_dataloaders=gpt2_loader(), val_dataloaders=gpt2_loader())
    assert [record["epoch"] for record in monitor.history] == [0, 1]


def test_gpt2_with_class_log_odds_stops_at_fit_start_naming_output(tmp_path):
    # log_odds wants (N, C) logits; the language model gives (N, L, V).
    monitor = InteractionMonitor(
        gpt2_masker("mask_token"), num_samples=4, output="log_odds", log_figures=False
    )
    trainer = fit_trainer(tmp_path, 1, monitor)
    with pytest.raises(ValueError, match=r"output=") as raised:
        trainer.fit(Gpt2Classifier(), train_dataloaders=gpt2_loader(), val_dataloaders=gpt2_loader())
    assert "last_token_log_odds" in str(raised.value)
    assert trainer.global_step == 0 and monitor.history == []


# ---------------------------------------------------------------------------------------------
# Bad input, refused at construction or at fit start, saying what to change
# ---------------------------------------------------------------------------------------------


def test_bert_forward_needing_attention_mask_with_ids_only_batches_stops_at_fit_start(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    collator = transformers.DataCollatorWithPadding(tokenizer)

    def ids_only(items):
        batch = collator(items)
        return {"input_ids": batch["input_ids"], "labels": batch["labels"]}

    loader = DataLoader(ListDataset(bert_items(tokenizer)), batch_size=4, collate_fn=ids_only)
    monitor = InteractionMonitor(TokenMasker.from_tokenizer(tokenizer, num_players=4), num_samples=4)
    trainer = fit_trainer(tmp_path, 1, monitor)
    with pytest.raises(ValueError, match=r"attention_mask") as raised:
        trainer.fit(BertClassifier(), train_dataloaders=loader, val_dataloaders=loader)
    assert "forward_fn" in str(raised.value) and "attention mask" in str(raised.value)
    assert trainer.global_step == 0 and monitor.history == []


class BertWithoutTokenTypes(BertClassifier):
    """A forward that takes exactly the two fields it needs, not the collator's token_type_ids."""

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits


def test_forward_refusing_the_collators_token_type_ids_stops_at_fit_start_naming_forward_fn(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    monitor = InteractionMonitor(TokenMasker.from_tokenizer(tokenizer, num_players=4), num_samples=4)
    trainer = fit_trainer(tmp_path, 1, monitor)
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'token_type_ids'") as raised:
        trainer.fit(BertWithoutTokenTypes(), bert_loader(tokenizer), bert_loader(tokenizer))
    assert "forward_fn=" in str(raised.value) and "batch_split=" in str(raised.value)
    assert trainer.global_step == 0 and monitor.history == []


def test_forward_fn_calls_the_model_with_the_fields_it_takes(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    batch = first_batches(bert_loader(tokenizer), 1)[0]
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    model = BertWithoutTokenTypes()

    v = masked_outputs(
        model,
        inputs,
        batch["labels"],
        masker=masker,
        forward_fn=lambda module, fields: module(fields["input_ids"], fields["attention_mask"]),
    )

    positions = masker.select_players_with(batch["input_ids"], {"attention_mask": batch["attention_mask"]})
    literal = bert_literal_all(
        model.bert, SampleSet.from_structure(inputs), batch["labels"], positions["positions"]
    )
    assert_same_values(v, literal)


class BertOnIdsOnly(Trained):
    """A BERT that builds its attention mask from the ids: it takes no attention_mask field."""

    def __init__(self):
        super().__init__()
        self.bert = tiny_bert()

    def forward(self, input_ids):
        return self.bert(input_ids=input_ids, attention_mask=(input_ids != PAD).long()).logits


@pytest.mark.parametrize("as_dict", [False, True], ids=["ids-tensor", "dict-with-ids-only"])
def test_attention_masking_of_samples_without_an_attention_mask_is_refused(tmp_path, as_dict):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=3, masked_as="attention")
    batch = first_batches(bert_loader(tokenizer), 1)[0]
    inputs = {"input_ids": batch["input_ids"]} if as_dict else batch["input_ids"]
    with pytest.raises(ValueError, match=r"attention_mask"):
        masked_outputs(BertOnIdsOnly(), inputs, batch["labels"], masker=masker)


def test_token_masker_refuses_a_mask_token_equal_to_padding_or_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"mask_token_id and pad_token_id are both 5"):
        TokenMasker(mask_token_id=5, pad_token_id=5, num_players=3)
    with pytest.raises(ValueError, match=r"mask_token_id=999 is outside the vocabulary 0 \.\. 39"):
        TokenMasker(mask_token_id=999, vocab_size=40, num_players=3)


class TokensBert(Trained):
    """A BERT whose ids arrive under a key the package does not know."""

    def __init__(self):
        super().__init__()
        self.bert = tiny_bert()

    def forward(self, tokens, attention_mask):
        return self.bert(input_ids=tokens, attention_mask=attention_mask).logits


def tokens_loader(tokenizer):
    collator = transformers.DataCollatorWithPadding(tokenizer)

    def renamed(items):
        batch = collator(items)
        return {
            "tokens": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": batch["labels"],
        }

    return DataLoader(ListDataset(bert_items(tokenizer)), batch_size=4, collate_fn=renamed)


def test_dict_batch_with_no_known_input_key_is_refused_naming_masked_field(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    loader = tokens_loader(tokenizer)
    monitor = InteractionMonitor(masker, num_samples=4)
    trainer = fit_trainer(tmp_path, 1, monitor)
    with pytest.raises(ValueError, match=r"masked_field='tokens'") as raised:
        trainer.fit(TokensBert(), train_dataloaders=loader, val_dataloaders=loader)
    assert "'input_ids'" in str(raised.value) and "'pixel_values'" in str(raised.value)
    assert trainer.global_step == 0

    # The engine says the same.
    batch = next(iter(loader))
    inputs = {"tokens": batch["tokens"], "attention_mask": batch["attention_mask"]}
    with pytest.raises(ValueError, match=r"masked_field='tokens'.*") as raised:
        masked_outputs(TokensBert(), inputs, batch["labels"], masker=masker)
    assert "'input_ids'" in str(raised.value)


def test_dict_batch_with_masked_field_named_fits_and_matches_the_literal_loop(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    loader = tokens_loader(tokenizer)
    model = TokensBert()
    monitor = InteractionMonitor(
        masker, num_samples=4, masked_field="tokens", log_figures=False, on_error="raise"
    )
    trainer = fit_trainer(tmp_path, 1, monitor)

    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)

    assert [record["epoch"] for record in monitor.history] == [0, 1]
    batch = next(iter(loader))
    inputs = {"tokens": batch["tokens"], "attention_mask": batch["attention_mask"]}
    v = masked_outputs(model, inputs, batch["labels"], masker=masker, masked_field="tokens")
    positions = masker.select_players_with(batch["tokens"], {"attention_mask": batch["attention_mask"]})
    renamed = SampleSet.from_structure(
        {"input_ids": batch["tokens"], "attention_mask": batch["attention_mask"]}
    )
    assert_same_values(v, bert_literal_all(model.bert, renamed, batch["labels"], positions["positions"]))
