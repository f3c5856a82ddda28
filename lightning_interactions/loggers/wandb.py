"""Weights & Biases: scalars, figures as ``wandb.Image``, texts as ``wandb.Html``, hparams in the run config.

For Lightning's ``WandbLogger`` (needs the ``wandb`` package: ``pip install
lightning-interactions[wandb]``); it works the same offline (``WandbLogger(offline=True)``, or
``WANDB_MODE=offline``), where the run stays in ``{save_dir}/wandb/offline-run-*`` until
``wandb sync``. Everything goes through the logger's ``log_metrics``, which puts the step into
``trainer/global_step`` (the logger's x-axis for every key) and lets W&B count its own step, so
a figure logged after the scalars of its measurement sits at the same ``trainer/global_step`` and
W&B's monotonic step is never contradicted. The summary text is an HTML panel of the markdown
(preformatted); the monitor's settings go into the run config and the run's outcome into its
summary, so runs compare in the W&B table::

    Trainer(logger=WandbLogger(project="interactions", offline=True), callbacks=[InteractionMonitor(...)])

Example:
    >>> print(WandbBackend.html("**alert** at epoch 3 < 5"))
    <pre style="white-space: pre-wrap">**alert** at epoch 3 &lt; 5</pre>
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_interactions.loggers.base import MetricsBackend

if TYPE_CHECKING:
    import numpy as np

__all__ = ["WandbBackend"]


class WandbBackend(MetricsBackend):
    """A Lightning ``WandbLogger``: scalars, figures and texts through its ``log_metrics``."""

    supports_figures = True
    supports_pages = True

    @staticmethod
    def html(text: str) -> str:
        """A markdown text as a self-contained HTML page (no stylesheet fetched)."""
        return f'<pre style="white-space: pre-wrap">{html.escape(text, quote=False)}</pre>'

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        import wandb

        self.logger.log_metrics({tag: wandb.Image(image)}, step=step)

    def log_text(self, tag: str, text: str, step: int) -> None:
        import wandb

        self.logger.log_metrics({tag: wandb.Html(self.html(text), inject=False)}, step=step)

    def log_page(self, tag: str, page: str, step: int) -> None:
        import wandb

        self.logger.log_metrics({tag: wandb.Html(page, inject=False)}, step=step)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0) -> None:
        self.logger.log_hyperparams(dict(params))
        self.logger.experiment.summary.update(dict(metrics))
