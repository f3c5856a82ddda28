"""Issue 13: each masker's drawing of interactions on samples, checked by its artists (not pixels)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("matplotlib")

from matplotlib.colors import to_rgba  # noqa: E402

from lightning_interactions.analysis.emerging import Change  # noqa: E402
from lightning_interactions.masking import (  # noqa: E402
    CallableMasker,
    FeatureMasker,
    PatchMasker,
    PointCloudMasker,
    TokenMasker,
)
from lightning_interactions.plot.samples import figure_interactions_on_samples, sample_layout  # noqa: E402

BLUE, ORANGE = to_rgba("tab:blue"), to_rgba("tab:orange")


def _figure(masker, inputs, changes, **layout_options):
    layout = sample_layout(masker, inputs, **layout_options)
    players = masker.select_players(inputs, seed=0)
    return layout, players, figure_interactions_on_samples(layout, inputs, players, changes)


def test_patches_are_outlined_where_the_players_are() -> None:
    masker = PatchMasker(patch_size=2, players=[0, 5, 10])
    images = torch.rand(2, 1, 8, 8)
    changes = [Change(1, "and", [0, 2], 2, 0.0, 1.0, 0.5), Change(0, "or", [1], 1, 0.0, -1.0, 0.4)]
    layout, _, figure = _figure(masker, images, changes)
    assert layout == {"kind": "patches", "patch_size": [2, 2]}
    first, second = figure.axes
    filled = [p for p in first.patches if p.get_edgecolor() == BLUE]
    # Patches 0 and 10 of a 4x4 grid of 2x2 patches: corners at (col*2 - .5, row*2 - .5).
    assert sorted(p.get_xy() for p in filled) == [(-0.5, -0.5), (3.5, 3.5)]
    assert all(p.get_linestyle() == "-" for p in filled)
    dashed = [p for p in second.patches if p.get_edgecolor() == ORANGE]
    assert [p.get_xy() for p in dashed] == [(1.5, 1.5)] and dashed[0].get_linestyle() == "--"
    assert first.images[0].get_array().shape == (8, 8)


def test_signal_segments_are_shaded() -> None:
    masker = FeatureMasker.segments(12, 4)
    signals = torch.randn(1, 1, 12)
    layout, _, figure = _figure(masker, signals, [Change(0, "or", [1, 3], 2, 0.0, 1.0, 0.5)])
    assert layout["kind"] == "signal"
    ax = figure.axes[0]
    # axvspan's data-x extent: the patch's vertices through its transform, then back to data.
    spans = [ax.transData.inverted().transform(p.get_verts())[:, 0] for p in ax.patches]
    assert sorted((round(x.min(), 2), round(x.max(), 2)) for x in spans) == [(2.5, 5.5), (8.5, 11.5)]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx(signals[0, 0].tolist())


def test_tabular_groups_are_labelled_bars() -> None:
    masker = FeatureMasker(groups=[[0, 2], [1], [3]])
    rows = torch.tensor([[1.0, -2.0, 3.0, 0.5, 9.0]])
    names = ["age", "bmi", "bp", "s1", "s2"]
    layout, _, figure = _figure(
        masker, rows, [Change(0, "and", [0, 2], 2, 0.0, 1.0, 0.5)], feature_names=names
    )
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["age (player 0)", "bmi (player 1)", "bp (player 0)", "s1 (player 2)", "s2"]
    colors = [bar.get_facecolor() for bar in ax.patches]
    assert [c == BLUE for c in colors] == [True, False, True, True, False]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx(rows[0].tolist())


def test_tokens_are_highlighted_in_decoded_text() -> None:
    masker = TokenMasker(mask_token_id=0, players=[1, 2, 4])
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    decode = {3: "the", 4: "cat", 5: "sat", 6: "on", 7: "mats"}.get
    layout, _, figure = _figure(masker, ids, [Change(0, "or", [0, 2], 2, 0.0, 1.0, 0.5)], decode=decode)
    words = figure.axes[0].texts[::2]
    assert [w.get_text() for w in words] == ["the", "cat", "sat", "on", "mats"]
    lit = [w.get_text() for w in words if w.get_bbox_patch().get_edgecolor()[:3] == ORANGE[:3]]
    assert lit == ["cat", "mats"]  # players 0 and 2 are positions 1 and 4


def test_point_clusters_are_coloured_in_3d() -> None:
    clusters = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    masker = PointCloudMasker(clusters=clusters)
    cloud = torch.randn(1, 7, 3)
    _, _, figure = _figure(masker, cloud, [Change(0, "and", [2], 1, 0.0, 1.0, 0.5)])
    ax = figure.axes[0]
    assert ax.name == "3d"
    rest, chosen = ax.collections
    assert len(chosen.get_offsets()) == 3 and len(rest.get_offsets()) == 4
    assert tuple(chosen.get_facecolor()[0]) == pytest.approx(BLUE)


def test_a_custom_masker_gets_a_table() -> None:
    masker = CallableMasker(lambda inputs, masks: inputs[:, None].repeat(1, len(masks), 1), num_players=3)
    x = torch.zeros(2, 3)
    layout, _, figure = _figure(masker, x, [Change(1, "or", [0, 2], 2, None, 1.5, 0.5)])
    assert layout == {"kind": "table"}
    cells = figure.axes[0].tables[0].get_celld()
    assert [cells[(1, c)].get_text().get_text() for c in range(4)] == ["1", "OR", "{0, 2}", "2"]
    assert cells[(1, 4)].get_text().get_text() == "?"
