"""Gondzio's centrality correctors change the interior point's path, not the LP optimum it reaches."""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import VECTOR_KINDS, every_interaction, exact_optimum

from lightning_interactions.extraction import _interior_point, _master, _row_space
from lightning_interactions.extraction._master import solve_master
from lightning_interactions.extraction._row_space import solve_full_dual

pytest.importorskip("scipy")

N = 8  # 2 * (2^8 - 1) = 510 columns: above CORRECTORS_FROM_COLUMNS, so the master uses correctors


@pytest.mark.parametrize("kind", sorted(VECTOR_KINDS))
@pytest.mark.parametrize("correctors", [0, 2])
def test_master_with_every_column_reaches_the_exact_optimum(
    kind: str, correctors: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert 2 * (2**N - 1) + 1 >= _master.CORRECTORS_FROM_COLUMNS
    monkeypatch.setattr(_master, "MASTER_CORRECTORS", correctors)
    accepted = _count_accepted_correctors(monkeypatch)
    values = VECTOR_KINDS[kind](N, seed=3)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    # A price far above any optimal row multiplier: the elastic slacks vanish.
    penalty = torch.full_like(tau, 1e3)
    columns = every_interaction(N, values.shape[0])
    solution = solve_master(columns, values, tau, penalty)
    assert (accepted[0] > 0) == (correctors > 0)
    # The box holds (to the interior point's tolerance) and the objective is the exact optimum.
    residual = (columns.matvec(solution.x) - values).abs()
    assert bool((residual <= tau[:, None] * (1 + 1e-6) + 1e-9).all())
    for i in range(values.shape[0]):
        optimum = exact_optimum(values[i].numpy(), float(tau[i]))
        assert float(solution.x[i, 1:].abs().sum()) == pytest.approx(optimum, rel=1e-6)


def _count_accepted_correctors(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the steps whose direction a corrector changed (a spy around the real function)."""
    accepted = [0]
    real = _interior_point._centrality_correctors

    def spy(problem, s, z, r_primal, r_dual, centring, direction, *rest):  # type: ignore[no-untyped-def]
        result = real(problem, s, z, r_primal, r_dual, centring, direction, *rest)
        accepted[0] += int(not torch.equal(result[0], direction[0]))
        return result

    monkeypatch.setattr(_interior_point, "_centrality_correctors", spy)
    return accepted


@pytest.mark.parametrize("correctors", [0, 3])
def test_row_space_dual_reaches_the_exact_optimum(correctors: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_row_space, "ROW_SPACE_CORRECTORS", correctors)
    accepted = _count_accepted_correctors(monkeypatch)
    values = VECTOR_KINDS["random"](6, seed=5)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    costs = torch.ones(values.shape[0], 2**7, dtype=torch.float64)
    solution = solve_full_dual(values, tau, costs)
    assert (accepted[0] > 0) == (correctors > 0)
    for i in range(values.shape[0]):
        optimum = exact_optimum(values[i].numpy(), float(tau[i]))
        assert float(solution.both[i].abs().sum()) == pytest.approx(optimum, rel=1e-6)
