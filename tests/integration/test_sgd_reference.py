"""The SGD baseline of benchmarks/sgd_reference.py against literal definitions and HiGHS."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.oracles import exact_extraction_optimum

from lightning_interactions.extraction.and_or import and_or_interactions

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "sgd_reference.py"
_SPEC = importlib.util.spec_from_file_location("sgd_reference", _PATH)
sgd = importlib.util.module_from_spec(_SPEC)
sys.modules["sgd_reference"] = sgd  # dataclasses look the module up while it executes
_SPEC.loader.exec_module(sgd)


def subsets(mask: int) -> list[int]:
    """Every submask of ``mask``, by brute force over all masks."""
    return [t for t in range(mask + 1) if t & mask == t]


def literal_and_matrix(n: int) -> np.ndarray:
    """``I_and(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T)`` written out entry by entry."""
    size = 2**n
    matrix = np.zeros((size, size))
    for s in range(size):
        for t in subsets(s):
            matrix[s, t] = (-1) ** (bin(s).count("1") - bin(t).count("1"))
    return matrix


def literal_or_matrix(n: int) -> np.ndarray:
    """``I_or(S) = -sum_{T subset of S} (-1)^{|S|-|T|} v(N \\ T)`` (S nonempty); I_or(empty) = v(empty)."""
    size = 2**n
    full = size - 1
    matrix = np.zeros((size, size))
    matrix[0, 0] = 1.0
    for s in range(1, size):
        for t in subsets(s):
            matrix[s, full ^ t] -= (-1) ** (bin(s).count("1") - bin(t).count("1"))
    return matrix


def literal_objective(v: np.ndarray, gamma: np.ndarray, q: np.ndarray) -> float:
    """Sum over nonempty S of ``|I_and(S)| + |I_or(S)|``, by loops over subsets."""
    size = len(v)
    full = size - 1
    v_and = 0.5 * (v + q) + gamma
    v_or = 0.5 * (v + q) - gamma
    total = 0.0
    for s in range(1, size):
        sign = [(-1) ** (bin(s).count("1") - bin(t).count("1")) for t in subsets(s)]
        i_and = sum(c * v_and[t] for c, t in zip(sign, subsets(s)))
        i_or = -sum(c * v_or[full ^ t] for c, t in zip(sign, subsets(s)))
        total += abs(i_and) + abs(i_or)
    return total


@pytest.mark.parametrize("n", [3, 4, 5])
def test_objective_is_the_literal_definition(n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    v, gamma, q = (torch.randn(3, 2**n, generator=gen, dtype=torch.float64) for _ in range(3))
    and_matrix, or_matrix = sgd.reference_matrices(n, torch.float64)
    assert np.array_equal(and_matrix.numpy(), literal_and_matrix(n))
    assert np.array_equal(or_matrix.numpy(), literal_or_matrix(n))
    dense = sgd.dense_objective(v, gamma, q, and_matrix, or_matrix)
    fast = sgd.fast_objective(v, gamma, q)
    for i in range(3):
        expected = literal_objective(v[i].numpy(), gamma[i].numpy(), q[i].numpy())
        assert float(dense[i]) == pytest.approx(expected, rel=1e-12)
        assert float(fast[i]) == pytest.approx(expected, rel=1e-12)


def test_same_objective_as_the_package_for_its_own_solution() -> None:
    gen = torch.Generator().manual_seed(7)
    v = torch.randn(2, 2**4, generator=gen, dtype=torch.float64)
    result = and_or_interactions(v)
    matrices = sgd.reference_matrices(4, torch.float64)
    ours_through_sgd = sgd.dense_objective(v, result.gamma, result.q, *matrices)
    torch.testing.assert_close(ours_through_sgd, result.objective, rtol=1e-10, atol=1e-10)


def test_gradient_is_autograds() -> None:
    gen = torch.Generator().manual_seed(3)
    n = 4
    v, gamma, q = (torch.randn(2, 2**n, generator=gen, dtype=torch.float64) for _ in range(3))
    matrices = sgd.reference_matrices(n, torch.float64)
    gamma.requires_grad_(True)
    q.requires_grad_(True)
    sgd.dense_objective(v, gamma, q, *matrices).sum().backward()
    grad_gamma, grad_q = sgd.objective_gradient(v, gamma.detach(), q.detach(), *matrices)
    torch.testing.assert_close(grad_gamma, gamma.grad)
    torch.testing.assert_close(grad_q, q.grad)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_clamp_keeps_q_in_the_box(n: int) -> None:
    gen = torch.Generator().manual_seed(10 + n)
    v = 5.0 * torch.randn(3, 2**n, generator=gen, dtype=torch.float64)
    tau = torch.tensor([0.01, 0.1, 0.5], dtype=torch.float64)
    # A large rate throws q far out of the box at every step; only the clamp brings it back.
    run = sgd.sgd_extraction(v, tau, lr=0.5, iterations=50, dtype=torch.float64)
    assert run.iterations == 50
    assert bool((run.q.abs() <= tau[:, None]).all())
    assert bool((run.q.abs() == tau[:, None]).any(dim=1).all())  # the box is actually reached


@pytest.mark.parametrize("n", [3, 4])
def test_converges_to_highs_optimum_from_above(n: int) -> None:
    gen = torch.Generator().manual_seed(20 + n)
    # A sparse planted AND-OR game plus noise, the kind of vector the extraction is for.
    masks = torch.arange(2**n)
    v = torch.zeros(2, 2**n, dtype=torch.float64)
    for row in range(2):
        for s in torch.randint(1, 2**n, (3,), generator=gen).tolist():
            coef = float(torch.randn((), generator=gen, dtype=torch.float64))
            v[row] += coef * ((masks & s) == s).double()
        v[row] += 0.05 * torch.randn(2**n, generator=gen, dtype=torch.float64)
    tau = 0.04 * (v[:, -1] - v[:, 0]).abs()
    run = sgd.sgd_extraction(v, tau, lr=3e-4, iterations=4000, dtype=torch.float64)
    for i in range(2):
        optimum = exact_extraction_optimum(v[i], float(tau[i]), literal_and_matrix(n), literal_or_matrix(n))
        objective = float(run.objective[i])
        assert objective >= optimum - 1e-9
        assert objective <= 1.02 * optimum + 1e-6


def test_schedule_is_numpys_logspace() -> None:
    expected = np.logspace(np.log10(1e-5), np.log10(1e-5) - 1, 10_000)
    got = np.array([sgd.scheduled_lr(1e-5, step, 10_000) for step in range(10_000)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1] == pytest.approx(1e-6)


def test_time_limit_stops_early_and_bad_arguments_raise() -> None:
    v = torch.randn(1, 2**6, dtype=torch.float64)
    run = sgd.sgd_extraction(v, 0.1, iterations=10**7, time_limit=0.05)
    assert 1 < run.iterations < 10**7
    with pytest.raises(ValueError, match="iterations >= 1"):
        sgd.sgd_extraction(v, 0.1, iterations=0)
    with pytest.raises(ValueError, match="one per sample"):
        sgd.sgd_extraction(v, torch.ones(3))
    with pytest.raises(ValueError, match="finite"):
        sgd.sgd_extraction(torch.full((1, 8), float("nan")), 0.1)
