"""The logger backends' base classes and the backend each Lightning logger gets (``backend_for``)."""

from __future__ import annotations

from lightning_interactions.loggers import (
    CSVBackend,
    LoggerBackend,
    MetricsBackend,
    TensorBoardBackend,
    backend_for,
)


def test_backend_for_each_logger(tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.loggers.logger import DummyLogger

    tensorboard = backend_for(TensorBoardLogger(str(tmp_path / "tb")))
    # TensorBoard's figures are drawn by its Interactions tab, from the history file.
    assert isinstance(tensorboard, TensorBoardBackend) and not tensorboard.supports_figures
    csv = backend_for(CSVLogger(str(tmp_path / "csv")))
    assert isinstance(csv, CSVBackend) and csv.supports_figures
    other = backend_for(DummyLogger())
    assert type(other) is MetricsBackend and not other.supports_figures

    class Own(LoggerBackend):
        def log_scalars(self, scalars, step):
            pass

    own = Own()
    assert backend_for(own) is own  # a backend passed as a logger is used as it is


def test_a_backend_that_overrides_only_log_figure_still_gets_the_figures() -> None:
    import numpy as np

    from lightning_interactions.loggers import LoggerBackend

    class FiguresOnly(LoggerBackend):  # written against the log_figure hook of earlier releases
        supports_figures = True

        def __init__(self) -> None:
            self.figures = []

        def log_scalars(self, scalars, step) -> None:
            pass

        def log_figure(self, tag, figure, step) -> None:
            self.figures.append((tag, step, [round(x, 6) for x in figure.get_size_inches()]))

    backend = FiguresOnly()
    backend.log_image("interactions/figures/heatmap", np.zeros((200, 300, 3), dtype=np.uint8), 7)
    assert backend.figures == [("interactions/figures/heatmap", 7, [3.0, 2.0])]  # 300 x 200 pixels
