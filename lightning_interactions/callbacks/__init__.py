"""The Lightning side: :class:`InteractionMonitor` and its helpers (samples, distributed gather, faults)."""

from lightning_interactions.callbacks.early_stopping import InteractionEarlyStopping
from lightning_interactions.callbacks.monitor import InteractionMonitor, MeasurementError, MeasurementWarning

__all__ = ["InteractionMonitor", "InteractionEarlyStopping", "MeasurementError", "MeasurementWarning"]
