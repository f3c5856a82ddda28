"""What the measured interactions mean: strength by order, the two-phase theory, the phases.

``strength``: strength by order, its shape and complexity; ``theory``: the analytic two-phase
prediction and its noise-level fit; ``phases``: the phase tracker, the one place of the alert
rule; ``history``: the history file.
"""

from lightning_interactions.analysis.history import append_record, read_history
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.strength import complexity, per_sample_strength, strength_shape

__all__ = [
    "PhaseTracker",
    "append_record",
    "read_history",
    "complexity",
    "per_sample_strength",
    "strength_shape",
]
