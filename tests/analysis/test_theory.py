"""Tests for lightning_interactions.analysis.theory: literal definitions, least squares, Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.oracles import is_subset, literal_noise_matrix, literal_strength_by_order, popcount

from lightning_interactions.analysis.theory import (
    NoiseFit,
    fit_noise_level,
    inverse_noise_transform,
    noise_transform,
    noise_transform_or,
    prior_shape,
    reference_shape,
    shape_predictor,
)

F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Literal helpers: masks as Python ints, no code from the package under test
# ---------------------------------------------------------------------------------------------


def and_design(n: int) -> torch.Tensor:
    """``J[T, S] = 1[S subset of T]``."""
    size = 2**n
    return torch.tensor([[float(is_subset(S, T)) for S in range(size)] for T in range(size)], dtype=F64)


def absent_design(n: int) -> torch.Tensor:
    """``K[T, S] = 1[S subset of N \\ T]``: the AND trigger of the absent players."""
    full = 2**n - 1
    return and_design(n)[[full ^ T for T in range(2**n)]]


# ---------------------------------------------------------------------------------------------
# The noise transform
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("s", [0.0, 0.03, 0.5, 2.0, 25.0])
def test_noise_transform_equals_expected_gram_least_squares(n: int, s: float) -> None:
    size = 2**n
    # The expected Gram matrix as stated, checked against its literal definition
    # sum_T E[J~_S(T) J~_S'(T)] = sum_T J_S(T) J_S'(T) (1 + s)^{|S n S'|}.
    gram = torch.tensor(
        [
            [2.0 ** (n - popcount(S | Sp)) * (1 + s) ** popcount(S & Sp) for Sp in range(size)]
            for S in range(size)
        ],
        dtype=F64,
    )
    J = and_design(n)
    literal = torch.zeros(size, size, dtype=F64)
    for S in range(size):
        for Sp in range(size):
            literal[S, Sp] = (J[:, S] * J[:, Sp]).sum() * (1 + s) ** popcount(S & Sp)
    torch.testing.assert_close(gram, literal, rtol=0, atol=0)

    w_star = torch.randn(4, size, dtype=F64, generator=torch.Generator().manual_seed(n))
    targets = w_star @ J.T  # y_T = sum_S w*_S J_S(T), one row per reference
    rhs = targets @ J  # sum_T E[J~_S(T)] y_T, and E[J~_S] = J_S
    solution = torch.linalg.solve(gram, rhs.T).T
    torch.testing.assert_close(noise_transform(w_star, s), solution, rtol=0, atol=1e-10)


def _noisy_products(noise: torch.Tensor, n: int) -> torch.Tensor:
    """``prod_{i in S} (1 + e_i)`` for every row of ``noise`` (rows, n) and every mask S."""
    factors = torch.ones(noise.shape[0], 2**n, dtype=F64)
    for S in range(2**n):
        for i in range(n):
            if S >> i & 1:
                factors[:, S] *= 1 + noise[:, i]
    return factors


def _monte_carlo_regression(design_of, targets: torch.Tensor, n: int, s: float, batches: int, reps: int):
    """Least squares on noisy designs; returns the pooled fit and the standard error per coefficient."""
    generator = torch.Generator().manual_seed(1234)
    size = 2**n
    gram_sum = torch.zeros(size, size, dtype=F64)
    rhs_sum = torch.zeros(size, dtype=F64)
    per_batch = []
    for _ in range(batches):
        noise = torch.randn(reps * size, n, dtype=F64, generator=generator) * math.sqrt(s)
        masks = torch.arange(size).repeat(reps)  # every coalition T, `reps` times with fresh noise
        X = design_of(masks, _noisy_products(noise, n))
        y = targets[masks]
        gram, rhs = X.T @ X, X.T @ y
        per_batch.append(torch.linalg.solve(gram, rhs))
        gram_sum += gram
        rhs_sum += rhs
    per_batch = torch.stack(per_batch)
    return torch.linalg.solve(gram_sum, rhs_sum), per_batch.std(dim=0) / math.sqrt(batches)


def test_monte_carlo_regression_with_multiplicative_trigger_noise() -> None:
    n, s = 3, 0.5
    J = and_design(n)
    w_star = torch.tensor([0.3, 1.0, -0.5, 0.8, 0.6, -1.2, 0.4, 2.0], dtype=F64)

    def design(masks: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
        return J[masks] * products  # J~_S(T) = J_S(T) prod_{i in S} (1 + e_i)

    fitted, stderr = _monte_carlo_regression(design, J @ w_star, n, s, batches=20, reps=2000)
    closed = noise_transform(w_star, s)
    z = (fitted - closed).abs() / stderr
    assert z.max() < 5.0, f"Monte Carlo disagrees: z = {z}"
    # The test has power: the noise clearly moves the solution away from w*.
    assert ((closed - w_star).abs() / stderr).max() > 20.0


def test_or_interactions_transform_like_and_on_nonempty_sets_monte_carlo() -> None:
    # OR triggers 1[S n T nonempty] = 1 - 1[S subset of N \ T]; the noise scales the trigger of
    # the absent players: 1 - 1[S subset of N \ T] prod_{i in S} (1 + e_i). Column 0 is the constant.
    n, s = 3, 0.5
    absent = absent_design(n)
    w_or = torch.tensor([0.2, 1.0, -0.5, 0.8, 0.6, -1.2, 0.4, 2.0], dtype=F64)
    clean = 1 - absent
    clean[:, 0] = 1.0
    targets = clean @ w_or

    def design(masks: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
        X = 1 - absent[masks] * products
        X[:, 0] = 1.0
        return X

    fitted, stderr = _monte_carlo_regression(design, targets, n, s, batches=20, reps=2000)
    z = (fitted - noise_transform_or(w_or, s)).abs() / stderr
    assert z.max() < 5.0, f"Monte Carlo disagrees: z = {z}"
    z_nonempty = (fitted[1:] - noise_transform(w_or, s)[1:]).abs() / stderr[1:]
    assert z_nonempty.max() < 5.0


@pytest.mark.parametrize("s", [0.0, 0.2, 1.5, 30.0])
def test_or_noise_transform_equals_expected_least_squares(s: float) -> None:
    n = 4
    size = 2**n
    K = absent_design(n)
    mean_design = 1 - K  # E of the noisy OR trigger, since E prod (1 + e_i) = 1
    mean_design[:, 0] = 1.0
    # E[X_S X_S'] summed over T, with E[prod_S prod_S'] = (1 + s)^{|S n S'|}.
    gram = torch.zeros(size, size, dtype=F64)
    for S in range(size):
        for Sp in range(size):
            second = (1 + s) ** popcount(S & Sp)
            for T in range(size):
                if S == 0 or Sp == 0:
                    gram[S, Sp] += mean_design[T, S] * mean_design[T, Sp]
                else:
                    gram[S, Sp] += 1 - K[T, S] - K[T, Sp] + K[T, S] * K[T, Sp] * second
    w_or = torch.randn(3, size, dtype=F64, generator=torch.Generator().manual_seed(7))
    rhs = (w_or @ mean_design.T) @ mean_design
    solution = torch.linalg.solve(gram, rhs.T).T
    torch.testing.assert_close(noise_transform_or(w_or, s), solution, rtol=0, atol=1e-10)
    torch.testing.assert_close(noise_transform(w_or, s)[:, 1:], solution[:, 1:], rtol=0, atol=1e-10)


def test_noise_transform_matches_literal_sum_and_batched_levels() -> None:
    n = 5
    w = torch.randn(3, 2**n, dtype=F64, generator=torch.Generator().manual_seed(3))
    levels = torch.tensor([0.0, 0.4, 9.0], dtype=F64)
    batched = noise_transform(w, levels)
    for row, s in enumerate(levels.tolist()):
        torch.testing.assert_close(batched[row], literal_noise_matrix(n, s) @ w[row], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(inverse_noise_transform(batched, levels), w, rtol=1e-10, atol=1e-10)
    # A 1-D vector and extra leading dimensions work too.
    torch.testing.assert_close(noise_transform(w[0], 0.4), literal_noise_matrix(n, 0.4) @ w[0])
    stacked = noise_transform(w.expand(2, 3, 2**n), 0.4)
    torch.testing.assert_close(stacked[1], noise_transform(w, 0.4))


def test_zero_noise_is_the_identity() -> None:
    w = torch.randn(5, 64, dtype=F64)
    assert torch.equal(noise_transform(w, 0.0), w)
    assert torch.equal(inverse_noise_transform(w, 0.0), w)
    assert torch.equal(noise_transform(w, torch.zeros(5, dtype=F64)), w)


@pytest.mark.parametrize(("s1", "s2"), [(0.5, 0.2), (3.0, 0.0), (10.0, 2.5), (0.7, 0.7)])
def test_semigroup_law(s1: float, s2: float) -> None:
    w = torch.randn(4, 32, dtype=F64, generator=torch.Generator().manual_seed(11))
    left = noise_transform(inverse_noise_transform(w, s2), s1)  # M(s1) M(s2)^{-1} w
    right = noise_transform(w, (s1 - s2) / (1 + 2 * s2))
    torch.testing.assert_close(left, right, rtol=1e-10, atol=1e-10)


def test_large_noise_kills_order_k_like_2s_to_the_minus_k() -> None:
    n, s = 4, 1e6
    w = torch.zeros(2**n, dtype=F64)
    w[-1] = 1.0  # a single interaction of order 4
    out = noise_transform(w, s)
    for S in range(1, 2**n):
        # The order-4 mass lands on every subset S, scaled by (2s)^{-|S|} a^{4-|S|} ~ (2s)^{-|S|} / 2^{4-|S|}.
        expected = (2 * s) ** -popcount(S) * 0.5 ** (n - popcount(S))
        assert out[S] == pytest.approx(expected, rel=1e-5)


def test_noise_level_validation() -> None:
    w = torch.zeros(2, 8, dtype=F64)
    with pytest.raises(ValueError, match="non-negative"):
        noise_transform(w, -0.1)
    with pytest.raises(ValueError, match="non-negative"):
        inverse_noise_transform(w, torch.tensor([0.1, -1.0]))
    with pytest.raises(ValueError, match="finite"):
        noise_transform(w, float("nan"))
    with pytest.raises(ValueError, match="broadcast"):
        noise_transform(w, torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="2\\^n"):
        noise_transform(torch.zeros(2, 6, dtype=F64), 0.1)


# ---------------------------------------------------------------------------------------------
# Predicted shapes
# ---------------------------------------------------------------------------------------------


def test_prior_shape_without_noise_is_binomial() -> None:
    n = 7
    binomial = torch.tensor([math.comb(n, k) for k in range(1, n + 1)], dtype=F64)
    torch.testing.assert_close(prior_shape(n, 0.0), binomial / binomial.sum(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("s", [0.0, 0.3, 4.0])
def test_prior_shape_agrees_with_monte_carlo_over_random_references(s: float) -> None:
    n, batches, per_batch = 6, 20, 500
    generator = torch.Generator().manual_seed(99)
    matrix = literal_noise_matrix(n, s)
    shapes = []
    for _ in range(batches):
        I_and = torch.randn(per_batch, 2**n, dtype=F64, generator=generator) @ matrix.T
        I_or = torch.randn(per_batch, 2**n, dtype=F64, generator=generator) @ matrix.T
        strength = literal_strength_by_order(I_and, I_or)
        shapes.append(strength / strength.sum())
    shapes = torch.stack(shapes)
    mean, stderr = shapes.mean(dim=0), shapes.std(dim=0) / math.sqrt(batches)
    z = (prior_shape(n, s) - mean).abs() / (stderr + 1e-12)
    assert z.max() < 5.0, f"prior_shape disagrees with Monte Carlo: z = {z}"


def test_prior_shape_vectorised_and_extremes() -> None:
    levels = torch.tensor([0.0, 0.1, 1.0, 1e2])
    stacked = prior_shape(10, levels)
    assert stacked.shape == (4, 10) and stacked.dtype == F64
    for row, s in enumerate(levels.tolist()):
        torch.testing.assert_close(stacked[row], prior_shape(10, s))
    torch.testing.assert_close(stacked.sum(dim=1), torch.ones(4, dtype=F64))
    # Huge noise leaves only order 1; no overflow for many players.
    assert prior_shape(10, 1e6)[0] > 0.999
    assert torch.isfinite(prior_shape(40, 50.0)).all()
    with pytest.raises(ValueError):
        prior_shape(0, 0.1)
    with pytest.raises(ValueError):
        prior_shape(3, -1.0)


def test_reference_shape_matches_literal_computation() -> None:
    n = 5
    generator = torch.Generator().manual_seed(5)
    I_and = torch.randn(6, 2**n, dtype=F64, generator=generator)
    I_or = torch.randn(6, 2**n, dtype=F64, generator=generator)
    for s in [0.0, 0.25, 3.0]:
        matrix = literal_noise_matrix(n, s)
        strength = literal_strength_by_order(I_and @ matrix.T, I_or @ matrix.T)
        torch.testing.assert_close(reference_shape(I_and, I_or, s), strength / strength.sum())
    stacked = reference_shape(I_and.float(), I_or.float(), torch.tensor([0.0, 3.0]))
    assert stacked.shape == (2, n) and stacked.dtype == F64
    torch.testing.assert_close(stacked[1], reference_shape(I_and, I_or, 3.0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="one shape"):
        reference_shape(I_and, I_or[:, :16], 0.1)


# ---------------------------------------------------------------------------------------------
# Fitting the noise level
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("s0", [0.002, 0.3, 7.0, 60.0])
def test_fit_recovers_noise_level_in_prior_mode(s0: float) -> None:
    n = 8
    # The measured shape is built from the literal formula, not from prior_shape.
    b, a = 1 / (1 + 2 * s0), s0 / (1 + 2 * s0)
    raw = torch.tensor(
        [math.comb(n, k) * b**k * (1 + a * a) ** ((n - k) / 2) for k in range(1, n + 1)], dtype=F64
    )
    fit = fit_noise_level(raw / raw.sum(), shape_predictor("prior", n=n))
    assert isinstance(fit, NoiseFit)
    assert abs(math.log(fit.s) - math.log(s0)) < 1e-3
    assert fit.error < 1e-6
    # Raw strength (not normalised) gives the same fit: only the distribution over orders matters.
    assert fit_noise_level(3.7 * raw, lambda s: prior_shape(n, s)).s == pytest.approx(fit.s, rel=1e-6)


@pytest.mark.parametrize("s0", [0.01, 0.4, 4.0])
def test_fit_recovers_noise_level_in_reference_mode(s0: float) -> None:
    n = 6
    generator = torch.Generator().manual_seed(21)
    I_and = torch.randn(16, 2**n, dtype=F64, generator=generator)
    I_or = torch.randn(16, 2**n, dtype=F64, generator=generator) * 0.5
    matrix = literal_noise_matrix(n, s0)
    measured = literal_strength_by_order(I_and @ matrix.T, I_or @ matrix.T)
    fit = fit_noise_level(measured / measured.sum(), shape_predictor("reference", reference=(I_and, I_or)))
    assert abs(math.log(fit.s) - math.log(s0)) < 1e-3
    assert fit.error < 1e-6


def test_fit_off_model_and_at_bounds() -> None:
    n = 6
    predictor = shape_predictor("prior", n=n)
    # A shape no noise level produces: all mass on the top order. The fit stays in bounds and
    # reports a large error.
    top = torch.zeros(n, dtype=F64)
    top[-1] = 1.0
    fit = fit_noise_level(top, predictor, bounds=(1e-3, 10.0))
    assert 1e-3 <= fit.s <= 10.0 and fit.error > 1.0
    # A shape from below the lower bound lands on the bound.
    below = fit_noise_level(prior_shape(n, 1e-6), predictor, bounds=(1e-3, 10.0))
    assert below.s == pytest.approx(1e-3, rel=1e-9)
    assert below.error > 0


def test_fit_validation() -> None:
    predictor = shape_predictor("prior", n=4)
    with pytest.raises(ValueError, match="bounds"):
        fit_noise_level(prior_shape(4, 0.1), predictor, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="orders"):
        fit_noise_level(prior_shape(5, 0.1), predictor)
    with pytest.raises(ValueError, match="non-negative"):
        fit_noise_level(torch.tensor([0.5, -0.1, 0.3, 0.3]), predictor)
    with pytest.raises(ValueError, match="mode"):
        shape_predictor("posterior", n=4)
    with pytest.raises(ValueError, match="needs n"):
        shape_predictor("prior")
    with pytest.raises(ValueError, match="needs reference"):
        shape_predictor("reference")


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------
