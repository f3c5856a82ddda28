"""Where the monitor's output goes: one :class:`LoggerBackend` per Lightning logger of the Trainer.

:func:`backend_for` picks the backend of a logger from ``_backend_classes()`` (the first entry
whose logger class matches); any other logger gets scalars only (:class:`MetricsBackend`). To add
a backend, write one file with a :class:`LoggerBackend` subclass and add one line to
``_backend_classes``.

The backends, one file each:

* ``TensorBoardLogger``: :class:`TensorBoardBackend` (``tensorboard.py``): scalars, a
  custom-scalars layout, figures, text and hparams in the event files.
* ``MLFlowLogger``: :class:`MLflowBackend` (``mlflow.py``): metrics, figures as PNG artifacts
  ``figures/{tag}/step_{step}.png``, texts as ``text/{tag}/step_{step}.md``, settings as params
  and the outcome as metrics.
* ``WandbLogger`` (online or offline): :class:`WandbBackend` (``wandb.py``): metrics,
  ``wandb.Image`` figures and ``wandb.Html`` texts at ``trainer/global_step``, config and summary.
* ``CSVLogger``: :class:`CSVBackend` (``csv.py``): ``metrics.csv``, figures and texts as files
  in its ``log_dir`` (the same paths as MLflow's artifacts), ``hparams.yaml``.

``mlflow`` and ``wandb`` are optional (the extras ``[mlflow]`` and ``[wandb]``): their backends
are listed only where the package is installed, and neither is imported unless its logger is used.

Example:
    >>> from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    >>> from lightning.pytorch.loggers.logger import DummyLogger
    >>> import tempfile
    >>> type(backend_for(TensorBoardLogger(tempfile.mkdtemp()))).__name__
    'TensorBoardBackend'
    >>> type(backend_for(CSVLogger(tempfile.mkdtemp()))).__name__
    'CSVBackend'
    >>> type(backend_for(DummyLogger())).__name__
    'MetricsBackend'
"""

from __future__ import annotations

import importlib.util
from typing import Any

from lightning_interactions.loggers.base import LoggerBackend, MetricsBackend
from lightning_interactions.loggers.csv import CSVBackend
from lightning_interactions.loggers.mlflow import MLflowBackend
from lightning_interactions.loggers.scalars import record_scalars, scalar_tags
from lightning_interactions.loggers.tensorboard import TensorBoardBackend, scalar_layout
from lightning_interactions.loggers.wandb import WandbBackend

__all__ = [
    "CSVBackend",
    "LoggerBackend",
    "MLflowBackend",
    "MetricsBackend",
    "TensorBoardBackend",
    "WandbBackend",
    "backend_for",
    "record_scalars",
    "scalar_layout",
    "scalar_tags",
]


def _backend_classes() -> list[tuple[type, type[LoggerBackend]]]:
    """``(Lightning logger class, backend class)``, most specific first; optional packages where installed."""
    from lightning.pytorch import loggers

    classes = [(loggers.TensorBoardLogger, TensorBoardBackend), (loggers.CSVLogger, CSVBackend)]
    classes += _optional("mlflow", "MLFlowLogger", MLflowBackend)
    classes += _optional("wandb", "WandbLogger", WandbBackend)
    return classes


def _optional(package: str, logger_name: str, backend_class: type[LoggerBackend]) -> list[tuple[type, type]]:
    """``[(the Lightning logger class, backend_class)]`` if ``package`` is installed (not imported here)."""
    if importlib.util.find_spec(package) is None:
        return []
    from lightning.pytorch import loggers

    return [(getattr(loggers, logger_name), backend_class)]


def backend_for(logger: Any) -> LoggerBackend:
    """The backend for one Lightning logger (scalars only, unless a backend knows more of it)."""
    if isinstance(logger, LoggerBackend):
        return logger
    for logger_class, backend_class in _backend_classes():
        if isinstance(logger, logger_class):
            return backend_class(logger)
    return MetricsBackend(logger)
