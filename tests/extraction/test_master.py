"""Loosely solved restricted problems, their polishing, and idle candidates leaving the master."""

from __future__ import annotations

import pytest
import torch
from helpers.oracles import every_interaction, exact_optimum, mlp_vectors, random_vectors, subset_sum_values

from lightning_interactions.extraction import _column_generation as column_generation
from lightning_interactions.extraction import _master, and_or
from lightning_interactions.extraction._master import polish_master, solve_master

pytest.importorskip("scipy")

N = 6


def _problems(seed: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    values = random_vectors(N, 3, seed=seed)
    tau = 0.04 * (values[:, -1] - values[:, 0]).abs()
    return values, tau, torch.full_like(tau, 1e3)  # a price far above every optimal multiplier


def _objective(x: torch.Tensor) -> torch.Tensor:
    return x[:, 1:].abs().sum(dim=1)


def test_a_loose_gap_stops_early_feasible_and_polish_reaches_the_exact_optimum() -> None:
    values, tau, penalty = _problems()
    columns = every_interaction(N, values.shape[0])
    tight = solve_master(columns, values, tau, penalty)
    loose = solve_master(columns, values, tau, penalty, gap_tol=torch.full_like(tau, 0.1))
    assert loose.iterations < tight.iterations
    # Still feasible to the tight tolerance: the box holds.
    residual = (columns.matvec(loose.x) - values).abs()
    assert bool((residual <= tau[:, None] * (1 + 1e-6) + 1e-9).all())
    optima = torch.tensor(
        [exact_optimum(values[i].numpy(), float(tau[i])) for i in range(3)], dtype=torch.float64
    )
    assert bool((_objective(loose.x) >= optima * (1 - 1e-9)).all())
    # The loose stop is really loose somewhere (otherwise this test would not test the polish).
    assert float((_objective(loose.x) / optima - 1).max()) > 1e-5
    rows = torch.tensor([True, False, True])
    polished = polish_master(loose, rows)
    torch.testing.assert_close(_objective(polished.x)[rows], optima[rows], rtol=1e-6, atol=0)
    torch.testing.assert_close(polished.x[rows], tight.x[rows], rtol=0, atol=1e-5)
    # It went on from the loose point: fewer steps than a solve from the start.
    assert polished.iterations < tight.iterations
    assert torch.equal(polished.x[1], loose.x[1]) and torch.equal(polished.mu[1], loose.mu[1])


def test_polish_needs_a_solution_from_solve_master() -> None:
    values, tau, penalty = _problems()
    solution = solve_master(every_interaction(N, 3), values, tau, penalty)
    polished = polish_master(solution, torch.tensor([True, True, True]))
    with pytest.raises(ValueError, match="solve_master"):
        polish_master(polished, torch.tensor([True, True, True]))


def _every_master_loose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_generation, "MASTER_LOOSE_FROM_COLUMNS", 0)


def test_ties_still_resolve_to_the_lowest_orders_with_loose_masters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tie-break toward lower orders needs a converged point: a sample certified from a loose
    solve is polished first (without the polish, this additive output came back with most of its
    weight on pairs)."""
    _every_master_loose(monkeypatch)
    polished = []
    real = column_generation.polish_master
    monkeypatch.setattr(
        column_generation, "polish_master", lambda solution, rows: polished.append(1) or real(solution, rows)
    )
    n = 6
    weights = {1 << i: w for i, w in enumerate([1.0, 0.8, -0.6, 1.2, 0.5, 0.9])}
    values = subset_sum_values(n, weights, {})
    result = and_or.and_or_interactions(values)
    assert polished
    pairs_and_up = sum(
        abs(float(result.I_and[S])) + abs(float(result.I_or[S])) for S in range(2**n) if bin(S).count("1") > 1
    )
    assert pairs_and_up <= 1e-3 * float(result.objective)


def test_drop_idle_removes_idle_candidates_once_and_keeps_the_batch_rectangular(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(column_generation, "DROP_FROM_COLUMNS", 4)
    size = 8  # interactions 0 .. 15: AND ids below 8, OR ids from 8
    columns = torch.tensor([[1, 2, 3, 9, 10], [4, 5, 6, 11, 12]])
    pricing = torch.zeros(2, 2 * size, dtype=torch.float64)
    # Row 0: ids 2 and 9 idle (<= IDLE_PRICE); row 1: ids 4, 5 and 12 idle, 5 the least idle.
    pricing[0, [1, 2, 3, 9, 10]] = torch.tensor([0.9, 0.1, 1.0, 0.2, 0.95], dtype=torch.float64)
    pricing[1, [4, 5, 6, 11, 12]] = torch.tensor([0.05, 0.25, 0.99, 1.0, 0.0], dtype=torch.float64)
    dropped = torch.zeros(2, 2 * size, dtype=torch.bool)
    kept = column_generation.drop_idle(columns, pricing, dropped)
    # Row 0 keeps 3 (its non-idle ones): row 1 keeps 3 as well, the least idle one included.
    assert kept.tolist() == [[1, 3, 10], [5, 6, 11]]
    assert dropped.nonzero().tolist() == [[0, 2], [0, 9], [1, 4], [1, 12]]
    # What a row dropped once, it keeps from then on; below the size limit nothing leaves.
    again = column_generation.drop_idle(torch.tensor([[1, 2, 3, 10]]), pricing[:1], dropped[:1].clone())
    assert again.tolist() == [[1, 2, 3, 10]]
    monkeypatch.setattr(column_generation, "DROP_FROM_COLUMNS", 6)
    assert torch.equal(column_generation.drop_idle(columns, pricing, dropped.clone()), columns)


def test_extraction_with_loose_masters_and_dropping_brackets_the_exact_optimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At n = 8 the defaults neither loosen nor drop; forced to, the extraction still certifies
    1% and its objective and bound bracket HiGHS."""
    _every_master_loose(monkeypatch)
    monkeypatch.setattr(column_generation, "DROP_FROM_COLUMNS", 150)
    drops = []
    real = column_generation.drop_idle

    def spy(columns, pricing, dropped):  # type: ignore[no-untyped-def]
        kept = real(columns, pricing, dropped)
        drops.append(columns.shape[1] - kept.shape[1])
        return kept

    monkeypatch.setattr(column_generation, "drop_idle", spy)
    values = mlp_vectors(8, 3, seed=5)
    result = and_or.and_or_interactions(values)
    assert sum(drops) > 0
    assert bool((result.gap <= 0.01).all())
    for i in range(values.shape[0]):
        optimum = exact_optimum(values[i].numpy(), float(result.tau[i]))
        assert float(result.lower_bound[i]) <= optimum * (1 + 1e-9)
        assert optimum * (1 - 1e-9) <= float(result.objective[i]) <= 1.01 * optimum


def test_added_candidates_are_new_distinct_and_never_a_constant_when_few_are_left() -> None:
    n, size = 3, 8  # ids 0 .. 15; 0 and 8 are the constants (priced -1 by the extraction)
    pricing = torch.linspace(0.5, 2.0, 2 * size, dtype=torch.float64)[None].clone()
    pricing[0, [0, size]] = -1.0
    columns = torch.tensor([[1, 2, 4, 6, 7, 9, 10, 11, 13, 14, 15]])  # all but 3, 5 and 12
    pricing[0, 5] = -1.0  # just dropped
    added = column_generation.add_violated(columns, pricing, 2 * n)
    assert added[0, : columns.shape[1]].tolist() == columns[0].tolist()
    assert sorted(added[0, columns.shape[1] :].tolist()) == [3, 12]


def test_next_candidates_does_not_take_back_what_it_just_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_generation, "DROP_FROM_COLUMNS", 3)
    size = 8
    pricing = torch.full((1, 2 * size), 0.5, dtype=torch.float64)
    pricing[0, [0, size]] = -1.0
    pricing[0, [1, 2]] = 1.0
    pricing[0, 3] = 0.1  # idle: dropped
    dropped = torch.zeros(1, 2 * size, dtype=torch.bool)
    # Far more to add than violated interactions exist: the padding must not bring 3 back.
    nxt = column_generation.next_candidates(torch.tensor([[1, 2, 3]]), pricing, dropped, 12)
    assert 3 not in nxt[0].tolist() and bool(dropped[0, 3])
    assert len(set(nxt[0].tolist())) == nxt.shape[1] and not {0, size} & set(nxt[0].tolist())


def test_certified_samples_return_a_converged_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every restricted problem loose, each returned sample is the reading of a solution
    solved to MASTER_TOL (a tight round or a polished row), never of a loose one."""
    _every_master_loose(monkeypatch)
    reads = []  # (values row, I_and row, converged)
    tight = {}
    real_solve, real_polish, real_read = (
        column_generation.solve_master,
        column_generation.polish_master,
        column_generation.read_master,
    )

    def solve_spy(*args, gap_tol, **options):  # type: ignore[no-untyped-def]
        tight["rows"] = gap_tol <= _master.MASTER_TOL
        return real_solve(*args, gap_tol=gap_tol, **options)

    def polish_spy(solution, rows):  # type: ignore[no-untyped-def]
        tight["rows"] = tight["rows"] | rows
        return real_polish(solution, rows)

    def read_spy(solution, v, tau, columns):  # type: ignore[no-untyped-def]
        reading = real_read(solution, v, tau, columns)
        reads.extend(zip(v, reading.extracted[0], tight["rows"].tolist()))
        return reading

    monkeypatch.setattr(column_generation, "solve_master", solve_spy)
    monkeypatch.setattr(column_generation, "polish_master", polish_spy)
    monkeypatch.setattr(column_generation, "read_master", read_spy)
    values = mlp_vectors(8, 4, seed=2)
    result = and_or.and_or_interactions(values)
    assert bool((result.gap <= 0.01).all())
    assert any(not converged for _, _, converged in reads)  # some rounds really were loose
    for i in range(values.shape[0]):
        sources = [
            converged
            for v, I_and, converged in reads
            if torch.equal(v, values[i]) and torch.equal(I_and, result.I_and[i])
        ]
        assert sources and all(sources), i


def test_a_loose_gap_is_relative_to_the_objective_even_when_it_is_far_below_one() -> None:
    """Against ``1 + |objective|`` a gap of 10% would stop at 1.15 to 1.28 times these optima."""
    values, tau, penalty = _problems()
    values, tau = 1e-4 * values, 1e-4 * tau  # optima near 1e-4
    columns = every_interaction(N, values.shape[0])
    loose = solve_master(columns, values, tau, penalty, gap_tol=torch.full_like(tau, 0.1))
    optima = torch.tensor(
        [exact_optimum(values[i].numpy(), float(tau[i])) for i in range(3)], dtype=torch.float64
    )
    assert bool((_objective(loose.x) <= 1.1 * optima).all()), (_objective(loose.x), optima)


def test_once_nothing_violated_is_left_to_add_the_next_problem_is_solved_tightly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every interaction a candidate, a loose solve of the same problem would only repeat."""
    _every_master_loose(monkeypatch)
    n = 5
    calls = []  # (columns, gap_tol) of every restricted problem
    real = column_generation.solve_master

    def spy(columns, *args, gap_tol, **options):  # type: ignore[no-untyped-def]
        calls.append((columns.num_columns, gap_tol.clone()))
        return real(columns, *args, gap_tol=gap_tol, **options)

    monkeypatch.setattr(column_generation, "solve_master", spy)
    values = random_vectors(n, 2, seed=4)  # complete after round 2, not yet certified
    result = and_or.and_or_interactions(
        values, initial_candidates=40, candidates_per_round=40, row_space=False
    )
    assert bool((result.gap <= 0.01).all())
    every = 1 + 2 * (2**n - 1)
    after_complete = [tol for (count, tol), previous in zip(calls[1:], calls) if previous[0] == every]
    assert after_complete, [count for count, _ in calls]  # a round did follow a complete one
    assert all(bool((tol <= _master.MASTER_TOL).all()) for tol in after_complete)
