"""Weighted Gram matrices of AND/OR trigger columns from lattice sums, without the dense columns.

For row weights ``r`` over masks ``T`` and trigger columns ``c_i`` (AND: ``1[S_i subset of T]``,
OR: ``1[S_i n T nonempty]``), ``(C' diag(r) C)[i, j] = sum_T r_T c_i(T) c_j(T)`` is a sum of ``r``
over a set of the Boolean lattice that only depends on the pair of sets:

* AND, AND: supersets of ``S_i u S_j``, the superset sum ``U(S_i u S_j)``;
* OR, OR: masks meeting both, ``total - L(N \\ S_i) - L(N \\ S_j) + L(N \\ (S_i u S_j))`` with the
  subset sum ``L``;
* AND, OR: ``U(S_i)`` minus, when ``S_i`` and ``S_j`` are disjoint, the interval sum over
  ``S_i subset of T subset of N \\ S_j``.

The superset and subset sums are butterflies (O(n 2^n)); interval sums come either from one table
over ``3^n`` ternary patterns (each player fixed absent, fixed present, or free), built by the
same kind of butterfly, or, when the columns' sets are of low order, by inclusion-exclusion over
the superset or subset sums (:mod:`._interval_terms`, ``2^min(|S_i|, |S_j|)`` terms per pair).
Forming a ``k x k`` Gram matrix then costs ``O(n 3^n + k^2)`` at most instead of the
``O(2^n k^2)`` of a dense product, which is what makes interior-point steps cheap.
"""

from __future__ import annotations

import torch

from lightning_interactions.extraction._buffers import kept
from lightning_interactions.extraction._interval_terms import IntervalTerms, count_terms
from lightning_interactions.extraction.transforms import inverse_and_interactions, inverse_and_transpose

# The inclusion-exclusion route of :mod:`._interval_terms` is taken while it reads at most this many
# entries per entry of the 3^n interval table it replaces (gathers cost more than the butterfly's
# block writes; calibrated by benchmarks/bench_gram.py).
TERMS_PER_TABLE_ENTRY = 0.4


def interval_sums(
    weights: torch.Tensor, n: int, out: torch.Tensor | None = None, scratch: torch.Tensor | None = None
) -> torch.Tensor:
    """Sums of ``weights`` over every interval of the lattice, indexed by ternary patterns.

    Pattern digit ``d_b`` (weight ``3^b``) is 0 when player ``b`` is fixed absent, 1 when fixed
    present and 2 when free; the entry is the sum over masks matching the pattern. ``(batch,
    3^n)`` from ``(batch, 2^n)``, written into ``out`` when given (its rows must be contiguous).
    ``scratch``, a flat tensor of at least ``scratch_size(batch, n)`` entries, holds the steps in
    between; pass one that lives as long as the caller repeats the call.
    """
    batch = weights.shape[0]
    if out is None:
        out = weights.new_empty(batch, 3**n)
    if n == 0:
        return out.copy_(weights)
    if scratch is None:
        scratch = weights.new_empty(scratch_size(batch, n))
    # Each step splits the fastest-varying remaining bit into its three digits and moves that
    # digit to the front, so after n steps the digits sit in mask order (bit 0 fastest). Every
    # write is a plain block, not an in-place add on a strided n-dimensional view (much slower).
    # The steps alternate between ``out`` and ``scratch`` so that the last one lands in ``out``:
    # fresh buffers for the steps in between would cost more than the sums themselves.
    current = weights.reshape(batch, -1, 2)
    for step in range(n):
        rest = current.shape[1]
        if (n - 1 - step) % 2 == 0:
            blocks = out[:, : 3 * rest].view(batch, 3, rest)
        else:
            blocks = scratch[: batch * 3 * rest].view(batch, 3, rest)
        blocks[:, 0] = current[..., 0]
        blocks[:, 1] = current[..., 1]
        torch.add(current[..., 0], current[..., 1], out=blocks[:, 2])
        if step < n - 1:
            current = blocks.view(batch, -1, 2)
    return out


def scratch_size(batch: int, n: int) -> int:
    """Entries of the ``scratch`` of :func:`interval_sums`: its largest step but the last."""
    return batch * 2 * 3 ** max(n - 1, 0)


def _ternary_code(sets: torch.Tensor, n: int) -> torch.Tensor:
    """``sum_{b in S} 3^b`` for every set ``S`` (an integer tensor of masks)."""
    code = torch.zeros_like(sets)
    for bit in range(n):
        code += ((sets >> bit) & 1) * 3**bit
    return code


class _GramPlan:
    """Where each Gram entry reads its lattice sums, worked out once per set of columns.

    An entry is one value of a table per sample, ``[U, L, intervals, total, 0]`` (superset sums,
    subset sums, interval sums), times a sign, plus terms that depend on one column only:

    * AND-AND ``U(S_i u S_j)``; OR-OR ``L(N \\ (S_i u S_j))``; mixed ``-interval`` when the sets
      are disjoint, else 0: one gather of ``k^2`` entries (from the batch's tables laid end to
      end) and a sign. Where inclusion-exclusion reads fewer entries than the ``3^n`` table holds
      (``TERMS_PER_TABLE_ENTRY``), the tables have no interval part: the interval sums of the
      disjoint mixed pairs (:class:`._interval_terms.IntervalTerms`) are appended, negated,
      after the tables, and the same gather reads them (writing them in afterwards, at two
      scattered places each, took a fifth of the Gram's time);
    * with ``o`` the OR indicator and ``g_j`` equal to ``U(S_j)`` for an AND column and
      ``-L(N \\ S_j)`` for an OR column, the rest of the formulas of the module docstring is
      ``total o_i o_j + g_i o_j + o_i g_j = (g_i + total o_i) o_j + o_i g_j``, one batched
      product of inner size 2.

    Four gathers per step (one per term) took twice as long. The table is written into one
    buffer that is kept between steps (fresh ones of this size cost more than the butterflies
    that fill them).
    """

    def __init__(self, sets: torch.Tensor, is_or: torch.Tensor, n: int) -> None:
        self.n = n
        size, full = 2**n, 2**n - 1
        batch, k = sets.shape
        self.k = k
        union = sets[:, :, None] | sets[:, None, :]
        or_i, or_j = is_or[:, :, None], is_or[:, None, :]
        mixed_disjoint = (or_i != or_j) & ((sets[:, :, None] & sets[:, None, :]) == 0)
        # The interval sums of the disjoint mixed pairs come from inclusion-exclusion over U and L
        # (:mod:`._interval_terms`) where that reads fewer entries than a 3^n table holds.
        rows, i, j = (~or_i & or_j & mixed_disjoint).nonzero(as_tuple=True)
        and_sets, or_sets = sets[rows, i], sets[rows, j]
        use_terms = count_terms(and_sets, or_sets, n) <= TERMS_PER_TABLE_ENTRY * batch * 3**n
        intervals = 0 if use_terms else 3**n
        total = 2 * size + intervals
        zero = total + 1
        self.table_size = total + 2
        self._terms: IntervalTerms | None = None
        if use_terms:
            self._terms = IntervalTerms(rows, and_sets, or_sets, n, self.table_size)
            # Pair p's sum is the slot-th result of IntervalTerms.sums, read at (i, j) and (j, i).
            slot = torch.empty_like(self._terms.order)
            slot[self._terms.order] = torch.arange(len(slot), device=slot.device)
            interval = torch.full_like(union, zero)
            past_tables = batch * self.table_size - rows * self.table_size  # undone by the offset
            interval[rows, i, j] = past_tables + slot
            interval[rows, j, i] = past_tables + slot
        else:
            code = _ternary_code(sets, n)
            # Pattern of the interval [S_a, N \ S_o] for an AND set a and a disjoint OR set o:
            # digit 1 on S_a, 0 on S_o, 2 elsewhere, i.e. (3^n - 1) - t(S_a) - 2 t(S_o).
            pattern = (3**n - 1) - code[:, :, None] - 2 * code[:, None, :]
            interval = 2 * size + torch.where(or_j, pattern, pattern.transpose(1, 2))
        index = torch.where(or_i & or_j, size + (full ^ union), union)  # L(N \ union) or U(union)
        index = torch.where(or_i != or_j, torch.where(mixed_disjoint, interval, zero), index)
        offset = torch.arange(batch, device=sets.device)[:, None, None] * self.table_size
        self.index = (index + offset).reshape(-1)
        # The table route negates the interval entries after the gather (per dtype, made once).
        self._negated = None if use_terms else mixed_disjoint
        self._sign: torch.Tensor | None = None
        self.is_or = is_or
        # Where each column reads g_j: U(S_j) for AND, L(N \ S_j) (negated below) for OR.
        self.single = torch.where(is_or, size + (full ^ sets), sets)
        self._table: torch.Tensor | None = None
        self._scratch: torch.Tensor | None = None

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        batch, size = weights.shape
        table = self._table = kept(self._table, (batch, self.table_size), weights)
        table[:, :size] = inverse_and_transpose(weights)  # U: superset sums
        subset = table[:, size : 2 * size]
        subset.copy_(inverse_and_interactions(weights))  # L: subset sums
        if self._terms is None:
            self._scratch = kept(self._scratch, (scratch_size(batch, self.n),), weights, grow_only=True)
            interval_sums(weights, self.n, out=table[:, 2 * size : -2], scratch=self._scratch)
        total = subset[:, -1:].clone()
        table[:, -2] = total[:, 0]
        table[:, -1] = 0
        if self._terms is None:
            gram = table.view(-1).index_select(0, self.index).view(batch, self.k, self.k)
            if self._sign is None or self._sign.dtype != gram.dtype:
                self._sign = 1.0 - 2.0 * self._negated.to(gram.dtype)
            gram.mul_(self._sign)
        else:
            source = torch.cat((table.view(-1), self._terms.sums(table).neg_()))
            gram = source.index_select(0, self.index).view(batch, self.k, self.k)
        o = self.is_or.to(gram.dtype)
        g = table.gather(1, self.single)
        g = torch.where(self.is_or, -g, g)
        gram.baddbmm_(torch.stack((g + total * o, o), dim=2), torch.stack((o, g), dim=1))
        return gram


def trigger_gram(weights: torch.Tensor, sets: torch.Tensor, is_or: torch.Tensor, n: int) -> torch.Tensor:
    """``C' diag(weights) C`` for the trigger columns ``C`` of ``(sets, is_or)``, per batch row.

    ``weights`` is ``(batch, 2^n)``; ``sets`` and ``is_or`` are ``(batch, k)`` (an AND column of
    the empty set is the constant). Returns ``(batch, k, k)``.
    """
    return _GramPlan(sets, is_or, n).gram(weights)


class TriggerColumns:
    """The trigger columns of chosen AND and OR interactions as an LP column operator.

    ``sets`` and ``is_or`` are ``(batch, k + 1)``; column 0 must be the constant (AND of the empty
    set) and no OR column may be empty. Products go through the fast transforms, so the
    ``(batch, 2^n, k + 1)`` matrix itself is never built.
    """

    def __init__(self, sets: torch.Tensor, is_or: torch.Tensor, n: int) -> None:
        self.sets, self.is_or, self.n = sets, is_or, n
        self.num_rows, self.num_columns = 2**n, sets.shape[1]
        self._plan = _GramPlan(sets, is_or, n)
        # Column j's entry in a (batch, 2 * 2^n) stack of an AND half and an OR half.
        self._stacked = sets + is_or.long() * self.num_rows

    # Both products run their AND and their OR half through one butterfly over a (batch, 2, 2^n)
    # stack: the butterflies of these sizes cost their per-pass overhead more than their
    # arithmetic, and a product is called several times per interior-point step.

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_j x_j c_j(T)`` for every mask ``T``."""
        batch, rows = x.shape[0], self.num_rows
        coefficients = x.new_zeros(batch, 2 * rows).scatter_add_(1, self._stacked, x)
        subset = inverse_and_interactions(coefficients.view(batch * 2, rows)).view(batch, 2, rows)
        # Moebius of the OR coefficients on complements: sum_{S meets T} x_S = total - sum_{S in N\T}.
        or_total = coefficients[:, rows:].sum(dim=1, keepdim=True)
        return subset[:, 0] + or_total - subset[:, 1].flip(1)

    def rmatvec(self, z: torch.Tensor) -> torch.Tensor:
        """``sum_T z_T c_j(T)`` for every column ``j``."""
        batch, rows = z.shape[0], self.num_rows
        # Superset sums of z (AND columns) and of z on complements, whose superset sum at S is
        # the subset sum of z at N \ S (OR columns: total minus the masks that miss S).
        both = torch.stack((z, z.flip(1)), dim=1).view(batch * 2, rows)
        superset = inverse_and_transpose(both).view(batch, 2 * rows).gather(1, self._stacked)
        return torch.where(self.is_or, z.sum(dim=1, keepdim=True) - superset, superset)

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        return self._plan.gram(weights)

    def select(self, rows: torch.Tensor) -> TriggerColumns:
        """The same columns for the batch rows ``rows`` (indices) only."""
        return TriggerColumns(self.sets[rows], self.is_or[rows], self.n)
