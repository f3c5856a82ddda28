"""A progress bar for long measurements, shown only once one has run for a while."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["PROGRESS_AFTER_S", "LazyProgress"]

# A measurement that has run longer than this shows a progress bar.
PROGRESS_AFTER_S = 2.0


class LazyProgress:
    """A tqdm bar that appears only once a measurement has run for ``PROGRESS_AFTER_S``.

    Example:
        >>> bar = LazyProgress("interactions (epoch 1)", enabled=True)
        >>> bar.update(10, 100)  # too early: no bar yet
        >>> bar.bar is None
        True
        >>> bar.close()
    """

    def __init__(self, description: str, enabled: bool) -> None:
        self.description, self.enabled = description, enabled
        self.start = time.perf_counter()
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None and time.perf_counter() - self.start > PROGRESS_AFTER_S:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.description, unit="input", leave=False)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
