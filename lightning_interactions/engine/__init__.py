"""The engine: all ``2^n`` masked forward passes of every sample, their scalar outputs, the extraction.

:func:`compute_interactions` is the whole measurement of a batch of samples without Lightning;
:func:`masked_outputs` stops after the forward passes. ``result`` defines what a measurement
returns, :class:`InteractionResult`; ``outputs`` turns a model's output into one scalar per
masked input; ``_setup`` checks arguments and memory before anything runs; ``_forward`` runs
the chunked forward passes.
"""

from lightning_interactions.engine._setup import model_device
from lightning_interactions.engine.compute import compute_interactions, masked_outputs
from lightning_interactions.engine.outputs import (
    OutputFn,
    binary_logit,
    check_output_values,
    last_token_log_odds,
    log_odds,
    regression,
    resolve_output,
)
from lightning_interactions.engine.result import InteractionResult
from lightning_interactions.errors import MeasurementMemoryError, MeasurementTooLarge

__all__ = [
    "InteractionResult",
    "MeasurementMemoryError",
    "MeasurementTooLarge",
    "compute_interactions",
    "masked_outputs",
    "model_device",
    "OutputFn",
    "log_odds",
    "last_token_log_odds",
    "binary_logit",
    "regression",
    "resolve_output",
    "check_output_values",
]
