"""MLflow: scalars as metrics, figures as image artifacts, texts as markdown artifacts, hparams as params.

For Lightning's ``MLFlowLogger`` (needs the ``mlflow`` package: ``pip install
lightning-interactions[mlflow]``). Each figure is its own artifact,
``figures/{tag}/step_{step}.png`` (see :func:`~lightning_interactions.loggers.artifacts.artifact_file`),
so every logged epoch's figure is kept; the summary is ``text/{tag}/step_{step}.md``. The monitor's
settings are run params and the run's outcome metrics (logged at step 0), so runs compare in
MLflow's table. A local tracking store needs no server::

    logger = MLFlowLogger(experiment_name="interactions", tracking_uri="sqlite:///runs/mlflow.db",
                          artifact_location="runs/artifacts")
    Trainer(logger=logger, callbacks=[InteractionMonitor(...)])
    # mlflow ui --backend-store-uri sqlite:///runs/mlflow.db

(mlflow 3 refuses a ``file:`` tracking store unless ``MLFLOW_ALLOW_FILE_STORE=true``.)

Example:
    >>> MLflowBackend.artifact("interactions/replay", step=7)
    'figures/interactions.replay/step_000007.png'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_interactions.loggers.artifacts import FIGURES, PAGES, TEXTS, artifact_file
from lightning_interactions.loggers.base import MetricsBackend

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MLflowBackend"]


class MLflowBackend(MetricsBackend):
    """A Lightning ``MLFlowLogger``: scalars as Lightning logs them, the rest through its ``MlflowClient``."""

    supports_figures = True
    supports_pages = True

    @staticmethod
    def artifact(tag: str, step: int, folder: str = FIGURES, suffix: str = "png") -> str:
        """The run-relative artifact path of a figure (or, with ``folder``/``suffix``, a text)."""
        return artifact_file(folder, tag, step, suffix)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.experiment.log_image(self.logger.run_id, image, artifact_file=self.artifact(tag, step))

    def log_text(self, tag: str, text: str, step: int) -> None:
        path = self.artifact(tag, step, folder=TEXTS, suffix="md")
        self.logger.experiment.log_text(self.logger.run_id, text, artifact_file=path)

    def log_page(self, tag: str, page: str, step: int) -> None:
        path = self.artifact(tag, step, folder=PAGES, suffix="html")
        self.logger.experiment.log_text(self.logger.run_id, page, artifact_file=path)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0) -> None:
        self.logger.log_hyperparams(dict(params))
        if metrics:
            self.logger.log_metrics(dict(metrics), step=step)
