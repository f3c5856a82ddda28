"""PatchMasker's own rules: fixed players keep their order, baselines, dtypes, errors.

What every masker must do (against a literal loop over masks and players) is ``test_base.py``'s.
"""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.masking import (
    PatchMasker,
    resolve_baseline,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_patch_fixed_players_keep_their_order_for_every_sample():
    masker = PatchMasker(2, players=[3, 0])
    patches = masker.select_players(torch.zeros(4, 1, 4, 4), seed=5)["patches"]
    assert patches.tolist() == [[3, 0]] * 4
    out = masker.apply(torch.ones(1, 1, 4, 4), {"patches": patches[:1]}, torch.tensor([1]))
    # Mask 1: player 0 (patch 3, bottom right) present, player 1 (patch 0, top left) absent.
    assert out[0, 0, 0, :2, :2].eq(0).all() and out[0, 0, 0, 2:, 2:].eq(1).all()


def test_patch_baselines_resolve_once():
    data = torch.randn(4, 2, 4, 4, generator=_gen())
    assert torch.equal(PatchMasker(2, baseline="mean", data=data).baseline, data.double().mean(dim=0))
    assert torch.equal(PatchMasker(2).baseline, torch.zeros(()))
    assert torch.equal(resolve_baseline(1.5), torch.tensor(1.5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.uint8])
def test_patch_keeps_dtype(dtype):
    masker = PatchMasker(2, num_players=2, baseline=7.0)
    images = torch.ones(1, 1, 4, 4, dtype=dtype)
    out = masker.apply(images, masker.select_players(images), torch.tensor([0]))
    assert out.dtype == dtype
    assert out.eq(1).sum() == 8 and out.eq(7).sum() == 8  # two of four patches masked


def test_patch_errors():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        PatchMasker(2).validate(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="not divisible by the patch size 3x3"):
        PatchMasker(3, num_players=2).validate(torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="4 patches, fewer than num_players=5"):
        PatchMasker(4, num_players=5).validate(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="outside the 2x2 grid"):
        PatchMasker(4, players=[1, 4]).validate(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="baseline of shape"):
        PatchMasker(4, num_players=2, baseline=torch.zeros(3, 8, 8)).validate(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="needs data"):
        PatchMasker(4, baseline="mean")
    with pytest.raises(ValueError, match="only used with baseline='mean'"):
        PatchMasker(4, data=torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="'zeros', 'mean'"):
        PatchMasker(4, baseline="median")
    with pytest.raises(ValueError, match="distinct"):
        PatchMasker(4, players=[1, 1])
    with pytest.raises(ValueError, match="num_players=3 but 2 fixed players"):
        PatchMasker(4, num_players=3, players=[0, 1])
    with pytest.raises(ValueError, match="patch_size"):
        PatchMasker((2, 0))
    with pytest.raises(ValueError, match="num_players must be in 1"):
        PatchMasker(2, num_players=0)
