"""TensorBoard: scalars, a custom-scalars layout, figures and text through the logger's ``SummaryWriter``.

Example:
    >>> layout = scalar_layout(num_players=3)
    >>> list(layout)
    ['interactions: overview', 'interactions: orders', 'interactions: theory fit']
"""

from __future__ import annotations

import inspect
import re
import weakref
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


def _orders(group: str) -> str:
    """A regex for every order's tag of one group (``{prefix}/order_k`` or ``{prefix}/shape/order_k``)."""
    return f"^{re.escape(group)}order_\\d+$"


def scalar_layout(num_players: int, prefix: str = "interactions") -> dict[str, dict[str, list[Any]]]:
    """The layout for ``SummaryWriter.add_custom_scalars``: one page of charts per topic.

    Series that belong together share a multiline chart (each in its own colour): ``{prefix}:
    overview`` holds the complexity with the alert and the phase flags, and the training and
    validation losses (as the monitor read them) with their gap; ``{prefix}: orders`` the
    strength of every order in one chart and their shares in another; ``{prefix}: theory fit``
    the noise level and the fit error. Every entry is an anchored regex.

    Example:
        >>> scalar_layout(2, prefix="ia")["ia: overview"]["losses and their gap"]
        ['Multiline', ['^ia/train_loss$', '^ia/val_loss$', '^ia/loss_gap$']]
        >>> scalar_layout(2, prefix="ia")["ia: orders"]["strength by order"]
        ['Multiline', ['^ia/order_\\\\d+$']]
    """
    scalar_tags(num_players, prefix)  # validates num_players

    def chart(*names: str) -> list[Any]:
        return ["Multiline", [_exact(f"{prefix}/{name}") for name in names]]

    return {
        f"{prefix}: overview": {
            "complexity, alert and phase": chart("complexity", "overfit_alert", "phase", "phase1_seen"),
            "losses and their gap": chart("train_loss", "val_loss", "loss_gap"),
        },
        f"{prefix}: orders": {
            "strength by order": ["Multiline", [_orders(f"{prefix}/")]],
            "share of each order": ["Multiline", [_orders(f"{prefix}/shape/")]],
        },
        f"{prefix}: theory fit": {
            "noise level s": chart("noise_level"),
            "fit error (L1 between shapes)": chart("theory_error"),
        },
    }


# Every monitor of a run writes its layout through the run's one writer, and TensorBoard keeps
# only the last layout a run wrote: each writer's layouts so far are merged and written whole.
_WRITTEN_LAYOUTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def merged_layout(writer: Any, layout: Mapping[str, Any]) -> dict[str, Any]:
    """``layout`` added to the layouts written through ``writer`` before (categories are per prefix)."""
    merged = _WRITTEN_LAYOUTS.setdefault(writer, {})
    merged.update(layout)
    return dict(merged)


def _as_shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """Integers as text: TensorBoard's HPARAMS tab shows every number as a decimal (8.0000).

    Example:
        >>> _as_shown({"num_players": 8, "lr": 0.01, "stop": True})
        {'num_players': '8', 'lr': 0.01, 'stop': True}
    """
    return {
        name: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in params.items()
    }


class TensorBoardBackend(MetricsBackend):
    """A Lightning ``TensorBoardLogger``: scalars as Lightning logs them, the rest via its writer.

    The first value of each tag carries its description (shown by TensorBoard beside the chart).
    No figures: TensorBoard's Interactions tab (:mod:`lightning_interactions.dashboard`) draws
    them from the monitor's history file, in the browser, at every epoch. :meth:`log_image`
    still writes an image for code that calls it.
    """

    supports_figures = False

    def __init__(self, logger: Any) -> None:
        super().__init__(logger)
        self._prefix = "interactions"
        self._described: set[str] = set()

    @property
    def writer(self) -> Any:
        return self.logger.experiment

    def start(self, num_players: int, prefix: str) -> None:
        self._prefix = prefix
        self.writer.add_custom_scalars(merged_layout(self.writer, scalar_layout(num_players, prefix)))

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

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0) -> None:
        # With the module's own hyperparameters, so that the HPARAMS tab compares whole runs; the
        # outcome at the run's last step, where one point does not look like a series from step 0.
        every = {**dict(self.logger.hparams), **params}
        # Lightning's log_hyperparams takes a step from 2.5 on; before, its metrics go to step 0.
        at = {"step": step} if "step" in inspect.signature(self.logger.log_hyperparams).parameters else {}
        self.logger.log_hyperparams(_as_shown(every), metrics=dict(metrics), **at)
        self.logger.hparams.update(every)  # hparams.yaml keeps the values themselves

    def flush(self) -> None:
        self.writer.flush()
