"""The logger seam: where the monitor's scalars, figures and text go.

The monitor decides *what* to log and *when*; a :class:`LoggerBackend` decides *where*. Every
Lightning logger gets at least :class:`MetricsBackend` (scalars through ``log_metrics``); a
backend for a logger that can show figures and text (TensorBoard today) overrides the rest. A
new backend is one file in this package and one entry in ``loggers/__init__.py``; the monitor
does not change for it.

Example:
    >>> class Recorder(LoggerBackend):
    ...     def __init__(self):
    ...         self.rows = []
    ...     def log_scalars(self, scalars, step):
    ...         self.rows.append((step, dict(scalars)))
    >>> backend = Recorder()
    >>> backend.log_scalars({"interactions/complexity": 1.5}, step=3)
    >>> backend.log_text("interactions/summary", "ignored", step=3)  # not every backend shows text
    >>> backend.rows, backend.supports_figures
    ([(3, {'interactions/complexity': 1.5})], False)
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib and numpy are imported only where a figure is drawn
    import numpy as np
    from matplotlib.figure import Figure

__all__ = ["LoggerBackend", "MetricsBackend"]


class LoggerBackend(abc.ABC):
    """One destination of the monitor's output. Only :meth:`log_scalars` is required.

    ``supports_figures`` tells the monitor whether drawing figures for this backend is worth it;
    a backend that sets it True implements :meth:`log_image`. The monitor draws its figures on a
    background thread and hands each backend the finished pixels, on the training thread.
    """

    supports_figures: bool = False
    # Whether the backend shows a whole HTML page (the run's dashboard, made at fit end).
    supports_pages: bool = False

    @abc.abstractmethod
    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Log one measurement's scalars (metric name -> value) at ``step``."""

    def start(self, num_players: int, prefix: str) -> None:  # noqa: B027 (an optional hook)
        """Called before the first measurement of a fit is logged (a dashboard layout, say)."""

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log a drawn figure, an ``(height, width, 3)`` uint8 RGB array, under ``tag`` at ``step``.

        The default hands a backend written before this hook existed, which overrides only
        :meth:`log_figure`, a figure that shows the pixels at their size.
        """
        if type(self).log_figure is LoggerBackend.log_figure:
            return
        from lightning_interactions.plot._canvas import new_figure

        dpi = 100
        figure = new_figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
        figure.figimage(image)
        self.log_figure(tag, figure, step)

    def log_figure(self, tag: str, figure: Figure, step: int) -> None:
        """Draw a matplotlib figure and log it with :meth:`log_image`."""
        from lightning_interactions.plot._canvas import render_rgb

        self.log_image(tag, render_rgb(figure), step)

    def log_text(self, tag: str, text: str, step: int) -> None:  # noqa: B027 (an optional hook)
        """Log a markdown text under ``tag`` at ``step``."""

    def log_page(self, tag: str, page: str, step: int) -> None:  # noqa: B027 (an optional hook)
        """Log a self-contained HTML page (the run's dashboard) under ``tag`` at ``step``."""

    def log_hparams(  # noqa: B027 (an optional hook)
        self, params: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0
    ) -> None:
        """Log the monitor's settings (``params``) and the run's outcome (``metrics``, at ``step``, the
        run's last), for comparing runs."""

    def flush(self) -> None:  # noqa: B027 (an optional hook)
        """Push what was logged to storage."""


class MetricsBackend(LoggerBackend):
    """Scalars through a Lightning logger's ``log_metrics``; figures and text are not shown."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        self.logger.log_metrics(dict(scalars), step=step)
