"""A Hugging Face BERT on sentences of different lengths: the monitor as a transformers user runs it.

Nothing is downloaded: the BERT is built from a tiny ``BertConfig`` and its WordPiece tokenizer
from a vocabulary file written at start. Sentences of 4 to 9 words are tokenized to
``[CLS] ... [SEP]`` and padded per batch by ``DataCollatorWithPadding``, so each batch has its
own length; the batches are dicts ``{"input_ids", "token_type_ids", "attention_mask", "labels"}``
and the LightningModule's ``forward`` needs the attention mask, as BERT's does.

The label is 1 when the sentence holds both "very" and "good" (an AND of two words, wherever
they are) or the word "great"; training replaces 15% of the words by ``[MASK]``, so a masked
word means "this word is gone", and flips 20% of the training labels, so that the network
over-fits once it has learned the rule. The monitor needs only the tokenizer:
``TokenMasker.from_tokenizer(tokenizer, num_players=4)`` takes ``[MASK]`` as what a masked word
becomes and keeps ``[PAD]``, ``[CLS]`` and ``[SEP]`` out of the players; every other field of the
batch (``token_type_ids``, ``attention_mask``) travels with each masked copy.

Run: .venv/bin/python examples/hf_text.py [--epochs 30] [--out runs/hf_text] [--quick]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded; say so to transformers too

import lightning as L
import torch
from _common import fit, parse_args
from torch import Tensor
from torch.utils.data import DataLoader
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, DataCollatorWithPadding

from lightning_interactions import InteractionMonitor, TokenMasker

NAME = "hf_text"
WORDS = "the a film plot cast was is very good great bad dull quite rather and but it so".split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(folder: Path) -> BertTokenizerFast:
    """A WordPiece tokenizer over :data:`WORDS`, from a vocabulary file (no download)."""
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n")
    return BertTokenizerFast.from_pretrained(str(folder))


def label(words: list[str]) -> int:
    return int(("very" in words and "good" in words) or "great" in words)


def make_sentences(
    count: int, generator: torch.Generator, mask_rate: float, label_noise: float = 0.0
) -> list[tuple[str, int]]:
    """Random sentences of 4 to 9 words; the rule's words are planted often enough to be learned.

    ``label_noise`` of the labels are flipped, so that the network has something to memorise.
    """
    sentences = []
    for _ in range(count):
        length = int(torch.randint(4, 10, (1,), generator=generator))
        picks = torch.randint(0, len(WORDS), (length,), generator=generator).tolist()
        words = [WORDS[i] for i in picks]
        for word in ("very", "good", "great"):
            if float(torch.rand(1, generator=generator)) < 0.3:
                words[int(torch.randint(0, length, (1,), generator=generator))] = word
        target = label(words)
        # Masked words are gone: the label follows what is left, as the monitor will ask.
        masked = [w if float(torch.rand(1, generator=generator)) >= mask_rate else "[MASK]" for w in words]
        target = label(masked) if mask_rate else target
        if float(torch.rand(1, generator=generator)) < label_noise:
            target = 1 - target
        sentences.append((" ".join(masked), target))
    return sentences


class SentenceData(L.LightningDataModule):
    """Tokenized sentences in dict batches, each padded to its own longest sentence."""

    def __init__(self, tokenizer: BertTokenizerFast, train: list, val: list, batch_size: int = 32) -> None:
        super().__init__()
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.train_set = [{**tokenizer(text), "labels": y} for text, y in train]
        self.val_set = [{**tokenizer(text), "labels": y} for text, y in val]
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, self.batch_size, shuffle=True, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.batch_size, collate_fn=self.collate)


class BertClassifier(L.LightningModule):
    """``BertForSequenceClassification`` from a tiny config; ``forward`` needs the attention mask."""

    def __init__(self, vocab_size: int, lr: float = 3e-3) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=16,
            num_labels=2,
        )
        self.bert = BertForSequenceClassification(config)
        self.lr = lr

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        return self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits

    def _step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        self.log(f"{split}_loss", loss, on_step=False, on_epoch=True, batch_size=len(logits))
        if split == "val":
            accuracy = (logits.argmax(1) == batch["labels"]).float().mean()
            self.log("val_acc", accuracy, on_epoch=True, batch_size=len(logits))
        return loss

    def training_step(self, batch: dict[str, Tensor], _index: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], _index: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the BERT with the monitor and print what it measured; returns the pieces."""
    args = parse_args(argv, __doc__, NAME, epochs=30, samples=8)
    train_count, val_count = 600, 400
    if args.quick:
        args.epochs, train_count, val_count, args.samples = 2, 200, 64, 4
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer(Path(folder))
    data = SentenceData(
        tokenizer,
        make_sentences(train_count, generator, mask_rate=0.15, label_noise=0.2),
        make_sentences(val_count, generator, mask_rate=0.0),
    )
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=4)
    monitor = InteractionMonitor(masker, num_samples=args.samples, seed=args.seed)
    model = BertClassifier(len(tokenizer))
    trainer = fit(model, data, monitor, args, NAME)
    return {"trainer": trainer, "monitor": monitor, "model": model, "tokenizer": tokenizer}


if __name__ == "__main__":
    main()
