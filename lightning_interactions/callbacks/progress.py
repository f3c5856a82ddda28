"""One progress bar per measurement: the forward passes, then the extraction (samples certified).

The bar appears only once a measurement has run for ``PROGRESS_AFTER_S``, so quick measurements
stay silent; a slow one, the untrained model's at fit start included, shows both of its stages.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["PROGRESS_AFTER_S", "SLOW_MEASUREMENT_S", "LazyProgress", "slow_measurement_note"]

# A measurement that has run longer than this shows a progress bar.
PROGRESS_AFTER_S = 2.0
# A first measurement slower than this gets a note on what shortens it.
SLOW_MEASUREMENT_S = 10.0


class LazyProgress:
    """A tqdm bar for one measurement: ``forward(done, total)`` inputs, then ``extraction(done, total)``.

    Example:
        >>> bar = LazyProgress("interactions (epoch 1)", enabled=True)
        >>> bar.forward(10, 100)  # too early: no bar yet
        >>> bar.bar is None
        True
        >>> bar.close()
    """

    def __init__(self, description: str, enabled: bool) -> None:
        self.description, self.enabled = description, enabled
        self.start = time.perf_counter()
        self.bar: Any = None
        self.stage = ""

    def _show(self, stage: str, unit: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None and time.perf_counter() - self.start > PROGRESS_AFTER_S:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.description, leave=False)
        if self.bar is None:
            return
        if stage != self.stage:
            self.stage = stage
            self.bar.reset(total=total)
            self.bar.set_description(f"{self.description}: {stage}")
            self.bar.unit = unit
        self.bar.update(done - self.bar.n)

    def forward(self, done: int, total: int) -> None:
        """``done`` of ``total`` masked inputs through the model."""
        self._show("forward passes", "input", done, total)

    def extraction(self, done: int, total: int) -> None:
        """``done`` of ``total`` samples with a certified extraction."""
        self._show("extraction", "sample", done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def slow_measurement_note(
    seconds: float, num_samples: int, num_players: int, every_n_epochs: int
) -> str | None:
    """What to say after a first measurement that took longer than ``SLOW_MEASUREMENT_S``, else None.

    Example:
        >>> slow_measurement_note(3.0, 16, 10, 1) is None
        True
        >>> slow_measurement_note(35.0, 16, 14, 1)[:61]
        'InteractionMonitor: the first measurement took 35 s (16 sampl'
    """
    if seconds <= SLOW_MEASUREMENT_S:
        return None
    return (
        f"InteractionMonitor: the first measurement took {seconds:.0f} s ({num_samples} samples, "
        f"{num_players} players, 2^{num_players} = {2**num_players:,} masked inputs each); one runs every "
        f"{every_n_epochs} epoch(s). The untrained model's is often the slowest. To shorten them, lower "
        "num_samples or the masker's num_players (each player fewer halves the forward passes), or "
        "raise every_n_epochs."
    )
