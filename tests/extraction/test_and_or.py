"""lightning_interactions.extraction.and_or against an exact LP solver (HiGHS) and literal definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers.oracles import (
    VECTOR_KINDS,
    exact_optimum,
    literal_and_matrix,
    literal_or_matrix,
    mlp_vectors,
    planted_vectors,
    random_vectors,
    subset_sum_values,
)

from lightning_interactions.extraction.and_or import and_or_interactions, dual_lower_bound

pytest.importorskip("scipy")


@pytest.mark.parametrize("kind", sorted(VECTOR_KINDS))
@pytest.mark.parametrize("n", [4, 5, 6, 7, 8])
def test_extraction_within_one_percent_of_exact_lp(kind: str, n: int) -> None:
    values = VECTOR_KINDS[kind](n, seed=n)
    result = and_or_interactions(values, q_ratio=0.04)
    for i in range(values.shape[0]):
        optimum = exact_optimum(values[i].numpy(), float(result.tau[i]))
        objective = float(result.objective[i])
        # The certificate brackets the true optimum, and the solution is within 1% of it.
        assert float(result.lower_bound[i]) <= optimum * (1 + 1e-7) + 1e-9
        assert optimum * (1 - 1e-7) - 1e-9 <= objective <= 1.01 * optimum + 1e-9
        assert float(result.gap[i]) <= 0.01


def test_result_satisfies_definitions_and_box() -> None:
    """I_and and I_or are the transforms of 0.5 (v + q) +- gamma, and |q| <= tau (literal check)."""
    n = 5
    values = mlp_vectors(n, 3, seed=1)
    result = and_or_interactions(values)
    A, B = literal_and_matrix(n), literal_or_matrix(n)
    for i in range(values.shape[0]):
        v, q, g = values[i].numpy(), result.q[i].numpy(), result.gamma[i].numpy()
        assert np.all(np.abs(q) <= float(result.tau[i]) + 1e-12)
        np.testing.assert_allclose(result.I_and[i].numpy(), A @ (0.5 * (v + q) + g), atol=1e-9)
        np.testing.assert_allclose(result.I_or[i].numpy(), B @ (0.5 * (v + q) - g), atol=1e-9)
        objective = np.abs(result.I_and[i].numpy()[1:]).sum() + np.abs(result.I_or[i].numpy()[1:]).sum()
        assert objective == pytest.approx(float(result.objective[i]), rel=1e-12)


def test_noise_free_planted_vector_recovers_exactly_the_planted_interactions() -> None:
    n = 8
    and_terms = {0b00000011: 2.0, 0b00011100: -1.5, 0b10100001: 1.2}
    or_terms = {0b01100000: 1.0, 0b10000010: -0.8}
    values = subset_sum_values(n, and_terms, or_terms)
    result = and_or_interactions(values)
    span = abs(float(values[-1] - values[0]))
    salient_and = {S for S in range(1, 2**n) if abs(float(result.I_and[S])) > 0.03 * span}
    salient_or = {S for S in range(1, 2**n) if abs(float(result.I_or[S])) > 0.03 * span}
    assert salient_and == set(and_terms)
    assert salient_or == set(or_terms)
    for S, coefficient in itertools.chain(and_terms.items(), or_terms.items()):
        found = result.I_and[S] if S in and_terms else result.I_or[S]
        assert float(found) == pytest.approx(coefficient, abs=2 * float(result.tau))


def test_lower_bound_is_valid_for_any_multipliers() -> None:
    """Weak duality: the bound from arbitrary (even poor) multipliers never exceeds the optimum."""
    n = 5
    values = random_vectors(n, 1, seed=3)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    optimum = exact_optimum(values[0].numpy(), float(tau[0]))
    generator = torch.Generator().manual_seed(0)
    for scale in (0.01, 0.3, 3.0):
        mu = scale * torch.randn(1, 2**n, generator=generator, dtype=torch.float64)
        assert float(dual_lower_bound(values, tau, mu)[0]) <= optimum + 1e-9


def test_runs_on_input_device_and_accepts_one_vector_and_float32() -> None:
    values = planted_vectors(6, 1, seed=2, noise=0.01)[0].float()
    result = and_or_interactions(values)
    assert result.I_and.shape == (64,) and result.I_and.device == values.device
    assert float(result.gap) <= 0.01


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 6, dtype=torch.float64), "2\\^n"),
        (torch.zeros(2, 8, dtype=torch.int64), "floating"),
        (torch.tensor([[0.0, float("nan"), 0.0, 1.0]]), "NaN"),
    ],
)
def test_bad_input_is_rejected_clearly(bad: torch.Tensor, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        and_or_interactions(bad)


def test_tied_optima_resolve_to_the_lowest_orders() -> None:
    """An additive output is optimal as singletons and as OR{i,j} + AND{i,j}; singletons win."""
    n = 6
    weights = {1 << i: w for i, w in enumerate([1.0, 0.8, -0.6, 1.2, 0.5, 0.9])}
    values = subset_sum_values(n, weights, {})
    result = and_or_interactions(values)
    order = [bin(S).count("1") for S in range(2**n)]
    higher = sum(
        abs(float(result.I_and[S])) + abs(float(result.I_or[S])) for S in range(2**n) if order[S] > 1
    )
    total = float(result.objective)
    assert higher <= 1e-3 * total
    optimum = exact_optimum(values.numpy(), float(result.tau))
    assert total <= 1.01 * optimum
