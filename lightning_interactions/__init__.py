"""Watch a network learn AND-OR interactions, and see over-fitting begin, while it trains.

The pipeline (``docs/design.md``): a masker chooses players and builds masked inputs; the model
runs on all ``2^n`` masked versions of each sample; an output function gives one scalar ``v``
per masked input; the AND-OR extraction turns ``v`` into sparse interactions; their strength by
order is compared with the two-phase prediction, and a phase tracker raises the over-fitting alert.

Importing the package is cheap: each name loads its module on first use (the engine and the
strength metric need torch and torchmetrics; nothing here imports Lightning).

Example:
    >>> import torch
    >>> import lightning_interactions as li
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> images, labels = torch.rand(2, 1, 4, 4), torch.tensor([0, 2])
    >>> result = li.compute_interactions(model, images, labels, li.PatchMasker(patch_size=2, num_players=4))
    >>> result.shape.shape  # strength by order k = 1..4, normalised
    torch.Size([4])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from lightning_interactions.callbacks.monitor import InteractionMonitor, MeasurementError, MeasurementWarning
    from lightning_interactions.engine.compute import (
        InteractionResult,
        MeasurementTooLarge,
        compute_interactions,
        masked_outputs,
        model_device,
    )
    from lightning_interactions.analysis.history import append_record, read_history
    from lightning_interactions.masking import (
        Baseline,
        CallableMasker,
        FeatureMasker,
        Masker,
        MaskFn,
        PatchMasker,
        PointCloudMasker,
        TokenMasker,
        as_masker,
        contiguous_segments,
        presence,
        resolve_baseline,
    )
    from lightning_interactions.engine.outputs import (
        OutputFn,
        binary_logit,
        check_output_values,
        log_odds,
        regression,
        resolve_output,
    )
    from lightning_interactions.analysis.phases import PhaseTracker
    from lightning_interactions.extraction.and_or import (
        AndOrResult,
        and_or_interactions,
        dual_lower_bound,
        extraction_objective,
    )
    from lightning_interactions.analysis.strength import (
        InteractionStrength,
        complexity,
        per_sample_strength,
        signed_strength,
        strength_shape,
    )
    from lightning_interactions.analysis.theory import (
        EpochFit,
        NoiseFit,
        fit_noise_level,
        inverse_noise_transform,
        noise_transform,
        noise_transform_or,
        prior_shape,
        reference_shape,
        replay,
        shape_predictor,
    )
    from lightning_interactions.extraction.transforms import (
        and_interactions,
        and_transpose,
        inverse_and_interactions,
        inverse_and_transpose,
        inverse_or_interactions,
        inverse_or_transpose,
        kron_butterfly,
        num_players_of,
        or_interactions,
        or_transpose,
        order_index,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightning-interactions")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

# Public name -> the submodule that defines it.
_SUBMODULES = {
    "engine.compute": [
        "InteractionResult", "MeasurementTooLarge", "compute_interactions", "masked_outputs", "model_device",
    ],
    "masking": [
        "Baseline", "MaskFn", "Masker", "CallableMasker", "as_masker", "PatchMasker", "FeatureMasker",
        "TokenMasker", "PointCloudMasker", "presence", "resolve_baseline", "contiguous_segments",
    ],
    "engine.outputs": [
        "OutputFn", "log_odds", "binary_logit", "regression", "resolve_output", "check_output_values",
    ],
    "extraction.transforms": [
        "num_players_of", "order_index", "kron_butterfly", "and_interactions", "inverse_and_interactions",
        "and_transpose", "inverse_and_transpose", "or_interactions", "inverse_or_interactions",
        "or_transpose", "inverse_or_transpose",
    ],
    "extraction.and_or": ["AndOrResult", "and_or_interactions", "extraction_objective", "dual_lower_bound"],
    "analysis.strength": [
        "per_sample_strength", "strength_shape", "complexity", "signed_strength", "InteractionStrength",
    ],
    "analysis.theory": [
        "NoiseFit", "EpochFit", "noise_transform", "inverse_noise_transform", "noise_transform_or",
        "prior_shape", "reference_shape", "shape_predictor", "fit_noise_level", "replay",
    ],
    "analysis.phases": ["PhaseTracker"],
    "callbacks.monitor": ["InteractionMonitor", "MeasurementError", "MeasurementWarning"],
    "analysis.history": ["append_record", "read_history"],
}
_LOCATION = {name: module for module, names in _SUBMODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Load a public name's submodule on first use (PEP 562)."""
    module = _LOCATION.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["__version__", *_LOCATION]
