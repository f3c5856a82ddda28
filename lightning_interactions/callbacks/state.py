"""What an :class:`~lightning_interactions.InteractionMonitor` knows about its fit, in one object.

The samples and their players (fixed when fitting starts), the history of records, the phase
tracker (the alert rule) and the latest measurement's interactions: everything a checkpoint keeps,
and nothing else. The monitor's settings live on the monitor; its logging in
:class:`~lightning_interactions.callbacks.run_log.RunLog`.

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.phases import PhaseTracker
    >>> state = MonitorState(PhaseTracker())
    >>> state.samples is None, state.last_interactions is None
    (True, True)
    >>> state.commit({"epoch": 0, "complexity": 1.5}, torch.zeros(1, 4), torch.zeros(1, 4))
    >>> state.last_interactions.epoch, len(MonitorState(PhaseTracker()).state_dict())
    (0, 7)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.callbacks.measurement import LastInteractions, MeasuredSamples
from lightning_interactions.engine.structured import SampleSet

__all__ = ["MonitorState"]


@dataclass
class MonitorState:
    """A monitor's samples, players, history, phase tracker and latest interactions."""

    tracker: PhaseTracker
    sample_set: SampleSet | None = None
    targets: Tensor | None = None
    players: dict[str, Tensor] | None = None
    # Positions of the samples in the data they were drawn from (None for given samples).
    indices: Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # The latest measurement's interactions, which the fit-end replay and the history file need.
    reference: dict[str, Tensor] | None = None

    @property
    def samples(self) -> MeasuredSamples | None:
        """The measured samples and their players, once chosen (None before)."""
        if self.sample_set is None or self.players is None:
            return None
        return MeasuredSamples(self.sample_set, self.targets, self.players, self.indices)

    @property
    def last_interactions(self) -> LastInteractions | None:
        """The interactions of the latest measurement (None before the first)."""
        if self.reference is None or not self.history:
            return None
        return LastInteractions(self.history[-1]["epoch"], self.reference["I_and"], self.reference["I_or"])

    def choose(
        self, sample_set: SampleSet, targets: Tensor | None, indices: Tensor | None, players: Any
    ) -> None:
        """Fix the samples of the fit and their players."""
        self.sample_set, self.targets, self.indices, self.players = sample_set, targets, indices, players

    def commit(self, record: dict[str, Any], I_and: Tensor, I_or: Tensor) -> None:
        """A measurement's record joins the history, and its interactions become the reference."""
        self.history.append(record)
        self.reference = {"I_and": I_and, "I_or": I_or}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's entry (its keys are those of the checkpoints monitors have always written)."""
        return {
            "inputs": None if self.sample_set is None else self.sample_set.to_state(),
            "targets": self.targets,
            "players": self.players,
            "indices": self.indices,
            "history": self.history,
            "tracker": self.tracker.state_dict(),
            "reference": self.reference,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        inputs = state_dict["inputs"]
        self.sample_set = None if inputs is None else SampleSet.from_state(inputs)
        self.targets, self.players = state_dict["targets"], state_dict["players"]
        self.indices = state_dict.get("indices")
        self.history = list(state_dict["history"])
        self.tracker.load_state_dict(state_dict["tracker"], history=self.history)
        self.reference = state_dict["reference"]
