"""Tests for lightning_interactions.extraction.transforms against the definitions of theory.md section 2.

Every reference here is written from the definitions alone (Python loops over integer masks and
their subsets), never from the butterfly code under test. Integer-valued float64 inputs make
the comparisons exact: every partial sum is an integer well below 2^53, so any order of
summation gives the same bits.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_interactions.extraction.transforms import (
    and_interactions,
    and_transpose,
    inverse_and_interactions,
    inverse_and_transpose,
    inverse_or_interactions,
    inverse_or_transpose,
    kron_butterfly,
    num_players_of,
    or_interactions,
    or_transpose,
    order_index,
)

F64 = torch.float64

FORWARD_INVERSE = [
    (and_interactions, inverse_and_interactions),
    (or_interactions, inverse_or_interactions),
    (and_transpose, inverse_and_transpose),
    (or_transpose, inverse_or_transpose),
]

ALL_TRANSFORMS = [fn for pair in FORWARD_INVERSE for fn in pair]


# ---------------------------------------------------------------------------------------------
# Literal helpers: masks as Python ints, no code from the package under test
# ---------------------------------------------------------------------------------------------


def popcount(mask: int) -> int:
    """Number of players in ``mask``."""
    return bin(mask).count("1")


def is_subset(small: int, big: int) -> bool:
    """True when every player of ``small`` is in ``big``."""
    return small & ~big == 0


def literal_and(v: list[float], n: int) -> list[float]:
    """Harsanyi dividend ``I(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T)``."""
    out = []
    for S in range(2**n):
        total = 0.0
        for T in range(2**n):
            if is_subset(T, S):
                total += (-1) ** (popcount(S) - popcount(T)) * v[T]
        out.append(total)
    return out


def literal_or(v: list[float], n: int) -> list[float]:
    """OR interactions: ``u(T) = v(N \\ T)``, ``I(S) = -sum_{T subset of S} (-1)^{|S|-|T|} u(T)``."""
    full = 2**n - 1
    out = [v[0]]  # I_or(empty) = v(empty)
    for S in range(1, 2**n):
        total = 0.0
        for T in range(2**n):
            if is_subset(T, S):
                total += (-1) ** (popcount(S) - popcount(T)) * v[full - T]  # u(T) = v(N \ T)
        out.append(-total)
    return out


def literal_inverse_and(coef: list[float], n: int) -> list[float]:
    """Values from AND interactions: ``v(T) = sum_{S subset of T} I(S)``."""
    return [sum(coef[S] for S in range(2**n) if is_subset(S, T)) for T in range(2**n)]


def literal_inverse_or(coef: list[float], n: int) -> list[float]:
    """Values from OR interactions: ``v(T) = I(empty) + sum_{S nonempty, S n T nonempty} I(S)``."""
    return [coef[0] + sum(coef[S] for S in range(1, 2**n) if S & T) for T in range(2**n)]


def dense_matrix(literal, n: int) -> torch.Tensor:
    """The ``2^n x 2^n`` matrix of a literal linear map, column ``j`` = image of unit vector ``j``."""
    size = 2**n
    columns = []
    for j in range(size):
        unit = [0.0] * size
        unit[j] = 1.0
        columns.append(literal(unit, n))
    return torch.tensor(columns, dtype=F64).T.contiguous()


def integer_vector(n: int, seed: int, batch: int = 3) -> torch.Tensor:
    """Integer-valued float64 values, so every sum of them is exact."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-50, 51, (batch, 2**n), generator=gen).to(F64)


def as_list(row: torch.Tensor) -> list[float]:
    return [float(x) for x in row]


# ---------------------------------------------------------------------------------------------
# Transforms against the literal subset sums (exact), n = 1 .. 6
# ---------------------------------------------------------------------------------------------

LITERAL_PAIRS = [
    (and_interactions, literal_and),
    (or_interactions, literal_or),
    (inverse_and_interactions, literal_inverse_and),
    (inverse_or_interactions, literal_inverse_or),
]


@pytest.mark.parametrize("n", range(1, 7))
@pytest.mark.parametrize("fast, literal", LITERAL_PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_transform_equals_literal_definition(n, fast, literal):
    v = integer_vector(n, seed=100 + n)
    expected = torch.tensor([literal(as_list(row), n) for row in v], dtype=F64)
    got = fast(v)
    assert got.dtype == F64 and got.shape == v.shape
    assert torch.equal(got, expected)


@pytest.mark.parametrize("n", range(1, 7))
def test_literal_inverses_invert_literal_forwards(n):
    """The literal inverse formulas are the inverse matrices of the literal forward ones."""
    eye = torch.eye(2**n, dtype=F64)
    for forward, inverse in [(literal_and, literal_inverse_and), (literal_or, literal_inverse_or)]:
        assert torch.equal(dense_matrix(inverse, n) @ dense_matrix(forward, n), eye)


TRANSPOSE_PAIRS = [
    (and_transpose, literal_and),
    (or_transpose, literal_or),
    (inverse_and_transpose, literal_inverse_and),
    (inverse_or_transpose, literal_inverse_or),
]


@pytest.mark.parametrize("n", range(1, 7))
@pytest.mark.parametrize("fast, literal", TRANSPOSE_PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_transpose_equals_transposed_literal_matrix(n, fast, literal):
    x = integer_vector(n, seed=200 + n)
    expected = x @ dense_matrix(literal, n)  # rows: (M^T x^T)^T = x M
    assert torch.equal(fast(x), expected)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_transposes_are_adjoints(n):
    """``<A x, y> = <x, A^T y>`` with random float inputs, for the four pairs."""
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(4, 2**n, generator=gen, dtype=F64)
    y = torch.randn(4, 2**n, generator=gen, dtype=F64)
    pairs = [
        (and_interactions, and_transpose),
        (or_interactions, or_transpose),
        (inverse_and_interactions, inverse_and_transpose),
        (inverse_or_interactions, inverse_or_transpose),
    ]
    for forward, transpose in pairs:
        lhs = (forward(x) * y).sum(-1)
        rhs = (x * transpose(y)).sum(-1)
        torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-10)


def test_docstring_example_values():
    v = torch.tensor([[0.0, 1.0, 2.0, 5.0]], dtype=F64)
    assert and_interactions(v).tolist() == [[0.0, 1.0, 2.0, 2.0]]
    # u = v flipped = [5, 2, 1, 0]; Moebius of u = [5, -3, -4, 2]; negated, I(empty) = v(empty).
    assert or_interactions(v).tolist() == [[0.0, 3.0, 4.0, -2.0]]


def test_inputs_are_not_modified():
    v = integer_vector(4, seed=7)
    before = v.clone()
    for fn in ALL_TRANSFORMS:
        fn(v)
        assert torch.equal(v, before), fn.__name__


# ---------------------------------------------------------------------------------------------
# Universal matching (theory.md section 2), n = 1 .. 8
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 9))
def test_universal_matching(n):
    gen = torch.Generator().manual_seed(300 + n)
    size = 2**n
    v = torch.randn(size, generator=gen, dtype=F64) * 3
    g = torch.randn(size, generator=gen, dtype=F64)
    tau = 0.04 * abs(float(v[-1] - v[0]))
    q = (torch.rand(size, generator=gen, dtype=F64) * 2 - 1) * tau
    assert float(q.abs().max()) <= tau
    v_and = 0.5 * (v + q) + g
    v_or = 0.5 * (v + q) - g
    I_and = and_interactions(v_and).tolist()
    I_or = or_interactions(v_or).tolist()
    target = (v + q).tolist()
    for T in range(size):
        total = I_and[0] + I_or[0]
        total += sum(I_and[S] for S in range(1, size) if is_subset(S, T))
        total += sum(I_or[S] for S in range(1, size) if S & T)
        assert abs(total - target[T]) <= 1e-9, (n, T, total, target[T])


# ---------------------------------------------------------------------------------------------
# Helpers, shapes, batching, large n, errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(0, 13))
def test_order_index_is_popcount(n):
    order = order_index(n)
    assert order.shape == (2**n,)
    assert order.tolist() == [popcount(m) for m in range(2**n)]


@pytest.mark.parametrize("n", [0, 1, 5, 20])
def test_num_players_of(n):
    assert num_players_of(torch.zeros(2, 2**n)) == n


def test_order_index_rejects_negative_n():
    with pytest.raises(ValueError, match="non-negative"):
        order_index(-1)


@pytest.mark.parametrize("fn", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_batching_over_leading_dims(fn):
    n = 4
    gen = torch.Generator().manual_seed(11)
    v = torch.randn(2, 3, 5, 2**n, generator=gen, dtype=F64)
    got = fn(v)
    assert got.shape == v.shape
    rows = torch.stack([fn(row[None])[0] for row in v.reshape(-1, 2**n)])
    assert torch.equal(got.reshape(-1, 2**n), rows)
    # a single vector without a batch dimension works too
    assert torch.equal(fn(v[0, 0, 0]), rows[0])


@pytest.mark.parametrize("forward, inverse", FORWARD_INVERSE, ids=lambda f: f.__name__)
def test_round_trip_at_n20(forward, inverse):
    n = 20
    gen = torch.Generator().manual_seed(20)
    v = torch.randn(1, 2**n, generator=gen, dtype=F64)
    coef = forward(v)
    assert coef.shape == (1, 2**n)
    back = inverse(coef)
    relative = float((back - v).norm() / v.norm())
    assert relative < 1e-6, relative


def test_float32_keeps_dtype():
    v = torch.randn(2, 2**5, dtype=torch.float32)
    for fn in ALL_TRANSFORMS:
        assert fn(v).dtype == torch.float32, fn.__name__


@pytest.mark.parametrize("fn", ALL_TRANSFORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("size", [3, 6, 12])
def test_rejects_last_dim_not_power_of_two(fn, size):
    with pytest.raises(ValueError, match="2\\^n"):
        fn(torch.zeros(2, size, dtype=F64))


@pytest.mark.parametrize("fn", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_rejects_empty_last_dim(fn):
    with pytest.raises(ValueError, match="2\\^n"):
        fn(torch.zeros(2, 0, dtype=F64))


@pytest.mark.parametrize("fn", ALL_TRANSFORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_rejects_integer_tensors(fn, dtype):
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.ones(2, 8, dtype=dtype))


@pytest.mark.parametrize("fn", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_rejects_bool_tensors(fn):
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.ones(2, 8, dtype=torch.bool))


def test_rejects_scalar():
    with pytest.raises(ValueError, match="scalar"):
        and_interactions(torch.tensor(1.0))


# ---------------------------------------------------------------------------------------------
# kron_butterfly against torch.kron
# ---------------------------------------------------------------------------------------------


def kron_power(factor: torch.Tensor, n: int) -> torch.Tensor:
    """Literal n-fold Kronecker power of a 2x2 matrix."""
    out = torch.ones(1, 1, dtype=factor.dtype)
    for _ in range(n):
        out = torch.kron(out, factor)
    return out


@pytest.mark.parametrize("n", range(1, 7))
def test_kron_butterfly_equals_dense_kron(n):
    gen = torch.Generator().manual_seed(400 + n)
    factor = torch.randn(2, 2, generator=gen, dtype=F64)
    v = torch.randn(5, 2**n, generator=gen, dtype=F64)
    entries = [[float(factor[0, 0]), float(factor[0, 1])], [float(factor[1, 0]), float(factor[1, 1])]]
    expected = v @ kron_power(factor, n).T
    torch.testing.assert_close(kron_butterfly(v, entries), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", range(1, 7))
def test_kron_butterfly_per_row_factor(n):
    gen = torch.Generator().manual_seed(500 + n)
    batch = 4
    factors = torch.randn(batch, 2, 2, generator=gen, dtype=F64)
    v = torch.randn(batch, 2**n, generator=gen, dtype=F64)
    entries = [[factors[:, r, c].view(batch, 1, 1) for c in range(2)] for r in range(2)]
    got = kron_butterfly(v, entries)
    expected = torch.stack([kron_power(factors[b], n) @ v[b] for b in range(batch)])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_kron_butterfly_moebius_factor_is_and_transform():
    v = integer_vector(5, seed=9)
    assert torch.equal(kron_butterfly(v, [[1.0, 0.0], [-1.0, 1.0]]), and_interactions(v))
    assert torch.equal(kron_butterfly(v, [[1.0, 0.0], [1.0, 1.0]]), inverse_and_interactions(v))
    assert torch.equal(kron_butterfly(v, [[1.0, -1.0], [0.0, 1.0]]), and_transpose(v))


# ---------------------------------------------------------------------------------------------
# Hypothesis properties: round trip and linearity, n = 1 .. 8
# ---------------------------------------------------------------------------------------------

_finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def value_vectors(draw, count: int = 1):
    """``count`` float64 vectors of one random length ``2^n``, n in 1..8."""
    n = draw(st.integers(min_value=1, max_value=8))
    size = 2**n
    return [
        torch.tensor(draw(st.lists(_finite, min_size=size, max_size=size)), dtype=F64) for _ in range(count)
    ]


def _tolerance(*vectors: torch.Tensor) -> float:
    """Absolute tolerance for sums of up to 2^n terms of the given magnitude."""
    scale = max(float(v.abs().max()) for v in vectors) + 1.0
    return 1e-12 * scale * vectors[0].shape[-1] * 4


@settings(max_examples=40, deadline=None)
@given(vectors=value_vectors(), which=st.integers(min_value=0, max_value=3))
def test_property_round_trip(vectors, which):
    (v,) = vectors
    forward, inverse = FORWARD_INVERSE[which]
    back = inverse(forward(v))
    assert torch.allclose(back, v, rtol=0.0, atol=_tolerance(v) * v.shape[-1])
    again = forward(inverse(v))
    assert torch.allclose(again, v, rtol=0.0, atol=_tolerance(v) * v.shape[-1])


@settings(max_examples=40, deadline=None)
@given(
    vectors=value_vectors(count=2),
    a=st.floats(min_value=-10, max_value=10, allow_nan=False),
    b=st.floats(min_value=-10, max_value=10, allow_nan=False),
    which=st.integers(min_value=0, max_value=len(ALL_TRANSFORMS) - 1),
)
def test_property_linearity(vectors, a, b, which):
    x, y = vectors
    fn = ALL_TRANSFORMS[which]
    lhs = fn(a * x + b * y)
    rhs = a * fn(x) + b * fn(y)
    atol = _tolerance(x, y) * (abs(a) + abs(b) + 1) * math.sqrt(x.shape[-1])
    assert torch.allclose(lhs, rhs, rtol=0.0, atol=atol)


def test_or_transpose_keeps_a_tiny_entry() -> None:
    # The OR transform's row "empty" reads v(empty) only, so dual(empty) must not pass through the
    # butterfly: adding 1.0 to entry N and cancelling it afterwards would round 6.6e-124 away.
    duals = torch.tensor([[1.0, 6.598e-124]], dtype=torch.float64)
    matrix = torch.stack([or_interactions(row) for row in torch.eye(2, dtype=torch.float64)], dim=1)
    assert torch.equal(or_transpose(duals), duals @ matrix)
