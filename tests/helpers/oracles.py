"""The tests' references: the extraction LP solved exactly by HiGHS, and literal definitions.

Every function here is written from a definition (theory.md) or calls an outside solver; none
calls the code under test except where named: ``exact_extraction_optimum``'s default matrices
(the package's transforms), and :func:`every_interaction`, which puts literal sets into the
package's ``TriggerColumns`` container.

* HiGHS: :func:`exact_extraction_optimum` (also used by ``benchmarks/``), and
  :func:`exact_optimum` on transform matrices built by literal loops.
* Literal matrices and sums over masks: :func:`literal_and_matrix`, :func:`literal_or_matrix`,
  :func:`subset_sum_values`, :func:`dense_triggers`, :func:`literal_noise_matrix`,
  :func:`literal_strength_by_order`, :func:`popcount`, :func:`is_subset`.
* Value vectors to extract from: :func:`random_vectors`, :func:`planted_vectors`,
  :func:`mlp_vectors` and ``VECTOR_KINDS``; :func:`every_interaction` (every AND and OR set as a
  column of the restricted problem).

The HiGHS solver needs scipy (in the ``dev`` extras). It builds the ``2^n x 2^n`` transform
matrices, which is what the fast engine avoids; it is meant for checking results up to ``n`` of
about 10. ``pyproject.toml`` puts ``tests/`` on ``sys.path`` for pytest (``from helpers.oracles
import ...``); the benchmarks put it there themselves.

Example:
    >>> import torch
    >>> v = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)  # an AND of two players
    >>> round(exact_extraction_optimum(v, tau=0.0), 6)
    1.0
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_interactions.extraction._gram import TriggerColumns
from lightning_interactions.extraction.transforms import and_interactions, num_players_of, or_interactions


def transform_matrix(transform, n: int) -> np.ndarray:
    """The dense ``2^n x 2^n`` matrix of a linear transform on values over masks."""
    identity = torch.eye(2**n, dtype=torch.float64)
    return transform(identity).T.numpy()


def exact_extraction_optimum(
    v: torch.Tensor | np.ndarray,
    tau: float,
    and_matrix: np.ndarray | None = None,
    or_matrix: np.ndarray | None = None,
) -> float:
    """Optimum of theory.md's extraction LP for one vector ``v`` of ``2^n`` values, by HiGHS.

    Variables ``g`` (free), ``q`` (``|q| <= tau``), ``t_and, t_or >= 0``; minimise the sum of ``t``
    over nonempty sets subject to ``-t <= I(g, q) <= t`` for both families, where
    ``I_and = A (v/2 + q/2 + g)`` and ``I_or = B (v/2 + q/2 - g)``. ``and_matrix`` and
    ``or_matrix`` default to the matrices of this package's transforms; tests pass matrices
    built from the literal definitions instead.
    """
    from scipy import optimize, sparse

    values = torch.as_tensor(v, dtype=torch.float64).numpy()
    n = num_players_of(torch.as_tensor(values))
    size = 2**n
    A = sparse.csr_matrix(and_matrix if and_matrix is not None else transform_matrix(and_interactions, n))[1:]
    B = sparse.csr_matrix(or_matrix if or_matrix is not None else transform_matrix(or_interactions, n))[1:]
    const_and, const_or = A @ (values / 2), B @ (values / 2)
    eye = sparse.identity(size - 1)
    zero = sparse.csr_matrix((size - 1, size - 1))
    rows = sparse.vstack(
        [
            sparse.hstack([A, A / 2, -eye, zero]),
            sparse.hstack([-A, -A / 2, -eye, zero]),
            sparse.hstack([-B, B / 2, zero, -eye]),
            sparse.hstack([B, -B / 2, zero, -eye]),
        ]
    ).tocsc()
    rhs = np.concatenate([-const_and, const_and, -const_or, const_or])
    cost = np.concatenate([np.zeros(2 * size), np.ones(2 * (size - 1))])
    bounds = [(None, None)] * size + [(-tau, tau)] * size + [(0, None)] * (2 * (size - 1))
    solved = optimize.linprog(cost, A_ub=rows, b_ub=rhs, bounds=bounds, method="highs")
    if solved.status != 0:
        raise RuntimeError(f"HiGHS did not solve the extraction LP: {solved.message}")
    return float(solved.fun)


# ---------------------------------------------------------------------------------------------
# Literal definitions: the extraction (theory.md sections 2 and 3)
# ---------------------------------------------------------------------------------------------


def literal_and_matrix(n: int) -> np.ndarray:
    """Row S, column T: (-1)^{|S|-|T|} for T subset of S (the Harsanyi dividend)."""
    size = 2**n
    matrix = np.zeros((size, size))
    for S in range(size):
        for T in range(size):
            if T & S == T:
                matrix[S, T] = (-1) ** (bin(S).count("1") - bin(T).count("1"))
    return matrix


def literal_or_matrix(n: int) -> np.ndarray:
    """OR interactions of theory.md: -Moebius of u(T) = v(N \\ T) for nonempty S, v(empty) at empty."""
    size = 2**n
    full = size - 1
    matrix = np.zeros((size, size))
    moebius = literal_and_matrix(n)
    for S in range(1, size):
        for T in range(size):
            matrix[S, full ^ T] -= moebius[S, T]
    matrix[0, 0] = 1.0
    return matrix


def exact_optimum(v: np.ndarray, tau: float) -> float:
    """HiGHS on the LP of theory.md section 3, with transform matrices from the literal loops above."""
    n = int(np.log2(len(v)))
    return exact_extraction_optimum(v, tau, literal_and_matrix(n), literal_or_matrix(n))


def subset_sum_values(n: int, and_terms: dict[int, float], or_terms: dict[int, float]) -> torch.Tensor:
    """v(T) = sum of AND terms with S subset of T plus OR terms with S meeting T (literal loops)."""
    values = torch.zeros(2**n, dtype=torch.float64)
    for T in range(2**n):
        values[T] = sum(c for S, c in and_terms.items() if S & T == S)
        values[T] += sum(c for S, c in or_terms.items() if S & T)
    return values


def random_vectors(n: int, count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 2**n, generator=generator, dtype=torch.float64)


def planted_vectors(n: int, count: int, seed: int, noise: float) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        sets = rng.choice(np.arange(1, 2**n), size=6, replace=False)
        and_terms = {int(S): float(rng.normal(0, 2)) for S in sets[:4]}
        or_terms = {int(S): float(rng.normal(0, 2)) for S in sets[4:]}
        clean = subset_sum_values(n, and_terms, or_terms)
        out.append(clean + noise * torch.from_numpy(rng.standard_normal(2**n)))
    return torch.stack(out)


def mlp_vectors(n: int, count: int, seed: int) -> torch.Tensor:
    """Log-odds of a small MLP, trained for a few steps on a synthetic task, on all masks."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(256, n, generator=generator)
    labels = ((features[:, 0] * features[:, 1] > 0) | (features[:, 2] > 1)).long()
    # Seeded before the model is built, so that its initial weights (and the vectors) are the same
    # in every process, whatever ran before.
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(n, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(features), labels).backward()
        optimiser.step()
    masks = torch.arange(2**n)
    present = ((masks[:, None] >> torch.arange(n)) & 1).bool()
    out = []
    with torch.no_grad():
        for sample in features[:count]:
            logits = model(torch.where(present, sample, torch.zeros(())).float()).double()
            out.append(logits[:, 1] - logits[:, 0])
    return torch.stack(out)


VECTOR_KINDS = {
    "random": lambda n, seed: random_vectors(n, 2, seed),
    "planted": lambda n, seed: planted_vectors(n, 2, seed, noise=0.05),
    "mlp": lambda n, seed: mlp_vectors(n, 2, seed),
}


def every_interaction(n: int, batch: int) -> TriggerColumns:
    """The constant, then every nonempty AND set, then every nonempty OR set."""
    nonempty = torch.arange(1, 2**n)
    sets = torch.cat((torch.zeros(1, dtype=torch.long), nonempty, nonempty)).expand(batch, -1)
    is_or = torch.cat((torch.zeros(2**n, dtype=torch.bool), torch.ones(2**n - 1, dtype=torch.bool)))
    return TriggerColumns(sets.contiguous(), is_or.expand(batch, -1).contiguous(), n)


def dense_triggers(n: int, sets: torch.Tensor, is_or: torch.Tensor) -> torch.Tensor:
    """Column j: 1[S_j subset of T] (AND) or 1[S_j meets T] (OR), by literal loops over masks."""
    batch, k = sets.shape
    out = torch.zeros(batch, 2**n, k, dtype=torch.float64)
    for b in range(batch):
        for j in range(k):
            S = int(sets[b, j])
            for T in range(2**n):
                out[b, T, j] = float(T & S != 0) if bool(is_or[b, j]) else float(T & S == S)
    return out


# ---------------------------------------------------------------------------------------------
# Literal definitions: masks as Python ints, the noise transform and strength by order
# (theory.md sections 4 and 5)
# ---------------------------------------------------------------------------------------------


def popcount(mask: int) -> int:
    return bin(mask).count("1")


def is_subset(small: int, big: int) -> bool:
    return small & ~big == 0


def literal_noise_matrix(n: int, s: float) -> torch.Tensor:
    """``M[S, S'] = b^|S| a^(|S'| - |S|)`` for ``S subset of S'``, else 0 (theory.md section 5)."""
    b, a = 1.0 / (1.0 + 2.0 * s), s / (1.0 + 2.0 * s)
    size = 2**n
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for S in range(size):
        for Sp in range(size):
            if is_subset(S, Sp):
                matrix[S, Sp] = b ** popcount(S) * a ** (popcount(Sp) - popcount(S))
    return matrix


def literal_strength_by_order(I_and: torch.Tensor, I_or: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``sum_{|S|=k} |I_and(S)| + |I_or(S)|`` for ``k = 1..n``."""
    n = I_and.shape[-1].bit_length() - 1
    strength = torch.zeros(n, dtype=torch.float64)
    for S in range(1, 2**n):
        strength[popcount(S) - 1] += (I_and[:, S].abs() + I_or[:, S].abs()).mean()
    return strength
