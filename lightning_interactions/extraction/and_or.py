"""Batched AND-OR extraction: the L1 problem of docs/extraction.md, solved to a certified gap.

Minimise ``sum_{S nonempty} |I_and(S)| + |I_or(S)|`` over the free split ``gamma`` and the error
``q`` with ``|q_T| <= tau``, ``tau = q_ratio * |v(N) - v(empty)|``. Written in the interactions
themselves, this is ``min ||a||_1 + ||o||_1 s.t. |Z a + W o - v| <= tau`` where the columns of ``Z``
and ``W`` are the AND triggers ``1[S subset of T]`` and OR triggers ``1[S n T nonempty]``.

The optimum is sparse, so the solver is column generation: an interior-point method
(:mod:`._interior_point`, on the problems of :mod:`._master`) solves the problem restricted to a
few candidate interactions; the row multipliers
``mu`` it returns price *every* interaction at once through the fast transposed transforms
(``Z' mu`` and ``W' mu``, O(n 2^n)); the most violated ones join the candidates. Any ``mu``,
rescaled to be dual feasible, gives the lower bound ``-<mu, v> - tau ||mu||_1`` on the optimum
(weak duality), and the restricted solution is feasible for the full problem, so each round
yields a certified gap. Rounds stop when ``objective <= (1 + tol) * lower_bound``.

The LP can have several optima (``x0 + x1`` equals ``OR{0,1} + AND{0,1}`` at the same L1 cost).
An interior-point method would return the centre of such a tie, a mix of orders; the restricted
problems therefore price each interaction at ``1 + 1e-4 |S|``, which picks the lowest-order
optimum and moves the certified L1 objective by at most ``1e-4 n`` relative.

Players that no output of a sample depends on (null players) are taken out first: the problem
on the other players has the same optimum and bounds (:mod:`._null_players`), half the masks and
half the interactions per null player.

Example:
    >>> import torch
    >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)  # an AND of two players
    >>> result = and_or_interactions(v, q_ratio=0.0)
    >>> round(float(result.objective[0]), 6)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from lightning_interactions.extraction._certificate import dual_lower_bound
from lightning_interactions.extraction._column_generation import (
    Search,
    extraction_objective,
    solution_to_interactions,
)
from lightning_interactions.extraction._column_generation import initial_candidates as initial_candidates_of
from lightning_interactions.extraction._null_players import (
    full_masks,
    kept_players,
    reduced_masks,
    scatter_interactions,
)
from lightning_interactions.extraction._row_space import solve_full_dual
from lightning_interactions.extraction._threads import with_extraction_threads
from lightning_interactions.extraction.transforms import num_players_of, order_index

# Tied optima are broken toward lower orders by a cost of 1 + ORDER_TIE_BREAK |S| per interaction
# in the restricted problems (see and_or_interactions): small against any useful tol.
ORDER_TIE_BREAK = 1e-4
# The full problem through its dual (Newton systems of 2^n x 2^n, see _row_space.py) replaces
# column generation for a sample whose first DENSE_ROUNDS pricings each find more violated
# interactions than there are rows: its optimum is dense (an untrained network), and the
# restricted problems would grow past 2^n columns. One dense pricing is not enough: a trained
# sample's first pricings can look dense too and fall below 2^n by the third, and the dual route
# costs such a sample several times its column generation. The dual's factorisations grow as 8^n:
# at n = 12 the dual still beats column generation on an untrained sample by 8x, at n = 13 each
# of its steps would cost 8x more. The measurements are in docs/extraction.md, "Dense optima".
ROW_SPACE_MAX_PLAYERS = 12
DENSE_ROUNDS = 3
# The dual route's Newton matrices and factors take 2 x 4^n float64 per sample: solve at most this
# many bytes of them at a time (4 samples at n = 12).
DUAL_CHUNK_BYTES = 2**30

__all__ = [
    "AndOrResult",
    "and_or_interactions",
    "check_extraction_settings",
    "extraction_objective",
    "dual_lower_bound",
]


@dataclass
class AndOrResult:
    """AND-OR interactions of a batch of samples and the certificate of their optimality.

    All tensors have a leading batch dimension; interaction tensors are ``(batch, 2^n)`` indexed by
    mask. ``objective`` is ``sum_{S nonempty} |I_and(S)| + |I_or(S)|`` of the returned
    interactions; ``lower_bound`` is a proven lower bound on the LP optimum, so
    ``gap = objective / lower_bound - 1`` bounds the relative distance to the optimum.
    """

    I_and: torch.Tensor
    I_or: torch.Tensor
    gamma: torch.Tensor
    q: torch.Tensor
    tau: torch.Tensor
    objective: torch.Tensor
    lower_bound: torch.Tensor
    gap: torch.Tensor
    rounds: int


def _solve_full(
    values: torch.Tensor, tau: torch.Tensor, column_costs: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The full problem through its dual (:mod:`._row_space`): ``I_and, I_or, gamma, q, lower_bound``."""
    batch, size = values.shape
    solution = solve_full_dual(values, tau, column_costs.expand(batch, -1).contiguous())
    every = torch.cat((torch.arange(1, size), torch.arange(size + 1, 2 * size))).to(values.device)
    columns = every.expand(batch, -1)
    x = torch.cat((solution.constant[:, None], solution.both[:, every]), dim=1)
    extracted = solution_to_interactions(values, tau, columns, x)
    return (*extracted, dual_lower_bound(values, tau, solution.mu))


def check_extraction_settings(q_ratio: object, tol: object) -> None:
    """Raise a clear ``ValueError`` unless ``q_ratio >= 0`` and ``tol > 0`` are finite numbers.

    Example:
        >>> check_extraction_settings(0.04, 0.01)  # doctest: +ELLIPSIS
        >>> check_extraction_settings(0.04, 0)
        Traceback (most recent call last):
        ...
        ValueError: tol must be a finite number > 0 (the certified relative gap ...), got 0
    """
    for name, value, low_ok, meaning in (
        ("q_ratio", q_ratio, True, "the error box, a fraction of |v(N) - v(empty)|, e.g. 0.04"),
        ("tol", tol, False, "the certified relative gap at which the extraction stops, e.g. 0.01"),
    ):
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        valid = number is not None and math.isfinite(number) and (number >= 0 if low_ok else number > 0)
        if not valid:
            bound = ">= 0" if low_ok else "> 0"
            raise ValueError(f"{name} must be a finite number {bound} ({meaning}), got {value!r}")


@with_extraction_threads
def and_or_interactions(
    v: torch.Tensor,
    q_ratio: float = 0.04,
    tol: float = 0.01,
    max_rounds: int = 50,
    initial_candidates: int | None = None,
    candidates_per_round: int | None = None,
    row_space: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AndOrResult:
    """Extract sparse AND and OR interactions from values on all masks, batched over samples.

    Args:
        v: ``(batch, 2^n)`` (or ``(2^n,)``) outputs on every mask, any floating dtype and device.
        q_ratio: the error box is ``tau = q_ratio * |v(N) - v(empty)|`` per sample.
        tol: stop when the certified relative gap ``objective / lower_bound - 1 <= tol``.
        max_rounds: at most this many column-generation rounds; ``gap`` reports where it stopped
            (a sample stopped uncertified may keep a loosely solved restricted problem, see
            ``_column_generation.MASTER_GAP_PER_CHANGE``: feasible, and its ``gap`` holds).
            The dual route for dense samples is chosen after round ``DENSE_ROUNDS`` (3), so fewer
            rounds leave such samples to column generation.
        initial_candidates: interactions in the first restricted problem (default ``12 n``).
        candidates_per_round: interactions added per round (default ``12 n``).
        row_space: solve the full problem through its dual (``2^n x 2^n`` Newton systems) for
            every sample (True), never (False), or, by default (None), for the samples whose
            first ``DENSE_ROUNDS`` (3) rounds each find more violated interactions than there are
            masks, up to ``ROW_SPACE_MAX_PLAYERS`` (12) players.
        progress: called as ``progress(certified, batch)`` after every round, with the number of
            samples certified so far.

    Null players of a sample (no output depends on them) are taken out first, and ``n`` above
    counts the players kept; samples that keep as many are solved together, one such group
    after the other, and ``rounds`` is the most any group took.

    Returns:
        An :class:`AndOrResult` in float64 on ``v``'s device.

    Example:
        >>> v = torch.randn(4, 2**6, dtype=torch.float64)
        >>> result = and_or_interactions(v)
        >>> bool((result.gap <= 0.01).all())
        True
    """
    if not v.is_floating_point():
        raise TypeError(f"v must be a floating-point tensor, got {v.dtype}")
    check_extraction_settings(q_ratio, tol)
    single = v.dim() == 1
    values = v.reshape(-1, v.shape[-1]).double()
    num_players_of(values)  # a clear error unless the size is 2^n
    if not torch.isfinite(values).all():
        raise ValueError("v contains NaN or infinite values")
    span = (values[:, -1] - values[:, 0]).abs()
    # A zero box has no interior; a box of 1e-9 of the output's range changes nothing measurable.
    floor = 1e-9 * values.abs().amax(dim=1).clamp(min=1.0)
    tau = torch.maximum(q_ratio * span, floor)
    solve = partial(
        _extract,
        tol=tol,
        max_rounds=max_rounds,
        initial_candidates=initial_candidates,
        candidates_per_round=candidates_per_round,
        row_space=row_space,
    )
    kept = kept_players(values)
    if bool(kept.all()):
        result = solve(values, tau, progress)
    else:
        result = _without_null_players(values, tau, kept, solve, progress, tol)
    if single:
        for name in ("I_and", "I_or", "gamma", "q", "tau", "objective", "lower_bound", "gap"):
            setattr(result, name, getattr(result, name)[0])
    return result


def _extract(
    values: torch.Tensor,
    tau: torch.Tensor,
    progress: Callable[[int, int], None] | None,
    tol: float,
    max_rounds: int,
    initial_candidates: int | None,
    candidates_per_round: int | None,
    row_space: bool | None,
) -> AndOrResult:
    """The extraction of ``(batch, 2^n)`` float64 ``values`` with boxes ``tau``: column generation,
    and the dual route for dense samples (the arguments of :func:`and_or_interactions`)."""
    n = num_players_of(values)
    size = 2**n
    first = min(initial_candidates or 12 * n, 2 * size - 2)
    # Tied optima (x0 + x1 is also OR{0,1} + AND{0,1}) are broken toward lower orders by a cost
    # of 1 + tie_break * |S| per interaction in the restricted problems; kept well below tol,
    # since it loosens the certificate of the plain L1 problem by at most a factor 1 + tie_break n.
    tie_break = min(ORDER_TIE_BREAK, tol / (4 * n))
    order = order_index(n, device=values.device)
    column_costs = 1.0 + tie_break * torch.cat((order, order)).to(values.dtype)
    search = Search.start(values, tau, tol, initial_candidates_of(values, first), column_costs, progress)
    rounds = 0
    if row_space:
        _solve_full_rows(search, search.active)
        search.active, rounds = search.active[:0], 1
    for rounds in range(1, max_rounds + 1 if len(search.active) else 1):
        found = search.solve_restricted()
        done = search.record_round(found)
        if bool(done.all()):
            break
        keep = ~done
        pricing = search.reprice(found)
        if rounds == DENSE_ROUNDS and row_space is None and n <= ROW_SPACE_MAX_PLAYERS:
            keep = _dense_to_the_dual(search, keep)
            if not bool(keep.any()):
                break
        if rounds == max_rounds:  # after the route check, so that max_rounds = DENSE_ROUNDS still has it
            break
        search.next_round(keep, pricing, candidates_per_round or 12 * n)
    return _result(search, rounds)


def _without_null_players(
    values: torch.Tensor,
    tau: torch.Tensor,
    kept: torch.Tensor,
    solve: Callable[..., AndOrResult],
    progress: Callable[[int, int], None] | None,
    tol: float,
) -> AndOrResult:
    """``solve`` on the masks of each sample's ``kept`` players (:mod:`._null_players`), samples
    with as many kept players solved together; the interactions are scattered back to all sets
    of ``N``, ``gamma`` and ``q`` read at ``T n K``. Objectives and bounds are unchanged."""
    batch, size = values.shape
    I_and, I_or, gamma, q = (values.new_zeros(batch, size) for _ in range(4))
    objective, lower_bound = values.new_zeros(batch), values.new_zeros(batch)
    counts = kept.sum(dim=1)
    rounds, certified = 0, 0
    for m in counts.unique().tolist():
        rows = (counts == m).nonzero().flatten()
        full = full_masks(kept[rows])
        report = None
        if progress is not None:
            report = partial(lambda before, done, _: progress(before + done, batch), certified)
        part = solve(values[rows].gather(1, full), tau[rows], report)
        I_and[rows] = scatter_interactions(part.I_and, full, size)
        I_or[rows] = scatter_interactions(part.I_or, full, size)
        back = reduced_masks(kept[rows])
        gamma[rows], q[rows] = part.gamma.gather(1, back), part.q.gather(1, back)
        objective[rows], lower_bound[rows] = part.objective, part.lower_bound
        rounds = max(rounds, part.rounds)
        certified += int((part.objective <= (1.0 + tol) * part.lower_bound).sum())
    gap = objective / lower_bound - 1.0
    return AndOrResult(I_and, I_or, gamma, q, tau, objective, lower_bound, gap, rounds)


def _solve_full_rows(search: Search, rows: torch.Tensor) -> torch.Tensor:
    """The samples ``rows`` solved whole through the dual, ``DUAL_CHUNK_BYTES`` at a time; which certified."""
    chunk = max(1, DUAL_CHUNK_BYTES // (2 * 8 * search.size**2))
    certified = []
    for part in rows.split(chunk):
        full = _solve_full(search.values[part], search.tau[part], search.column_costs)
        certified.append(search.record(part, full[:4], full[4]))
    return torch.cat(certified)


def _dense_to_the_dual(search: Search, keep: torch.Tensor) -> torch.Tensor:
    """After ``DENSE_ROUNDS``, the samples that looked dense every round go to the dual route;
    those it certifies leave ``keep`` (the others go on with column generation)."""
    dense = keep & search.dense_so_far
    if bool(dense.any()):
        certified = _solve_full_rows(search, search.active[dense])
        keep = keep.clone()
        keep[dense.nonzero().flatten()[certified]] = False
    return keep


def _result(search: Search, rounds: int) -> AndOrResult:
    I_and, I_or, gamma, q = search.outputs
    return AndOrResult(
        I_and=I_and,
        I_or=I_or,
        gamma=gamma,
        q=q,
        tau=search.tau,
        objective=search.best_objective,
        lower_bound=search.best_bound,
        gap=search.best_objective / search.best_bound - 1.0,
        rounds=rounds,
    )
