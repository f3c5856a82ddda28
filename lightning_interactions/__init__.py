"""Watch a network learn AND-OR interactions, and see over-fitting begin, while it trains.

The pipeline (the README's "Where things live"): a masker chooses players and builds masked inputs; the model
runs on all ``2^n`` masked versions of each sample; an output function gives one scalar ``v``
per masked input; the AND-OR extraction turns ``v`` into sparse interactions; their strength by
order is compared with the two-phase prediction, and a phase tracker raises the over-fitting alert.

The names here are the ones users call; the rest is reachable from its stage's subpackage
(``masking``, ``engine``, ``extraction``, ``analysis``, ``loggers``, ``plot``, ``reporting``,
``callbacks``, ``demos``; the README's "Where things live" draws the tree). Importing the package
is cheap: each name loads its module on first use (nothing here imports Lightning).

Example:
    >>> import torch
    >>> import lightning_interactions as li
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> images, labels = torch.rand(2, 1, 4, 4), torch.tensor([0, 2])
    >>> masker = li.PatchMasker(patch_size=2, num_players=4)
    >>> result = li.compute_interactions(model, images, labels, masker=masker)
    >>> result.strength_shape.shape  # strength by order k = 1..4, normalised
    torch.Size([4])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from lightning_interactions.analysis.history import read_history
    from lightning_interactions.analysis.phases import PhaseTracker
    from lightning_interactions.analysis.replay import replay_run
    from lightning_interactions.analysis.theory import fit_noise_level
    from lightning_interactions.callbacks.early_stopping import InteractionEarlyStopping
    from lightning_interactions.callbacks.monitor import InteractionMonitor
    from lightning_interactions.engine.compute import compute_interactions, masked_outputs
    from lightning_interactions.engine.outputs import last_token_log_odds
    from lightning_interactions.engine.result import InteractionResult
    from lightning_interactions.errors import MeasurementError, MeasurementMemoryError, MeasurementWarning
    from lightning_interactions.extraction.and_or import AndOrResult, and_or_interactions
    from lightning_interactions.loggers.base import LoggerBackend
    from lightning_interactions.masking.base import Masker
    from lightning_interactions.masking.callable import CallableMasker
    from lightning_interactions.masking.feature_maps import FeatureMapMasker
    from lightning_interactions.masking.features import FeatureMasker
    from lightning_interactions.masking.patches import PatchMasker
    from lightning_interactions.masking.point_clouds import PointCloudMasker
    from lightning_interactions.masking.tokens import TokenMasker


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightning-interactions")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

# Public name -> the module that defines it, in pipeline order.
_LOCATION = {
    "Masker": "masking.base",
    "CallableMasker": "masking.callable",
    "PatchMasker": "masking.patches",
    "FeatureMapMasker": "masking.feature_maps",
    "FeatureMasker": "masking.features",
    "TokenMasker": "masking.tokens",
    "PointCloudMasker": "masking.point_clouds",
    "compute_interactions": "engine.compute",
    "masked_outputs": "engine.compute",
    "last_token_log_odds": "engine.outputs",
    "InteractionResult": "engine.result",
    "MeasurementMemoryError": "errors",
    "MeasurementTooLarge": "errors",
    "and_or_interactions": "extraction.and_or",
    "AndOrResult": "extraction.and_or",
    "fit_noise_level": "analysis.theory",
    "replay_run": "analysis.replay",
    "PhaseTracker": "analysis.phases",
    "read_history": "analysis.history",
    "LoggerBackend": "loggers.base",
    "InteractionMonitor": "callbacks.monitor",
    "MeasurementError": "errors",
    "MeasurementWarning": "errors",
    "InteractionEarlyStopping": "callbacks.early_stopping",
}


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    module = _LOCATION.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["__version__", *_LOCATION]
