"""Weighted Gram matrices of AND/OR trigger columns from lattice sums, without the dense columns.

For row weights ``r`` over masks ``T`` and trigger columns ``c_i`` (AND: ``1[S_i subset of T]``,
OR: ``1[S_i n T nonempty]``), ``(C' diag(r) C)[i, j] = sum_T r_T c_i(T) c_j(T)`` is a sum of ``r``
over a set of the Boolean lattice that only depends on the pair of sets:

* AND, AND: supersets of ``S_i u S_j``, the superset sum ``U(S_i u S_j)``;
* OR, OR: masks meeting both, ``total - L(N \\ S_i) - L(N \\ S_j) + L(N \\ (S_i u S_j))`` with the
  subset sum ``L``;
* AND, OR: ``U(S_i)`` minus, when ``S_i`` and ``S_j`` are disjoint, the interval sum over
  ``S_i subset of T subset of N \\ S_j``.

The superset and subset sums are butterflies (O(n 2^n)); interval sums come from one table over
``3^n`` ternary patterns (each player fixed absent, fixed present, or free), built by the same
kind of butterfly. Forming a ``k x k`` Gram matrix then costs ``O(n 3^n + k^2)`` instead of the
``O(2^n k^2)`` of a dense product, which is what makes interior-point steps cheap at ``n = 10``.
"""

from __future__ import annotations

import torch

from lightning_interactions.extraction.transforms import inverse_and_interactions, inverse_and_transpose


def interval_sums(weights: torch.Tensor, n: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Sums of ``weights`` over every interval of the lattice, indexed by ternary patterns.

    Pattern digit ``d_b`` (weight ``3^b``) is 0 when player ``b`` is fixed absent, 1 when fixed
    present and 2 when free; the entry is the sum over masks matching the pattern. ``(batch,
    3^n)`` from ``(batch, 2^n)``, written into ``out`` when given.
    """
    batch = weights.shape[0]
    if out is None:
        out = weights.new_empty(batch, 3**n)
    # Each step splits the fastest-varying remaining bit into its three digits and moves that
    # digit to the front, so after n steps the digits sit in mask order (bit 0 fastest). Every
    # write is a plain block; in-place adds on a strided n-dimensional view were 3x slower.
    if n == 0:
        return out.copy_(weights)
    current = weights.reshape(batch, -1, 2)
    for step in range(n):
        rest = current.shape[1]
        target = out if step == n - 1 else weights.new_empty(batch, 3 * rest)
        blocks = target.view(batch, 3, rest)
        blocks[:, 0] = current[..., 0]
        blocks[:, 1] = current[..., 1]
        torch.add(current[..., 0], current[..., 1], out=blocks[:, 2])
        if step < n - 1:
            current = target.view(batch, -1, 2)
    return out


def _ternary_code(sets: torch.Tensor, n: int) -> torch.Tensor:
    """``sum_{b in S} 3^b`` for every set ``S`` (an integer tensor of masks)."""
    code = torch.zeros_like(sets)
    for bit in range(n):
        code += ((sets >> bit) & 1) * 3**bit
    return code


class _GramPlan:
    """Where each Gram entry reads its lattice sums, worked out once per set of columns.

    Every entry is a signed sum of at most four values of one table per sample,
    ``[U, L, intervals, total, 0]`` (superset sums, subset sums, interval sums), so each
    interior-point step costs the tables plus four gathers of ``k^2`` entries. The table is
    written into one buffer that is kept between steps (fresh ones of this size cost more than
    the butterflies that fill them).
    """

    def __init__(self, sets: torch.Tensor, is_or: torch.Tensor, n: int) -> None:
        self.n = n
        size, full = 2**n, 2**n - 1
        offsets = {"U": 0, "L": size, "I": 2 * size}
        total = 2 * size + 3**n
        zero = total + 1
        self.table_size = total + 2
        union = sets[:, :, None] | sets[:, None, :]
        or_i, or_j = is_or[:, :, None], is_or[:, None, :]
        disjoint = (sets[:, :, None] & sets[:, None, :]) == 0
        code = _ternary_code(sets, n)
        # Pattern of the interval [S_a, N \ S_o] for an AND set a and a disjoint OR set o:
        # digit 1 on S_a, 0 on S_o, 2 elsewhere, i.e. (3^n - 1) - t(S_a) - 2 t(S_o).
        pattern = (3**n - 1) - code[:, :, None] - 2 * code[:, None, :]
        and_row = ~or_i & or_j
        or_row = or_i & ~or_j
        both_or = or_i & or_j
        zeros = torch.full_like(union, zero)

        def pick(*choices: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            out = zeros
            for where, index in choices:
                out = torch.where(where, index, out)
            return out

        complement_i = (full ^ sets)[:, :, None].expand_as(union)
        complement_j = (full ^ sets)[:, None, :].expand_as(union)
        sets_i, sets_j = sets[:, :, None].expand_as(union), sets[:, None, :].expand_as(union)
        interval = offsets["I"] + torch.where(and_row, pattern, pattern.transpose(1, 2))
        batch, k = sets.shape
        self.k = k
        # (index into the table, sign) per term; terms 1 and 2 are always subtracted.
        self.terms = [
            # AND-AND: U(S_i u S_j); OR-OR: the total; mixed: U of the AND set.
            (
                pick(
                    (~or_i & ~or_j, offsets["U"] + union),
                    (both_or, torch.full_like(union, total)),
                    (and_row, offsets["U"] + sets_i),
                    (or_row, offsets["U"] + sets_j),
                ),
                1.0,
            ),
            # OR-OR: -L(N \ S_i) - L(N \ S_j) + L(N \ (S_i u S_j)); mixed: -intervals if disjoint.
            (pick((both_or, offsets["L"] + complement_i), ((and_row | or_row) & disjoint, interval)), -1.0),
            (pick((both_or, offsets["L"] + complement_j)), -1.0),
            (pick((both_or, offsets["L"] + (full ^ union))), 1.0),
        ]
        self.terms = [(index.reshape(batch, k * k), sign) for index, sign in self.terms]
        self._table: torch.Tensor | None = None

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        batch, size = weights.shape
        table = self._table
        if table is None or table.shape[0] != batch or table.dtype != weights.dtype:
            table = self._table = weights.new_empty(batch, self.table_size)
        table[:, :size] = inverse_and_transpose(weights)  # U: superset sums
        subset = table[:, size : 2 * size]
        subset.copy_(inverse_and_interactions(weights))  # L: subset sums
        interval_sums(weights, self.n, out=table[:, 2 * size : -2])
        table[:, -2] = subset[:, -1]  # the total
        table[:, -1] = 0
        (first, _), *rest = self.terms
        gram = table.gather(1, first)
        for index, sign in rest:
            gram.add_(table.gather(1, index), alpha=sign)
        return gram.reshape(batch, self.k, self.k)


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

    def _scatter(self, x: torch.Tensor, family: torch.Tensor) -> torch.Tensor:
        coefficients = x.new_zeros(x.shape[0], self.num_rows)
        return coefficients.scatter_add_(1, self.sets, torch.where(family, x, torch.zeros_like(x)))

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_j x_j c_j(T)`` for every mask ``T``."""
        and_part = inverse_and_interactions(self._scatter(x, ~self.is_or))
        # Moebius of the OR coefficients on complements: sum_{S meets T} x_S = total - sum_{S in N\T}.
        or_coefficients = self._scatter(x, self.is_or)
        or_part = or_coefficients.sum(dim=1, keepdim=True) - inverse_and_interactions(or_coefficients).flip(1)
        return and_part + or_part

    def rmatvec(self, z: torch.Tensor) -> torch.Tensor:
        """``sum_T z_T c_j(T)`` for every column ``j``."""
        full = self.num_rows - 1
        and_part = inverse_and_transpose(z).gather(1, self.sets)
        or_part = z.sum(dim=1, keepdim=True) - inverse_and_interactions(z).gather(1, full ^ self.sets)
        return torch.where(self.is_or, or_part, and_part)

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        return self._plan.gram(weights)
