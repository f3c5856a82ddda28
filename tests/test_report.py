"""Tests for lightning_interactions.reporting.report: scalars, layout, summary numbers and figures."""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest
import torch

from lightning_interactions.reporting import report
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.theory import EpochFit, prior_shape

N = 6
# Prior-mode noise level: rises through phase 1 (the complexity falls), then falls (it rises).
LEVELS = [0.05, 0.3, 1.0, 2.0, 1.2, 0.6, 0.3, 0.15]
TRAIN = [2.3, 1.2, 0.8, 0.55, 0.4, 0.3, 0.22, 0.16]
VAL = [2.31, 1.25, 0.84, 0.62, 0.5, 0.47, 0.5, 0.55]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_history(losses: bool = True) -> list[dict]:
    """Eight records in the callback's format, phases from a real PhaseTracker."""
    tracker = PhaseTracker()
    history = []
    for epoch, level in enumerate(LEVELS):
        shape = prior_shape(N, level)
        total = 10.0 + epoch
        complexity = float((shape * torch.arange(1, N + 1, dtype=torch.float64)).sum())
        phase = tracker.update(epoch, complexity)
        history.append(
            {
                "epoch": epoch,
                "global_step": 10 * epoch,
                "num_samples": 16,
                "num_players": N,
                "strength": (shape * total).tolist(),
                "shape": shape.tolist(),
                "complexity": complexity,
                "prediction": "prior",
                "noise_level": None if epoch == 0 else level,
                "theory_error": None if epoch == 0 else 0.01 * epoch,
                "predicted_shape": None if epoch == 0 else prior_shape(N, level).tolist(),
                "phase": phase,
                "overfit_alert": int(tracker.alert),
                "max_gap": 1e-7 * (epoch + 1),
                "signed": {"positive": [0.0] * N, "negative": [0.0] * N, "count": [0.0] * N},
                "train_loss": TRAIN[epoch] if losses else None,
                "val_loss": VAL[epoch] if losses else None,
                "seconds": 0.1,
            }
        )
    return history


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


@pytest.fixture(scope="module")
def tracker_epochs() -> tuple[int, int]:
    tracker = PhaseTracker()
    for record in make_history():
        tracker.update(record["epoch"], record["complexity"])
    assert tracker.alert, "the synthetic history must fire the alert"
    return tracker.alert_epoch, tracker.onset_epoch


@pytest.fixture(scope="module")
def replay_fits() -> list[EpochFit]:
    # Made-up replay: s falls to the reference (last) epoch, which fits itself.
    levels = [3.0, 2.0, 1.0, 0.6, 0.4, 0.2, 0.1, 1e-4]
    errors = [0.5, 0.3, 0.2, 0.05, 0.07, 0.04, 0.06, 1e-9]
    return [EpochFit(epoch=e, s=s, error=err) for e, (s, err) in enumerate(zip(levels, errors))]


@pytest.fixture(scope="module")
def predicted_shapes(replay_fits) -> dict[int, list[float]]:
    return {fit.epoch: prior_shape(N, fit.s).tolist() for fit in replay_fits}


# --- scalars and layout ------------------------------------------------------------------------


def test_scalar_tags_are_the_documented_names() -> None:
    expected = (
        [f"interactions/order_{k}" for k in range(1, N + 1)]
        + [f"interactions/shape/order_{k}" for k in range(1, N + 1)]
        + [
            "interactions/complexity",
            "interactions/noise_level",
            "interactions/theory_error",
            "interactions/phase",
            "interactions/overfit_alert",
        ]
    )
    assert report.scalar_tags(N) == expected
    assert report.scalar_tags(1, prefix="x")[0] == "x/order_1"
    with pytest.raises(ValueError):
        report.scalar_tags(0)


def _layout_matches(regexes: list[str], tags: list[str]) -> dict[str, list[str]]:
    """For each regex, the tags it selects the way the custom-scalars plugin does (re.match)."""
    return {regex: [tag for tag in tags if re.compile(regex).match(tag)] for regex in regexes}


def test_scalar_layout_charts_cover_every_tag_exactly_once() -> None:
    n = 12  # two-digit orders: order_1 must not pick up order_10..12
    tags = report.scalar_tags(n)
    layout = report.scalar_layout(n)
    assert list(layout) == ["interactions"]
    charts = layout["interactions"]
    kind, regexes = charts["strength by order"]
    assert kind == "Multiline"
    assert _layout_matches(regexes, tags) == {
        regex: [f"interactions/order_{k}"] for k, regex in zip(range(1, n + 1), regexes)
    }
    covered = []
    for kind, regexes in charts.values():
        assert kind == "Multiline"
        for selected in _layout_matches(regexes, tags).values():
            assert len(selected) == 1
            covered += selected
    assert sorted(covered) == sorted(tags)


def test_scalar_layout_escapes_the_prefix() -> None:
    layout = report.scalar_layout(2, prefix="a.b")
    regexes = layout["a.b"]["complexity"][1]
    assert _layout_matches(regexes, ["a.b/complexity", "axb/complexity"]) == {regexes[0]: ["a.b/complexity"]}


def test_record_scalars_keys_and_values(history) -> None:
    record = history[3]
    scalars = report.record_scalars(record)
    assert list(scalars) == report.scalar_tags(N)
    for k in range(1, N + 1):
        assert scalars[f"interactions/order_{k}"] == record["strength"][k - 1]
        assert scalars[f"interactions/shape/order_{k}"] == record["shape"][k - 1]
    for name in ("complexity", "noise_level", "theory_error", "phase", "overfit_alert"):
        assert scalars[f"interactions/{name}"] == float(record[name])
    assert all(isinstance(value, float) for value in scalars.values())


def test_record_scalars_skip_none(history) -> None:
    scalars = report.record_scalars(history[0], prefix="p")
    documented = report.scalar_tags(N, prefix="p")
    assert set(scalars) == set(documented) - {"p/noise_level", "p/theory_error"}


def test_layout_is_written_and_read_back(tmp_path) -> None:
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from torch.utils.tensorboard import SummaryWriter

    layout = report.scalar_layout(N)
    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.add_custom_scalars(layout)
    for tag, value in report.record_scalars(make_history()[2]).items():
        writer.add_scalar(tag, value, global_step=2)
    writer.close()

    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "custom_scalars__config__" in accumulator.Tags()["tensors"]
    assert set(report.scalar_tags(N)) - {"interactions/noise_level", "interactions/theory_error"} <= set(
        accumulator.Tags()["scalars"]
    ) | set(accumulator.Tags()["tensors"])
    event = accumulator.Tensors("custom_scalars__config__")[0]
    stored = layout_pb2.Layout()
    stored.ParseFromString(event.tensor_proto.string_val[0])
    read_back = {
        category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
        for category in stored.category
    }
    assert read_back == {
        category: {title: regexes for title, (_, regexes) in charts.items()}
        for category, charts in layout.items()
    }


# --- numbers off the history -------------------------------------------------------------------


def test_alert_epochs_agree_with_the_tracker(history, tracker_epochs) -> None:
    assert report.alert_epochs(history) == tracker_epochs
    quiet = [dict(record, overfit_alert=0) for record in history]
    assert report.alert_epochs(quiet) == (None, None)


def test_loss_gap_minimum(history) -> None:
    gaps = [v - t for t, v in zip(TRAIN, VAL)]
    assert report.loss_gap_minimum(history) == int(np.argmin(gaps))
    # Records without both losses are left out.
    partial = [dict(r, val_loss=None) if r["epoch"] == int(np.argmin(gaps)) else r for r in history]
    rest = [g if e != int(np.argmin(gaps)) else math.inf for e, g in enumerate(gaps)]
    assert report.loss_gap_minimum(partial) == int(np.argmin(rest))
    assert report.loss_gap_minimum(make_history(losses=False)) is None


def test_summary_text_names_the_epochs(history, replay_fits, tracker_epochs) -> None:
    alert, onset = tracker_epochs
    text = report.summary_text(history, replay_fits, alert, onset)
    complexities = [r["complexity"] for r in history]
    low = int(np.argmin(complexities))
    assert f"fired at epoch {alert}" in text
    assert f"phase 2 began at epoch {onset}" in text
    assert f"minimum {complexities[low]:.4g} at epoch {low}" in text
    assert f"final {complexities[-1]:.4g} at epoch {len(history) - 1}" in text
    gap_epoch = int(np.argmin([v - t for t, v in zip(TRAIN, VAL)]))
    assert f"smallest at epoch {gap_epoch}" in text
    # Replay means leave out the reference (last) epoch.
    others = replay_fits[:-1]
    phase2 = [f.error for f in others if f.epoch >= onset]
    assert f"over phase 2 (epochs >= {onset}) {sum(phase2) / len(phase2):.3g}" in text
    assert f"over all other epochs {sum(f.error for f in others) / len(others):.3g}" in text
    assert "not the best epoch to stop" in text


def test_summary_text_without_alert_or_losses() -> None:
    history = make_history(losses=False)
    text = report.summary_text(history, None, None, None)
    assert "no alert" in text
    assert "Loss gap" not in text and "replay" not in text
    with pytest.raises(ValueError):
        report.summary_text([], None, None, None)


# --- figures -----------------------------------------------------------------------------------


def _saved_png(figure, path) -> None:
    figure.savefig(path, format="png", dpi=50)
    data = path.read_bytes()
    assert len(data) > len(PNG_MAGIC) and data[:8] == PNG_MAGIC


def test_matplotlib_available() -> None:
    assert report.matplotlib_available() is True


def test_measured_vs_predicted(history, tmp_path) -> None:
    record = history[4]
    figure = report.figure_measured_vs_predicted(record)
    (ax,) = figure.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(record["shape"])
    assert list(ax.lines[0].get_ydata()) == pytest.approx(record["predicted_shape"])
    assert "epoch 4" in ax.get_title() and f"{record['noise_level']:.3g}" in ax.get_title()
    _saved_png(figure, tmp_path / "one.png")
    # Without a prediction (the untrained record): bars only.
    assert not report.figure_measured_vs_predicted(history[0]).axes[0].lines


def test_shape_heatmap(history, tracker_epochs, tmp_path) -> None:
    figure = report.figure_shape_heatmap(history)
    assert len(figure.axes) == 2  # the map and its colour bar
    data = np.asarray(figure.axes[0].images[0].get_array())
    expected = np.array([[record["shape"][k] for record in history] for k in range(N)])
    np.testing.assert_array_equal(data, expected)
    alert, onset = tracker_epochs
    marked = sorted(line.get_xdata()[0] for line in figure.axes[0].lines)
    assert marked == sorted([alert, onset])  # epochs 0..7 are the columns 0..7 here
    _saved_png(figure, tmp_path / "heat.png")


def test_replay_figure(history, replay_fits, predicted_shapes, tmp_path) -> None:
    figure = report.figure_replay(history, replay_fits, predicted_shapes)
    assert len(figure.axes) == 5
    curves = figure.axes[0].lines
    chosen = [0, 1, 3, 4, 6, 7]  # six of eight, evenly spaced, first and last included
    solid = [line for line in curves if line.get_linestyle() == "-" and len(line.get_ydata())]
    dashed = [line for line in curves if line.get_linestyle() == "--" and len(line.get_ydata())]
    assert len(solid) == len(dashed) == len(chosen)
    for line, index in zip(solid, chosen):
        assert list(line.get_ydata()) == pytest.approx(history[index]["shape"])
    for line, index in zip(dashed, chosen):
        assert list(line.get_ydata()) == pytest.approx(predicted_shapes[index])
    noise = figure.axes[1]
    assert noise.get_yscale() == "log"
    # The reference (last) epoch fits itself and is left out of the noise-level curve.
    assert list(noise.lines[0].get_xdata()) == [f.epoch for f in replay_fits[:-1]]
    assert list(noise.lines[0].get_ydata()) == pytest.approx([f.s for f in replay_fits[:-1]])
    _saved_png(figure, tmp_path / "replay.png")


def test_replay_figure_without_losses_or_replay(tmp_path) -> None:
    figure = report.figure_replay(make_history(losses=False))
    assert len(figure.axes) == 5
    assert "no train/val loss" in figure.axes[3].texts[0].get_text()
    _saved_png(figure, tmp_path / "bare.png")


def test_write_report_png(history, replay_fits, predicted_shapes, tmp_path) -> None:
    path = tmp_path / "report.png"
    assert report.write_report_png(history, replay_fits, predicted_shapes, path, dpi=40) == str(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def test_figures_need_matplotlib(history, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert report.matplotlib_available() is False
    with pytest.raises(ImportError, match=re.escape("pip install lightning-interactions[plots]")):
        report.figure_shape_heatmap(history)
    # The figure-free functions still work.
    assert report.loss_gap_minimum(history) is not None
