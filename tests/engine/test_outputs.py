"""Output functions v: checked against the literal definitions of theory.md section 1."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_interactions.engine.outputs import (
    binary_logit,
    check_output_values,
    log_odds,
    regression,
    resolve_output,
    unwrap_logits,
)


def literal_log_odds(logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """log(p_y / (1 - p_y)) = log(e^{z_y} / sum_{j != y} e^{z_j}), naively in float64 (|z| < 700)."""
    out = []
    for row, y in zip(logits.double().tolist(), targets.tolist()):
        rest = math.fsum(math.exp(z) for j, z in enumerate(row) if j != y)
        out.append(math.log(math.exp(row[y]) / rest))
    return out


@pytest.mark.parametrize("gap", [0.0, 1.0, 17.0, 50.0, 88.0, 100.0])
def test_log_odds_two_classes_is_the_logit_gap_in_float32(gap):
    # For two classes the log-odds is exactly z_y - z_other; float32 gaps up to 100 must stay exact.
    logits = torch.tensor([[gap, 0.0], [0.0, gap], [gap, 0.0], [3.5, 3.5 + gap]], dtype=torch.float32)
    targets = torch.tensor([0, 1, 1, 0])
    expected = (logits[:, 0] - logits[:, 1]).double() * torch.tensor([1, -1, -1, 1]).double()
    got = log_odds(logits, targets)
    assert got.dtype == torch.float32
    assert torch.isfinite(got).all()
    assert torch.equal(got.double(), expected)


def test_naive_float32_log_odds_saturates_where_log_odds_does_not():
    # Why the stable form matters: the naive formula gives inf at a gap of 100 in float32.
    logits = torch.tensor([[100.0, 0.0]])
    p = torch.softmax(logits, dim=1)[0, 0]
    assert not torch.isfinite(torch.log(p) - torch.log1p(-p))
    assert torch.isfinite(log_odds(logits, torch.tensor([0]))).all()


@pytest.mark.parametrize("num_classes", [3, 5, 10])
@pytest.mark.parametrize("scale", [1.0, 30.0, 100.0])
def test_log_odds_matches_float64_reference(num_classes, scale):
    gen = torch.Generator().manual_seed(num_classes)
    logits = (torch.rand(64, num_classes, generator=gen) * 2 - 1) * scale  # gaps up to 2 * scale
    targets = torch.randint(num_classes, (64,), generator=gen)
    expected = torch.tensor(literal_log_odds(logits, targets), dtype=torch.float64)
    got32 = log_odds(logits, targets)
    got64 = log_odds(logits.double(), targets)
    assert torch.isfinite(got32).all()
    torch.testing.assert_close(got64, expected, rtol=1e-12, atol=1e-12)
    # float32: relative to the size of the logits, which is what float32 can represent.
    torch.testing.assert_close(got32.double(), expected, rtol=0, atol=1e-6 * scale)


def test_log_odds_large_gap_many_classes_float32():
    # Target far above (and far below) every other class: still exact in float32.
    logits = torch.tensor([[100.0, 0.0, 0.0, 0.0], [-100.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([0, 0])
    expected = torch.tensor(literal_log_odds(logits, targets), dtype=torch.float64)
    got = log_odds(logits, targets)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-5)


def test_log_odds_errors():
    logits = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="needs the target"):
        log_odds(logits, None)
    with pytest.raises(ValueError, match="0 .. 3"):
        log_odds(logits, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="0 .. 3"):
        log_odds(logits, torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        log_odds(logits, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        log_odds(logits, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="C >= 2"):
        log_odds(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        log_odds(torch.zeros(3, 4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="floating point"):
        log_odds(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, dtype=torch.long))


def test_binary_logit_sign_follows_target():
    logit = torch.tensor([[1.5], [-2.0], [100.0], [0.25]])
    targets = torch.tensor([1, 1, 0, 0])
    expected = torch.tensor([1.5, -2.0, -100.0, -0.25])
    assert torch.equal(binary_logit(logit, targets), expected)
    assert torch.equal(binary_logit(logit[:, 0], targets.float()), expected)
    assert torch.equal(binary_logit(logit), logit[:, 0])


def test_binary_logit_is_the_log_odds_of_the_target_class():
    # The logit of class 1 against class 0 is a two-class problem with logits (0, z).
    z = torch.tensor([3.0, -7.0, 0.5])
    targets = torch.tensor([0, 1, 1])
    two_class = torch.stack([torch.zeros(3), z], dim=1)
    torch.testing.assert_close(binary_logit(z, targets), log_odds(two_class, targets))


def test_binary_logit_and_regression_errors():
    with pytest.raises(ValueError, match="0 or 1"):
        binary_logit(torch.zeros(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"got shape \(3, 2\)"):
        binary_logit(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        binary_logit(torch.zeros(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"got shape \(3, 2\)"):
        regression(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="tensor"):
        regression([1.0, 2.0])


def test_regression_returns_the_output():
    out = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
    assert torch.equal(regression(out), out[:, 0])
    assert torch.equal(regression(out[:, 0], torch.tensor([1, 2])), out[:, 0])


def test_resolve_output():
    assert resolve_output("log_odds") is log_odds
    assert resolve_output("gt-log-odds") is log_odds
    assert resolve_output("logit") is binary_logit
    assert resolve_output("Regression") is regression

    def custom(output, targets):
        return output.sum(dim=1)

    assert resolve_output(custom) is custom
    with pytest.raises(ValueError, match="unknown output 'softmax'"):
        resolve_output("softmax")
    with pytest.raises(TypeError, match="name or a callable"):
        resolve_output(3)


def test_check_output_values():
    check_output_values(torch.zeros(5), 5)
    with pytest.raises(ValueError, match=r"got shape \(5, 1\)"):
        check_output_values(torch.zeros(5, 1), 5)
    with pytest.raises(ValueError, match=r"shape \(5,\); got shape \(4,\)"):
        check_output_values(torch.zeros(4), 5)
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        check_output_values(torch.tensor(1.0), 5)
    with pytest.raises(TypeError, match="got list"):
        check_output_values([0.0] * 5, 5)
    with pytest.raises(TypeError, match="floating-point"):
        check_output_values(torch.zeros(5, dtype=torch.long), 5)


# ---------------------------------------------------------------------------------------------
# Model outputs in a container: dict, tuple or list, an object with .logits (Hugging Face style)
# ---------------------------------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
TARGETS = torch.tensor([0, 2])
# log(e^2 / (1 + 1)) = 2 - log 2; log(e^3 / (1 + e)) = 3 - log(1 + e)
EXPECTED_LOG_ODDS = [2.0 - math.log(2.0), 3.0 - math.log(1.0 + math.e)]


class HFStyleOutput:
    """What a Hugging Face model returns, reduced to what matters here: a ``.logits`` attribute."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits
        self.hidden_states = None


@pytest.mark.parametrize(
    "wrap",
    [
        lambda t: t,
        lambda t: {"logits": t, "loss": None},
        lambda t: (t, torch.zeros(2, 5)),
        lambda t: [t],
        lambda t: HFStyleOutput(t),
    ],
    ids=["tensor", "dict", "tuple", "list", "attribute"],
)
def test_named_outputs_find_the_logits_in_common_containers(wrap):
    assert log_odds(wrap(LOGITS), TARGETS).tolist() == pytest.approx(EXPECTED_LOG_ODDS, abs=1e-6)
    column = LOGITS[:, :1]  # (N, 1): one logit / one regression value per sample
    assert binary_logit(wrap(column), torch.tensor([1, 0])).tolist() == [2.0, 0.0]
    assert regression(wrap(column)).tolist() == [2.0, 0.0]


def test_logits_found_in_a_container_are_at_least_float32():
    half = torch.tensor([[1.0, 0.0]], dtype=torch.float16)
    assert unwrap_logits({"logits": half}).dtype == torch.float32
    assert unwrap_logits(half) is half  # a bare tensor: the engine has already cast it


@pytest.mark.parametrize(
    ("model_output", "described"),
    [
        ({"scores": LOGITS}, "a dict with keys 'scores'"),
        ({}, "an empty dict"),
        ((), "a tuple of 0 whose first element is nothing"),
        (("text", LOGITS), "a tuple of 2 whose first element is str"),
        ({"logits": [1.0, 2.0]}, "a dict with keys 'logits'"),
        (3.5, "a float"),
    ],
)
def test_no_logits_found_says_how_to_pass_an_output_function(model_output, described):
    with pytest.raises(TypeError) as raised:
        log_odds(model_output, TARGETS)
    message = str(raised.value)
    assert message.startswith(f"log_odds: found no logits in the model output ({described}); ")
    assert "pass output=lambda out, targets: ..." in message


class DictModel(torch.nn.Module):
    """A linear classifier on 4 features that returns ``{"logits": ..., "features": ...}``."""

    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 3)
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor):
        logits = self.linear(x)
        return {"logits": logits, "features": x} if self.as_dict else logits


def test_compute_interactions_on_a_model_returning_a_dict():
    from lightning_interactions import FeatureMasker, compute_interactions
    from lightning_interactions.engine.compute import masked_outputs

    x = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0]])
    y = torch.tensor([2, 0])
    masker = FeatureMasker(num_features=4)
    as_dict, plain = DictModel(as_dict=True), DictModel(as_dict=False)
    # v(T) on the full coalition (all four features present) is the log-odds of the unmasked input.
    values = masked_outputs(as_dict, x, y, masker=masker)
    logits = plain.linear(x).detach().double()
    literal = [
        float(row[t] - torch.logsumexp(torch.cat([row[:t], row[t + 1 :]]), dim=0))
        for row, t in zip(logits, y.tolist())
    ]
    assert values[:, -1].tolist() == pytest.approx(literal, abs=1e-6)
    got = compute_interactions(as_dict, x, y, masker=masker)
    expected = compute_interactions(plain, x, y, masker=masker)
    assert torch.equal(got.I_and, expected.I_and) and torch.equal(got.I_or, expected.I_or)
    # A callable output still gets the dict as the model returned it.
    seen = []

    def first_logit(out, targets):
        seen.append(type(out))
        return out["logits"][:, 0]

    compute_interactions(as_dict, x, y, masker=masker, output=first_logit)
    assert seen and set(seen) == {dict}
