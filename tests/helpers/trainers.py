"""A Trainer for tests: on the CPU, and writing nothing a test does not ask for.

Example:
    >>> trainer = quiet_trainer(None, max_epochs=2)
    >>> trainer.max_epochs, trainer.logger, trainer.checkpoint_callback
    (2, None, None)
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl


def quiet_trainer(root: Any, **options: Any) -> pl.Trainer:
    """``pl.Trainer`` on one CPU device without logger, checkpoints, progress bar or model summary,
    in ``root`` (None: Lightning's default folder); ``options`` add to or override these."""
    settings: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if root is not None:
        settings["default_root_dir"] = str(root)
    return pl.Trainer(**{**settings, **options})
