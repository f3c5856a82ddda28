"""Devices and dtypes of inputs, targets and models: moved and cast, or refused with a clear error.

Half-precision and bfloat16 models are compared with the float32 model through an a-priori
forward error bound derived from each dtype's unit roundoff ``u`` (see :func:`error_bound`), not
through tolerances tuned to what the code happens to return.
"""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.engine.compute import compute_interactions, masked_outputs, model_device
from lightning_interactions.masking import FeatureMasker, PatchMasker, PointCloudMasker, TokenMasker

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Recording(torch.nn.Module):
    """Wraps a model; records the dtype, device, grad and contiguity state of every batch it gets."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[torch.dtype, str, bool]] = []

    def forward(self, x):
        self.seen.append((x.dtype, x.device.type, x.requires_grad))
        return self.inner(x)


def _mlp(features: int = 6, hidden: int = 16, classes: int = 3, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
    )


def _cnn(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        # Small fan-ins (16 and 16): a worst-case bound grows with them, (d + 5) u must stay below 1.
        torch.nn.Conv2d(1, 4, 4, stride=4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 2 * 2, 3),
    )


def _features(batch: int = 3, features: int = 6, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(batch, features, generator=torch.Generator().manual_seed(1)).to(dtype)


# ---------------------------------------------------------------------------------------------
# Float inputs are cast to the model's dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("input_dtype", [torch.float64, torch.float32, torch.float16])
def test_float_inputs_run_in_the_model_dtype(model_dtype, input_dtype):
    model = Recording(_mlp().to(model_dtype))
    x = _features(dtype=input_dtype)
    v = masked_outputs(model, x, torch.tensor([0, 1, 2]), masker=FeatureMasker(num_features=6))
    assert {dtype for dtype, _, _ in model.seen} == {model_dtype}
    assert v.dtype == torch.float64 and v.shape == (3, 64) and bool(torch.isfinite(v).all())
    # The same as giving inputs already in the model's dtype.
    direct = masked_outputs(
        model.inner, x.to(model_dtype), torch.tensor([0, 1, 2]), masker=FeatureMasker(num_features=6)
    )
    assert torch.equal(v, direct)


def test_point_clouds_are_cast_and_keep_their_clusters():
    clouds = torch.randn(2, 12, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    model = Recording(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 1)))
    masker = PointCloudMasker(num_players=4)
    result = compute_interactions(model, clouds, masker=masker, output="regression")
    assert {dtype for dtype, _, _ in model.seen} == {torch.float32}
    # Clusters come from the float64 clouds either way (k-means runs in float64 on the CPU).
    assert torch.equal(result.players["clusters"], masker.select_players(clouds)["clusters"])
    half = compute_interactions(model.half(), clouds, masker=masker, output="regression")
    assert torch.equal(half.players["clusters"], result.players["clusters"])
    assert half.v.dtype == torch.float64 and bool(torch.isfinite(half.v).all())


# ---------------------------------------------------------------------------------------------
# Integer inputs and targets
# ---------------------------------------------------------------------------------------------


class TokenModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(20, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(dim=1))


def test_token_ids_stay_integer_whatever_the_model_dtype():
    ids = torch.tensor([[3, 4, 5, 6, 1], [7, 8, 9, 1, 1]])
    masker = TokenMasker(mask_token_id=0, num_players=3, pad_token_id=1)
    targets = torch.tensor([0, 2])
    for dtype in (torch.float32, torch.bfloat16):
        model = Recording(TokenModel().to(dtype))
        v64 = masked_outputs(model, ids, targets, masker=masker)
        v32 = masked_outputs(model, ids.int(), targets, masker=masker)
        assert {d for d, _, _ in model.seen} == {torch.int64, torch.int32}
        assert torch.equal(v64, v32)


def test_token_ids_given_as_floats_are_refused():
    model = Recording(TokenModel())
    masker = TokenMasker(mask_token_id=0, num_players=2)
    with pytest.raises(ValueError, match="integer token ids, got dtype torch.float32"):
        compute_interactions(model, torch.tensor([[3.0, 4.0, 5.0]]), torch.tensor([0]), masker=masker)
    assert model.seen == []


def test_float_class_targets_are_refused_by_the_probe_and_other_outputs_get_them_as_they_are():
    model = Recording(_mlp())
    x = _features()
    with pytest.raises(TypeError, match="targets must be integer class indices, got dtype torch.float32"):
        compute_interactions(model, x, torch.tensor([0.0, 1.0, 2.0]), masker=FeatureMasker(num_features=6))
    assert len(model.seen) == 1  # only the probe ran
    seen = []

    def squared_error(output, targets):
        seen.append(targets.dtype)
        return -(output[:, 0] - targets).square()

    v = masked_outputs(
        _mlp(),
        x,
        torch.tensor([0.5, 1.5, -1.0], dtype=torch.float64),
        masker=FeatureMasker(num_features=6),
        output=squared_error,
    )
    assert set(seen) == {torch.float64} and v.shape == (3, 64)


def test_targets_that_require_grad_are_detached():
    targets = torch.tensor([0.5, 1.5, -1.0], requires_grad=True)
    v = masked_outputs(
        _mlp(),
        _features(),
        targets,
        masker=FeatureMasker(num_features=6),
        output=lambda out, t: out[:, 0] - t,
    )
    assert not v.requires_grad and targets.grad is None


# ---------------------------------------------------------------------------------------------
# Grad, layout, parameterless and meta models
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.float64])
def test_inputs_that_require_grad_are_detached(input_dtype):
    x = _features(dtype=input_dtype).requires_grad_()
    model = Recording(_mlp())
    result = compute_interactions(model, x, torch.tensor([0, 1, 2]), masker=FeatureMasker(num_features=6))
    assert not any(grad for _, _, grad in model.seen)
    assert not result.v.requires_grad and x.grad is None
    plain = compute_interactions(
        _mlp(), x.detach(), torch.tensor([0, 1, 2]), masker=FeatureMasker(num_features=6)
    )
    assert torch.equal(result.v, plain.v)


def test_non_contiguous_inputs_give_the_same_values_as_contiguous_ones():
    g = torch.Generator().manual_seed(4)
    base = torch.rand(3, 1, 8, 8, generator=g)
    labels = torch.tensor([0, 1, 2])
    masker = PatchMasker(patch_size=4, num_players=4)
    reference = masked_outputs(_cnn(), base, labels, masker=masker)
    layouts = {
        "transposed": base.transpose(2, 3).contiguous().transpose(2, 3),
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "strided": torch.zeros(3, 1, 8, 16)[..., ::2].copy_(base),
        "expanded": base[:1].expand(3, 1, 8, 8),
    }
    for name, images in layouts.items():
        if name != "channels_last":
            assert not images.is_contiguous(), name
        expected = (
            reference
            if name != "expanded"
            else masked_outputs(_cnn(), base[:1].repeat(3, 1, 1, 1), labels, masker=masker)
        )
        assert torch.equal(masked_outputs(_cnn(), images, labels, masker=masker), expected), name


def test_a_model_without_parameters_runs_on_the_inputs_device_and_dtype():
    seen = []

    def product(x):
        seen.append(x.dtype)
        return x.prod(dim=1)

    x = _features(features=4, dtype=torch.float64)
    v = masked_outputs(product, x, masker=FeatureMasker(num_features=4), output="regression")
    assert set(seen) == {torch.float64}
    # v(N) is the product of the features, v(T) for T != N is 0 (a zero baseline).
    assert v[:, -1].tolist() == pytest.approx(x.prod(dim=1).tolist(), rel=1e-15)
    assert model_device(torch.nn.ReLU(), default="meta") == torch.device("meta")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_a_model_on_the_meta_device_is_refused_before_any_forward_pass():
    model = Recording(torch.nn.Linear(6, 3, device="meta"))
    with pytest.raises(ValueError, match="'meta' device .* materialise"):
        compute_interactions(
            model, _features(), torch.tensor([0, 1, 2]), masker=FeatureMasker(num_features=6)
        )
    assert model.seen == []


def test_inputs_or_targets_on_the_meta_device_are_refused():
    model = Recording(_mlp())
    with pytest.raises(ValueError, match="inputs are on the 'meta' device"):
        compute_interactions(
            model, torch.empty(3, 6, device="meta"), None, masker=FeatureMasker(num_features=6)
        )
    with pytest.raises(ValueError, match="targets are on the 'meta' device"):
        compute_interactions(
            model,
            _features(),
            torch.empty(3, dtype=torch.long, device="meta"),
            masker=FeatureMasker(num_features=6),
        )
    assert model.seen == []


# ---------------------------------------------------------------------------------------------
# Half precision and bfloat16 against float32, within an a-priori error bound
# ---------------------------------------------------------------------------------------------

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


def _abs_layer(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``|W| x`` of a Linear or Conv2d layer (no bias), in float64."""
    weight = layer.weight.detach().double().abs()
    if isinstance(layer, torch.nn.Linear):
        return x @ weight.T
    return torch.nn.functional.conv2d(x, weight, padding=layer.padding, stride=layer.stride)


def _exact_layer(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    weight, bias = layer.weight.detach().double(), layer.bias.detach().double()
    if isinstance(layer, torch.nn.Linear):
        return torch.nn.functional.linear(x, weight, bias)
    return torch.nn.functional.conv2d(x, weight, bias, padding=layer.padding, stride=layer.stride)


def error_bound(model: torch.nn.Sequential, x: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact outputs of ``model`` (its weights taken as exact) on exact ``x``, and a bound on the error
    of evaluating it in a dtype of unit roundoff ``u``, element by element.

    Standard running error analysis (Higham, Accuracy and Stability, ch. 3): rounding the inputs
    gives ``u |x|``; a Linear/Conv2d layer with fan-in ``d`` propagates an input error ``e`` as
    ``|W| e`` and adds at most ``(d + 5) u / (1 - (d + 5) u)`` times ``|W| (|x| + e) + |b|``
    (weights and bias rounded to the dtype, ``d`` products, ``d`` additions, the output rounded);
    ReLU and Flatten do not increase it. The bound holds whatever order the sums are taken in.
    """
    value, error = x, u * x.abs()
    for layer in model:
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            fan_in = layer.weight[0].numel()
            assert (fan_in + 5) * u < 0.5, "the bound is vacuous at this fan-in"
            gamma = (fan_in + 5) * u / (1 - (fan_in + 5) * u)
            bias = layer.bias.detach().double().abs()
            bias = bias if isinstance(layer, torch.nn.Linear) else bias[:, None, None]
            magnitude = _abs_layer(layer, value.abs() + error) + bias
            error = _abs_layer(layer, error) + gamma * magnitude
            value = _exact_layer(layer, value)
        elif isinstance(layer, torch.nn.ReLU):
            value = torch.relu(value)
        elif isinstance(layer, torch.nn.Flatten):
            value, error = value.flatten(1), error.flatten(1)
        else:
            raise TypeError(f"no error bound for {type(layer).__name__}")
    return value, error


def _log_odds_bound(logits: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """How much the log-odds can move when every logit moves by at most ``error``.

    ``z_y - logsumexp_{j != y} z_j`` moves by at most ``2 max_j |dz_j|`` (both terms are
    1-Lipschitz in the max norm); evaluating it in float32 on the upcast logits adds at most
    ``16 u32 (1 + max |z|)``.
    """
    return 2 * error.amax(dim=1) + 16 * 2.0**-24 * (1 + logits.abs().amax(dim=1))


def _masked_float64(masker, inputs: torch.Tensor) -> torch.Tensor:
    players = masker.select_players(inputs)
    masks = torch.arange(2**masker.num_players)
    masked = masker.apply(inputs.double(), players, masks)
    return masked.flatten(0, 1)


def _objective_bound(b: torch.Tensor, n: int) -> torch.Tensor:
    """``sum_{S nonempty} sum_{T subset of S} b_T``: a bound on the L1 size of the AND interactions
    of a change ``r`` of ``v`` with ``|r_T| <= b_T``. Adding them to an optimal point for ``v`` gives a
    feasible point for ``v + r`` (the AND triggers reproduce ``r`` exactly), so the LP optima of
    ``v`` and ``v + r`` differ by at most this much (q_ratio = 0, so the box does not move)."""
    total = torch.zeros(b.shape[0], dtype=torch.float64)
    for S in range(1, 2**n):
        for T in range(2**n):
            if T & S == T:
                total += b[:, T]
    return total


def _without_cancellation(net: torch.nn.Sequential) -> torch.nn.Sequential:
    """Hidden weights made non-negative, the first class's output weights positive and the others
    negative: no sum cancels, so the worst-case bound is not much larger than the actual error
    and a test against it is not vacuous (on random signs it exceeds the spread of v in bfloat16)."""
    layers = [m for m in net if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        for layer in layers[:-1]:
            layer.weight.abs_()
        head = layers[-1].weight
        head.abs_()
        head[1:].neg_()
    return net


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_half_precision_interactions_agree_with_float32_within_the_derived_bound(dtype, kind):
    g = torch.Generator().manual_seed(7)
    if kind == "mlp":
        net, inputs = _without_cancellation(_mlp()), torch.rand(4, 6, generator=g)
        masker = FeatureMasker(groups=[[0], [1, 2], [3], [4, 5]])
    else:
        net, inputs = _without_cancellation(_cnn()), torch.rand(4, 1, 8, 8, generator=g)
        masker = PatchMasker(patch_size=4, num_players=4)
    targets = torch.tensor([0, 1, 2, 0])
    n, tol = masker.num_players, 1e-3
    # The float32 weights rounded to the dtype are the weights of the half model; the bound counts that.
    reference = compute_interactions(net, inputs, targets, masker=masker, q_ratio=0.0, tol=tol)
    result = compute_interactions(net.to(dtype), inputs, targets, masker=masker, q_ratio=0.0, tol=tol)
    net.float()

    masked = _masked_float64(masker, inputs)
    logits, low_error = error_bound(net, masked, UNIT_ROUNDOFF[dtype])
    _, f32_error = error_bound(net, masked, UNIT_ROUNDOFF[torch.float32])
    bound = (_log_odds_bound(logits, low_error) + _log_odds_bound(logits, f32_error)).reshape(4, 2**n)

    assert result.v.dtype == torch.float64 and result.I_and.dtype == torch.float64
    difference = (result.v - reference.v).abs()
    assert bool((difference <= bound).all()), float((difference / bound).max())
    # Not vacuous: the bound is small next to the spread of v over the masks.
    spread = reference.v.amax(dim=1) - reference.v.amin(dim=1)
    assert bool((bound.amax(dim=1) < 0.5 * spread).all()), (bound.amax(dim=1) / spread).tolist()
    # Both certified to a gap of tol, so each objective is within a factor 1 + tol of its optimum.
    assert bool((result.gap <= tol).all()) and bool((reference.gap <= tol).all())
    # The LP optimum moves by at most the L1 size of the AND interactions of the change of v (the
    # a-priori bound would be vacuous here: 3^n times the worst case); this checks that the
    # extraction of the upcast values follows its values as the LP does.
    slack = (
        _objective_bound(difference, n) + tol * torch.maximum(result.objective, reference.objective) + 1e-6
    )
    assert bool(((result.objective - reference.objective).abs() <= slack).all())


# ---------------------------------------------------------------------------------------------
# CUDA (skipped without a device)
# ---------------------------------------------------------------------------------------------


@cuda
def test_cpu_inputs_and_targets_move_to_a_cuda_model():
    model = Recording(_mlp().cuda())
    x, targets = _features(dtype=torch.float64), torch.tensor([0, 1, 2])
    result = compute_interactions(model, x, targets, masker=FeatureMasker(num_features=6))
    assert {(d, dev) for d, dev, _ in model.seen} == {(torch.float32, "cuda")}
    reference = compute_interactions(_mlp(), x, targets, masker=FeatureMasker(num_features=6))
    assert result.v.device.type == "cuda"
    assert torch.allclose(result.v.cpu(), reference.v, atol=1e-4)


@cuda
def test_cuda_inputs_move_to_a_cpu_model_and_a_parameterless_model_follows_the_inputs():
    x = _features().cuda()
    model = Recording(_mlp())
    masked_outputs(model, x, torch.tensor([0, 1, 2], device="cuda"), masker=FeatureMasker(num_features=6))
    assert {dev for _, dev, _ in model.seen} == {"cpu"}
    seen = []

    def total(z):
        seen.append(z.device.type)
        return z.sum(dim=1)

    v = masked_outputs(total, x, masker=FeatureMasker(num_features=6), output="regression")
    assert set(seen) == {"cuda"} and v.device.type == "cuda"


@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_models_on_cuda(dtype):
    result = compute_interactions(
        _cnn().cuda().to(dtype),
        torch.rand(2, 1, 8, 8),
        torch.tensor([0, 1]),
        masker=PatchMasker(patch_size=4, num_players=4),
    )
    assert result.v.dtype == torch.float64 and bool(torch.isfinite(result.v).all())
