"""Strength by order, shape and complexity against the literal definitions of theory.md section 4."""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.analysis.strength import (
    InteractionStrength,
    complexity,
    per_sample_strength,
    signed_strength,
    strength_shape,
)


def literal_strength(I_and: torch.Tensor, I_or: torch.Tensor, n: int) -> torch.Tensor:
    """A(k) = mean over samples of sum_{|S| = k} |I_and(S)| + |I_or(S)|, by loops."""
    out = torch.zeros(n, dtype=torch.float64)
    for sample in range(I_and.shape[0]):
        for S in range(1, 2**n):
            k = bin(S).count("1")
            out[k - 1] += abs(float(I_and[sample, S])) + abs(float(I_or[sample, S]))
    return out / I_and.shape[0]


@pytest.mark.parametrize("n", [1, 3, 6])
def test_strength_shape_and_complexity_match_definitions(n: int) -> None:
    generator = torch.Generator().manual_seed(n)
    I_and = torch.randn(4, 2**n, generator=generator, dtype=torch.float64)
    I_or = torch.randn(4, 2**n, generator=generator, dtype=torch.float64)
    expected = literal_strength(I_and, I_or, n)
    torch.testing.assert_close(per_sample_strength(I_and, I_or).mean(dim=0), expected)
    shape = strength_shape(expected)
    assert float(shape.sum()) == pytest.approx(1.0)
    mean_order = sum((k + 1) * float(expected[k]) for k in range(n)) / float(expected.sum())
    assert float(complexity(shape)) == pytest.approx(mean_order)


def test_order_zero_is_left_out_and_zero_strength_stays_zero() -> None:
    I_and = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    assert per_sample_strength(I_and, torch.zeros_like(I_and)).abs().sum() == 0
    assert strength_shape(torch.zeros(3)).abs().sum() == 0


def test_signed_strength_counts_only_salient_interactions() -> None:
    # n = 2: v(N) - v(empty) = sum of nonempty interactions = 1 + 0.001 - 2 + 3 = 2.001.
    I_and = torch.tensor([[7.0, 1.0, 0.001, -2.0]])
    I_or = torch.tensor([[0.0, 0.0, 3.0, 0.0]])
    view = signed_strength(I_and, I_or, salient_ratio=0.03)
    torch.testing.assert_close(view["positive"], torch.tensor([4.0, 0.0]))
    torch.testing.assert_close(view["negative"], torch.tensor([0.0, -2.0]))
    torch.testing.assert_close(view["count"], torch.tensor([2.0, 1.0]))


def test_metric_accumulates_and_merges_like_a_sum_over_processes() -> None:
    n = 4
    generator = torch.Generator().manual_seed(0)
    I_and = torch.randn(6, 2**n, generator=generator, dtype=torch.float64)
    I_or = torch.randn(6, 2**n, generator=generator, dtype=torch.float64)
    whole = InteractionStrength(num_players=n)
    whole.update(I_and, I_or)
    first, second = InteractionStrength(num_players=n), InteractionStrength(num_players=n)
    first.update(I_and[:2], I_or[:2])
    second.update(I_and[2:], I_or[2:])
    first.merge_state(second)  # what the "sum" reduction does across processes
    expected = literal_strength(I_and, I_or, n)
    for metric in (whole, first):
        result = metric.compute()
        torch.testing.assert_close(result["strength"], expected)
        torch.testing.assert_close(result["shape"], expected / expected.sum())
    assert InteractionStrength(num_players=n)._reductions["strength_sum"] is not None


def test_metric_rejects_wrong_player_count() -> None:
    with pytest.raises(ValueError, match="players"):
        InteractionStrength(num_players=3).update(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="at least 1"):
        InteractionStrength(num_players=0)
