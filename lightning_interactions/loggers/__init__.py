"""Where the monitor's output goes: one :class:`LoggerBackend` per Lightning logger of the Trainer.

:func:`backend_for` picks the backend of a logger from ``_BACKENDS`` (the first entry whose
logger class matches); any other logger gets scalars only. To add a backend (MLflow, W&B, CSV,
...), write one file with a :class:`LoggerBackend` subclass and add one line to
``_backend_classes``.

Example:
    >>> from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    >>> import tempfile
    >>> type(backend_for(TensorBoardLogger(tempfile.mkdtemp()))).__name__
    'TensorBoardBackend'
    >>> type(backend_for(CSVLogger(tempfile.mkdtemp()))).__name__
    'MetricsBackend'
"""

from __future__ import annotations

from typing import Any

from lightning_interactions.loggers.base import LoggerBackend, MetricsBackend
from lightning_interactions.loggers.scalars import record_scalars, scalar_tags
from lightning_interactions.loggers.tensorboard import TensorBoardBackend, scalar_layout

__all__ = [
    "LoggerBackend",
    "MetricsBackend",
    "TensorBoardBackend",
    "backend_for",
    "record_scalars",
    "scalar_layout",
    "scalar_tags",
]


def _backend_classes() -> list[tuple[type, type[LoggerBackend]]]:
    """``(Lightning logger class, backend class)``, most specific first."""
    from lightning.pytorch.loggers import TensorBoardLogger

    return [(TensorBoardLogger, TensorBoardBackend)]


def backend_for(logger: Any) -> LoggerBackend:
    """The backend for one Lightning logger (scalars only, unless a backend knows more of it)."""
    if isinstance(logger, LoggerBackend):
        return logger
    for logger_class, backend_class in _backend_classes():
        if isinstance(logger, logger_class):
            return backend_class(logger)
    return MetricsBackend(logger)
