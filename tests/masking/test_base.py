"""The masker contract (masking/base.py), for every built-in masker: checked against a literal loop
over masks and players (theory.md section 1); presence, bad masks, ``out=`` and the player limit.

Each masker's own rules are in ``test_patches.py``, ``test_features.py``, ``test_tokens.py``,
``test_point_clouds.py`` and ``test_callable.py``.
"""

from __future__ import annotations

import pytest
import torch
from helpers.inputs import padded_token_ids, seeded

from lightning_interactions.masking import (
    MAX_PLAYERS,
    CallableMasker,
    FeatureMasker,
    Masker,
    PatchMasker,
    PointCloudMasker,
    TokenMasker,
    presence,
)
from lightning_interactions.masking.base import check_num_players

# ---------------------------------------------------------------------------------------------
# Literal definitions
# ---------------------------------------------------------------------------------------------


def literal_masked(inputs, masks, regions, baselines):
    """x_T by definition: start from the sample, put the baseline on every absent player's region.

    ``regions[b][i]`` is a bool tensor of one sample's shape (the variables of player ``i`` in
    sample ``b``), ``baselines[b]`` the baseline values of sample ``b`` (one sample's shape).
    """
    out = []
    for b in range(inputs.shape[0]):
        per_mask = []
        for mask in masks.tolist():
            x = inputs[b].clone()
            for i, region in enumerate(regions[b]):
                if not (mask >> i) & 1:
                    x[region] = baselines[b][region]
            per_mask.append(x)
        out.append(torch.stack(per_mask))
    return torch.stack(out)


def patch_regions(masker, inputs, players):
    _, _, height, width = inputs.shape
    ph, pw = masker.patch_size
    cols = width // pw
    regions = []
    for patches in players["patches"].tolist():
        sample = []
        for p in patches:
            r, c = divmod(p, cols)
            region = torch.zeros(inputs.shape[1:], dtype=torch.bool)
            region[:, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] = True
            sample.append(region)
        regions.append(sample)
    return regions


def feature_regions(masker, inputs, players):
    regions = []
    for chosen in players["groups"].tolist():
        sample = []
        for k in chosen:
            region = torch.zeros(inputs.shape[1:], dtype=torch.bool)
            region[..., list(masker.groups[k])] = True
            sample.append(region)
        regions.append(sample)
    return regions


def token_regions(masker, inputs, players):
    regions = []
    for positions in players["positions"].tolist():
        sample = []
        for pos in positions:
            region = torch.zeros(inputs.shape[1:], dtype=torch.bool)
            region[pos] = True
            sample.append(region)
        regions.append(sample)
    return regions


def cloud_regions(masker, inputs, players):
    regions = []
    for ids in players["clusters"]:
        regions.append([(ids == i)[:, None].expand(-1, 3) for i in range(masker.num_players)])
    return regions


def cloud_baselines(masker, inputs, players):
    """Every point of cluster i sits at the centroid of cluster i's points."""
    out = []
    for x, ids in zip(inputs, players["clusters"]):
        base = torch.zeros_like(x)
        for i in range(masker.num_players):
            if (ids == i).any():
                base[ids == i] = x[ids == i].mean(dim=0)
        out.append(base)
    return out


def literal_for(masker, inputs, players, masks):
    if isinstance(masker, PatchMasker):
        regions = patch_regions(masker, inputs, players)
    elif isinstance(masker, FeatureMasker):
        regions = feature_regions(masker, inputs, players)
    elif isinstance(masker, TokenMasker):
        regions = token_regions(masker, inputs, players)
    else:
        regions = cloud_regions(masker, inputs, players)
    if isinstance(masker, PointCloudMasker):
        baselines = cloud_baselines(masker, inputs, players)
    elif isinstance(masker, TokenMasker):
        baselines = [torch.full_like(x, masker.mask_token_id) for x in inputs]
    else:
        baselines = [masker.baseline.to(inputs.dtype).expand(inputs.shape[1:]) for _ in inputs]
    return literal_masked(inputs, masks, regions, baselines), regions


# ---------------------------------------------------------------------------------------------
# Cases: every masker on inputs that fit it
# ---------------------------------------------------------------------------------------------


CASES = {
    "patch_random": lambda: (PatchMasker(4, num_players=4), torch.randn(3, 2, 8, 12, generator=seeded())),
    "patch_fixed_rect": lambda: (
        PatchMasker((2, 4), players=[5, 0, 7], baseline=torch.randn(2, 1, 1, generator=seeded(2))),
        torch.randn(2, 2, 6, 12, generator=seeded()),
    ),
    "patch_mean": lambda: (
        PatchMasker(2, num_players=3, baseline="mean", data=torch.randn(5, 1, 4, 4, generator=seeded(3))),
        torch.randn(2, 1, 4, 4, generator=seeded()),
    ),
    "feature_all": lambda: (FeatureMasker(num_features=5), torch.randn(3, 5, generator=seeded())),
    "feature_groups_random": lambda: (
        FeatureMasker(groups=[[0], [2, 3], [5], [6, 9], [7], [1]], num_players=3, baseline=0.5),
        torch.randn(4, 10, generator=seeded()),
    ),
    "feature_segments_signal": lambda: (
        FeatureMasker.segments(12, 4, baseline="mean", data=torch.randn(6, 2, 12, generator=seeded(4))),
        torch.randn(3, 2, 12, generator=seeded()),
    ),
    "token_random": lambda: (TokenMasker(mask_token_id=3, num_players=4, pad_token_id=0), padded_token_ids()),
    "token_fixed_int32": lambda: (
        TokenMasker(mask_token_id=3, players=[4, 1], pad_token_id=0),
        padded_token_ids().to(torch.int32),
    ),
    "cloud_kmeans": lambda: (
        PointCloudMasker(num_players=4, iters=5),
        torch.randn(3, 20, 3, generator=seeded()),
    ),
    "cloud_given": lambda: (
        PointCloudMasker(clusters=torch.randint(0, 3, (2, 15), generator=seeded(5))),
        torch.randn(2, 15, 3, generator=seeded(), dtype=torch.float64),
    ),
}
RANDOM_CASES = ["patch_random", "feature_groups_random", "token_random", "cloud_kmeans"]


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]()


# ---------------------------------------------------------------------------------------------
# The contract, for every masker
# ---------------------------------------------------------------------------------------------


def test_matches_literal_loop_over_masks_and_players(case):
    masker, inputs = case
    players = masker.select_players(inputs, seed=7)
    masks = torch.arange(2**masker.num_players)
    expected, _ = literal_for(masker, inputs, players, masks)
    got = masker.apply(inputs, players, masks)
    if isinstance(masker, PointCloudMasker):  # centroids summed in another order
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(got, expected)


def test_writing_into_a_given_buffer_matches_literal_loop(case):
    masker, inputs = case
    assert masker.supports_out  # every built-in masker but CallableMasker takes out=
    players = masker.select_players(inputs, seed=7)
    masks = torch.arange(2**masker.num_players)
    expected, _ = literal_for(masker, inputs, players, masks)
    buffer = torch.full_like(expected, 7)  # stale values that must all be overwritten
    got = masker.apply(inputs, players, masks, out=buffer)
    assert got is buffer
    if isinstance(masker, PointCloudMasker):
        torch.testing.assert_close(buffer, expected, rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(buffer, expected)


def test_non_players_untouched_and_full_mask_is_the_input(case):
    masker, inputs = case
    players = masker.select_players(inputs)
    masks = torch.arange(2**masker.num_players)
    _, regions = literal_for(masker, inputs, players, masks)
    got = masker.apply(inputs, players, masks)
    for b, sample_regions in enumerate(regions):
        outside = ~torch.stack(sample_regions).any(dim=0)
        assert torch.equal(got[b][:, outside], inputs[b][outside].expand(len(masks), -1))
    assert torch.equal(got[:, -1], inputs)  # every player present


def test_shapes_dtypes_devices_and_players_dict(case):
    masker, inputs = case
    players = masker.select_players(inputs)
    batch = inputs.shape[0]
    for value in players.values():
        assert value.shape[0] == batch
        assert value.device == inputs.device
        assert value.dtype == torch.int64
    masks = torch.tensor([0, 3, 1])
    out = masker.apply(inputs, players, masks)
    assert out.shape == (batch, 3, *inputs.shape[1:])
    assert out.dtype == inputs.dtype
    assert out.device == inputs.device


def test_any_subset_of_masks_in_any_order(case):
    masker, inputs = case
    players = masker.select_players(inputs)
    full = masker.apply(inputs, players, torch.arange(2**masker.num_players))
    masks = torch.tensor([5 % 2**masker.num_players, 0, 2**masker.num_players - 1, 1])
    assert torch.equal(masker.apply(inputs, players, masks), full[:, masks])
    assert masker.apply(inputs, players, masks[:0]).shape == (inputs.shape[0], 0, *inputs.shape[1:])


def test_per_sample_slices_of_players_give_the_same_masked_sample(case):
    masker, inputs = case
    players = masker.select_players(inputs)
    masks = torch.arange(2**masker.num_players)
    full = masker.apply(inputs, players, masks)
    one = {key: value[1:2] for key, value in players.items()}
    assert torch.equal(masker.apply(inputs[1:2], one, masks), full[1:2])


def test_selection_leaves_global_rng_untouched_and_is_stable(case):
    masker, inputs = case
    state = torch.get_rng_state()
    first = masker.select_players(inputs, seed=3)
    again = masker.select_players(inputs, seed=3)
    masker.apply(inputs, first, torch.arange(2**masker.num_players))
    assert torch.equal(torch.get_rng_state(), state)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[key], again[key]) for key in first)


@pytest.mark.parametrize("name", RANDOM_CASES)
def test_random_players_differ_across_seeds(name):
    masker, inputs = CASES[name]()
    seeds = [masker.select_players(inputs, seed=s) for s in range(3)]
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert any(not torch.equal(seeds[a][k], seeds[b][k]) for k in seeds[a])


def test_random_players_are_distinct_units_per_sample():
    masker = PatchMasker(2, num_players=5)
    patches = masker.select_players(torch.zeros(6, 1, 6, 6), seed=11)["patches"]
    for row in patches.tolist():
        assert len(set(row)) == 5 and all(0 <= p < 9 for p in row)


def test_bad_masks_give_clear_errors():
    masker = FeatureMasker(num_features=3)
    x = torch.zeros(2, 3)
    players = masker.select_players(x)
    with pytest.raises(ValueError, match=r"0 \.\. 2\^3 - 1 = 7"):
        masker.apply(x, players, torch.tensor([0, 8]))
    with pytest.raises(ValueError, match=r"0 \.\. 2\^3 - 1"):
        masker.apply(x, players, torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        masker.apply(x, players, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        masker.apply(x, players, torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="'groups' entry"):
        masker.apply(x, {}, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        masker.apply(x, {"groups": players["groups"][:1]}, torch.tensor([0]))
    with pytest.raises(ValueError, match="must be distinct"):
        masker.apply(x, {"groups": torch.tensor([[0, 1, 1], [0, 1, 2]])}, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"players\['groups'\] must lie in 0 \.\. 2"):
        masker.apply(x, {"groups": torch.tensor([[0, 1, 3], [0, 1, 2]])}, torch.tensor([0]))


def test_presence_is_the_bits_of_each_mask():
    masks = torch.tensor([0, 1, 2, 5, 7, 6])
    expected = torch.tensor([[(m >> i) & 1 == 1 for i in range(3)] for m in masks.tolist()])
    assert torch.equal(presence(masks, 3), expected)


# ---------------------------------------------------------------------------------------------
# The contract: out= and the player limit
# ---------------------------------------------------------------------------------------------


def _halves(inputs, masks):
    """Two players: the first and the second half of the features; zeros when absent."""
    keep = presence(masks, 2).to(inputs.dtype).repeat_interleave(inputs.shape[1] // 2, dim=1)
    return inputs[:, None] * keep


def test_supports_out_is_declared_by_the_class_that_defines_apply():
    class Inherits(FeatureMasker):  # apply inherited: supports_out inherited
        pass

    class NoOut(FeatureMasker):  # an apply without out=, written against the 3-argument contract
        def apply(self, inputs, players, masks):
            return super().apply(inputs, players, masks)

    class PassesOut(FeatureMasker):
        supports_out = True

        def apply(self, inputs, players, masks, out=None):
            return super().apply(inputs, players, masks, out=out)

    assert Masker.supports_out is False and CallableMasker(_halves, num_players=2).supports_out is False
    assert Inherits.supports_out and PassesOut.supports_out and not NoOut.supports_out
    x = torch.randn(2, 4, generator=seeded())
    masker = PassesOut(num_features=4)
    players = masker.select_players(x)
    buffer = torch.empty(2, 16, 4)
    assert masker.apply(x, players, torch.arange(16), out=buffer) is buffer
    assert torch.equal(buffer, NoOut(num_features=4).apply(x, players, torch.arange(16)))


@pytest.mark.parametrize(
    "make",
    [
        lambda n: PatchMasker(1, num_players=n),
        lambda n: FeatureMasker(num_features=n),
        lambda n: FeatureMasker(num_features=30, num_players=n),
        lambda n: TokenMasker(mask_token_id=0, num_players=n),
        lambda n: PointCloudMasker(num_players=n),
        lambda n: PointCloudMasker(clusters=torch.arange(n)),
        lambda n: CallableMasker(_halves, num_players=n),
        lambda n: presence(torch.tensor([0]), n),
    ],
)
def test_every_masker_refuses_more_than_20_players_at_construction(make):
    assert MAX_PLAYERS == 20
    make(MAX_PLAYERS)
    message = (
        r"21 players need 2\^21 = 2,097,152 masked forward passes per sample; the limit is 20 players "
        r"\(2\^20 = 1,048,576 per sample\): lower num_players \(8 to 12 is usual\)"
    )
    with pytest.raises(ValueError, match=message):
        make(MAX_PLAYERS + 1)


def test_check_num_players():
    assert check_num_players(20, "X") == 20 and check_num_players(3, "X", limit=3) == 3
    with pytest.raises(ValueError, match=r"^X: num_players must be in 1 \.\. 20, got 0$"):
        check_num_players(0, "X")
    with pytest.raises(TypeError, match="X: num_players must be an int, got float"):
        check_num_players(2.0, "X")
    with pytest.raises(TypeError, match="got bool"):
        check_num_players(True, "X")
    lowered = r"the limit is max_players=3: .* or raise max_players \(at most 20\)"
    with pytest.raises(ValueError, match=lowered):
        check_num_players(4, "X", limit=3)
    for limit in (0, 21, 2.5):
        with pytest.raises(ValueError, match=r"X: the player limit max_players must be an int in 1 \.\. 20"):
            check_num_players(1, "X", limit=limit)
