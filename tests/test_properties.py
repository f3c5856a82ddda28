"""Property-based tests (hypothesis) for transforms, the noise transform, maskers and output functions.

Every reference here is written from a definition alone: Python loops over integer masks and their
subsets, exact sums (``math.fsum``), ``decimal`` arithmetic, or dense matrices built entry by entry
from the formulas of ``docs/theory.md``. None of them calls the code under test.

Tolerances are forward error bounds, not guesses. A value computed with ``k`` roundings along every
path from the inputs to the output, where each path multiplies its input by a coefficient, is off by
at most ``gamma_k * sum |coefficient * input|`` with ``gamma_k = k u / (1 - k u)`` and ``u`` the unit
roundoff of the dtype (Higham, "Accuracy and Stability of Numerical Algorithms", section 3.1). The
helper :func:`gamma` gives that factor; each test says which ``k`` it uses and why. A wrong sign, a
wrong index or a missing term makes an error of the size of the inputs, far above these bounds.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_interactions.analysis.strength import (
    complexity,
    per_sample_strength,
    signed_strength,
    strength_shape,
)
from lightning_interactions.analysis.theory import (
    inverse_noise_transform,
    noise_transform,
    noise_transform_or,
)
from lightning_interactions.engine.outputs import binary_logit, log_odds, regression
from lightning_interactions.extraction.transforms import (
    and_interactions,
    and_transpose,
    inverse_and_interactions,
    inverse_and_transpose,
    inverse_or_interactions,
    inverse_or_transpose,
    kron_butterfly,
    or_interactions,
    or_transpose,
    order_index,
)
from lightning_interactions.masking import (
    CallableMasker,
    FeatureMasker,
    PatchMasker,
    PointCloudMasker,
    TokenMasker,
)

F64 = torch.float64
F32 = torch.float32

# Few examples per property: the file as a whole must stay near 30 s on one shared core.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unit_roundoff(dtype: torch.dtype) -> float:
    """Half the machine epsilon: the largest relative error of one rounding in ``dtype``."""
    return torch.finfo(dtype).eps / 2


def gamma(k: int, dtype: torch.dtype) -> float:
    """Higham's ``gamma_k = k u / (1 - k u)``: the relative error bound of ``k`` roundings."""
    ku = k * unit_roundoff(dtype)
    return ku / (1 - ku)


def popcount(mask: int) -> int:
    return bin(mask).count("1")


def is_subset(small: int, big: int) -> bool:
    return small & ~big == 0


# ---------------------------------------------------------------------------------------------
# Literal matrices of the transforms, entry by entry from theory.md section 2
# ---------------------------------------------------------------------------------------------


def and_entry(n: int, S: int, T: int) -> float:
    """``I(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T)``."""
    return float((-1) ** (popcount(S) - popcount(T))) if is_subset(T, S) else 0.0


def inverse_and_entry(n: int, T: int, S: int) -> float:
    """``v(T) = sum_{S subset of T} I(S)``."""
    return 1.0 if is_subset(S, T) else 0.0


def or_entry(n: int, S: int, T: int) -> float:
    """``I(empty) = v(empty)``; ``I(S) = -sum_{R subset of S} (-1)^{|S|-|R|} v(N \\ R)`` otherwise."""
    if S == 0:
        return 1.0 if T == 0 else 0.0
    R = (2**n - 1) ^ T  # v(T) enters through u(R) = v(N \ R) with T = N \ R
    return -float((-1) ** (popcount(S) - popcount(R))) if is_subset(R, S) else 0.0


def inverse_or_entry(n: int, T: int, S: int) -> float:
    """``v(T) = I(empty) + sum_{S nonempty, S n T nonempty} I(S)``."""
    return 1.0 if S == 0 or (S & T) else 0.0


@functools.cache
def literal_matrix(name: str, n: int) -> tuple[tuple[float, ...], ...]:
    """The ``2^n x 2^n`` matrix of a transform as nested tuples; transposes swap the indices."""
    entry = {
        "and": and_entry,
        "inverse_and": inverse_and_entry,
        "or": or_entry,
        "inverse_or": inverse_or_entry,
    }
    base, transposed = name.removesuffix("_T"), name.endswith("_T")
    size = 2**n
    rows = []
    for r in range(size):
        rows.append(tuple(entry[base](n, c, r) if transposed else entry[base](n, r, c) for c in range(size)))
    return tuple(rows)


def dense(name: str, n: int) -> torch.Tensor:
    return torch.tensor(literal_matrix(name, n), dtype=F64)


def exact_apply(name: str, n: int, x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` times the literal matrix, each entry an exactly rounded float64 sum (fsum)."""
    matrix = literal_matrix(name, n)
    out = [[math.fsum(a * v for a, v in zip(row, xs) if a) for row in matrix] for xs in x.double().tolist()]
    return torch.tensor(out, dtype=F64).reshape(x.shape)


# Transform under test, the name of its literal matrix, and roundings per path. The AND family is a
# pure +-1 butterfly: n additions per path. The OR family adds a flip and a negation (exact), one extra
# addition for the entries fixed by hand, and inverse_or's sum of all 2^n entries: bound it by 2^n.
TRANSFORMS = {
    "and_interactions": (and_interactions, "and"),
    "inverse_and_interactions": (inverse_and_interactions, "inverse_and"),
    "and_transpose": (and_transpose, "and_T"),
    "inverse_and_transpose": (inverse_and_transpose, "inverse_and_T"),
    "or_interactions": (or_interactions, "or"),
    "inverse_or_interactions": (inverse_or_interactions, "inverse_or"),
    "or_transpose": (or_transpose, "or_T"),
    "inverse_or_transpose": (inverse_or_transpose, "inverse_or_T"),
}
INVERSES = {
    "and_interactions": "inverse_and_interactions",
    "or_interactions": "inverse_or_interactions",
    "and_transpose": "inverse_and_transpose",
    "or_transpose": "inverse_or_transpose",
}


def roundings(name: str, n: int) -> int:
    return n + 2 if "and" in TRANSFORMS[name][1] else n + 2 + 2**n


def error_bound(name: str, n: int, magnitude: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bound on ``|computed - exact|`` per entry for inputs of absolute value ``magnitude`` (float64).

    ``gamma_k (|A| |x| + sum |x|)``: the second term covers inverse_or's total sum, which feeds every
    entry, and the fixed-by-hand entries of the OR family; it is redundant but harmless for AND.
    """
    matrix = dense(TRANSFORMS[name][1], n).abs()
    k = roundings(name, n)
    spread = magnitude @ matrix.T + magnitude.sum(dim=-1, keepdim=True)
    return gamma(k, dtype) * spread + torch.finfo(dtype).tiny * k


def finite_floats(dtype: torch.dtype, bound: float) -> st.SearchStrategy[float]:
    width = 32 if dtype == F32 else 64
    return st.floats(-bound, bound, allow_nan=False, allow_subnormal=False, width=width)


@st.composite
def value_batches(draw, dtype: torch.dtype = F64, max_n: int = 6, count: int = 1) -> tuple[int, list]:
    """A random ``n`` in 0..max_n and ``count`` batches ``(batch, 2^n)`` of one random batch size.

    ``n = 0`` (one value, the empty set only) is the edge case; 1..max_n are the real ones.
    """
    n = draw(st.integers(0, max_n))
    batch = draw(st.integers(1, 3))
    # Mixed magnitudes make cancellation likely, which is where a bad bound or bug would show.
    bound = draw(st.sampled_from([1.0, 1e3, 1e6]))
    values = st.lists(finite_floats(dtype, bound), min_size=batch * 2**n, max_size=batch * 2**n)
    return n, [torch.tensor(draw(values), dtype=dtype).reshape(batch, 2**n) for _ in range(count)]


NAMES = st.sampled_from(sorted(TRANSFORMS))
DTYPES = st.sampled_from([F64, F32])


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------


@FAST
@given(data=st.data(), name=NAMES, dtype=DTYPES)
def test_transform_agrees_with_literal_subset_sums(data, name, dtype):
    n, (x,) = data.draw(value_batches(dtype))
    fn, matrix = TRANSFORMS[name]
    got = fn(x)
    assert got.shape == x.shape and got.dtype == dtype
    exact = exact_apply(matrix, n, x)
    # One more rounding than the bound covers: the final store of the result into ``dtype``.
    bound = error_bound(name, n, x.double().abs(), dtype) + unit_roundoff(dtype) * exact.abs()
    err = (got.double() - exact).abs()
    assert bool((err <= bound).all()), (name, n, float((err - bound).max()))


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(INVERSES)), dtype=DTYPES)
def test_transform_round_trip_both_ways(data, name, dtype):
    n, (x,) = data.draw(value_batches(dtype))
    inverse = INVERSES[name]
    for first, second in ((name, inverse), (inverse, name)):
        back = TRANSFORMS[second][0](TRANSFORMS[first][0](x))
        # The first map's error (bound e1) goes through the second map's |B|; the second map then adds
        # its own error on an input of size |A| |x|.
        magnitude = x.double().abs()
        e1 = error_bound(first, n, magnitude, dtype)
        middle = magnitude @ dense(TRANSFORMS[first][1], n).abs().T
        e2 = error_bound(second, n, middle + e1, dtype)
        bound = e1 @ dense(TRANSFORMS[second][1], n).abs().T + e2
        err = (back.double() - x.double()).abs()
        assert bool((err <= bound).all()), (first, second, n, float((err - bound).max()))


@FAST
@given(
    data=st.data(),
    name=NAMES,
    dtype=DTYPES,
    a=st.floats(-10, 10, allow_nan=False, width=32),
    b=st.floats(-10, 10, allow_nan=False, width=32),
)
def test_transform_is_linear(data, name, dtype, a, b):
    n, (x, y) = data.draw(value_batches(dtype, count=2))
    fn = TRANSFORMS[name][0]
    lhs = fn(a * x + b * y)
    rhs = a * fn(x) + b * fn(y)
    # Both sides are the exact A (a x + b y) up to the transform's bound on inputs of size
    # |a x| + |b y|, with 3 more roundings for the scalings and the sum: twice that covers both.
    magnitude = abs(a) * x.double().abs() + abs(b) * y.double().abs()
    k = roundings(name, n) + 3
    matrix = dense(TRANSFORMS[name][1], n).abs()
    spread = magnitude @ matrix.T + magnitude.sum(dim=-1, keepdim=True)
    bound = 2 * gamma(k, dtype) * spread + torch.finfo(dtype).tiny * k
    err = (lhs.double() - rhs.double()).abs()
    assert bool((err <= bound).all()), (name, n, float((err - bound).max()))


@FAST
@given(
    data=st.data(), name=st.sampled_from(["and_interactions", "or_interactions", "inverse_and_interactions"])
)
def test_transposes_are_the_literal_transposed_matrices(data, name):
    """``<A x, y> = <x, A^T y>`` with exact inner products (float64 inputs, fsum).

    Each side is off by its transform's error bound (:func:`error_bound`) weighted by the other
    vector, plus the single rounding of each fsum. (This test found that or_transpose once added
    ``y(empty)`` into entry ``N`` inside the butterfly and cancelled it afterwards, losing tiny
    entries there; see ``test_or_transpose_keeps_a_tiny_entry`` in extraction/test_transforms.py.)
    """
    n, (x, y) = data.draw(value_batches(F64, count=2))
    transpose_name = name.replace("_interactions", "_transpose")
    forward, transpose = TRANSFORMS[name][0], TRANSFORMS[transpose_name][0]
    lhs = [math.fsum(p * q for p, q in zip(r, s)) for r, s in zip(forward(x).tolist(), y.tolist())]
    rhs = [math.fsum(p * q for p, q in zip(r, s)) for r, s in zip(x.tolist(), transpose(y).tolist())]
    forward_error = (error_bound(name, n, x.abs(), F64) * y.abs()).sum(dim=-1)
    transpose_error = (x.abs() * error_bound(transpose_name, n, y.abs(), F64)).sum(dim=-1)
    u = unit_roundoff(F64)
    for left, right, e1, e2 in zip(lhs, rhs, forward_error.tolist(), transpose_error.tolist()):
        assert abs(left - right) <= (e1 + e2) * (1 + 4 * u) + u * (abs(left) + abs(right)), (n, left, right)


@settings(max_examples=13, deadline=None)
@given(n=st.integers(0, 12))
def test_order_index_is_the_popcount(n):
    order = order_index(n)
    assert order.dtype == torch.int64 and order.shape == (2**n,)
    assert order.tolist() == [popcount(m) for m in range(2**n)]


@settings(max_examples=10, deadline=None)
@given(n=st.integers(-1000, -1))
def test_order_index_rejects_every_negative_n(n):
    with pytest.raises(ValueError, match="non-negative"):
        order_index(n)


def literal_kron(factor: list[list[float]], n: int, row: list[float]) -> tuple[list[float], list[float]]:
    """``out[S] = sum_T prod_i factor[bit_i(S)][bit_i(T)] v[T]`` and the same sum over absolute values."""
    out, spread = [], []
    for S in range(2**n):
        terms = []
        for T in range(2**n):
            coefficient = 1.0
            for i in range(n):
                coefficient *= factor[(S >> i) & 1][(T >> i) & 1]
            terms.append(coefficient * row[T])
        out.append(math.fsum(terms))
        spread.append(math.fsum(abs(t) for t in terms))
    return out, spread


@FAST
@given(data=st.data(), per_row=st.booleans())
def test_kron_butterfly_agrees_with_literal_kronecker_power(data, per_row):
    n, (x,) = data.draw(value_batches(F64, max_n=5))
    entry = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
    factors = [[[data.draw(entry) for _ in range(2)] for _ in range(2)] for _ in range(x.shape[0])]
    if per_row:
        table = torch.tensor(factors, dtype=F64)  # (batch, 2, 2)
        got = kron_butterfly(x, [[table[:, r, c].view(-1, 1, 1) for c in range(2)] for r in range(2)])
    else:
        factors = [factors[0]] * x.shape[0]
        got = kron_butterfly(x, factors[0])
    # Butterfly: a product and a sum per stage (2n roundings); literal: n products (n roundings).
    tolerance = gamma(3 * n + 1, F64)
    for row, factor, computed in zip(x.tolist(), factors, got.tolist()):
        exact, spread = literal_kron(factor, n, row)
        for e, s, c in zip(exact, spread, computed):
            assert abs(c - e) <= tolerance * s + 1e-300


# ---------------------------------------------------------------------------------------------
# The noise transform M(s) (theory.py)
# ---------------------------------------------------------------------------------------------


def literal_noise(n: int, s: float, w: list[float]) -> tuple[list[float], list[float]]:
    """``w^_S = b^|S| sum_{S' superset S} a^(|S'|-|S|) w*_S'`` and the same sum over absolute values."""
    b = 1.0 / (1.0 + 2.0 * s)
    a = s * b
    out, spread = [], []
    for S in range(2**n):
        terms = [
            b ** popcount(S) * a ** (popcount(T) - popcount(S)) * w[T] for T in range(2**n) if is_subset(S, T)
        ]
        out.append(math.fsum(terms))
        spread.append(math.fsum(abs(t) for t in terms))
    return out, spread


def kron_abs(factor: list[list[float]], n: int) -> torch.Tensor:
    """Dense ``|factor|^{(x) n}`` with bit 0 as the fastest index (torch.kron puts the last factor there)."""
    out = torch.ones(1, 1, dtype=F64)
    for _ in range(n):
        out = torch.kron(torch.tensor(factor, dtype=F64).abs(), out)
    return out


def noise_factor(s: float) -> list[list[float]]:
    return [[1.0, s / (1 + 2 * s)], [0.0, 1 / (1 + 2 * s)]]


def inverse_noise_factor(s: float) -> list[list[float]]:
    return [[1.0, -s], [0.0, 1 + 2 * s]]


LEVELS = st.one_of(
    st.just(0.0),
    st.floats(0, 3, allow_nan=False, allow_subnormal=False),
    st.floats(3, 1e3, allow_nan=False),
)


@FAST
@given(data=st.data(), s=LEVELS)
def test_noise_transform_agrees_with_literal_formula(data, s):
    n, (w,) = data.draw(value_batches(F64, max_n=5))
    got = noise_transform(w, s)
    assert got.shape == w.shape and got.dtype == F64
    # Each butterfly stage costs a product and a sum; a, b cost 2 roundings; the literal's power,
    # products and the 1 + 2s that both share add about n + 4 more. 4n + 8 covers all.
    tolerance = gamma(4 * n + 8, F64)
    for row, computed in zip(w.tolist(), got.tolist()):
        exact, spread = literal_noise(n, s, row)
        for e, sp, c in zip(exact, spread, computed):
            assert abs(c - e) <= tolerance * sp + 1e-300, (n, s, c, e)


@FAST
@given(data=st.data())
def test_noise_transform_with_a_level_per_row_equals_row_by_row(data):
    n, (w,) = data.draw(value_batches(F64, max_n=5))
    levels = [data.draw(LEVELS) for _ in range(w.shape[0])]
    got = noise_transform(w, torch.tensor(levels, dtype=F64))
    back = inverse_noise_transform(w, torch.tensor(levels, dtype=F64))
    for row, s in enumerate(levels):
        # The same IEEE operations on the same numbers, only batched: equal to the last bit.
        assert torch.equal(got[row], noise_transform(w[row], s))
        assert torch.equal(back[row], inverse_noise_transform(w[row], s))


@FAST
@given(data=st.data(), dtype=DTYPES)
def test_zero_noise_is_exactly_the_identity(data, dtype):
    _, (w,) = data.draw(value_batches(dtype))
    # Factor [[1, 0], [0, 1]]: every product is by 1 or 0 and every sum adds a zero, so no rounding.
    assert torch.equal(noise_transform(w, 0.0), w)
    assert torch.equal(inverse_noise_transform(w, 0.0), w)
    assert torch.equal(noise_transform(w, torch.zeros(w.shape[0], dtype=dtype)), w)


@FAST
@given(data=st.data(), s1=LEVELS, s2=LEVELS)
def test_noise_semigroup_law(data, s1, s2):
    """``M(s1) M(s2)^{-1} = M((s1 - s2) / (1 + 2 s2))`` for ``s1 >= s2``."""
    s1, s2 = max(s1, s2), min(s1, s2)
    n, (w,) = data.draw(value_batches(F64, max_n=5))
    left = noise_transform(inverse_noise_transform(w, s2), s1)
    t = (s1 - s2) / (1 + 2 * s2)
    right = noise_transform(w, t)
    # Bound: each side's roundings (4n + 8 per transform, as above) on the absolute-value matrices of
    # the path it takes; t itself carries 3 roundings, which perturb M(t) by about 3u n relative.
    magnitude = w.abs()
    inverse_abs = kron_abs(inverse_noise_factor(s2), n)
    path_left = (magnitude @ inverse_abs.T) @ kron_abs(noise_factor(s1), n).T
    path_right = magnitude @ kron_abs(noise_factor(t), n).T
    bound = gamma(8 * n + 20, F64) * (path_left + path_right) + 1e-300
    err = (left - right).abs()
    assert bool((err <= bound).all()), (n, s1, s2, float((err - bound).max()))


@FAST
@given(data=st.data(), s=LEVELS)
def test_noise_transform_round_trip(data, s):
    n, (w,) = data.draw(value_batches(F64, max_n=5))
    forward_abs, inverse_abs = kron_abs(noise_factor(s), n), kron_abs(inverse_noise_factor(s), n)
    path = (w.abs() @ forward_abs.T) @ inverse_abs.T + (w.abs() @ inverse_abs.T) @ forward_abs.T
    bound = gamma(8 * n + 16, F64) * path + 1e-300
    for back in (
        inverse_noise_transform(noise_transform(w, s), s),
        noise_transform(inverse_noise_transform(w, s), s),
    ):
        err = (back - w).abs()
        assert bool((err <= bound).all()), (n, s, float((err - bound).max()))


def complement(values: list[float]) -> list[float]:
    """``u(T) = v(N \\ T)``: the complement of mask ``T`` is ``(2^n - 1) XOR T``."""
    full = len(values) - 1
    return [values[full ^ T] for T in range(len(values))]


def literal_transform(name: str, n: int, values: list[float]) -> list[float]:
    return [math.fsum(a * v for a, v in zip(row, values) if a) for row in literal_matrix(name, n)]


@FAST
@given(data=st.data(), s=LEVELS)
def test_or_noise_transform_through_the_complement_values(data, s):
    """OR coefficients -> values -> complement -> AND coefficients -> M(s) -> back the same way.

    The OR model on ``T`` is the AND model on ``N \\ T``; this walks that statement through values,
    with literal matrices only, and must land on :func:`noise_transform_or`. On nonempty sets the
    result is the plain :func:`noise_transform`, bit for bit (entry 0 never reaches them).
    """
    n, (w,) = data.draw(value_batches(F64, max_n=4))
    got = noise_transform_or(w, s)
    assert torch.equal(got[:, 1:], noise_transform(w, s)[:, 1:])
    # Error bound: gamma_K times the sum over all computation paths of |coefficients * input|, for
    # the literal chain and for the code's own route (sum of w into entry 0, M(s), sum of all).
    # K: five literal maps (a product and an fsum each), the literal M(s) (n + 4), the code's two
    # sums of 2^n entries and its butterfly (2n + 2): 2 * 2^n + 3n + 20 covers the longest path.
    flip = torch.eye(2**n, dtype=F64).flip(0)  # the complement permutation T -> N \ T
    noise_abs = kron_abs(noise_factor(s), n)
    chain = [
        dense("inverse_or", n),
        flip,
        dense("and", n),
        noise_abs,
        dense("inverse_and", n),
        flip,
        dense("or", n),
    ]
    k = 2 * 2**n + 3 * n + 20
    for row, computed in zip(w.tolist(), got.tolist()):
        values = literal_transform("inverse_or", n, row)
        as_and = literal_transform("and", n, complement(values))
        fitted, _ = literal_noise(n, s, as_and)
        expected = literal_transform("or", n, complement(literal_transform("inverse_and", n, fitted)))
        magnitude = torch.tensor(row, dtype=F64).abs()
        literal_paths = magnitude
        for matrix in chain:
            literal_paths = matrix.abs() @ literal_paths
        as_and_abs = magnitude.clone()
        as_and_abs[0] = magnitude.sum()
        code_paths = (noise_abs @ as_and_abs).sum()
        for e, c, paths in zip(expected, computed, literal_paths.tolist()):
            assert abs(c - e) <= gamma(k, F64) * (paths + float(code_paths)) + 1e-300, (n, s, c, e)


# ---------------------------------------------------------------------------------------------
# Strength by order (strength.py)
# ---------------------------------------------------------------------------------------------


@FAST
@given(data=st.data(), ratio=st.floats(0, 0.5, allow_nan=False))
def test_strength_by_order_agrees_with_literal_sums(data, ratio):
    n, (I_and, I_or) = data.draw(value_batches(F64, count=2))
    if n == 0:
        return  # no orders 1..n to sum over
    strength = per_sample_strength(I_and, I_or)
    assert strength.shape == (I_and.shape[0], n)
    for row_and, row_or, got in zip(I_and.tolist(), I_or.tolist(), strength.tolist()):
        for k in range(1, n + 1):
            exact = math.fsum(abs(row_and[S]) + abs(row_or[S]) for S in range(2**n) if popcount(S) == k)
            # Non-negative terms: at most 2^n + 1 roundings, each relative to the total.
            assert abs(got[k - 1] - exact) <= gamma(2**n + 2, F64) * exact
    shape = strength_shape(strength)
    totals = shape.sum(dim=-1)
    for row, total in zip(strength.tolist(), totals.tolist()):
        assert total == 0.0 if sum(row) == 0 else abs(total - 1.0) <= gamma(2 * n + 2, F64)
    mean_order = complexity(shape)
    for row, value in zip(shape.tolist(), mean_order.tolist()):
        exact = math.fsum((k + 1) * w for k, w in enumerate(row))
        assert abs(value - exact) <= gamma(2 * n + 2, F64) * n
        assert sum(row) == 0 or 1 - 1e-12 <= value <= n + 1e-12
    # Signed strength: salient = |I| above ratio * mean_x |v(N) - v(empty)|, the span read from the
    # interactions by universal matching (sum of all nonempty AND and OR entries).
    out = signed_strength(I_and, I_or, salient_ratio=ratio)
    spans = [abs(math.fsum(a[1:]) + math.fsum(o[1:])) for a, o in zip(I_and.tolist(), I_or.tolist())]
    threshold = ratio * math.fsum(spans) / len(spans)
    for key, keep in (
        ("positive", lambda x: max(x, 0.0)),
        ("negative", lambda x: min(x, 0.0)),
        ("count", None),
    ):
        for k in range(1, n + 1):
            terms = [
                (1.0 if keep is None else keep(x))
                for rows in (I_and.tolist(), I_or.tolist())
                for row in rows
                for S, x in enumerate(row)
                if popcount(S) == k and abs(x) > threshold * (1 + 1e-9)
            ]
            exact = math.fsum(terms) / I_and.shape[0]
            # Entries within a relative 1e-9 of the threshold may fall either side of the code's
            # rounded threshold; allow their total on top of the rounding of the sum.
            edge = (
                math.fsum(
                    abs(1.0 if keep is None else keep(x))
                    for rows in (I_and.tolist(), I_or.tolist())
                    for row in rows
                    for S, x in enumerate(row)
                    if popcount(S) == k and threshold * (1 - 1e-9) <= abs(x) <= threshold * (1 + 1e-9)
                )
                / I_and.shape[0]
            )
            got = float(out[key][k - 1])
            assert abs(got - exact) <= edge + gamma(2**n + 4, F64) * (abs(exact) + edge) + 1e-300, (key, k)


# ---------------------------------------------------------------------------------------------
# Maskers against literal loops
# ---------------------------------------------------------------------------------------------

FLOAT_DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])
LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided"])


def random_tensor(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def masks_strategy(n: int) -> st.SearchStrategy[torch.Tensor]:
    """1..6 masks, repeats allowed, in any integer dtype that holds them (n <= 6 fits int8)."""
    dtypes = st.sampled_from([torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
    values = st.lists(st.integers(0, 2**n - 1), min_size=1, max_size=6)
    return st.builds(lambda v, dtype: torch.tensor(v, dtype=dtype), values, dtypes)


def some_layout(x: torch.Tensor, how: str) -> torch.Tensor:
    """The same values with other strides: a transposed copy seen back, or a strided slice."""
    if how == "transposed":
        return x.transpose(0, -1).contiguous().transpose(0, -1)
    if how == "strided":
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


def check_out_and_full_mask(masker, x, players, masks, got) -> None:
    """``out=`` writes the same values into the given buffer; the full mask gives the input itself."""
    out = torch.full_like(got, 7)
    written = masker.apply(x, players, masks, out=out)
    assert written.data_ptr() == out.data_ptr()
    assert torch.equal(out, got)
    full = masker.apply(x, players, torch.tensor([2**masker.num_players - 1]))
    assert torch.equal(full[:, 0], x)


@st.composite
def baselines(draw, sample_shape: tuple[int, ...], dtype: torch.dtype):
    """A baseline spec and the per-sample tensor it must mean, in float64 before the cast to ``dtype``."""
    kind = draw(st.sampled_from(["zeros", "number", "tensor", "mean"]))
    if kind == "zeros":
        return {"baseline": "zeros"}, torch.zeros(sample_shape, dtype=F64)
    if kind == "number":
        value = draw(st.floats(-100, 100, allow_nan=False, width=16))
        return {"baseline": value}, torch.full(sample_shape, value, dtype=F64)
    if kind == "tensor":
        # Broadcast over all but the last axis, or a full sample.
        shape = draw(st.sampled_from([(sample_shape[-1],), sample_shape]))
        base = random_tensor(shape, draw(st.integers(0, 99)), F64)
        return {"baseline": base}, base.expand(sample_shape).clone()
    # Integer-valued data: every sum is exact, so the mean is one correctly rounded division whatever
    # the order of summation, and the masker's mean and this one agree to the last bit.
    data = random_tensor((draw(st.integers(1, 4)), *sample_shape), draw(st.integers(0, 99)), F64)
    data = (data * 50).round()
    mean = [[math.fsum(col) / data.shape[0]] for col in data.reshape(data.shape[0], -1).T.tolist()]
    return {"baseline": "mean", "data": data}, torch.tensor(mean, dtype=F64).reshape(sample_shape)


@st.composite
def patch_cases(draw):
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(FLOAT_DTYPES)
    n = draw(st.integers(1, min(rows * cols, 6)))
    fixed = draw(st.booleans())
    players = draw(st.permutations(range(rows * cols)))[:n] if fixed else None
    sample = (channels, rows * ph, cols * pw)
    spec, base = draw(baselines(sample, dtype))
    masker = PatchMasker(patch_size=(ph, pw), num_players=n, players=players, **spec)
    x = random_tensor((batch, *sample), draw(st.integers(0, 999)), dtype)
    x = some_layout(x, draw(LAYOUTS))
    return masker, x, base.to(dtype), draw(masks_strategy(n)), draw(st.integers(0, 2**31))


@FAST
@given(case=patch_cases())
def test_patch_masker_equals_literal_loop(case):
    masker, x, base, masks, seed = case
    players = masker.select_players(x, seed=seed)
    chosen = players["patches"]
    (ph, pw), cols = masker.patch_size, x.shape[-1] // masker.patch_size[1]
    assert chosen.shape == (x.shape[0], masker.num_players)
    got = masker.apply(x, players, masks)
    assert got.shape == (x.shape[0], len(masks), *x.shape[1:]) and got.dtype == x.dtype
    for b in range(x.shape[0]):
        assert len(set(chosen[b].tolist())) == masker.num_players  # distinct patches
        for m, mask in enumerate(masks.tolist()):
            expected = x[b].clone()
            for i, patch in enumerate(chosen[b].tolist()):
                if not (mask >> i) & 1:
                    r, c = divmod(patch, cols)
                    window = (slice(None), slice(r * ph, (r + 1) * ph), slice(c * pw, (c + 1) * pw))
                    expected[window] = base[window]
            assert torch.equal(got[b, m], expected), (b, mask)
    check_out_and_full_mask(masker, x, players, masks, got)


@st.composite
def feature_cases(draw):
    features = draw(st.integers(1, 8))
    middle = draw(st.sampled_from([(), (1,), (3,)]))
    batch, dtype = draw(st.integers(1, 3)), draw(FLOAT_DTYPES)
    # Disjoint groups from a shuffled subset of the features; features left out are never players.
    order = draw(st.permutations(range(features)))[: draw(st.integers(1, features))]
    cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1), max_size=5)) if len(order) > 1 else [])
    groups = [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(order)])]
    n = draw(st.integers(1, min(len(groups), 6)))
    sample = (*middle, features)
    spec, base = draw(baselines(sample, dtype))
    masker = FeatureMasker(groups=groups, num_players=n, num_features=features, **spec)
    x = random_tensor((batch, *sample), draw(st.integers(0, 999)), dtype)
    x = some_layout(x, draw(LAYOUTS))
    return masker, x, base.to(dtype), draw(masks_strategy(n)), draw(st.integers(0, 2**31))


@FAST
@given(case=feature_cases())
def test_feature_masker_equals_literal_loop(case):
    masker, x, base, masks, seed = case
    players = masker.select_players(x, seed=seed)
    chosen = players["groups"]
    got = masker.apply(x, players, masks)
    assert got.shape == (x.shape[0], len(masks), *x.shape[1:]) and got.dtype == x.dtype
    for b in range(x.shape[0]):
        assert len(set(chosen[b].tolist())) == masker.num_players
        for m, mask in enumerate(masks.tolist()):
            expected = x[b].clone()
            for i, group in enumerate(chosen[b].tolist()):
                if not (mask >> i) & 1:
                    for f in masker.groups[group]:
                        expected[..., f] = base[..., f]
            assert torch.equal(got[b, m], expected), (b, mask)
    check_out_and_full_mask(masker, x, players, masks, got)


@st.composite
def token_cases(draw):
    dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.int16, torch.uint8]))
    batch, n = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    length = draw(st.integers(n, 10))
    pad = draw(st.sampled_from([None, 0]))
    ids = torch.tensor(draw(st.lists(st.integers(1, 120), min_size=batch * length, max_size=batch * length)))
    ids = ids.reshape(batch, length)
    if pad is not None:
        # Trailing padding, leaving at least n real tokens in every sample.
        for b in range(batch):
            ids[b, draw(st.integers(n, length)) :] = pad
    fixed = draw(st.booleans()) and pad is None
    players = draw(st.permutations(range(length)))[:n] if fixed else None
    masker = TokenMasker(
        # The pad id is 0 when there is one; a mask id equal to it is refused at construction.
        mask_token_id=draw(st.integers(1, 127)),
        num_players=n,
        pad_token_id=pad,
        players=players,
    )
    ids = some_layout(ids.to(dtype), draw(LAYOUTS))
    return masker, ids, draw(masks_strategy(n)), draw(st.integers(0, 2**31))


@FAST
@given(case=token_cases())
def test_token_masker_equals_literal_loop(case):
    masker, ids, masks, seed = case
    players = masker.select_players(ids, seed=seed)
    positions = players["positions"]
    got = masker.apply(ids, players, masks)
    assert got.shape == (ids.shape[0], len(masks), ids.shape[1]) and got.dtype == ids.dtype
    for b in range(ids.shape[0]):
        row = ids[b].tolist()
        assert len(set(positions[b].tolist())) == masker.num_players
        assert all(row[p] != masker.pad_token_id for p in positions[b].tolist())  # never padding
        for m, mask in enumerate(masks.tolist()):
            expected = list(row)
            for i, p in enumerate(positions[b].tolist()):
                if not (mask >> i) & 1:
                    expected[p] = masker.mask_token_id
            assert got[b, m].tolist() == expected, (b, mask)
    check_out_and_full_mask(masker, ids, players, masks, got)


@settings(max_examples=15, deadline=None)
@given(
    dtype=st.sampled_from([torch.uint8, torch.int8, torch.int16, torch.int32]),
    token=st.one_of(st.integers(-(2**40), -1), st.integers(2**31, 2**40), st.integers(-200, 300)),
)
def test_token_masker_rejects_a_mask_token_that_the_dtype_cannot_hold(dtype, token):
    """Regression: uint8 ids with mask_token_id=-1 were masked with 255, silently."""
    info = torch.iinfo(dtype)
    ids = torch.ones(2, 4, dtype=dtype)
    if token < 0:  # no token id is negative: refused when the masker is built
        with pytest.raises(ValueError, match="mask_token_id.*non-negative"):
            TokenMasker(mask_token_id=token, players=[0, 1])
        return
    masker = TokenMasker(mask_token_id=token, players=[0, 1])
    if info.min <= token <= info.max:
        masked = masker.apply(ids, masker.select_players(ids), torch.tensor([0]))
        assert masked[:, 0].tolist() == [[token, token, 1, 1]] * 2
        return
    with pytest.raises(ValueError, match="mask_token_id=.* does not fit"):
        masker.validate(ids)
    with pytest.raises(ValueError, match="mask_token_id=.* does not fit"):
        masker.apply(ids, {"positions": torch.tensor([[0, 1], [0, 1]])}, torch.tensor([0]))


@st.composite
def cloud_cases(draw):
    dtype = draw(FLOAT_DTYPES)
    batch, n = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    points = draw(st.integers(n, 10))
    x = some_layout(random_tensor((batch, points, 3), draw(st.integers(0, 999)), dtype) * 10, draw(LAYOUTS))
    if draw(st.booleans()):
        ids = draw(st.lists(st.integers(0, n - 1), min_size=points, max_size=points))
        masker = PointCloudMasker(num_players=n, clusters=torch.tensor(ids))
    else:
        masker = PointCloudMasker(num_players=n, iters=draw(st.integers(0, 3)))
    return masker, x, draw(masks_strategy(n)), draw(st.integers(0, 2**31))


@FAST
@given(case=cloud_cases())
def test_point_cloud_masker_equals_literal_loop(case):
    masker, x, masks, seed = case
    players = masker.select_players(x, seed=seed)
    ids = players["clusters"]
    got = masker.apply(x, players, masks)
    assert got.shape == (x.shape[0], len(masks), *x.shape[1:]) and got.dtype == x.dtype
    # The centroid is computed in at least float32 and stored in the dtype: one rounding of the
    # stored value (u |c|) plus the float32 mean of up to P values (gamma_P of the coordinates' size).
    u = unit_roundoff(x.dtype)
    work = torch.promote_types(x.dtype, torch.float32)
    for b in range(x.shape[0]):
        cloud = x[b].double().tolist()
        owner = ids[b].tolist()
        for m, mask in enumerate(masks.tolist()):
            for p in range(len(cloud)):
                if (mask >> owner[p]) & 1:
                    assert torch.equal(got[b, m, p], x[b, p]), (b, mask, p)
                    continue
                members = [cloud[q] for q in range(len(cloud)) if owner[q] == owner[p]]
                for axis in range(3):
                    centre = math.fsum(q[axis] for q in members) / len(members)
                    size = max(abs(q[axis]) for q in members)
                    tol = u * abs(centre) + gamma(len(members) + 2, work) * size
                    assert abs(float(got[b, m, p, axis]) - centre) <= tol, (b, mask, p, axis)
    check_out_and_full_mask(masker, x, players, masks, got)


@FAST
@given(
    batch=st.integers(1, 3),
    features=st.integers(1, 6),
    data=st.data(),
)
def test_callable_masker_returns_what_the_function_returns_and_checks_it(batch, features, data):
    n = data.draw(st.integers(1, features))
    x = random_tensor((batch, features), data.draw(st.integers(0, 99)), F64)
    masks = data.draw(masks_strategy(n))
    calls = []

    def zero_absent(inputs, masks_):
        calls.append(1)
        out = inputs[:, None].repeat(1, len(masks_), 1)
        for m, mask in enumerate(masks_.tolist()):
            for i in range(n):
                if not (mask >> i) & 1:
                    out[:, m, i] = 0.0
        return out

    masker = CallableMasker(zero_absent, num_players=n)
    assert masker.select_players(x) == {}
    got = masker.apply(x, {}, masks)
    assert torch.equal(got, zero_absent(x, masks))
    assert torch.equal(masker.apply(x, {}, torch.tensor([2**n - 1]))[:, 0], x)
    # A function that drops the mask dimension is caught, and bad masks never reach the function.
    wrong = CallableMasker(lambda inputs, masks_: inputs[:, None], num_players=n)
    with pytest.raises(ValueError, match="must return a tensor of shape \\(B, M, ...\\)"):
        wrong.apply(x, {}, torch.zeros(2, dtype=torch.long))
    calls.clear()
    with pytest.raises(ValueError, match="masks must lie in"):
        masker.apply(x, {}, torch.tensor([2**n]))
    assert not calls


# ---------------------------------------------------------------------------------------------
# Output functions at extreme logits
# ---------------------------------------------------------------------------------------------


def exact_log_odds(row: list[float], target: int) -> float:
    """``z_y - logsumexp_{j != y} z_j`` in 60-digit decimal arithmetic, rounded once to float64.

    Terms more than 10^4 below the maximum are dropped: their share is below e^-10000.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        others = [Decimal(z) for j, z in enumerate(row) if j != target]
        top = max(others)
        total = sum((z - top).exp() for z in others if z - top > -10000)
        return float(Decimal(row[target]) - (top + total.ln()))


EXTREMES = {
    torch.float64: [1e30, -1e30, 1e4, -1e4, 88.0, -88.0, 1.0, 0.0, -1.0, 1e-30],
    torch.float32: [1e30, -1e30, 1e4, -1e4, 88.0, -88.0, 1.0, 0.0, -1.0, 1e-30],
    torch.bfloat16: [1e30, -1e30, 1e4, -1e4, 88.0, 1.0, 0.0, -1.0],
    torch.float16: [1e4, -1e4, 88.0, -88.0, 1.0, 0.0, -1.0],
}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(list(EXTREMES)))
def test_log_odds_at_extreme_logits_matches_high_precision(data, dtype):
    samples, classes = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 12))
    # Logits from a small pool of extremes (so ties are common) mixed with ordinary values.
    pool = st.one_of(st.sampled_from(EXTREMES[dtype]), st.floats(-50, 50, allow_nan=False, width=16))
    logits = (
        torch.tensor(
            data.draw(st.lists(pool, min_size=samples * classes, max_size=samples * classes)), dtype=F64
        )
        .reshape(samples, classes)
        .to(dtype)
    )
    targets = torch.tensor(
        data.draw(st.lists(st.integers(0, classes - 1), min_size=samples, max_size=samples))
    )
    got = log_odds(logits, targets)
    assert got.shape == (samples,) and got.dtype == dtype
    assert bool(torch.isfinite(got).all())
    # Error bound (u: unit roundoff of the dtype). z - max is rounded once (u |z - max| <= 2u max|z|);
    # exp only sees arguments above about -110 before it underflows, so its input error is at most
    # 110 u; the sum of at most C terms in [0, C] and its log add about u log2(C) + u; the final
    # subtraction and the store add u |result|. 4 u (max|z| + 110 + log2 C + |result|) covers all.
    u = unit_roundoff(dtype)
    for row, y, value in zip(logits.double().tolist(), targets.tolist(), got.double().tolist()):
        exact = exact_log_odds(row, y)
        tol = 4 * u * (max(abs(z) for z in row) + 110 + math.log2(classes) + abs(exact))
        assert abs(value - exact) <= tol, (row, y, value, exact)


def exact_log_odds_counted(target: float, counts: dict[float, int]) -> float:
    """``z_y - log sum_v count_v e^v`` over the other classes' distinct values, in 60-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = 60
        top = max(Decimal(v) for v in counts)
        total = sum(c * (Decimal(v) - top).exp() for v, c in counts.items() if Decimal(v) - top > -10000)
        return float(Decimal(target) - (top + total.ln()))


@settings(max_examples=10, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**31), dtype=st.sampled_from(list(EXTREMES)))
def test_log_odds_with_a_huge_class_count(data, seed, dtype):
    """100 000 classes whose logits take a few values (so many ties); the reference counts them.

    Regression: in float16, 65 505 or more classes tied at the maximum gave -inf.
    """
    classes = 100_000
    pool = data.draw(st.lists(st.sampled_from(EXTREMES[dtype] + [3.0, -7.5, 20.0]), min_size=1, max_size=4))
    gen = torch.Generator().manual_seed(seed)
    choice = torch.randint(len(pool), (2, classes), generator=gen)
    logits = torch.tensor(pool, dtype=dtype)[choice]
    targets = torch.randint(classes, (2,), generator=gen)
    got = log_odds(logits, targets)
    assert bool(torch.isfinite(got).all())
    u = unit_roundoff(dtype)
    for row, y, value in zip(logits.double().tolist(), targets.tolist(), got.double().tolist()):
        counts: dict[float, int] = {}
        for j, z in enumerate(row):
            if j != y:
                counts[z] = counts.get(z, 0) + 1
        exact = exact_log_odds_counted(row[y], counts)
        # The bound of the test above: 4 u (max|z| + 110 + log2 C + |result|).
        tol = 4 * u * (max(abs(z) for z in row) + 110 + math.log2(classes) + abs(exact))
        assert abs(value - exact) <= tol, (pool, y, value, exact)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_log_odds_half_precision_with_more_tied_classes_than_float16_can_count(dtype):
    """Regression: float16 logits, 70 000 classes all at 0: -log(69 999), not -inf."""
    got = log_odds(torch.zeros(2, 70_000, dtype=dtype), torch.tensor([0, 69_999]))
    assert got.dtype == dtype
    # One rounding into the half dtype: within u |result|.
    exact = -math.log(69_999)
    assert all(abs(value - exact) <= unit_roundoff(dtype) * abs(exact) for value in got.tolist())


@settings(max_examples=30, deadline=None)
@given(
    classes=st.integers(2, 50),
    bad=st.one_of(st.integers(-(2**40), -1), st.integers(50, 2**40)),
    target_dtype=st.sampled_from([torch.float32, torch.bool]),
)
def test_log_odds_rejects_bad_targets_with_a_clear_error(classes, bad, target_dtype):
    logits = torch.zeros(3, classes)
    with pytest.raises(ValueError, match=f"targets must be class indices in 0 .. {classes - 1}"):
        log_odds(logits, torch.tensor([0, bad, 1]))
    with pytest.raises(TypeError, match="targets must be integer class indices"):
        log_odds(logits, torch.zeros(3, dtype=target_dtype))
    with pytest.raises(ValueError, match="needs the target of every sample"):
        log_odds(logits, None)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(0, 3), max_size=4).map(tuple),
    dtype=st.sampled_from([F32, F64]),
)
def test_log_odds_rejects_every_shape_but_n_by_c_with_a_clear_error(shape, dtype):
    logits = torch.zeros(shape, dtype=dtype)
    targets = torch.zeros(shape[0] if shape else 0, dtype=torch.long)
    if len(shape) == 2 and shape[1] >= 2:
        assert log_odds(logits, targets).shape == (shape[0],)
        with pytest.raises(ValueError, match=f"targets must have shape \\({shape[0]},\\)"):
            log_odds(logits, torch.zeros(shape[0] + 1, dtype=torch.long))
        return
    with pytest.raises(ValueError, match="log_odds expects logits of shape \\(N, C\\) with C >= 2") as info:
        log_odds(logits, targets)
    assert f"got {shape}" in str(info.value)  # the message names the shape it got


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(0, 3), max_size=4).map(tuple),
    which=st.sampled_from([binary_logit, regression]),
)
def test_scalar_outputs_reject_every_shape_but_n_or_n_by_1(shape, which):
    output = torch.zeros(shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        assert which(output).shape == (shape[0],)
        return
    with pytest.raises(ValueError, match="expects one scalar per sample, shape \\(N,\\) or \\(N, 1\\)"):
        which(output)


@FAST
@given(
    values=st.lists(st.sampled_from([1e30, -1e30, 1e4, -1e4, 0.0, 3.5]), min_size=1, max_size=6),
    data=st.data(),
    dtype=st.sampled_from([F32, F64]),
)
def test_binary_logit_is_the_two_class_log_odds(values, data, dtype):
    """A logit ``z`` is the two-class logits ``[0, z]``; its log-odds for class 1 is ``z``, class 0 ``-z``."""
    targets = torch.tensor(data.draw(st.lists(st.integers(0, 1), min_size=len(values), max_size=len(values))))
    logit = torch.tensor(values, dtype=dtype)
    two_class = torch.stack([torch.zeros_like(logit), logit], dim=1)
    assert torch.equal(binary_logit(logit[:, None], targets), log_odds(two_class, targets))
    assert torch.equal(binary_logit(logit), logit)
