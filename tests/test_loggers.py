"""Tests for lightning_interactions.loggers: metric names, the TensorBoard layout, backends by logger."""

from __future__ import annotations

import re

import pytest
from _report_history import N, make_history

from lightning_interactions.loggers import (
    CSVBackend,
    LoggerBackend,
    MetricsBackend,
    TensorBoardBackend,
    backend_for,
    record_scalars,
    scalar_layout,
    scalar_tags,
)


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


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
            "interactions/phase1_seen",
        ]
    )
    assert scalar_tags(N) == expected
    assert scalar_tags(1, prefix="x")[0] == "x/order_1"
    with pytest.raises(ValueError):
        scalar_tags(0)


def _layout_matches(regexes: list[str], tags: list[str]) -> dict[str, list[str]]:
    """For each regex, the tags it selects the way the custom-scalars plugin does (re.match)."""
    return {regex: [tag for tag in tags if re.compile(regex).match(tag)] for regex in regexes}


def test_scalar_layout_charts_cover_every_tag_exactly_once() -> None:
    n = 12  # two-digit orders: order_1 must not pick up order_10..12
    tags = scalar_tags(n) + ["interactions/loss_gap"]
    layout = scalar_layout(n)
    assert list(layout) == [
        "interactions: overview",
        "interactions: strength by order",
        "interactions: shape by order",
        "interactions: theory fit",
    ]
    by_order = layout["interactions: strength by order"]
    assert list(by_order) == [f"order {k}" for k in range(1, n + 1)]
    for k, (kind, regexes) in enumerate(by_order.values(), start=1):
        assert kind == "Multiline" and len(regexes) == 1
        assert _layout_matches(regexes, tags) == {regexes[0]: [f"interactions/order_{k}"]}
    covered = []
    for charts in layout.values():
        for kind, regexes in charts.values():
            # One tag per chart: no chart mixes two scales, or two orders in one colour.
            assert kind == "Multiline" and len(regexes) == 1
            (selected,) = _layout_matches(regexes, tags).values()
            assert len(selected) == 1
            covered += selected
    assert sorted(covered) == sorted(tags)


def test_scalar_layout_escapes_the_prefix() -> None:
    layout = scalar_layout(2, prefix="a.b")
    regexes = layout["a.b: overview"]["complexity (mean order)"][1]
    assert _layout_matches(regexes, ["a.b/complexity", "axb/complexity"]) == {regexes[0]: ["a.b/complexity"]}


def test_record_scalars_keys_and_values(history) -> None:
    record = history[3]
    scalars = record_scalars(record)
    assert list(scalars) == scalar_tags(N)
    for k in range(1, N + 1):
        assert scalars[f"interactions/order_{k}"] == record["strength"][k - 1]
        assert scalars[f"interactions/shape/order_{k}"] == record["shape"][k - 1]
    for name in ("complexity", "noise_level", "theory_error", "phase", "overfit_alert"):
        assert scalars[f"interactions/{name}"] == float(record[name])
    assert all(isinstance(value, float) for value in scalars.values())


def test_record_scalars_skip_none(history) -> None:
    scalars = record_scalars(history[0], prefix="p")
    documented = scalar_tags(N, prefix="p")
    assert set(scalars) == set(documented) - {"p/noise_level", "p/theory_error"}


def test_layout_is_written_and_read_back(tmp_path) -> None:
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from torch.utils.tensorboard import SummaryWriter

    layout = scalar_layout(N)
    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.add_custom_scalars(layout)
    for tag, value in record_scalars(make_history()[2]).items():
        writer.add_scalar(tag, value, global_step=2)
    writer.close()

    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "custom_scalars__config__" in accumulator.Tags()["tensors"]
    assert set(scalar_tags(N)) - {"interactions/noise_level", "interactions/theory_error"} <= set(
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


def test_backend_for_each_logger(tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.loggers.logger import DummyLogger

    tensorboard = backend_for(TensorBoardLogger(str(tmp_path / "tb")))
    assert isinstance(tensorboard, TensorBoardBackend) and tensorboard.supports_figures
    csv = backend_for(CSVLogger(str(tmp_path / "csv")))
    assert isinstance(csv, CSVBackend) and csv.supports_figures
    other = backend_for(DummyLogger())
    assert type(other) is MetricsBackend and not other.supports_figures

    class Own(LoggerBackend):
        def log_scalars(self, scalars, step):
            pass

    own = Own()
    assert backend_for(own) is own  # a backend passed as a logger is used as it is


def test_tensorboard_backend_writes_scalars_text_and_figures(tmp_path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from matplotlib.figure import Figure
    from tensorboard.backend.event_processing import event_accumulator

    backend = backend_for(TensorBoardLogger(str(tmp_path), name="run", version=""))
    backend.start(N, "interactions")
    backend.log_scalars(record_scalars(make_history()[1]), step=1)
    backend.log_text("interactions/summary", "hello", step=1)
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    backend.log_figure("interactions/figure", figure, step=1)
    backend.flush()
    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert "interactions/complexity" in tags["scalars"]
    assert accumulator.Scalars("interactions/complexity")[0].step == 1
    assert "interactions/figure" in tags["images"]
    assert "interactions/summary/text_summary" in tags["tensors"]
    assert "custom_scalars__config__" in tags["tensors"]
