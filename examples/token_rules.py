"""Text-like tokens: a tiny transformer learns planted AND/OR rules, and the monitor finds them.

Sequences of 8 tokens; the label is 1 when

    (token A at position 1 AND token B at position 4) OR token C at position 2 OR token D at position 6

and 0 otherwise (A, B, C, D also appear at other positions, where they mean nothing). The
positions are the players (``TokenMasker``); a masked position holds a mask token, which the
network sees in training too (a quarter of the positions of each training sequence are masked
and the label follows the masked sequence), so a masked input means "this evidence is gone".

The monitor measures two families of positive validation sequences, given as its ``samples``:

* AND family: A at 1 and B at 4, neither C at 2 nor D at 6. The output is high only when both
  positions 1 and 4 are present: one AND interaction between players {1, 4}.
* OR family: C at 2 and D at 6, not A at 1 or B at 4. Either token alone keeps the output high:
  one OR interaction between players {2, 6}.

After training, the salient interactions (``|I| > ratio * |v(N) - v(empty)|``, the criterion of
``strength.signed_strength``, ``docs/theory.md`` section 4) of the last measurement are listed
per family; the strongest should be the planted AND pair and the planted OR pair.
``tests/integration/test_examples.py`` checks exactly that.

Run: .venv/bin/python examples/token_rules.py [--epochs 8] [--out runs/token_rules] [--quick]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from _common import Classifier, TensorDataModule, fit, parse_args
from torch import Tensor, nn

from lightning_interactions import InteractionMonitor, TokenMasker, compute_interactions

NAME = "token_rules"
LENGTH = 8
MASK = 1  # token 0 is unused; content tokens are 2 .. 2 + VOCAB - 1
VOCAB = 10
A, B, C, D = 2, 3, 4, 5
AND_POSITIONS = (1, 4)  # A at 1 AND B at 4
OR_POSITIONS = (2, 6)  # C at 2 OR D at 6
PLANTED = {AND_POSITIONS[0]: A, AND_POSITIONS[1]: B, OR_POSITIONS[0]: C, OR_POSITIONS[1]: D}


def label(tokens: Tensor) -> Tensor:
    """The planted rule on ``(N, LENGTH)`` token ids: ``(A@1 and B@4) or C@2 or D@6``."""
    (i, j), (k, m) = AND_POSITIONS, OR_POSITIONS
    both = (tokens[:, i] == A) & (tokens[:, j] == B)
    return (both | (tokens[:, k] == C) | (tokens[:, m] == D)).long()


def make_sequences(count: int, generator: torch.Generator, mask_rate: float = 0.25) -> tuple[Tensor, Tensor]:
    """Random training sequences: each planted token at its position with probability 0.35, the
    other tokens uniform over the vocabulary, then ``mask_rate`` of the positions masked."""
    tokens = torch.randint(2, 2 + VOCAB, (count, LENGTH), generator=generator)
    for position, token in PLANTED.items():
        plant = torch.rand(count, generator=generator) < 0.35
        tokens[plant, position] = token
    masked = torch.rand(count, LENGTH, generator=generator) < mask_rate
    tokens[masked] = MASK
    return tokens, label(tokens)


def _avoid(tokens: Tensor, position: int, token: int, generator: torch.Generator) -> None:
    """Replace ``token`` at ``position`` by another random content token, in place."""
    hit = tokens[:, position] == token
    other = torch.randint(2, 2 + VOCAB - 1, (int(hit.sum()),), generator=generator)
    tokens[hit, position] = other + (other >= token).long()  # uniform over content tokens != token


def planted_families(per_family: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``per_family`` AND-family then ``per_family`` OR-family sequences (all labelled 1)."""
    and_family = torch.randint(2, 2 + VOCAB, (per_family, LENGTH), generator=generator)
    and_family[:, AND_POSITIONS[0]], and_family[:, AND_POSITIONS[1]] = A, B
    for position in OR_POSITIONS:
        _avoid(and_family, position, PLANTED[position], generator)
    or_family = torch.randint(2, 2 + VOCAB, (per_family, LENGTH), generator=generator)
    or_family[:, OR_POSITIONS[0]], or_family[:, OR_POSITIONS[1]] = C, D
    for position in AND_POSITIONS:
        _avoid(or_family, position, PLANTED[position], generator)
    inputs = torch.cat([and_family, or_family])
    return inputs, label(inputs)


class TinyTransformer(nn.Module):
    """Token and position embeddings, two encoder layers, mean pooling, a linear head."""

    def __init__(self, width: int = 32, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.tokens = nn.Embedding(2 + VOCAB, width)
        self.positions = nn.Parameter(torch.randn(LENGTH, width) * 0.1)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 2)

    def forward(self, ids: Tensor) -> Tensor:
        hidden = self.encoder(self.tokens(ids) + self.positions)
        return self.head(hidden.mean(dim=1))


def salient_interactions(
    model: nn.Module, inputs: Tensor, targets: Tensor, masker: TokenMasker, ratio: float = 0.1
) -> list[list[tuple[str, frozenset[int], float]]]:
    """Per sample, its salient interactions ``(kind, players, I)``, strongest first.

    Salient means ``|I| > ratio * |v(N) - v(empty)|`` for that sample; players are token positions.
    """
    result = compute_interactions(model, inputs, targets, masker=masker)
    n = result.num_players
    positions = result.players["positions"]
    found = []
    for row, sample in enumerate(result.sample_indices.tolist()):
        span = abs(float(result.v[row, -1] - result.v[row, 0]))
        items = []
        for kind, table in (("AND", result.I_and[row]), ("OR", result.I_or[row])):
            for mask in range(1, 2**n):
                value = float(table[mask])
                if abs(value) > ratio * span:
                    players = frozenset(int(positions[sample, i]) for i in range(n) if mask >> i & 1)
                    items.append((kind, players, value))
        found.append(sorted(items, key=lambda item: -abs(item[2])))
    return found


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, measure, and print the planted interactions the monitor found; returns the pieces."""
    args = parse_args(argv, __doc__, NAME, epochs=8, samples=8)
    train_count, val_count, per_family = 6000, 1000, args.samples // 2
    if args.quick:
        args.epochs, train_count, val_count, per_family = 2, 600, 300, 1
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x_train, y_train = make_sequences(train_count, generator)
    x_val, y_val = make_sequences(val_count, generator)
    samples = planted_families(max(per_family, 1), generator)

    # Every position is a player; a masked position holds the mask token.
    masker = TokenMasker(mask_token_id=MASK, players=list(range(LENGTH)))
    monitor = InteractionMonitor(masker, num_samples=samples[0].shape[0], samples=samples, seed=args.seed)
    model = Classifier(TinyTransformer(), lr=3e-3)
    data = TensorDataModule(x_train, y_train, x_val, y_val, batch_size=128)
    trainer = fit(model, data, monitor, args, NAME)

    found = salient_interactions(model.eval(), *samples, masker)
    half = samples[0].shape[0] // 2
    print("\nstrongest salient interactions after training (players = token positions):")
    for family, rows, planted in (
        ("AND family", range(half), f"AND {set(AND_POSITIONS)}"),
        ("OR family", range(half, 2 * half), f"OR {set(OR_POSITIONS)}"),
    ):
        print(f"  {family} (planted {planted}):")
        for row in rows:
            top = ", ".join(
                f"{kind} {sorted(players)} {value:+.2f}" for kind, players, value in found[row][:3]
            )
            print(f"    sample {row}: {top}")
    return {"trainer": trainer, "monitor": monitor, "model": model, "samples": samples, "salient": found}


if __name__ == "__main__":
    main()
