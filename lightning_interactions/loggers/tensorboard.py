"""TensorBoard: scalars, a custom-scalars layout, figures and text through the logger's ``SummaryWriter``.

Example:
    >>> layout = scalar_layout(num_players=3)
    >>> list(layout)[:2]
    ['interactions: overview', 'interactions: strength by order']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_interactions.loggers.base import MetricsBackend
from lightning_interactions.loggers.scalars import describe_tag, scalar_tags

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorBoardBackend", "scalar_layout"]


def _exact(tag: str) -> str:
    # The custom-scalars plugin treats each entry as a regex and uses re.match: anchor it, so
    # that order_1 does not also pick up order_10.
    return f"^{re.escape(tag)}$"


def _charts(titles_and_tags: list[tuple[str, str]]) -> dict[str, list[Any]]:
    return {title: ["Multiline", [_exact(tag)]] for title, tag in titles_and_tags}


def scalar_layout(num_players: int, prefix: str = "interactions") -> dict[str, dict[str, list[Any]]]:
    """The layout for ``SummaryWriter.add_custom_scalars``: one page of charts per topic.

    Categories (each chart one tag, so no chart mixes two scales or two orders' colours):
    ``{prefix}: overview`` (complexity, loss gap, alert, phase, phase 1 seen), ``{prefix}: strength by order``
    and ``{prefix}: shape by order`` (one chart per order), ``{prefix}: theory fit`` (noise level,
    fit error). Every entry is an anchored regex that matches exactly one tag.

    Example:
        >>> scalar_layout(2, prefix="ia")["ia: overview"]["complexity (mean order)"]
        ['Multiline', ['^ia/complexity$']]
        >>> list(scalar_layout(2, prefix="ia")["ia: strength by order"])
        ['order 1', 'order 2']
    """
    scalar_tags(num_players, prefix)  # validates num_players
    orders = range(1, num_players + 1)
    return {
        f"{prefix}: overview": _charts(
            [
                ("complexity (mean order)", f"{prefix}/complexity"),
                ("loss gap (val - train)", f"{prefix}/loss_gap"),
                ("over-fitting alert", f"{prefix}/overfit_alert"),
                ("phase", f"{prefix}/phase"),
                ("phase 1 seen", f"{prefix}/phase1_seen"),
            ]
        ),
        f"{prefix}: strength by order": _charts([(f"order {k}", f"{prefix}/order_{k}") for k in orders]),
        f"{prefix}: shape by order": _charts([(f"order {k}", f"{prefix}/shape/order_{k}") for k in orders]),
        f"{prefix}: theory fit": _charts(
            [
                ("noise level s", f"{prefix}/noise_level"),
                ("fit error (L1 between shapes)", f"{prefix}/theory_error"),
            ]
        ),
    }


class TensorBoardBackend(MetricsBackend):
    """A Lightning ``TensorBoardLogger``: scalars as Lightning logs them, the rest via its writer.

    The first value of each tag carries its description (shown by TensorBoard beside the chart).
    """

    supports_figures = True

    def __init__(self, logger: Any) -> None:
        super().__init__(logger)
        self._prefix = "interactions"
        self._described: set[str] = set()

    @property
    def writer(self) -> Any:
        return self.logger.experiment

    def start(self, num_players: int, prefix: str) -> None:
        self._prefix = prefix
        self.writer.add_custom_scalars(scalar_layout(num_players, prefix))

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.scalar.metadata import create_summary_metadata

        fresh = {tag: value for tag, value in scalars.items() if tag not in self._described}
        if fresh:
            # TensorBoard keeps the metadata of a tag's first value: its description goes there,
            # named as the scalar plugin's (metadata without a plugin makes readers warn per tag).
            values = [
                Summary.Value(
                    tag=tag,
                    simple_value=float(value),
                    metadata=create_summary_metadata(
                        display_name=tag, description=describe_tag(tag, self._prefix)
                    ),
                )
                for tag, value in fresh.items()
            ]
            self.writer._get_file_writer().add_summary(Summary(value=values), step)
        self._described.update(fresh)
        rest = {tag: value for tag, value in scalars.items() if tag not in fresh}
        if rest:
            super().log_scalars(rest, step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.writer.add_image(tag, image, global_step=step, dataformats="HWC")

    def log_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, global_step=step)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        # With the module's own hyperparameters, so that the HPARAMS tab compares whole runs.
        self.logger.log_hyperparams({**dict(self.logger.hparams), **params}, metrics=dict(metrics))

    def flush(self) -> None:
        self.writer.flush()
