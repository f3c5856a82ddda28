"""CSV: scalars in ``metrics.csv``, figures (PNG) and texts (markdown) beside it, hparams in ``hparams.yaml``.

For Lightning's ``CSVLogger``. In the logger's ``log_dir`` each figure is its own file,
``figures/{tag}/step_{step}.png`` (see :func:`~lightning_interactions.loggers.artifacts.artifact_file`),
so every logged epoch's figure is kept; texts (the summary) are ``text/{tag}/step_{step}.md``.
The monitor's settings and the run's outcome go into ``hparams.yaml`` together, one file to
compare runs by. ``flush`` writes ``metrics.csv`` after every measurement (the logger itself
writes every 100 steps).

Example:
    >>> import tempfile
    >>> from lightning.pytorch.loggers import CSVLogger
    >>> backend = CSVBackend(CSVLogger(tempfile.mkdtemp(), name="run", version=0))
    >>> backend.log_text("interactions/summary", "# Summary", step=3)
    >>> print(backend.path("interactions/summary", 3, folder="text", suffix="md").read_text())
    # Summary
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_interactions.loggers.artifacts import FIGURES, PAGES, TEXTS, artifact_file
from lightning_interactions.loggers.base import MetricsBackend

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CSVBackend"]


class CSVBackend(MetricsBackend):
    """A Lightning ``CSVLogger``: scalars through it; figures and texts as files in its ``log_dir``."""

    supports_figures = True
    supports_pages = True

    def path(self, tag: str, step: int, folder: str = FIGURES, suffix: str = "png") -> Path:
        """The file of a figure (or, with ``folder``/``suffix``, a text) in the logger's ``log_dir``."""
        # The logger's writer empties a non-empty log_dir's metrics.csv when it is created: create it first.
        _ = self.logger.experiment
        return Path(self.logger.log_dir) / artifact_file(folder, tag, step, suffix)

    def _new_file(self, tag: str, step: int, folder: str, suffix: str) -> Path:
        path = self.path(tag, step, folder, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        from matplotlib.image import imsave

        imsave(self._new_file(tag, step, FIGURES, "png"), image, format="png")

    def log_text(self, tag: str, text: str, step: int) -> None:
        self._new_file(tag, step, TEXTS, "md").write_text(text, encoding="utf-8")

    def log_page(self, tag: str, page: str, step: int) -> None:
        self._new_file(tag, step, PAGES, "html").write_text(page, encoding="utf-8")

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0) -> None:
        self.logger.log_hyperparams({**params, **metrics})
        self.logger.save()

    def flush(self) -> None:
        self.logger.save()
