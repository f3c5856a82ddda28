"""TensorBoard: scalars, a custom-scalars layout, figures and text through the logger's ``SummaryWriter``.

Example:
    >>> layout = scalar_layout(num_players=3)
    >>> layout["interactions"]["strength by order"][0]
    'Multiline'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lightning_interactions.loggers.base import MetricsBackend
from lightning_interactions.loggers.scalars import scalar_tags

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TensorBoardBackend", "scalar_layout"]


def _exact(tag: str) -> str:
    # The custom-scalars plugin treats each entry as a regex and uses re.match: anchor it, so
    # that order_1 does not also pick up order_10.
    return f"^{re.escape(tag)}$"


def scalar_layout(num_players: int, prefix: str = "interactions") -> dict[str, dict[str, list[Any]]]:
    """The layout for ``SummaryWriter.add_custom_scalars``: one category named ``prefix``.

    Charts (all ``"Multiline"``; every entry is an anchored regex matching exactly one tag):
    ``strength by order`` (``{prefix}/order_k``, ``k = 1..n``), ``shape by order``
    (``{prefix}/shape/order_k``), ``complexity``, ``noise level and theory error`` and
    ``phase and over-fitting alert``.

    Example:
        >>> scalar_layout(2, prefix="ia")["ia"]["complexity"]
        ['Multiline', ['^ia/complexity$']]
    """
    scalar_tags(num_players, prefix)  # validates num_players
    orders = range(1, num_players + 1)
    return {
        prefix: {
            "strength by order": ["Multiline", [_exact(f"{prefix}/order_{k}") for k in orders]],
            "shape by order": ["Multiline", [_exact(f"{prefix}/shape/order_{k}") for k in orders]],
            "complexity": ["Multiline", [_exact(f"{prefix}/complexity")]],
            "noise level and theory error": [
                "Multiline",
                [_exact(f"{prefix}/noise_level"), _exact(f"{prefix}/theory_error")],
            ],
            "phase and over-fitting alert": [
                "Multiline",
                [_exact(f"{prefix}/phase"), _exact(f"{prefix}/overfit_alert")],
            ],
        }
    }


class TensorBoardBackend(MetricsBackend):
    """A Lightning ``TensorBoardLogger``: scalars as Lightning logs them, the rest via its writer."""

    supports_figures = True

    @property
    def writer(self) -> Any:
        return self.logger.experiment

    def start(self, num_players: int, prefix: str) -> None:
        self.writer.add_custom_scalars(scalar_layout(num_players, prefix))

    def log_figure(self, tag: str, figure: Figure, step: int) -> None:
        self.writer.add_figure(tag, figure, global_step=step)

    def log_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, global_step=step)

    def flush(self) -> None:
        self.writer.flush()
