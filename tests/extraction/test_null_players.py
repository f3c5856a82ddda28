"""Null players are taken out before the extraction: against HiGHS and the literal definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.oracles import exact_optimum, literal_and_matrix, literal_or_matrix, mlp_vectors, random_vectors

from lightning_interactions.extraction._null_players import (
    full_masks,
    kept_players,
    reduced_masks,
    scatter_interactions,
)
from lightning_interactions.extraction.and_or import and_or_interactions, dual_lower_bound

pytest.importorskip("scipy")


def with_null_players(small: torch.Tensor, players: list[int], n: int) -> torch.Tensor:
    """Values on all masks of n players that read ``small`` at the bits of ``players`` only
    (literal loop: every other player is null)."""
    out = torch.empty(2**n, dtype=small.dtype)
    for T in range(2**n):
        index = sum(1 << j for j, player in enumerate(players) if T >> player & 1)
        out[T] = small[index]
    return out


def test_kept_players_and_the_two_mask_maps_are_the_literal_ones() -> None:
    n = 5
    values = torch.stack(
        (
            with_null_players(random_vectors(3, 1, seed=0)[0], [0, 2, 3], n),
            with_null_players(random_vectors(3, 1, seed=1)[0], [1, 3, 4], n),
        )
    )
    kept = kept_players(values)
    assert kept.tolist() == [[True, False, True, True, False], [False, True, False, True, True]]
    full, back = full_masks(kept), reduced_masks(kept)
    for row, players in enumerate(([0, 2, 3], [1, 3, 4])):
        for small in range(8):
            assert int(full[row, small]) == sum(1 << p for j, p in enumerate(players) if small >> j & 1)
        for T in range(2**n):
            assert int(back[row, T]) == sum(1 << j for j, p in enumerate(players) if T >> p & 1)
            assert int(full[row, back[row, T]]) == T & sum(1 << p for p in players)
    moved = scatter_interactions(torch.arange(1.0, 9.0).expand(2, 8), full, 2**n)
    assert moved.count_nonzero(dim=1).tolist() == [8, 8]


def test_a_sample_with_every_player_null_keeps_one() -> None:
    values = torch.full((1, 8), 3.0, dtype=torch.float64)
    assert kept_players(values).tolist() == [[True, False, False]]


def test_lifted_multipliers_keep_the_bound() -> None:
    """The dual half of the reduction's proof: mu'(T n K) / 2^(n-m) bounds the full problem as
    mu' bounds the reduced one."""
    n, players = 6, [1, 2, 4, 5]
    small = mlp_vectors(4, 1, seed=3)[0]
    values = with_null_players(small, players, n)[None]
    kept = kept_players(values)
    tau = torch.tensor([0.05], dtype=torch.float64)
    mu_small = torch.randn(1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mu = mu_small.gather(1, reduced_masks(kept)) / 2 ** (n - len(players))
    assert float(dual_lower_bound(values, tau, mu)) == pytest.approx(
        float(dual_lower_bound(small[None], tau, mu_small)), rel=1e-12
    )


def test_a_batch_with_different_null_players_matches_highs_and_the_definitions() -> None:
    n = 6
    values = torch.stack(
        (
            with_null_players(mlp_vectors(4, 1, seed=5)[0], [0, 1, 3, 5], n),
            random_vectors(n, 1, seed=6)[0],  # no null player
            with_null_players(random_vectors(3, 1, seed=7)[0], [2, 3, 4], n),
            with_null_players(mlp_vectors(4, 2, seed=8)[1], [1, 2, 4, 5], n),
        )
    )
    certified: list[int] = []
    result = and_or_interactions(values, progress=lambda done, batch: certified.append(done))
    A, B = literal_and_matrix(n), literal_or_matrix(n)
    null_sets = [0b010100, 0, 0b100011, 0b001001]
    for i in range(values.shape[0]):
        v, q, g = values[i].numpy(), result.q[i].numpy(), result.gamma[i].numpy()
        optimum = exact_optimum(v, float(result.tau[i]))
        assert float(result.lower_bound[i]) <= optimum * (1 + 1e-7) + 1e-9
        assert optimum * (1 - 1e-7) - 1e-9 <= float(result.objective[i]) <= 1.01 * optimum + 1e-9
        assert float(result.gap[i]) <= 0.01
        assert np.all(np.abs(q) <= float(result.tau[i]) + 1e-12)
        np.testing.assert_allclose(result.I_and[i].numpy(), A @ (0.5 * (v + q) + g), atol=1e-9)
        np.testing.assert_allclose(result.I_or[i].numpy(), B @ (0.5 * (v + q) - g), atol=1e-9)
        objective = np.abs(result.I_and[i].numpy()[1:]).sum() + np.abs(result.I_or[i].numpy()[1:]).sum()
        assert objective == pytest.approx(float(result.objective[i]), rel=1e-12)
        holds_null = (torch.arange(2**n) & null_sets[i]) != 0
        assert not bool(result.I_and[i][holds_null].any()) and not bool(result.I_or[i][holds_null].any())
    assert certified[-1] == values.shape[0]
    assert certified == sorted(certified)


def test_one_vector_with_null_players_comes_back_as_one_vector() -> None:
    small = random_vectors(3, 1, seed=9)[0]
    result = and_or_interactions(with_null_players(small, [0, 2, 3], 4).float())
    alone = and_or_interactions(small.float())
    assert result.I_and.shape == (16,) and result.objective.dim() == 0
    assert float(result.objective) == pytest.approx(float(alone.objective), rel=1e-9)
