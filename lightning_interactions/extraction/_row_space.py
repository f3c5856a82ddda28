"""The whole extraction LP solved through its dual, with Newton systems in the ``2^n`` row space.

Column generation (:mod:`.and_or`) pays off while the optimum is sparse. Where it is dense (an
untrained network: 1,300 to 1,900 of the 2,046 interactions at ``n = 10``), the restricted
problems grow past the ``2^n`` rows and every interior-point step factors a ``k x k`` matrix
with ``k`` up to ``2^(n+1)``. This module solves the full problem at once instead, through its
dual (``mu`` the row multipliers, ``w`` their absolute values, ``c`` the column costs):

    minimise   <v, mu> + tau sum_T w_T
    subject to |Z' mu| <= c,  |W' mu| <= c,  |mu| <= w,  sum_T mu_T = 0

with Mehrotra's method (:func:`._interior_point.mehrotra`). Its Newton matrix is
``m x m`` (``m = 2^n``): ``Z diag(d_and) Z' + W diag(d_or) W' + diag(d_row)``, and both
Gram terms are lattice sums over the rows: ``(Z D Z')[T, T'] = L(T n T')`` with the subset
sums ``L`` of ``d_and``, and ``(W D W')[T, T'] = total - L(N \\ T) - L(N \\ T') + L(N \\ (T u T'))``
for those of ``d_or``. No column is ever built and no inverse weight appears (the failed
row-space variants of ``docs/extraction.md`` inverted the row weights, which span 13 decades
near the optimum). The constraint ``sum mu = 0`` (the dual of the free constant) holds
throughout: every Newton step is a bordered solve with the all-ones vector, and the dual
residual is measured in the subspace. The primal interactions are the multipliers of the column
constraints, the constant that of ``sum mu = 0``; both come back scaled to ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lightning_interactions.extraction._buffers import kept
from lightning_interactions.extraction._cholesky import cholesky_into
from lightning_interactions.extraction._interior_point import cholesky_solve, mehrotra
from lightning_interactions.extraction.transforms import inverse_and_interactions, inverse_and_transpose

__all__ = ["RowSpaceSolution", "solve_full_dual"]
# Gondzio correctors per step: each costs two triangular solves per sample against one
# 2^n x 2^n factorisation, so several pay for themselves (docs/extraction.md, "Cost").
ROW_SPACE_CORRECTORS = 3


def _subset_sums(weights: torch.Tensor) -> torch.Tensor:
    """``sum_{S subset of T} weights_S`` for every mask ``T``."""
    return inverse_and_interactions(weights)


class _DualProblem:
    """The dual LP above in inequality form, ``y = (mu, w)``.

    Rows: ``P mu <= c``, ``-P mu <= c``, ``mu - w <= 0``, ``-mu - w <= 0``.

    ``P mu = (Z' mu, W' mu)`` prices every AND and OR interaction (``2m`` entries, AND first,
    both indexed by mask; the two empty-set entries are zero for a centred ``mu``).
    """

    def __init__(self, v: torch.Tensor, tau: torch.Tensor, costs: torch.Tensor) -> None:
        batch, m = v.shape
        self.m = m
        rows = torch.arange(m, device=v.device)
        # Index of T n T' and T u T' for every pair of rows, flattened (m^2 int64).
        self._meet = (rows[:, None] & rows[None, :]).flatten()
        self._join = (rows[:, None] | rows[None, :]).flatten()
        self._buffer: torch.Tensor | None = None
        self._chol: torch.Tensor | None = None
        self._scratch: torch.Tensor | None = None
        self.h = torch.cat((costs, costs, v.new_zeros(batch, 2 * m)), dim=1)
        self.c = torch.cat((v - v.mean(dim=1, keepdim=True), tau[:, None].expand(batch, m)), dim=1)

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.m
        return tuple(z.split([2 * m, 2 * m, m, m], dim=1))

    def prices(self, mu: torch.Tensor) -> torch.Tensor:
        """``(Z' mu, W' mu)``: superset sums, and totals minus subset sums of complements."""
        or_part = mu.sum(dim=1, keepdim=True) - _subset_sums(mu).flip(1)
        return torch.cat((inverse_and_transpose(mu), or_part), dim=1)

    def combine(self, x: torch.Tensor) -> torch.Tensor:
        """``Z a + W o`` for ``x = (a, o)`` (the transpose of :meth:`prices`)."""
        a, o = x.split(self.m, dim=1)
        return _subset_sums(a) + o.sum(dim=1, keepdim=True) - _subset_sums(o).flip(1)

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        mu, w = y.split(self.m, dim=1)
        p = self.prices(mu)
        return torch.cat((p, -p, mu - w, -mu - w), dim=1)

    def apply_transpose(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2, z3, z4 = self.split(z)
        mu_part = self.combine(z1 - z2) + z3 - z4
        # Directions keep sum mu = 0, so only the centred part of the mu-gradient acts.
        mu_part = mu_part - mu_part.mean(dim=1, keepdim=True)
        return torch.cat((mu_part, -z3 - z4), dim=1)

    def factor(self, d: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        d1, d2, d3, d4 = self.split(d)
        self._d3, self._d4 = d3, d4
        self._w_diag = d3 + d4
        column = d1 + d2
        column[:, 0] = 0.0  # the AND constant's price is sum mu = 0 and the empty OR column is zero:
        column[:, self.m] = 0.0  # neither constrains mu
        # Z D Z' is the meet matrix of the subset sums of d_and; W D W' is, up to terms a 1' + 1 a'
        # that vanish on sum mu = 0 (the bordered solve absorbs them), the join matrix of the
        # subset sums of d_or at complements: sum_S d_S 1[S in N \ T] 1[S in N \ T'].
        batch = d.shape[0]
        K = self._buffer = kept(self._buffer, (batch, self.m, self.m), d)
        meet_sums = _subset_sums(column[:, : self.m])
        join_sums = _subset_sums(column[:, self.m :]).flip(1)
        # One sample at a time into buffers kept between steps: fresh (batch, m, m) tensors and
        # batched gathers took 5x as long (page faults and cache misses on 128 MB at n = 10).
        scratch = self._scratch = kept(self._scratch, (self.m * self.m,), d)
        diag = K.diagonal(dim1=1, dim2=2)
        # Rows that converged keep their factorisation (mehrotra does not move them). Each factor
        # is written into a kept buffer too, so a sample holds its Newton matrix and its factor
        # and nothing more (the chunk size of and_or.DUAL_CHUNK_BYTES counts on it).
        factors = kept(self._chol, K.shape, K)
        if factors is not self._chol:  # a new buffer: every row needs its factor
            self._chol, rows = factors, None
        for sample in range(K.shape[0]) if rows is None else rows.tolist():
            flat = K[sample].view(-1)
            torch.index_select(meet_sums[sample], 0, self._meet, out=flat)
            torch.index_select(join_sums[sample], 0, self._join, out=scratch)
            flat += scratch
            diag[sample] += 4 * d3[sample] * d4[sample] / self._w_diag[sample]
            diag[sample] += 1e-13 * diag[sample].abs().amax()
            cholesky_into(self._chol[sample], K[sample])
        # Each factor is the transposed view of its buffer row (its lower triangle, see _cholesky).
        self._ones_solved = cholesky_solve(self._chol.mT, d.new_ones(d.shape[0], self.m))
        self._ones_norm = self._ones_solved.sum(dim=1, keepdim=True)

    def newton_solve(self, r_dual: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`solve` of ``-r_dual - G' q``, then ``G dy`` (mehrotra's Newton solves)."""
        dy = self.solve(self.apply_transpose(q).add_(r_dual).neg_())
        return dy, self.apply(dy)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        r_mu, r_w = r.split(self.m, dim=1)
        coupling = self._d4 - self._d3
        rhs = r_mu - coupling / self._w_diag * r_w
        solved = cholesky_solve(self._chol.mT, rhs)
        border = solved.sum(dim=1, keepdim=True) / self._ones_norm
        d_mu = solved - border * self._ones_solved
        d_w = (r_w - coupling * d_mu) / self._w_diag
        return torch.cat((d_mu, d_w), dim=1)


@dataclass
class RowSpaceSolution:
    """The full problem's solution: all AND and OR coefficients, the constant and the row multipliers."""

    both: torch.Tensor  # (batch, 2^(n+1)): AND coefficients by mask, then OR; empty sets zero
    constant: torch.Tensor  # (batch,)
    mu: torch.Tensor  # (batch, 2^n), centred
    iterations: int


def solve_full_dual(
    v: torch.Tensor, tau: torch.Tensor, costs: torch.Tensor, tol: float = 1e-7, max_iter: int = 60
) -> RowSpaceSolution:
    """Solve the extraction LP over every AND and OR interaction through its dual.

    ``v`` is ``(batch, 2^n)``, ``tau`` ``(batch,)`` and ``costs`` ``(batch, 2^(n+1))`` (the price
    of each AND then OR interaction; the empty sets' entries are ignored). The problem is scaled
    so that the centred ``v`` has unit maximum, solved, and scaled back.

    Example:
        >>> v = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)  # AND of two players
        >>> tau, costs = torch.tensor([1e-9], dtype=torch.float64), torch.ones(1, 8, dtype=torch.float64)
        >>> solution = solve_full_dual(v, tau, costs)
        >>> [abs(round(float(x), 4)) for x in solution.both[0, :4]]  # AND coefficients: only {0, 1}
        [0.0, 0.0, 0.0, 1.0]
    """
    centred = v - v.mean(dim=1, keepdim=True)
    scale = centred.abs().amax(dim=1).clamp(min=torch.finfo(v.dtype).tiny)
    problem = _DualProblem(centred / scale[:, None], tau / scale, costs)
    y, _, z, iterations = mehrotra(problem, tol, max_iter, ROW_SPACE_CORRECTORS)
    z1, z2, _, _ = problem.split(z)
    both = (z2 - z1) * scale[:, None]
    both[:, 0] = 0.0
    both[:, problem.m] = 0.0
    # The constant that centres the remaining residual inside the box.
    residual = v - problem.combine(both)
    constant = 0.5 * (residual.amax(dim=1) + residual.amin(dim=1))
    mu = y[:, : problem.m]
    return RowSpaceSolution(both=both, constant=constant, mu=mu, iterations=iterations)
