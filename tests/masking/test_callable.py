"""User maskers: a masking function wrapped by ``as_masker`` / ``CallableMasker``, and its errors."""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.masking import (
    CallableMasker,
    Masker,
    PatchMasker,
    as_masker,
    presence,
)


def _halves(inputs, masks):
    """Two players: the first and the second half of the features; zeros when absent."""
    keep = presence(masks, 2).to(inputs.dtype).repeat_interleave(inputs.shape[1] // 2, dim=1)
    return inputs[:, None] * keep


def test_callable_masker_wraps_a_function():
    masker = as_masker(_halves, num_players=2)
    assert isinstance(masker, CallableMasker) and masker.num_players == 2
    x = torch.arange(1.0, 5.0)[None]
    assert masker.select_players(x) == {}
    out = masker.apply(x, {}, torch.tensor([0, 2]))
    assert torch.equal(out, torch.tensor([[[0.0, 0, 0, 0], [0, 0, 3, 4]]]))


def test_as_masker_and_callable_errors():
    patch = PatchMasker(2, num_players=3)
    assert as_masker(patch) is patch
    with pytest.raises(ValueError, match="needs num_players"):
        as_masker(_halves)
    with pytest.raises(ValueError, match="disagrees"):
        as_masker(patch, num_players=4)
    with pytest.raises(TypeError, match="Masker or a callable"):
        as_masker(42)
    bad = CallableMasker(lambda inputs, masks: inputs, num_players=2)
    with pytest.raises(ValueError, match=r"\(B, M, \.\.\.\).*got \(1, 4\)"):
        bad.apply(torch.zeros(1, 4), {}, torch.tensor([0, 1]))
    assert isinstance(bad, Masker)
