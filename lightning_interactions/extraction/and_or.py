"""Batched AND-OR extraction: the L1 problem of theory.md section 3, solved to a certified gap.

Minimise ``sum_{S nonempty} |I_and(S)| + |I_or(S)|`` over the free split ``gamma`` and the error
``q`` with ``|q_T| <= tau``, ``tau = q_ratio * |v(N) - v(empty)|``. Written in the interactions
themselves, this is ``min ||a||_1 + ||o||_1 s.t. |Z a + W o - v| <= tau`` where the columns of ``Z``
and ``W`` are the AND triggers ``1[S subset of T]`` and OR triggers ``1[S n T nonempty]``.

The optimum is sparse, so the solver is column generation: an interior-point method
(:mod:`._interior_point`) solves the problem restricted to a few candidate interactions; the row multipliers
``mu`` it returns price *every* interaction at once through the fast transposed transforms
(``Z' mu`` and ``W' mu``, O(n 2^n)); the most violated ones join the candidates. Any ``mu``,
rescaled to be dual feasible, gives the lower bound ``-<mu, v> - tau ||mu||_1`` on the optimum
(weak duality), and the restricted solution is feasible for the full problem, so each round
yields a certified gap. Rounds stop when ``objective <= (1 + tol) * lower_bound``.

The LP can have several optima (``x0 + x1`` equals ``OR{0,1} + AND{0,1}`` at the same L1 cost).
An interior-point method would return the centre of such a tie, a mix of orders; the restricted
problems therefore price each interaction at ``1 + 1e-4 |S|``, which picks the lowest-order
optimum and moves the certified L1 objective by at most ``1e-4 n`` relative.

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
from typing import NamedTuple

import torch

from lightning_interactions.extraction._certificate import (
    dual_lower_bound,
    repaired_bound,
    rescaled_dual_value,
    signed_prices,
)
from lightning_interactions.extraction._gram import TriggerColumns
from lightning_interactions.extraction._interior_point import (
    MASTER_TOL,
    MasterSolution,
    polish_master,
    solve_master,
)
from lightning_interactions.extraction._row_space import solve_full_dual
from lightning_interactions.extraction._threads import with_extraction_threads
from lightning_interactions.extraction.transforms import (
    and_interactions,
    inverse_and_interactions,
    inverse_or_interactions,
    num_players_of,
    or_interactions,
    order_index,
)

# Starting price of one unit of box violation in a restricted problem. Optimal row multipliers
# on a digits MLP stayed below 8; where a multiplier reaches the price, the price is raised 4x
# for the next round. The certificate is valid whatever the price.
INITIAL_PENALTY = 16.0
ORDER_TIE_BREAK = 1e-4
# The full problem through its dual (Newton systems of 2^n x 2^n, see _row_space.py) replaces
# column generation for a sample whose first DENSE_ROUNDS pricings each find more violated
# interactions than there are rows: its optimum is dense (an untrained network), and the
# restricted problems would grow past 2^n columns. An untrained network's pricings find 97% to
# 99.9% of all interactions violated round after round; a trained sample's first pricings can
# look dense too (2,677 of 4,094 at n = 11, 7,258 and 6,728 of 8,190 at n = 12) but fall below
# 2^n by the third, and the dual route costs such a sample 3 to 10x its column generation. At
# n = 12 the dual takes 18.6 s for one untrained sample against 148 s by column generation; at
# n = 13 a factorisation per step would cost 8x that.
ROW_SPACE_MAX_PLAYERS = 12
DENSE_ROUNDS = 3
# The dual route's Newton matrices and factors take 2 x 4^n float64 per sample: solve at most this
# many bytes of them at a time (4 samples at n = 12).
DUAL_CHUNK_BYTES = 2**30
# The plain rescaled bound of a round is tightened (:mod:`._certificate`) for the samples it
# leaves within REPAIR_WITHIN_GAP of the objective whose objective also moved by less than
# REPAIR_STALLED_WITHIN since their best so far (a moving objective is not yet near the optimum,
# and no bound can certify it). On the trained digits MLP at n = 10 to 14 the tightening brought
# plain gaps of 0.1 to 0.5 to within 1% in 27 to 400 steps; with an objective still falling by
# more than 3% a round it did not certify, and each call costs 0.1 to 0.6 s.
REPAIR_WITHIN_GAP = 1.0
REPAIR_STALLED_WITHIN = 0.03
# From MASTER_LOOSE_FROM_COLUMNS columns on, a restricted problem is solved to a relative duality
# gap of MASTER_GAP_PER_CHANGE times the relative change of the sample's objective in its previous
# round (at most MASTER_GAP_LOOSEST, at least MASTER_TOL): while new columns still move the
# objective by percents, the last digits of a restricted optimum are wasted. Once no interaction
# outside the candidates is priced above its cost, the next problem is solved tightly (repeating a
# loose solve of the same problem could go on for ever). A sample that such a round certifies is
# solved on to MASTER_TOL before it is kept (the tie-break toward lower orders needs the converged
# point). The n = 14 straggler's late rounds took 14 to 20 steps instead of 24 to 26, with the
# same rounds. Smaller problems are cheap to solve tightly, and loose ones at n = 8 reached other
# optima of a tie within one order (docs/extraction.md).
MASTER_GAP_PER_CHANGE = 0.1
MASTER_GAP_LOOSEST = 0.1
MASTER_LOOSE_FROM_COLUMNS = 400
# Candidates priced at most IDLE_PRICE times their cost leave a restricted problem of at least
# DROP_FROM_COLUMNS columns (each interaction at most once per sample, so that the rounds cannot
# cycle): in the late rounds of the n = 14 straggler 20% to 30% of the candidates were that far
# from entering, and the factorisations grow with the cube of the count. Below a thousand columns
# the factorisations are cheap, and on the trained MLP at n = 12 and 13 dropping saved nothing.
IDLE_PRICE = 0.3
DROP_FROM_COLUMNS = 1000

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


def extraction_objective(I_and: torch.Tensor, I_or: torch.Tensor) -> torch.Tensor:
    """Sum of ``|I_and(S)| + |I_or(S)|`` over nonempty ``S``, per sample."""
    return I_and[..., 1:].abs().sum(dim=-1) + I_or[..., 1:].abs().sum(dim=-1)


def _initial_candidates(v: torch.Tensor, count: int) -> torch.Tensor:
    """Column ids (``S`` for AND, ``2^n + S`` for OR) of the largest raw interactions of ``v``."""
    size = v.shape[1]
    raw = torch.cat((and_interactions(v), or_interactions(v)), dim=1).abs()
    raw[:, 0] = -1.0  # the constant is always a column of its own
    raw[:, size] = -1.0
    return raw.topk(count, dim=1).indices


def _solution_to_interactions(
    v: torch.Tensor, tau: torch.Tensor, columns: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter restricted coefficients into full AND/OR vectors; return ``I_and, I_or, gamma, q``."""
    batch, size = v.shape
    both = v.new_zeros(batch, 2 * size)
    both.scatter_(1, columns, x[:, 1:])
    I_and, I_or = both[:, :size], both[:, size:]
    I_and[:, 0] = 0.5 * x[:, 0]
    I_or[:, 0] = 0.5 * x[:, 0]
    v_and = inverse_and_interactions(I_and)
    v_or = inverse_or_interactions(I_or)
    # Put any excess over the box (interior-point tolerance, or elastic slack of a restricted
    # problem) into the AND part so that q is exactly feasible, then recompute the interactions
    # from their definitions: the objective is then that of a truly feasible point.
    q_raw = v_and + v_or - v
    q = torch.maximum(torch.minimum(q_raw, tau[:, None]), -tau[:, None])
    v_and = v_and - (q_raw - q)
    gamma = v_and - 0.5 * (v + q)
    return and_interactions(v_and), or_interactions(v_or), gamma, q


def _solve_full(
    values: torch.Tensor, tau: torch.Tensor, column_costs: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The full problem through its dual (:mod:`._row_space`): ``I_and, I_or, gamma, q, lower_bound``."""
    batch, size = values.shape
    solution = solve_full_dual(values, tau, column_costs.expand(batch, -1).contiguous())
    every = torch.cat((torch.arange(1, size), torch.arange(size + 1, 2 * size))).to(values.device)
    columns = every.expand(batch, -1)
    x = torch.cat((solution.constant[:, None], solution.both[:, every]), dim=1)
    extracted = _solution_to_interactions(values, tau, columns, x)
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
            ``MASTER_GAP_PER_CHANGE``: feasible, and its ``gap`` holds).
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
    n = num_players_of(values)
    if not torch.isfinite(values).all():
        raise ValueError("v contains NaN or infinite values")
    size = 2**n
    span = (values[:, -1] - values[:, 0]).abs()
    # A zero box has no interior; a box of 1e-9 of the output's range changes nothing measurable.
    floor = 1e-9 * values.abs().amax(dim=1).clamp(min=1.0)
    tau = torch.maximum(q_ratio * span, floor)

    first = min(initial_candidates or 12 * n, 2 * size - 2)
    step = candidates_per_round or 12 * n
    columns = _initial_candidates(values, first)
    batch = values.shape[0]
    best_objective = values.new_full((batch,), float("inf"))
    best_bound = values.new_full((batch,), float("-inf"))
    previous_objective = values.new_full((batch,), float("inf"))
    last_change = values.new_full((batch,), float("inf"))  # relative, of the objective per round
    dropped = torch.zeros(batch, 2 * size, dtype=torch.bool, device=values.device)  # see _drop_idle
    tiny = torch.finfo(values.dtype).tiny
    outputs = [values.new_zeros(batch, size) for _ in range(4)]  # I_and, I_or, gamma, q
    active = torch.arange(batch, device=values.device)
    penalty = values.new_full((batch,), INITIAL_PENALTY)
    dense_so_far = torch.ones(batch, dtype=torch.bool, device=values.device)  # every pricing so far
    # Tied optima (x0 + x1 is also OR{0,1} + AND{0,1}) are broken toward lower orders by a cost
    # of 1 + tie_break * |S| per interaction in the restricted problems; kept well below tol,
    # since it loosens the certificate of the plain L1 problem by at most a factor 1 + tie_break n.
    tie_break = min(ORDER_TIE_BREAK, tol / (4 * n))
    order = order_index(n, device=values.device)
    column_costs = 1.0 + tie_break * torch.cat((order, order)).to(values.dtype)
    rounds = 0

    def record(
        rows: torch.Tensor,
        extracted: tuple[torch.Tensor, ...],
        bound: torch.Tensor,
        objective: torch.Tensor | None = None,
        replace: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Keep the better of the stored and the new solution of ``rows`` (the new one where
        ``replace``); return which are certified."""
        if objective is None:
            objective = extraction_objective(extracted[0], extracted[1])
        improved = objective < best_objective[rows]
        if replace is not None:
            improved = improved | replace
        for target, tensor in zip(outputs, extracted):
            target[rows[improved]] = tensor[improved]
        best_objective[rows] = torch.where(improved, objective, best_objective[rows])
        best_bound[rows] = torch.maximum(best_bound[rows], bound)
        certified = best_objective <= (1.0 + tol) * best_bound
        if progress is not None:
            progress(int(certified.sum()), batch)
        return certified[rows]

    def solve_full(rows: torch.Tensor) -> torch.Tensor:
        chunk = max(1, DUAL_CHUNK_BYTES // (2 * 8 * 4**n))
        certified = []
        for part in rows.split(chunk):
            full = _solve_full(values[part], tau[part], column_costs)
            certified.append(record(part, full[:4], full[4]))
        return torch.cat(certified)

    if row_space:
        solve_full(active)
        active, rounds = active[:0], 1
    for rounds in range(1, max_rounds + 1 if len(active) else 1):
        v_act, tau_act, col_act = values[active], tau[active], columns
        # Column 0 of every restricted problem is the constant: the AND trigger of the empty set.
        empty = col_act.new_zeros(len(active), 1)
        sets = torch.cat((empty, col_act % size), dim=1)
        is_or = torch.cat((empty.bool(), col_act >= size), dim=1)
        costs = column_costs[col_act]
        loosest = MASTER_GAP_LOOSEST if sets.shape[1] >= MASTER_LOOSE_FROM_COLUMNS else MASTER_TOL
        gap_tol = (MASTER_GAP_PER_CHANGE * last_change[active]).clamp(min=MASTER_TOL, max=loosest)
        solution = solve_master(
            TriggerColumns(sets, is_or, n), v_act, tau_act, penalty, costs, gap_tol=gap_tol
        )
        read = _read_master(solution, v_act, tau_act, col_act)
        bound = _round_bounds(
            v_act,
            tau_act,
            read.mu,
            read.plain,
            read.objective,
            best_objective[active],
            best_bound[active],
            tol,
        )
        reference = torch.minimum(read.objective, best_objective[active])
        loose = (reference <= (1.0 + tol) * torch.maximum(bound, best_bound[active])) & (gap_tol > MASTER_TOL)
        if bool(loose.any()):
            solution = polish_master(solution, loose)
            read = _read_master(solution, v_act, tau_act, col_act)
            bound = torch.where(loose, torch.maximum(bound, read.plain), bound)
            # A polished row that certifies on its own replaces whatever is stored (an earlier
            # loose solution may have a lower objective where orders tie).
            loose &= read.objective <= (1.0 + tol) * torch.maximum(bound, best_bound[active])
        extracted, objective, reduced = read.extracted, read.objective, read.reduced
        last_change[active] = (previous_objective[active] - objective).abs() / objective.clamp(min=tiny)
        previous_objective[active] = objective
        done = record(active, extracted, bound, objective, replace=loose)
        if bool(done.all()):
            break
        keep = ~done
        # A multiplier at the price means the box is violated. While columns are missing that is
        # expected (they come next round); with none missing, the price itself is too low.
        saturated = solution.mu.abs().amax(dim=1) >= 0.99 * penalty
        pricing = reduced / column_costs
        complete = pricing.amax(dim=1) <= 1.0 + 1e-6
        penalty = torch.where(saturated & complete, 4.0 * penalty, penalty)
        looks_dense = (pricing > 1.0).sum(dim=1) > size
        dense_so_far = dense_so_far & looks_dense
        if rounds == DENSE_ROUNDS and row_space is None and n <= ROW_SPACE_MAX_PLAYERS:
            dense = keep & dense_so_far
            if bool(dense.any()):
                certified = solve_full(active[dense])
                # A sample the full solve could not certify goes on with column generation.
                keep[dense.nonzero().flatten()[certified]] = False
                if not bool(keep.any()):
                    break
        if rounds == max_rounds:  # after the route check, so that max_rounds = DENSE_ROUNDS still has it
            break
        penalty = penalty[keep]
        dense_so_far = dense_so_far[keep]
        active, columns = active[keep], columns[keep]
        once = dropped[active]
        pricing = pricing[keep]
        # Nothing violated left to add: the restricted optimum is the full one, solve it tightly.
        exhausted = pricing.scatter(1, columns, -1.0).amax(dim=1) <= 1.0
        last_change[active] = torch.where(exhausted, 0.0, last_change[active])
        columns = _next_candidates(columns, pricing, once, step)
        dropped[active] = once

    I_and, I_or, gamma, q = outputs
    result = AndOrResult(
        I_and=I_and,
        I_or=I_or,
        gamma=gamma,
        q=q,
        tau=tau,
        objective=best_objective,
        lower_bound=best_bound,
        gap=best_objective / best_bound - 1.0,
        rounds=rounds,
    )
    if single:
        for name in ("I_and", "I_or", "gamma", "q", "tau", "objective", "lower_bound", "gap"):
            setattr(result, name, getattr(result, name)[0])
    return result


class _MasterReading(NamedTuple):
    """What a round reads off its restricted solution."""

    extracted: tuple[torch.Tensor, ...]  # I_and, I_or, gamma, q
    objective: torch.Tensor
    mu: torch.Tensor  # centred row multipliers
    reduced: torch.Tensor  # |Z' mu| and |W' mu|, see _reduced_costs
    plain: torch.Tensor  # the rescaled lower bound of mu


def _read_master(
    solution: MasterSolution, v: torch.Tensor, tau: torch.Tensor, columns: torch.Tensor
) -> _MasterReading:
    """Interactions, objective, prices and plain bound of a batch of restricted solutions."""
    extracted = _solution_to_interactions(v, tau, columns, solution.x)
    mu = solution.mu - solution.mu.mean(dim=1, keepdim=True)
    # One pair of transposed transforms prices every interaction and gives the plain bound.
    reduced = _reduced_costs(mu, v.shape[1])
    plain = rescaled_dual_value(v, tau, mu, reduced.amax(dim=1))
    return _MasterReading(extracted, extraction_objective(extracted[0], extracted[1]), mu, reduced, plain)


def _round_bounds(
    v: torch.Tensor,
    tau: torch.Tensor,
    mu: torch.Tensor,
    plain: torch.Tensor,
    objective: torch.Tensor,
    best_objective: torch.Tensor,
    best_bound: torch.Tensor,
    tol: float,
) -> torch.Tensor:
    """A round's lower bounds: the ``plain`` rescaled bound of the centred multipliers ``mu``,
    tightened by :func:`repaired_bound` for the rows worth it (``REPAIR_WITHIN_GAP``,
    ``REPAIR_STALLED_WITHIN``). ``best_objective`` and ``best_bound`` are the rows' best so far."""
    # Against the best objective so far, which is what certification compares with; in the first
    # round there is none, nothing has stalled, and only the plain bound is taken.
    stalled = objective >= best_objective / (1.0 + REPAIR_STALLED_WITHIN)
    reference = torch.minimum(objective, best_objective)
    close = (
        stalled
        & (reference > (1.0 + tol) * torch.maximum(plain, best_bound))  # not certified already
        & (reference <= (1.0 + REPAIR_WITHIN_GAP) * plain)
    )
    bound = plain.clone()
    if bool(close.any()):
        rows = close.nonzero().flatten()
        tighter = repaired_bound(v[rows], tau[rows], mu[rows], reference[rows], tol)
        bound[rows] = torch.maximum(bound[rows], tighter)
    return bound


def _reduced_costs(mu: torch.Tensor, size: int) -> torch.Tensor:
    """``|Z' mu|`` and ``|W' mu|`` of centred ``mu`` side by side (column ids as in ``columns``);
    constants set to -1."""
    reduced = signed_prices(mu).abs().flatten(-2)
    reduced[:, 0] = -1.0
    reduced[:, size] = -1.0
    return reduced


def _add_violated(columns: torch.Tensor, pricing: torch.Tensor, count: int) -> torch.Tensor:
    """Append the ``count`` interactions whose dual constraint (``pricing <= 1``) is most violated,
    at most as many as are neither candidates already nor marked unavailable (``pricing < 0``:
    the constants, and what :func:`_next_candidates` just dropped)."""
    pricing = pricing.scatter(1, columns, -1.0)
    count = min(count, int((pricing >= 0).sum(dim=1).min()))
    if count <= 0:
        return columns
    return torch.cat((columns, pricing.topk(count, dim=1).indices), dim=1)


def _next_candidates(
    columns: torch.Tensor, pricing: torch.Tensor, dropped: torch.Tensor, count: int
) -> torch.Tensor:
    """The next round's candidates: idle ones dropped (:func:`_drop_idle`, which updates
    ``dropped``), then ``count`` violated ones added; what was just dropped is idle, not
    violated, and is not taken again in the same round."""
    kept = _drop_idle(columns, pricing, dropped)
    return _add_violated(kept, pricing.scatter(1, columns, -1.0), count)


def _drop_idle(columns: torch.Tensor, pricing: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    """Candidates without those priced at most ``IDLE_PRICE`` of their cost, once a row has
    ``DROP_FROM_COLUMNS`` of them; ``dropped`` (``(batch, 2^(n+1))`` bool, updated in place) marks
    what each row dropped before, which it keeps from now on.

    Rows keep as many candidates as the row that keeps most (the batch stays rectangular): a row
    with more idle candidates than that keeps its least idle ones.
    """
    if columns.shape[1] < DROP_FROM_COLUMNS:
        return columns
    ratio = pricing.gather(1, columns)
    idle = (ratio <= IDLE_PRICE) & ~dropped.gather(1, columns)
    count = columns.shape[1] - int(idle.sum(dim=1).min())
    if count >= columns.shape[1]:
        return columns
    priority = torch.where(idle, ratio, float("inf"))
    chosen = priority.topk(count, dim=1).indices.sort(dim=1).values  # in their old order
    leaving = torch.ones_like(idle).scatter_(1, chosen, False)
    dropped |= torch.zeros_like(dropped).scatter_(1, columns, leaving)
    return columns.gather(1, chosen)
