"""The samples as the dashboard draws them: the same players and regions as the matplotlib drawings,
written out here from the layouts' definitions (plot/samples), one layout kind at a time."""

from __future__ import annotations

import json

import pytest
import torch

from lightning_interactions.dashboard.drawings import MAX_POINTS, MAX_SIDE, rounded, sample_drawings


def saved(inputs: torch.Tensor, players: dict, layout: dict) -> dict:
    return {"inputs": inputs, "targets": None, "players": players, "layout": layout}


def test_grey_patches_keep_the_pixels_and_each_players_square() -> None:
    image = torch.arange(2 * 1 * 6 * 4, dtype=torch.float64).reshape(2, 1, 6, 4)
    players = {"patches": torch.tensor([[0, 5], [1, 2]])}
    drawing = sample_drawings(saved(image, players, {"kind": "patches", "patch_size": [2, 2]}), [1])["1"]
    assert drawing["image"]["height"] == 6 and drawing["image"]["width"] == 4 and not drawing["image"]["rgb"]
    pixels = torch.tensor(drawing["image"]["pixels"], dtype=torch.float64)
    expected = (image[1, 0] - image[1, 0].min()) / (image[1, 0].max() - image[1, 0].min())
    assert torch.allclose(pixels, expected, atol=0.006)
    # Patch p of a 2-column grid of 2x2 patches: row p // 2, column p % 2; [x, y, w, h] in pixels.
    assert drawing["regions"] == [[2, 0, 2, 2], [0, 2, 2, 2]]


def test_large_rgb_images_are_averaged_down_with_their_regions() -> None:
    image = torch.rand(1, 3, 2 * MAX_SIDE, 64)
    layout = {"kind": "patches", "patch_size": [16, 16]}
    drawing = sample_drawings(saved(image, {"patches": torch.tensor([[23]])}, layout), [0])["0"]
    assert drawing["image"]["rgb"] and (drawing["image"]["height"], drawing["image"]["width"]) == (
        MAX_SIDE,
        32,
    )
    assert len(drawing["image"]["pixels"][0][0]) == 3
    # Patch 23 of a 4-column grid: row 5, column 3; the image is halved.
    assert drawing["regions"] == [[3 * 8, 5 * 8, 8, 8]]


def test_tokens_use_the_layouts_words_or_the_ids() -> None:
    ids, players = torch.tensor([[4, 5, 6]]), {"positions": torch.tensor([[2, 0]])}
    words = sample_drawings(saved(ids, players, {"kind": "tokens", "text": [["a", "b", "c"]]}), [0])["0"]
    assert words == {"kind": "tokens", "tokens": ["a", "b", "c"], "positions": [2, 0]}
    plain = sample_drawings(saved(ids, players, {"kind": "tokens", "text": None}), [0])["0"]
    assert plain["tokens"] == ["4", "5", "6"]


def test_signal_segments_are_the_runs_of_each_players_group() -> None:
    layout = {"kind": "signal", "groups": [[0, 1, 5], [2, 3], [4]], "feature_names": None}
    signal = torch.tensor([[[0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0.0] * 6]])
    drawing = sample_drawings(saved(signal, {"groups": torch.tensor([[0, 2]])}, layout), [0])["0"]
    assert drawing["values"] == [[0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0.0] * 6]
    assert drawing["segments"] == [[[0, 1], [5, 5]], [[4, 4]]]


def test_features_name_each_value_and_the_player_it_belongs_to() -> None:
    layout = {"kind": "features", "groups": [[2], [0, 1]], "feature_names": ["age", "bmi", "bp", "s1"]}
    values = torch.tensor([[1.0, -2.0, 0.25, 3.0]])
    drawing = sample_drawings(saved(values, {"groups": torch.tensor([[1, 0]])}, layout), [0])["0"]
    assert drawing == {
        "kind": "features",
        "values": [1.0, -2.0, 0.25, 3.0],
        "names": ["age", "bmi", "bp", "s1"],
        "owner": [0, 0, 1, None],  # player 0 is group 1 (age, bmi), player 1 group 0 (bp); s1 no one's
    }


def test_point_clouds_are_thinned_with_their_clusters() -> None:
    count = 3 * MAX_POINTS
    cloud = torch.rand(1, count, 3)
    clusters = torch.arange(count).remainder(4) - 1  # -1: a point of no cluster
    drawing = sample_drawings(saved(cloud, {"clusters": clusters[None]}, {"kind": "point_clouds"}), [0])["0"]
    assert len(drawing["points"]) == MAX_POINTS
    assert drawing["points"][1] == pytest.approx(cloud[0, 3].tolist(), abs=1e-3)
    assert drawing["clusters"][:4] == [None, 2, 1, 0]


def test_other_maskers_missing_samples_and_broken_players_give_a_table() -> None:
    custom = saved(torch.rand(2, 5), {}, {"kind": "table"})
    assert sample_drawings(custom, [0]) == {"0": {"kind": "table"}}
    broken = saved(torch.rand(1, 1, 4, 4), {}, {"kind": "patches", "patch_size": [2, 2]})
    assert sample_drawings(broken, [0, 3]) == {"0": {"kind": "table"}, "3": {"kind": "table"}}
    assert sample_drawings(None, [1]) == {"1": {"kind": "table"}}


def test_rounded_values_are_strict_json() -> None:
    values = rounded([1 / 3, float("inf"), [2.0e-9, 123456.789]])
    assert json.loads(json.dumps(values, allow_nan=False)) == [0.3333, None, [2e-09, 123500.0]]
