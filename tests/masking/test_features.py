"""FeatureMasker's own rules: default players, contiguous segments of a signal, errors.

What every masker must do (against a literal loop over masks and players) is ``test_base.py``'s.
"""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.masking import (
    FeatureMasker,
    contiguous_segments,
)


def test_feature_default_players_are_the_features_in_order():
    masker = FeatureMasker(num_features=4)
    assert masker.num_players == 4
    assert masker.select_players(torch.zeros(2, 4))["groups"].tolist() == [[0, 1, 2, 3]] * 2
    assert FeatureMasker(data=torch.zeros(3, 6), baseline="mean").num_players == 6


def test_feature_segments_are_contiguous_and_cover_the_axis():
    for length, count in [(10, 3), (40, 8), (7, 7), (5, 1)]:
        segments = contiguous_segments(length, count)
        assert len(segments) == count
        assert [f for s in segments for f in s] == list(range(length))
        sizes = [len(s) for s in segments]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="num_segments"):
        contiguous_segments(3, 4)


def test_feature_errors():
    with pytest.raises(ValueError, match="needs groups, num_features or data"):
        FeatureMasker()
    with pytest.raises(ValueError, match=r"disjoint, features \[2\]"):
        FeatureMasker(groups=[[0, 2], [2, 3]])
    with pytest.raises(ValueError, match=r"must lie in 0 \.\. 3"):
        FeatureMasker(groups=[[0], [4]], num_features=4)
    with pytest.raises(ValueError, match="must lie in 0"):
        FeatureMasker(groups=[[-1], [2]])
    with pytest.raises(ValueError, match="non-empty list"):
        FeatureMasker(groups=[[0], []])
    with pytest.raises(ValueError, match="exceeds the 2 groups"):
        FeatureMasker(groups=[[0], [1]], num_players=3)
    with pytest.raises(ValueError, match="inputs have 5 features .* expected 4"):
        FeatureMasker(num_features=4).validate(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="groups use feature 6"):
        FeatureMasker(groups=[[0], [6]]).validate(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, \.\.\., F\)"):
        FeatureMasker(num_features=4).validate(torch.zeros(4))
    with pytest.raises(ValueError, match="baseline of shape"):
        FeatureMasker(num_features=4, baseline=torch.zeros(3)).validate(torch.zeros(2, 4))
