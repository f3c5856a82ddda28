"""The engine: masked forward passes and the whole measurement, checked against literal loops.

Every expected value here comes from a definition written out by hand (theory.md sections 1-4):
the masked sample built feature by feature, the model's formula evaluated in Python floats,
universal matching summed over sets, strength summed over orders.
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations

import pytest
import torch

from lightning_interactions.engine.compute import (
    MAX_PLAYERS,
    compute_interactions,
    masked_outputs,
    model_device,
)
from lightning_interactions.engine.result import InteractionResult
from lightning_interactions.masking import FeatureMasker, Masker, PatchMasker, presence

# ---------------------------------------------------------------------------------------------
# Literal definitions
# ---------------------------------------------------------------------------------------------


def bits(mask: int, n: int) -> list[int]:
    return [i for i in range(n) if (mask >> i) & 1]


def literal_masked_features(x, groups_of_players, baseline, mask):
    """x_T for a FeatureMasker: features of absent players take the baseline, others stay."""
    out = list(x)
    for i, group in enumerate(groups_of_players):
        if not (mask >> i) & 1:
            for f in group:
                out[f] = baseline[f]
    return out


def literal_universal_matching(I_and, I_or, n, T):
    """I_and(empty) + I_or(empty) + sum_{nonempty S in T} I_and(S) + sum_{S n T nonempty} I_or(S)."""
    total = I_and[0] + I_or[0]
    for S in range(1, 2**n):
        if S & T == S:
            total += I_and[S]
        if S & T:
            total += I_or[S]
    return total


def literal_strength(I_and, I_or, n, tol=None):
    """sum_{|S| = k} |I_and(S)| + |I_or(S)| for k = 1..n.

    With ``tol``, the terms a certificate of relative gap ``tol`` does not resolve are left out
    (docs/theory.md, "Residue"): ``|I(S)| <= tol * objective / (2 (2^n - 1))``.
    """
    floor = -1.0
    if tol is not None:
        objective = sum(abs(I_and[S]) + abs(I_or[S]) for S in range(1, 2**n))
        floor = tol * objective / (2 * (2**n - 1))
    out = [0.0] * n
    for S in range(1, 2**n):
        for value in (I_and[S], I_or[S]):
            if abs(value) > floor:
                out[bin(S).count("1") - 1] += abs(value)
    return out


# ---------------------------------------------------------------------------------------------
# Models with a closed form
# ---------------------------------------------------------------------------------------------

# f(x) = 0.5 + sum_i W[i] x_i + sum_{i<j} C[i][j] x_i x_j + D x_0 x_2 x_4, on 5 features.
W = [1.0, -2.0, 0.5, 3.0, -1.5]
C = {(0, 1): 0.7, (1, 3): -1.2, (2, 4): 2.0, (0, 4): 0.3}
D = -0.9


def poly_literal(x):
    value = 0.5 + sum(w * xi for w, xi in zip(W, x))
    value += sum(c * x[i] * x[j] for (i, j), c in C.items())
    return value + D * x[0] * x[2] * x[4]


class Polynomial(torch.nn.Module):
    """The same polynomial, vectorised, as a (N, 1) regression output."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(W, dtype=torch.float64))

    def forward(self, x):
        value = 0.5 + x @ self.w
        for (i, j), c in C.items():
            value = value + c * x[:, i] * x[:, j]
        return (value + D * x[:, 0] * x[:, 2] * x[:, 4])[:, None]


# Planted AND terms of the log-odds: f(x) = c0 + sum_S c_S prod_{i in S} x_i on n = 5 features.
PLANTED = {(0,): 1.5, (1, 2): -2.0, (0, 3, 4): 3.0, (2, 4): 0.75}
C0 = -0.25


class PlantedLogits(torch.nn.Module):
    """Three-class logits (f(x), 0.3 * f(x) - 1, 0.5): a known log-odds for every target."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

    def f(self, x):
        value = torch.full((x.shape[0],), C0, dtype=x.dtype)
        for S, c in PLANTED.items():
            value = value + c * x[:, list(S)].prod(dim=1)
        return self.scale * value

    def forward(self, x):
        f = self.f(x)
        return torch.stack([f, 0.3 * f - 1.0, torch.full_like(f, 0.5)], dim=1)


def planted_log_odds_literal(x, target):
    f = C0 + sum(c * math.prod(x[i] for i in S) for S, c in PLANTED.items())
    logits = [f, 0.3 * f - 1.0, 0.5]
    others = [z for j, z in enumerate(logits) if j != target]
    return logits[target] - math.log(sum(math.exp(z) for z in others))


class Counting(torch.nn.Module):
    """Wraps a model and records the batch size of every call, and the mode and grad state."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls: list[int] = []
        self.training_seen: list[bool] = []
        self.inference_seen: list[bool] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        self.training_seen.append(self.training)
        self.inference_seen.append(torch.is_inference_mode_enabled())
        return self.inner(x)


# ---------------------------------------------------------------------------------------------
# Outputs on every mask
# ---------------------------------------------------------------------------------------------


def test_polynomial_v_matches_a_literal_loop_over_masks():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    baseline = torch.tensor([0.1, -0.2, 0.0, 0.4, 0.25], dtype=torch.float64)
    # Three players: features {0}, {1, 2}, {4}; feature 3 is no player and keeps its value.
    groups = [[0], [1, 2], [4]]
    masker = FeatureMasker(groups=groups, baseline=baseline)
    v = masked_outputs(Polynomial(), x, masker=masker, output="regression", batch_size=5)
    assert v.shape == (3, 8) and v.dtype == torch.float64
    for b in range(3):
        for mask in range(8):
            x_T = literal_masked_features(x[b].tolist(), groups, baseline.tolist(), mask)
            assert v[b, mask].item() == pytest.approx(poly_literal(x_T), abs=1e-12)


def test_randomly_chosen_players_follow_the_bit_order():
    """Bit i of the mask is player i, whichever group the masker chose as player i."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    masker = FeatureMasker(num_features=5, num_players=3)  # 3 of the 5 features, per sample
    result = compute_interactions(Polynomial(), x, masker=masker, output="regression", seed=7)
    chosen = result.players["groups"]
    assert chosen.shape == (4, 3)
    assert len({tuple(row) for row in chosen.tolist()}) > 1  # players differ between samples
    for b in range(4):
        groups = [[f] for f in chosen[b].tolist()]
        for mask in range(8):
            x_T = literal_masked_features(x[b].tolist(), groups, [0.0] * 5, mask)
            assert result.v[b, mask].item() == pytest.approx(poly_literal(x_T), abs=1e-12)


def test_planted_and_terms_v_and_universal_matching():
    n = 5
    x = torch.ones(4, n, dtype=torch.float64)  # x_T is the indicator of T (baseline zeros)
    x[3] = torch.tensor([1.0, 2.0, -1.0, 0.5, 1.5], dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 0])
    result = compute_interactions(
        PlantedLogits(), x, targets, masker=FeatureMasker(num_features=n), q_ratio=0.04
    )
    assert isinstance(result, InteractionResult)
    assert result.num_players == n and result.sample_indices.tolist() == [0, 1, 2, 3]
    for name in ("v", "I_and", "I_or", "gamma", "q"):
        assert getattr(result, name).shape == (4, 2**n), name
        assert getattr(result, name).dtype == torch.float64, name

    for b in range(4):
        v, q = result.v[b].tolist(), result.q[b].tolist()
        I_and, I_or = result.I_and[b].tolist(), result.I_or[b].tolist()
        for T in range(2**n):
            x_T = [x[b, i].item() if (T >> i) & 1 else 0.0 for i in range(n)]
            assert v[T] == pytest.approx(planted_log_odds_literal(x_T, int(targets[b])), abs=1e-12)
            assert literal_universal_matching(I_and, I_or, n, T) == pytest.approx(v[T] + q[T], abs=1e-9)
        # The error box: |q_T| <= q_ratio |v(N) - v(empty)| (up to the solver's float noise).
        tau = 0.04 * abs(v[-1] - v[0])
        assert result.tau[b].item() == pytest.approx(tau, rel=1e-12, abs=1e-9)
        assert max(abs(t) for t in q) <= tau + 1e-9
        assert result.gap[b].item() <= 0.01 + 1e-9


def test_planted_and_terms_are_a_feasible_point_so_the_objective_is_no_larger():
    n = 5
    x = torch.ones(2, n, dtype=torch.float64)

    class PlantedRegression(torch.nn.Module):
        def forward(self, z):
            return PlantedLogits().f(z)

    result = compute_interactions(
        PlantedRegression(), x, masker=FeatureMasker(num_features=n), output="regression", q_ratio=0.0
    )
    planted_l1 = sum(abs(c) for c in PLANTED.values())
    for b in range(2):
        for T in range(2**n):
            literal = C0 + sum(c for S, c in PLANTED.items() if all((T >> i) & 1 for i in S))
            assert result.v[b, T].item() == pytest.approx(literal, abs=1e-12)
        assert result.objective[b].item() <= planted_l1 * (1 + 1e-6)


def test_strength_shape_and_complexity_follow_their_definitions():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)

    def model(z):
        weights = torch.tensor([1.0, -0.5, 2.0, 0.3], dtype=z.dtype)
        return torch.tanh(z @ weights) + z[:, 0] * z[:, 1] * z[:, 3]

    result = compute_interactions(model, x, masker=FeatureMasker(num_features=4), output="regression")
    n = 4
    per_sample = [
        literal_strength(result.I_and[b].tolist(), result.I_or[b].tolist(), n, tol=0.01) for b in range(3)
    ]
    assert result.strength.shape == (3, n)
    for b in range(3):
        assert result.strength[b].tolist() == pytest.approx(per_sample[b], abs=1e-12)
    mean = [sum(row[k] for row in per_sample) / 3 for k in range(n)]
    assert result.mean_strength.tolist() == pytest.approx(mean, abs=1e-12)
    shape = [a / sum(mean) for a in mean]
    assert result.strength_shape.tolist() == pytest.approx(shape, abs=1e-12)
    assert result.complexity == pytest.approx(sum((k + 1) * s for k, s in enumerate(shape)), abs=1e-12)
    assert result.max_gap == pytest.approx(max(result.gap.tolist()))


def test_log_odds_of_an_image_model_with_patch_players():
    g = torch.Generator().manual_seed(4)
    images = torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([2, 0])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).double()
    masker = PatchMasker(patch_size=2, num_players=3)
    result = compute_interactions(model, images, labels, masker=masker, seed=5)
    patches = result.players["patches"].tolist()
    for b in range(2):
        for mask in range(8):
            image = images[b].clone()
            for i, p in enumerate(patches[b]):
                if not (mask >> i) & 1:
                    r, c = divmod(p, 2)
                    image[:, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = 0.0
            with torch.no_grad():
                z = model(image[None])[0].tolist()
            y = int(labels[b])
            literal = z[y] - math.log(sum(math.exp(z[j]) for j in range(3) if j != y))
            assert result.v[b, mask].item() == pytest.approx(literal, abs=1e-12)


def test_callable_masker_and_plain_function_model():
    def mask_first_three(inputs, masks):
        keep = presence(masks, 3).to(inputs.dtype)  # (M, 3)
        out = inputs[:, None].repeat(1, len(masks), 1)
        out[:, :, :3] *= keep
        return out

    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    v = masked_outputs(
        lambda z: z.prod(dim=1), x, masker=mask_first_three, num_players=3, output="regression"
    )
    expected = [4.0 * (1.0 if m == 7 else 0.0) * 6.0 for m in range(8)]
    assert v[0].tolist() == expected
    with pytest.raises(ValueError, match="num_players"):
        masked_outputs(lambda z: z.sum(dim=1), x, masker=mask_first_three, output="regression")


# ---------------------------------------------------------------------------------------------
# Chunks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 16, 40, 10_000])
def test_chunking_gives_the_same_result_and_bounds_every_call(batch_size):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    masker = FeatureMasker(num_features=4)
    model = Counting(Polynomial2())
    reference = compute_interactions(Polynomial2(), x, masker=masker, output="regression", batch_size=3 * 16)
    result = compute_interactions(model, x, masker=masker, output="regression", batch_size=batch_size)
    for name in ("v", "I_and", "I_or", "gamma", "q", "strength"):
        assert torch.allclose(getattr(result, name), getattr(reference, name), rtol=0, atol=1e-12), name
    # A probe of at most 2 inputs, then exactly 2^n inputs per sample, never more than batch_size at once.
    assert model.calls[0] <= 2
    assert sum(model.calls[1:]) == 3 * 16
    assert max(model.calls[1:]) <= batch_size


class Polynomial2(torch.nn.Module):
    """A 4-feature model with interactions of every order."""

    def forward(self, x):
        return torch.sin(x).sum(dim=1) + x.prod(dim=1) + x[:, 0] * x[:, 2]


# ---------------------------------------------------------------------------------------------
# The model is left as it was
# ---------------------------------------------------------------------------------------------


def _mixed_mode_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(16, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.Dropout(0.5),
        torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.3)),
        torch.nn.Linear(8, 3),
    )
    model.train()
    model[3].eval()  # a submodule in eval mode inside a model in train mode
    model[5][1].eval()
    return model


def test_modes_grads_buffers_and_rng_are_untouched():
    model = _mixed_mode_model()
    model[6].weight.grad = torch.full_like(model[6].weight, 0.25)  # an existing gradient stays as is
    modes = {name: m.training for name, m in model.named_modules()}
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    images, labels = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 2])
    counting = Counting(model)  # a new module is in train mode
    rng = torch.get_rng_state()

    result = compute_interactions(counting, images, labels, masker=PatchMasker(patch_size=2, num_players=3))

    assert torch.equal(torch.get_rng_state(), rng)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert counting.training
    assert not any(counting.training_seen) and all(counting.inference_seen)
    for name, p in model.named_parameters():
        assert p.requires_grad and torch.equal(p.detach(), params[name])
        if name == "6.weight":
            assert torch.equal(p.grad, torch.full_like(p, 0.25))
        else:
            assert p.grad is None, name
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), name  # BatchNorm ran in eval: no running-stat update
    # The result holds ordinary tensors, usable outside inference mode.
    assert not result.v.is_inference() and not result.I_and.is_inference()
    result.v.add_(0.0)


def test_modes_are_restored_when_the_model_raises():
    model = _mixed_mode_model()
    modes = {name: m.training for name, m in model.named_modules()}

    def bad_output(output, targets):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        compute_interactions(
            model, torch.rand(2, 1, 4, 4), None, masker=PatchMasker(2, num_players=2), output=bad_output
        )
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_measurement_is_the_same_in_train_and_eval_mode():
    model = _mixed_mode_model()
    images, labels = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    masker = PatchMasker(patch_size=2, num_players=3)
    first = compute_interactions(model, images, labels, masker=masker)
    model.eval()
    second = compute_interactions(model, images, labels, masker=masker)
    assert torch.equal(first.v, second.v)


def test_given_players_are_reused_and_seed_changes_them():
    images, labels = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    masker = PatchMasker(patch_size=2, num_players=4)
    first = compute_interactions(model, images, labels, masker=masker, seed=1)
    again = compute_interactions(model, images, labels, masker=masker, players=first.players, seed=2)
    other = compute_interactions(model, images, labels, masker=masker, seed=2)
    assert torch.equal(first.players["patches"], again.players["patches"])
    assert torch.equal(first.v, again.v)
    assert not torch.equal(first.players["patches"], other.players["patches"])


def test_float_inputs_run_in_the_model_dtype_and_device():
    model = Polynomial()  # float64 parameters
    x32 = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5]], dtype=torch.float32)
    v = masked_outputs(model, x32, masker=FeatureMasker(num_features=5), output="regression")
    x64 = x32.double()[0].tolist()
    assert v[0, -1].item() == pytest.approx(poly_literal(x64), abs=1e-12)
    assert model_device(model) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_result_to_and_cpu_copy_everything():
    result = compute_interactions(
        Polynomial2(),
        torch.rand(2, 4, dtype=torch.float64),
        masker=FeatureMasker(num_features=4),
        output="regression",
    )
    copy = result.cpu()
    assert copy is not result and torch.equal(copy.I_and, result.I_and)
    assert copy.players.keys() == result.players.keys() and copy.timings == result.timings
    assert set(result.timings) == {"forward_s", "extraction_s", "total_s"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_model_device():
    model = Polynomial2().cuda()
    model.register_buffer("anchor", torch.zeros(1, device="cuda"))
    x = torch.rand(2, 4, dtype=torch.float64)
    masker = FeatureMasker(num_features=4)
    result = compute_interactions(model, x, masker=masker, output="regression")
    reference = compute_interactions(Polynomial2(), x, masker=masker, output="regression")
    assert result.v.device.type == "cuda"
    assert torch.allclose(result.v.cpu(), reference.v, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Clear errors before heavy work
# ---------------------------------------------------------------------------------------------


class AllFeatures(Masker):
    """A masker written against the 3-argument ``apply``: every feature a player, zero when absent."""

    def __init__(self, num_players: int) -> None:
        self.num_players = num_players  # no check here: the engine's own check is what is tested

    def validate(self, inputs):
        if inputs.dim() != 2 or inputs.shape[1] != self.num_players:
            raise ValueError(f"expected (B, {self.num_players})")

    def select_players(self, inputs, seed=0):
        return {}

    def apply(self, inputs, players, masks):
        return inputs[:, None] * presence(masks, self.num_players).to(inputs.dtype)


def test_too_many_players_is_refused_before_any_forward_pass():
    assert MAX_PLAYERS == 20
    model = Counting(lambda z: z.sum(dim=1))
    x = torch.rand(2, MAX_PLAYERS + 1)
    too_many = r"AllFeatures: 21 players need 2\^21 .* the limit is 20 players .* lower num_players"
    with pytest.raises(ValueError, match=too_many):
        compute_interactions(model, x, masker=AllFeatures(MAX_PLAYERS + 1), output="regression")
    with pytest.raises(ValueError, match="max_players=3"):
        masked_outputs(
            model, x[:, :4], masker=FeatureMasker(num_features=4), output="regression", max_players=3
        )
    with pytest.raises(ValueError, match=r"max_players must be an int in 1 \.\. 20"):
        masked_outputs(
            model, x[:, :4], masker=FeatureMasker(num_features=4), output="regression", max_players=21
        )
    assert model.calls == []


def test_a_masker_that_does_not_fit_is_refused_before_any_forward_pass():
    model = Counting(lambda z: z.flatten(1).sum(dim=1))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        compute_interactions(
            model, torch.rand(2, 1, 8, 8), masker=PatchMasker(3, num_players=2), output="regression"
        )
    with pytest.raises(ValueError, match="5 features"):
        compute_interactions(
            model, torch.rand(2, 5), masker=FeatureMasker(num_features=4), output="regression"
        )
    assert model.calls == []


def test_an_output_that_is_not_one_scalar_per_sample_fails_on_the_probe():
    model = Counting(torch.nn.Linear(4, 2))
    x = torch.rand(3, 4)
    with pytest.raises(ValueError, match="one scalar per"):
        compute_interactions(model, x, masker=FeatureMasker(num_features=4), output="regression")
    with pytest.raises(ValueError, match="one scalar per masked input"):
        compute_interactions(model, x, masker=FeatureMasker(num_features=4), output=lambda out, t: out)
    assert len(model.calls) == 2 and max(model.calls) <= 2  # only the probe ran, each time


def test_other_bad_arguments_are_refused_before_any_forward_pass():
    model = Counting(torch.nn.Linear(4, 3))
    x, masker = torch.rand(3, 4), FeatureMasker(num_features=4)
    with pytest.raises(ValueError, match="leading dimension 3"):
        compute_interactions(model, x, torch.tensor([0, 1]), masker=masker)
    with pytest.raises(ValueError, match="batch_size"):
        compute_interactions(model, x, torch.tensor([0, 1, 2]), masker=masker, batch_size=0)
    with pytest.raises(TypeError, match="masker"):
        compute_interactions(model, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="unknown output"):
        compute_interactions(model, x, torch.tensor([0, 1, 2]), masker=masker, output="probability")
    with pytest.raises(ValueError, match="leading dimension 3"):
        compute_interactions(
            model, x, torch.tensor([0, 1, 2]), masker=masker, players={"groups": torch.zeros(2, 4)}
        )
    with pytest.raises(ValueError, match="B >= 1"):
        compute_interactions(model, x[:0], torch.tensor([], dtype=torch.long), masker=masker)
    assert model.calls == []


# ---------------------------------------------------------------------------------------------
# Non-finite outputs
# ---------------------------------------------------------------------------------------------


def log_of_sum(z):
    return torch.log1p(z.sum(dim=1))


def test_a_sample_with_a_non_finite_output_is_skipped_with_a_warning():
    # Sample 1 gives log1p(-2) = NaN on mask {1}; sample 3 gives log1p(-1) = -inf on mask {0, 1, 2}.
    x = torch.tensor(
        [[1.0, 2.0, 3.0], [1.0, -3.0, 1.0], [0.5, 0.5, 0.5], [-1.0, -0.5, 0.5]], dtype=torch.float64
    )
    masker = FeatureMasker(num_features=3)
    with pytest.warns(RuntimeWarning, match=r"skipped samples \[1, 3\]"):
        result = compute_interactions(log_of_sum, x, masker=masker, output="regression")
    assert result.sample_indices.tolist() == [0, 2]
    assert result.v.shape == (2, 8) and result.I_and.shape == (2, 8) and result.strength.shape == (2, 3)
    assert result.players["groups"].shape == (4, 3)  # the players of all inputs, for reuse
    for row, b in enumerate([0, 2]):
        for mask in range(8):
            literal = math.log1p(sum(x[b, i].item() for i in bits(mask, 3)))
            assert result.v[row, mask].item() == pytest.approx(literal, abs=1e-12)
    # The kept samples' interactions are those of a run on them alone.
    alone = compute_interactions(log_of_sum, x[[0, 2]], masker=masker, output="regression")
    assert torch.allclose(alone.I_and, result.I_and, atol=1e-9)
    # masked_outputs returns the non-finite values as they are.
    v = masked_outputs(log_of_sum, x, masker=masker, output="regression")
    assert math.isnan(v[1, 2].item()) and v[3, 7].item() == -math.inf


def test_no_sample_kept_gives_an_empty_result():
    x = torch.full((2, 3), -1.0, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compute_interactions(
            log_of_sum, x, masker=FeatureMasker(num_features=3), output="regression"
        )
    assert any("skipped samples [0, 1]" in str(w.message) for w in caught)
    assert result.num_samples == 0 and result.v.shape == (0, 8) and result.strength.shape == (0, 3)
    assert math.isnan(result.complexity) and math.isnan(result.max_gap)


# ---------------------------------------------------------------------------------------------
# A literal check of the order-k sets used by strength (guards the bit convention once more)
# ---------------------------------------------------------------------------------------------


def test_single_and_term_lands_on_its_set():
    n = 4
    x = torch.ones(1, n, dtype=torch.float64)
    for S in combinations(range(n), 2):
        result = compute_interactions(
            lambda z, S=S: z[:, list(S)].prod(dim=1),
            x,
            masker=FeatureMasker(num_features=n),
            output="regression",
            q_ratio=0.0,
        )
        mask = sum(1 << i for i in S)
        assert result.I_and[0, mask].item() == pytest.approx(1.0, abs=1e-6)
        assert result.strength[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0], abs=1e-6)


def test_a_masker_whose_apply_takes_no_out_still_works() -> None:
    """A subclass may override apply without ``out=``; the engine then builds fresh batches."""

    class Recording(FeatureMasker):
        def apply(self, inputs, players, masks):
            return super().apply(inputs, players, masks)

    x = torch.randn(2, 3, dtype=torch.float64)
    plain, recording = FeatureMasker(num_features=3), Recording(num_features=3)
    # Overriding apply without declaring supports_out turns it off: no out= is passed.
    assert plain.supports_out and not recording.supports_out
    expected = masked_outputs(Polynomial3(), x, masker=plain, output="regression", batch_size=5)
    got = masked_outputs(Polynomial3(), x, masker=recording, output="regression", batch_size=5)
    assert torch.equal(got, expected)


def test_a_custom_masker_with_a_three_argument_apply_runs_through_compute_interactions() -> None:
    x = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    custom = AllFeatures(3)
    assert not custom.supports_out
    got = compute_interactions(Polynomial3(), x, masker=custom, output="regression", batch_size=5)
    expected = compute_interactions(
        Polynomial3(), x, masker=FeatureMasker(num_features=3), output="regression", batch_size=5
    )
    assert torch.equal(got.v, expected.v) and torch.equal(got.I_and, expected.I_and)


class Polynomial3(torch.nn.Module):
    def forward(self, x):
        return x[:, 0] * x[:, 1] + x[:, 2] ** 2


def test_progress_covers_the_forward_passes_and_the_extraction():
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    forward, extraction = [], []
    compute_interactions(
        lambda z: torch.tanh(z.sum(dim=1)) * z[:, 0] * z[:, 1],
        x,
        masker=FeatureMasker(num_features=4),
        output="regression",
        batch_size=8,
        progress=lambda done, total: forward.append((done, total)),
        extraction_progress=lambda done, total: extraction.append((done, total)),
    )
    assert forward[-1] == (3 * 16, 3 * 16) and all(total == 48 for _, total in forward)
    assert extraction[-1] == (3, 3)  # every sample certified at the end
    counts = [done for done, _ in extraction]
    assert counts == sorted(counts) and all(total == 3 for _, total in extraction)
