"""TensorBoard (loggers/tensorboard.py): the custom-scalars layout, written and read back, merged
between monitors, and the backend's scalars, text and figures in the event files.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers.report_history import N, make_history

from lightning_interactions.loggers import (
    backend_for,
    record_scalars,
    scalar_layout,
    scalar_tags,
)


def _layouts_read_back(log_dir: Path) -> list[dict[str, dict[str, list[str]]]]:
    """Every custom-scalars layout written in ``log_dir``, in order: category -> chart -> regexes."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    accumulator = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    layouts = []
    for event in accumulator.Tensors("custom_scalars__config__"):
        stored = layout_pb2.Layout()
        stored.ParseFromString(event.tensor_proto.string_val[0])
        layouts.append(
            {
                category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
                for category in stored.category
            }
        )
    return layouts


def test_scalar_layout_charts_cover_every_tag_once_with_related_series_together() -> None:
    n = 12  # two-digit orders: the order charts must take order_10..12, and nothing of another prefix
    losses = ["interactions/train_loss", "interactions/val_loss", "interactions/loss_gap"]
    other = scalar_tags(n, prefix="interactions/train") + ["interactions/train/loss_gap"]
    tags = scalar_tags(n) + losses
    layout = scalar_layout(n)
    assert list(layout) == ["interactions: overview", "interactions: orders", "interactions: theory fit"]
    charts = {title: regexes for page in layout.values() for title, (kind, regexes) in page.items()}
    assert all(kind == "Multiline" for page in layout.values() for kind, _ in page.values())

    def selected(title: str) -> list[str]:
        return [tag for tag in tags + other if any(re.match(regex, tag) for regex in charts[title])]

    assert selected("strength by order") == [f"interactions/order_{k}" for k in range(1, n + 1)]
    assert selected("share of each order") == [f"interactions/shape/order_{k}" for k in range(1, n + 1)]
    assert selected("losses and their gap") == losses
    assert selected("complexity, alert and phase") == [
        f"interactions/{name}" for name in ("complexity", "phase", "overfit_alert", "phase1_seen")
    ]
    covered = [tag for title in charts for tag in selected(title)]
    assert sorted(covered) == sorted(tags)  # every tag once, none of the other monitor's


def test_scalar_layout_escapes_the_prefix() -> None:
    layout = scalar_layout(2, prefix="a.b")
    regexes = layout["a.b: overview"]["complexity, alert and phase"][1]
    assert [tag for tag in ["a.b/complexity", "axb/complexity"] if re.match(regexes[0], tag)] == [
        "a.b/complexity"
    ]


def test_two_monitors_layouts_are_merged_in_one_run(tmp_path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(str(tmp_path))
    backend_for(logger).start(3, "interactions")
    backend_for(logger).start(3, "interactions/train")  # a new backend object, as the monitor makes
    logger.experiment.close()
    (categories,) = _layouts_read_back(Path(logger.log_dir))[-1:]
    assert set(categories) == set(scalar_layout(3)) | set(scalar_layout(3, prefix="interactions/train"))


def test_layout_is_written_and_read_back(tmp_path) -> None:
    from tensorboard.backend.event_processing import event_accumulator
    from torch.utils.tensorboard import SummaryWriter

    layout = scalar_layout(N)
    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.add_custom_scalars(layout)
    for tag, value in record_scalars(make_history()[2]).items():
        writer.add_scalar(tag, value, global_step=2)
    writer.close()

    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert set(scalar_tags(N)) - {"interactions/noise_level", "interactions/theory_error"} <= set(
        accumulator.Tags()["scalars"]
    ) | set(accumulator.Tags()["tensors"])
    assert _layouts_read_back(tmp_path) == [
        {
            category: {title: regexes for title, (_, regexes) in charts.items()}
            for category, charts in layout.items()
        }
    ]


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


def test_hparams_go_out_on_a_lightning_without_the_step_argument(tmp_path, monkeypatch) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    received = []

    def before_2_5(self, params, metrics=None):  # Lightning's signature before 2.5
        received.append((dict(params), dict(metrics or {})))

    monkeypatch.setattr(TensorBoardLogger, "log_hyperparams", before_2_5)
    logger = TensorBoardLogger(str(tmp_path))
    backend_for(logger).log_hparams(
        {"interactions/num_players": 8}, {"interactions/outcome/alert_epoch": 3.0}, 29
    )
    assert received == [({"interactions/num_players": "8"}, {"interactions/outcome/alert_epoch": 3.0})]
