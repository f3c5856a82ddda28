"""The tightened certificate (extraction/_certificate.py) against HiGHS and the plain bound."""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import exact_optimum, mlp_vectors, random_vectors

import lightning_interactions.extraction._certificate as certificate
import lightning_interactions.extraction._column_generation as column_generation
import lightning_interactions.extraction.and_or as and_or
from lightning_interactions.extraction._certificate import dual_lower_bound, repaired_bound, signed_prices
from lightning_interactions.extraction._row_space import solve_full_dual

pytest.importorskip("scipy")


def optima(values: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return torch.tensor(
        [exact_optimum(v.numpy(), float(t)) for v, t in zip(values, tau)], dtype=torch.float64
    )


def noisy_optimal_multipliers(n: int, scale: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Values of a small MLP, their box, HiGHS optima, and optimal row multipliers plus noise
    (``scale`` of their largest entry), which make the plain rescaled bound lag."""
    values = mlp_vectors(n, 3, seed=seed)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    mu = solve_full_dual(values, tau, torch.ones(3, 2 * 2**n, dtype=torch.float64)).mu
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(mu.shape, generator=generator, dtype=torch.float64)
    return values, tau, optima(values, tau), mu + scale * mu.abs().amax(dim=1, keepdim=True) * noise


@pytest.mark.parametrize("n", [5, 6])
def test_dual_lower_bound_is_tight_at_the_optimal_multipliers(n: int) -> None:
    values, tau, optimum, _ = noisy_optimal_multipliers(n, 0.0, seed=1)
    mu = solve_full_dual(values, tau, torch.ones(3, 2 * 2**n, dtype=torch.float64)).mu
    assert torch.allclose(dual_lower_bound(values, tau, mu), optimum, rtol=1e-6)


@pytest.mark.parametrize("scale", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("n", [5, 6])
def test_repaired_bound_is_valid_and_never_below_the_plain_bound(n: int, scale: float) -> None:
    values, tau, optimum, mu = noisy_optimal_multipliers(n, scale, seed=1)
    plain = dual_lower_bound(values, tau, mu)
    repaired = repaired_bound(values, tau, mu, optimum)
    assert (repaired <= optimum + 1e-9).all(), (repaired, optimum)  # weak duality, checked by HiGHS
    assert (repaired >= plain - 1e-12).all()


def test_repaired_bound_is_valid_for_arbitrary_multipliers() -> None:
    values = random_vectors(5, 2, seed=3)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    optimum = optima(values, tau)
    generator = torch.Generator().manual_seed(0)
    for scale in (0.01, 0.3, 3.0):
        mu = scale * torch.randn(2, 32, generator=generator, dtype=torch.float64)
        assert (repaired_bound(values, tau, mu, optimum) <= optimum + 1e-9).all()


@pytest.mark.parametrize("n", [5, 6])
def test_repaired_bound_closes_most_of_a_lagging_gap(n: int) -> None:
    """Optimal multipliers with 5% noise leave the plain bound 8% to 110% short (measured); where
    it is more than 20% short, the repair must close at least 70% of the distance."""
    values, tau, optimum, mu = noisy_optimal_multipliers(n, 0.05, seed=1)
    plain_gap = optimum / dual_lower_bound(values, tau, mu) - 1.0
    repaired_gap = optimum / repaired_bound(values, tau, mu, optimum) - 1.0
    lagging = plain_gap > 0.2
    assert int(lagging.sum()) >= 2, plain_gap  # the setting really makes the bound lag
    assert (repaired_gap[lagging] <= 0.3 * plain_gap[lagging]).all(), (plain_gap, repaired_gap)


def test_no_step_is_taken_when_the_plain_bound_already_certifies(monkeypatch: pytest.MonkeyPatch) -> None:
    values, tau, optimum, mu = noisy_optimal_multipliers(5, 0.0, seed=1)
    calls = []
    original = certificate.signed_prices
    monkeypatch.setattr(certificate, "signed_prices", lambda point: calls.append(1) or original(point))
    bound = repaired_bound(values, tau, mu, optimum)
    assert len(calls) == 2  # the starting point and the final rescaling, no step in between
    assert torch.equal(bound, dual_lower_bound(values, tau, mu))


def trigger_matrices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Literal AND triggers ``1[S subset of T]`` and OR triggers ``1[S meets T]`` (rows T, columns S)."""
    size = 2**n
    Z = torch.tensor([[float(S & T == S) for S in range(size)] for T in range(size)], dtype=torch.float64)
    W = torch.tensor([[float(S & T != 0) for S in range(size)] for T in range(size)], dtype=torch.float64)
    return Z, W


@pytest.mark.parametrize("n", [1, 3, 5])
def test_signed_prices_are_the_literal_trigger_products(n: int) -> None:
    Z, W = trigger_matrices(n)
    mu = random_vectors(n, 3, seed=n)
    mu = mu - mu.mean(dim=1, keepdim=True)
    prices = signed_prices(mu)
    expected = torch.stack((mu @ Z, mu @ W), dim=1)
    expected[..., 0] = 0.0
    assert torch.allclose(prices, expected, atol=1e-12)


def test_penalised_dual_gradient_matches_finite_differences() -> None:
    n = 4
    values = random_vectors(n, 2, seed=5)
    tau = torch.tensor([0.05, 0.2], dtype=torch.float64)
    rho = torch.tensor([3.0, 30.0], dtype=torch.float64)
    point = 0.4 * random_vectors(n, 2, seed=6)  # prices well above 1: the penalty is active
    point = point - point.mean(dim=1, keepdim=True)
    _, _, gradient = certificate._penalised_dual(values, tau, rho, point)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        direction = torch.randn(point.shape, generator=generator, dtype=torch.float64)
        direction = direction - direction.mean(dim=1, keepdim=True)
        h = 1e-6
        plus = certificate._penalised_dual(values, tau, rho, point + h * direction)[1]
        minus = certificate._penalised_dual(values, tau, rho, point - h * direction)[1]
        numeric = (plus - minus) / (2 * h)
        assert torch.allclose((gradient * direction).sum(dim=1), numeric, rtol=1e-5, atol=1e-6)


def test_each_row_of_a_batch_gets_the_bound_it_gets_alone() -> None:
    values, tau, optimum, mu = noisy_optimal_multipliers(5, 0.05, seed=1)
    together = repaired_bound(values, tau, mu, optimum)
    for row in range(3):
        alone = repaired_bound(
            values[row : row + 1], tau[row : row + 1], mu[row : row + 1], optimum[row : row + 1]
        )
        assert float(alone[0]) == pytest.approx(float(together[row]), rel=1e-12)


def spy_on_repairs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the extraction record the batch size of every ``repaired_bound`` call it makes."""
    calls: list[int] = []
    original = column_generation.repaired_bound

    def spy(v, t, m, objective, tol):  # same signature as repaired_bound
        calls.append(len(v))
        return original(v, t, m, objective, tol)

    monkeypatch.setattr(column_generation, "repaired_bound", spy)
    return calls


def test_extraction_calls_the_repair_and_its_bound_holds_against_highs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = mlp_vectors(8, 4, seed=0)
    calls = spy_on_repairs(monkeypatch)
    result = and_or.and_or_interactions(values)
    assert calls, "no round of this extraction was close enough to be repaired"
    optimum = optima(values, result.tau)
    assert (result.lower_bound <= optimum + 1e-9).all()
    assert (result.objective >= optimum - 1e-9).all()
    assert (result.gap <= 0.01).all()


def test_certificate_repairs_only_rows_close_to_the_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    values, tau, optimum, mu = noisy_optimal_multipliers(5, 0.05, seed=1)
    mu = mu - mu.mean(dim=1, keepdim=True)  # as the extraction passes them
    plain = dual_lower_bound(values, tau, mu)
    repaired_rows = spy_on_repairs(monkeypatch)
    # Objectives chosen so that row 0 is certified by the plain bound, row 1 misses by 5% (repaired)
    # and row 2 by 150% (left alone); every objective equals its best so far (stalled).
    objective = plain * torch.tensor([1.005, 1.05, 2.5], dtype=torch.float64)
    no_bound = torch.full((3,), float("-inf"), dtype=torch.float64)
    bound = column_generation.round_bounds(values, tau, mu, plain, objective, objective, no_bound, 0.01)
    assert repaired_rows == [1]
    assert bound[0] == plain[0] and bound[2] == plain[2]
    assert plain[1] < bound[1] <= optimum[1] + 1e-9
    # Row 1's objective fell by 10% since its best: still moving, left alone.
    moving = objective * torch.tensor([1.0, 1.1, 1.0], dtype=torch.float64)
    assert torch.equal(
        column_generation.round_bounds(values, tau, mu, plain, objective, moving, no_bound, 0.01), plain
    )
    # Row 1 already certified by an earlier round's bound: left alone.
    earlier = torch.where(torch.arange(3) == 1, objective, no_bound)
    assert torch.equal(
        column_generation.round_bounds(values, tau, mu, plain, objective, objective, earlier, 0.01), plain
    )
    assert repaired_rows == [1]


def test_the_bound_is_the_best_of_every_point_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepted or rejected, every trial point's rescaled bound is valid; the result keeps the best."""
    values, tau, optimum, mu = noisy_optimal_multipliers(5, 0.2, seed=1)
    seen = []
    original = certificate._penalised_dual

    def recording(v, t, rho, point):  # same signature as _penalised_dual
        out = original(v, t, rho, point)
        seen.append(out[0])
        return out

    monkeypatch.setattr(certificate, "_penalised_dual", recording)
    monkeypatch.setattr(certificate, "GIVE_UP", float("inf"))  # every row stays live all 60 steps
    bound = repaired_bound(values, tau, mu, optimum, tol=1e-12, steps=60)
    assert len(seen) == 61
    best_seen = torch.stack(seen).amax(dim=0)
    assert torch.allclose(bound, best_seen, rtol=1e-12)
    assert (bound <= optimum + 1e-9).all()


def test_curvature_pairs_skip_zero_and_negative_pairs_and_meet_the_secant_equation() -> None:
    generator = torch.Generator().manual_seed(0)
    gradient = torch.randn(2, 8, generator=generator, dtype=torch.float64)
    pairs = certificate._CurvaturePairs(3, torch.tensor([0.5, 2.0], dtype=torch.float64))
    step = torch.randn(2, 8, generator=generator, dtype=torch.float64)
    pairs.push(torch.zeros_like(step), torch.zeros_like(step))  # a rejected step
    pairs.push(step, -step)  # negative curvature: no information about a convex loss
    assert torch.allclose(pairs.descent(gradient), -torch.tensor([[0.5], [2.0]]) * gradient)
    # On a quadratic with Hessian A, the inverse estimate maps the latest change A s back to s.
    A = torch.diag(torch.linspace(1.0, 5.0, 8, dtype=torch.float64))
    change = step @ A
    pairs.push(step, change)
    assert torch.allclose(-pairs.descent(change), step, atol=1e-12)
