"""Column generation for the extraction: the state of a batch between rounds, and one function per step.

The steps are those of docs/extraction.md, "Column generation with an interior-point master":

1. start from the largest raw interactions (:func:`initial_candidates`);
2. solve the problem restricted to the candidates (:meth:`Search.solve_restricted`: the problems
   of :mod:`._master` by the interior-point method of :mod:`._interior_point`), read its
   interactions, prices and bounds (:func:`read_master`, :func:`round_bounds`), and keep the
   better solution of each sample
   (:meth:`Search.record`, which also tells which samples are certified);
3. price every interaction with the row multipliers and adjust the price of box violations
   (:meth:`Search.reprice`);
4. let idle candidates go and the most violated interactions in (:meth:`Search.next_round`).

The certificate is weak duality (Chvatal, *Linear Programming*, 1983): any rescaled
multipliers bound the optimum from below, and every restricted solution is feasible for the full
problem, so each round gives a certified gap. Column generation itself is Dantzig and Wolfe's
(Operations Research 8, 1960); the numbers that chose the constants below are in
docs/extraction.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from lightning_interactions.extraction._certificate import repaired_bound, rescaled_dual_value, signed_prices
from lightning_interactions.extraction._gram import TriggerColumns
from lightning_interactions.extraction._master import (
    MASTER_TOL,
    MasterSolution,
    polish_master,
    solve_master,
)
from lightning_interactions.extraction.transforms import (
    and_interactions,
    inverse_and_interactions,
    inverse_or_interactions,
    or_interactions,
)

# Starting price of one unit of box violation (an elastic slack) in a restricted problem: above
# the row multipliers optimal problems need, so that a slack is used only while columns are
# missing. Where a multiplier reaches the price with no column missing, the price was too low and
# is raised 4x. The certificate holds whatever the price.
INITIAL_PENALTY = 16.0
PENALTY_RAISE = 4.0
# A multiplier within 1% of the price counts as at the price (the interior point stops short of
# the boundary); a reduced cost within 1e-6 of 1 counts as priced out (rounding of the transforms).
AT_THE_PRICE = 0.99
PRICED_OUT = 1.0 + 1e-6
# The plain bound is tightened (:func:`repaired_bound`) only for samples whose objective is within
# REPAIR_WITHIN_GAP of it and moved by less than REPAIR_STALLED_WITHIN since the best so far: a
# moving objective is not near the optimum yet, and no bound could certify it.
REPAIR_WITHIN_GAP = 1.0
REPAIR_STALLED_WITHIN = 0.03
# From MASTER_LOOSE_FROM_COLUMNS columns on, a restricted problem is solved to a relative duality
# gap of MASTER_GAP_PER_CHANGE times the relative change of the sample's objective in its previous
# round (at most MASTER_GAP_LOOSEST, at least MASTER_TOL): while new columns still move the
# objective by percents, the last digits of a restricted optimum are wasted. Smaller problems are
# cheap to solve tightly.
MASTER_GAP_PER_CHANGE = 0.1
MASTER_GAP_LOOSEST = 0.1
MASTER_LOOSE_FROM_COLUMNS = 400
# Candidates priced at most IDLE_PRICE times their cost leave a restricted problem of at least
# DROP_FROM_COLUMNS columns, each interaction at most once per sample so that rounds cannot cycle:
# the factorisations grow with the cube of the count, and below a thousand columns they are cheap.
IDLE_PRICE = 0.3
DROP_FROM_COLUMNS = 1000

__all__ = [
    "Search",
    "MasterReading",
    "extraction_objective",
    "initial_candidates",
    "solution_to_interactions",
    "read_master",
    "round_bounds",
]


def extraction_objective(I_and: torch.Tensor, I_or: torch.Tensor) -> torch.Tensor:
    """Sum of ``|I_and(S)| + |I_or(S)|`` over nonempty ``S``, per sample."""
    return I_and[..., 1:].abs().sum(dim=-1) + I_or[..., 1:].abs().sum(dim=-1)


def initial_candidates(v: torch.Tensor, count: int) -> torch.Tensor:
    """Step 1: column ids (``S`` for AND, ``2^n + S`` for OR) of the largest raw interactions of ``v``."""
    size = v.shape[1]
    raw = torch.cat((and_interactions(v), or_interactions(v)), dim=1).abs()
    raw[:, 0] = -1.0  # the constant is always a column of its own
    raw[:, size] = -1.0
    return raw.topk(count, dim=1).indices


def solution_to_interactions(
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


class MasterReading(NamedTuple):
    """What a round reads off its restricted solution."""

    extracted: tuple[torch.Tensor, ...]  # I_and, I_or, gamma, q
    objective: torch.Tensor
    mu: torch.Tensor  # centred row multipliers
    reduced: torch.Tensor  # |Z' mu| and |W' mu|, see reduced_costs
    plain: torch.Tensor  # the rescaled lower bound of mu


def read_master(
    solution: MasterSolution, v: torch.Tensor, tau: torch.Tensor, columns: torch.Tensor
) -> MasterReading:
    """Step 2: interactions, objective, prices and plain bound of a batch of restricted solutions."""
    extracted = solution_to_interactions(v, tau, columns, solution.x)
    mu = solution.mu - solution.mu.mean(dim=1, keepdim=True)
    # One pair of transposed transforms prices every interaction and gives the plain bound.
    reduced = reduced_costs(mu, v.shape[1])
    plain = rescaled_dual_value(v, tau, mu, reduced.amax(dim=1))
    return MasterReading(extracted, extraction_objective(extracted[0], extracted[1]), mu, reduced, plain)


def round_bounds(
    v: torch.Tensor,
    tau: torch.Tensor,
    mu: torch.Tensor,
    plain: torch.Tensor,
    objective: torch.Tensor,
    best_objective: torch.Tensor,
    best_bound: torch.Tensor,
    tol: float,
) -> torch.Tensor:
    """Step 2: a round's lower bounds: the ``plain`` rescaled bound of the centred multipliers ``mu``,
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


def reduced_costs(mu: torch.Tensor, size: int) -> torch.Tensor:
    """Step 3: ``|Z' mu|`` and ``|W' mu|`` of centred ``mu`` side by side (column ids as in
    ``columns``); constants set to -1."""
    reduced = signed_prices(mu).abs().flatten(-2)
    reduced[:, 0] = -1.0
    reduced[:, size] = -1.0
    return reduced


def add_violated(columns: torch.Tensor, pricing: torch.Tensor, count: int) -> torch.Tensor:
    """Step 4: append the ``count`` interactions whose dual constraint (``pricing <= 1``) is most
    violated, at most as many as are neither candidates already nor marked unavailable
    (``pricing < 0``: the constants, and what :func:`next_candidates` just dropped)."""
    pricing = pricing.scatter(1, columns, -1.0)
    count = min(count, int((pricing >= 0).sum(dim=1).min()))
    if count <= 0:
        return columns
    return torch.cat((columns, pricing.topk(count, dim=1).indices), dim=1)


def next_candidates(
    columns: torch.Tensor, pricing: torch.Tensor, dropped: torch.Tensor, count: int
) -> torch.Tensor:
    """Step 4: the next round's candidates: idle ones dropped (:func:`drop_idle`, which updates
    ``dropped``), then ``count`` violated ones added; what was just dropped is idle, not
    violated, and is not taken again in the same round."""
    kept = drop_idle(columns, pricing, dropped)
    return add_violated(kept, pricing.scatter(1, columns, -1.0), count)


def drop_idle(columns: torch.Tensor, pricing: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    """Step 4: candidates without those priced at most ``IDLE_PRICE`` of their cost, once a row
    has ``DROP_FROM_COLUMNS`` of them; ``dropped`` (``(batch, 2^(n+1))`` bool, updated in place)
    marks what each row dropped before, which it keeps from now on.

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


class RoundSolution(NamedTuple):
    """A round's restricted solution of the active samples, read, with its bounds."""

    solution: MasterSolution
    read: MasterReading
    bound: torch.Tensor
    loose: torch.Tensor  # certified from a polished loose solve: replaces what is stored


@dataclass
class Search:
    """The column generation of a batch between rounds.

    ``active`` are the samples still searched, ``columns`` their candidates (one row each);
    ``penalty``, ``dense_so_far``, ``columns`` have a row per active sample, everything else a row
    per sample of the batch. ``outputs`` (``I_and, I_or, gamma, q``), ``best_objective`` and
    ``best_bound`` hold each sample's best solution and bound so far.
    """

    values: torch.Tensor
    tau: torch.Tensor
    tol: float
    column_costs: torch.Tensor  # per column id: 1 + tie_break * order
    progress: Callable[[int, int], None] | None
    columns: torch.Tensor
    active: torch.Tensor
    penalty: torch.Tensor
    dense_so_far: torch.Tensor  # every pricing so far found more violated interactions than masks
    best_objective: torch.Tensor
    best_bound: torch.Tensor
    previous_objective: torch.Tensor
    last_change: torch.Tensor  # relative change of the objective in the sample's last round
    dropped: torch.Tensor  # (batch, 2^(n+1)) bool: the candidates each sample let go once
    outputs: list[torch.Tensor]

    @classmethod
    def start(
        cls,
        values: torch.Tensor,
        tau: torch.Tensor,
        tol: float,
        columns: torch.Tensor,
        column_costs: torch.Tensor,
        progress: Callable[[int, int], None] | None,
    ) -> Search:
        batch, size = values.shape
        device = values.device
        return cls(
            values=values,
            tau=tau,
            tol=tol,
            column_costs=column_costs,
            progress=progress,
            columns=columns,
            active=torch.arange(batch, device=device),
            penalty=values.new_full((batch,), INITIAL_PENALTY),
            dense_so_far=torch.ones(batch, dtype=torch.bool, device=device),
            best_objective=values.new_full((batch,), float("inf")),
            best_bound=values.new_full((batch,), float("-inf")),
            previous_objective=values.new_full((batch,), float("inf")),
            last_change=values.new_full((batch,), float("inf")),
            dropped=torch.zeros(batch, 2 * size, dtype=torch.bool, device=device),
            outputs=[values.new_zeros(batch, size) for _ in range(4)],
        )

    @property
    def size(self) -> int:
        return self.values.shape[1]

    def record(
        self,
        rows: torch.Tensor,
        extracted: tuple[torch.Tensor, ...],
        bound: torch.Tensor,
        objective: torch.Tensor | None = None,
        replace: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Keep the better of the stored and the new solution of ``rows`` (the new one where
        ``replace``) and the better bound; return which of ``rows`` are certified."""
        if objective is None:
            objective = extraction_objective(extracted[0], extracted[1])
        improved = objective < self.best_objective[rows]
        if replace is not None:
            improved = improved | replace
        for target, tensor in zip(self.outputs, extracted):
            target[rows[improved]] = tensor[improved]
        self.best_objective[rows] = torch.where(improved, objective, self.best_objective[rows])
        self.best_bound[rows] = torch.maximum(self.best_bound[rows], bound)
        certified = self.best_objective <= (1.0 + self.tol) * self.best_bound
        if self.progress is not None:
            self.progress(int(certified.sum()), len(self.best_objective))
        return certified[rows]

    def _certifies(self, objective: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        """Whether ``objective`` is within ``tol`` of ``bound`` or of the active rows' best bound."""
        return objective <= (1.0 + self.tol) * torch.maximum(bound, self.best_bound[self.active])

    def solve_restricted(self, n: int) -> RoundSolution:
        """Step 2: the active samples' restricted problems, solved loosely where that is safe."""
        active, columns, size = self.active, self.columns, self.size
        v, tau = self.values[active], self.tau[active]
        # Column 0 of every restricted problem is the constant: the AND trigger of the empty set.
        empty = columns.new_zeros(len(active), 1)
        sets = torch.cat((empty, columns % size), dim=1)
        is_or = torch.cat((empty.bool(), columns >= size), dim=1)
        loosest = MASTER_GAP_LOOSEST if sets.shape[1] >= MASTER_LOOSE_FROM_COLUMNS else MASTER_TOL
        gap_tol = (MASTER_GAP_PER_CHANGE * self.last_change[active]).clamp(min=MASTER_TOL, max=loosest)
        costs = self.column_costs[columns]
        solution = solve_master(TriggerColumns(sets, is_or, n), v, tau, self.penalty, costs, gap_tol=gap_tol)
        read = read_master(solution, v, tau, columns)
        best_objective = self.best_objective[active]
        bound = round_bounds(
            v, tau, read.mu, read.plain, read.objective, best_objective, self.best_bound[active], self.tol
        )
        # A loose solve that certifies a sample is taken on to MASTER_TOL first: the tie-break
        # toward lower orders needs the converged point.
        loose = self._certifies(torch.minimum(read.objective, best_objective), bound) & (gap_tol > MASTER_TOL)
        if bool(loose.any()):
            solution = polish_master(solution, loose)
            read = read_master(solution, v, tau, columns)
            bound = torch.where(loose, torch.maximum(bound, read.plain), bound)
            # A polished row that certifies on its own replaces whatever is stored (an earlier
            # loose solution may have a lower objective where orders tie).
            loose &= self._certifies(read.objective, bound)
        return RoundSolution(solution, read, bound, loose)

    def record_round(self, found: RoundSolution) -> torch.Tensor:
        """Step 2: keep the round's solutions; return which active samples are certified."""
        objective, active = found.read.objective, self.active
        tiny = torch.finfo(objective.dtype).tiny
        self.last_change[active] = (self.previous_objective[active] - objective).abs() / objective.clamp(
            min=tiny
        )
        self.previous_objective[active] = objective
        return self.record(active, found.read.extracted, found.bound, objective, replace=found.loose)

    def reprice(self, found: RoundSolution) -> torch.Tensor:
        """Step 3: each interaction's reduced cost over its cost; raise the price of box
        violations where it was too low; note which samples still look dense."""
        # A multiplier at the price means the box is violated. While columns are missing that is
        # expected (they come next round); with none missing, the price itself is too low.
        saturated = found.solution.mu.abs().amax(dim=1) >= AT_THE_PRICE * self.penalty
        pricing = found.read.reduced / self.column_costs
        complete = pricing.amax(dim=1) <= PRICED_OUT
        self.penalty = torch.where(saturated & complete, PENALTY_RAISE * self.penalty, self.penalty)
        self.dense_so_far = self.dense_so_far & ((pricing > 1.0).sum(dim=1) > self.size)
        return pricing

    def next_round(self, keep: torch.Tensor, pricing: torch.Tensor, count: int) -> None:
        """Step 4: go on with the active samples in ``keep``; their candidates for the next round."""
        self.penalty, self.dense_so_far = self.penalty[keep], self.dense_so_far[keep]
        self.active, columns, pricing = self.active[keep], self.columns[keep], pricing[keep]
        once = self.dropped[self.active]
        # Nothing violated left to add: the restricted optimum is the full one, solve it tightly.
        exhausted = pricing.scatter(1, columns, -1.0).amax(dim=1) <= 1.0
        self.last_change[self.active] = torch.where(exhausted, 0.0, self.last_change[self.active])
        self.columns = next_candidates(columns, pricing, once, count)
        self.dropped[self.active] = once
