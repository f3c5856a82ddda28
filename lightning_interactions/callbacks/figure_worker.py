"""The monitor's figures, drawn on a background thread so that training does not wait for matplotlib.

Drawing a figure (its layout, text and paths) takes tenths of a second; logging the pixels takes
milliseconds. :class:`FigureWorker` runs each job (a function that makes figures) on one daemon
thread and turns every figure into pixels there. The finished images are handed to the loggers
on the training thread, by :meth:`FigureWorker.deliver`, which the monitor calls at each
measurement and at fit end, so no logger is ever called from two threads. Each image keeps the
step it was made for, so a figure that reaches a logger one epoch late still sits at its
measurement's step.

At fit end :meth:`FigureWorker.finish` waits for the jobs still pending and logs them. After a
crash (or an interrupt) it waits at most a few seconds and reports what it had to drop.

Example:
    >>> from lightning_interactions.loggers import LoggerBackend
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> class Images(LoggerBackend):
    ...     supports_figures = True
    ...     def __init__(self):
    ...         self.images = []
    ...     def log_scalars(self, scalars, step):
    ...         pass
    ...     def log_image(self, tag, image, step):
    ...         self.images.append((tag, image.shape[2], step))
    >>> def draw():
    ...     figure = new_figure(figsize=(2, 1))
    ...     figure.add_subplot().plot([0, 1])
    ...     return {"interactions/line": (figure, 3)}
    >>> backend, worker = Images(), FigureWorker()
    >>> worker.submit(draw, [backend], epoch=3)
    >>> worker.finish(timeout=60.0).dropped
    0
    >>> backend.images
    [('interactions/line', 3, 3)]
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_interactions.loggers.base import LoggerBackend

__all__ = ["Drawn", "FigureWorker", "Finished"]

# ``tag -> (figure, step)``: what a job makes.
Figures = Mapping[str, tuple[Any, int]]
Job = Callable[[], Figures]


@dataclass
class Drawn:
    """One job's outcome: its images ``tag -> (pixels, step)``, or the error that stopped it."""

    epoch: int
    backends: Sequence[LoggerBackend]
    images: dict[str, tuple[Any, int]] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass(frozen=True)
class Finished:
    """What :meth:`FigureWorker.finish` did: how many jobs it logged, and the epochs of those it dropped."""

    logged: int
    dropped_epochs: tuple[int, ...] = ()

    @property
    def dropped(self) -> int:
        return len(self.dropped_epochs)


class FigureWorker:
    """One background thread that draws the monitor's figures; results are logged on the caller's thread.

    The thread starts with the first job, and is a daemon: a process that exits never waits for it.
    A copy or pickle of the worker (a deep-copied callback, say) starts empty.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._jobs: queue.Queue[tuple[Job, Sequence[LoggerBackend], int] | None] = queue.Queue()
        self._done: queue.Queue[Drawn] = queue.Queue()
        # The epochs of the jobs submitted and not yet logged, in order.
        self._waiting: list[int] = []
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Not empty: pickle protocols 0 and 1 skip __setstate__ for a false state.
        return {"empty": True}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._reset()

    @property
    def pending(self) -> int:
        """Jobs submitted whose images have not been logged yet."""
        return len(self._waiting)

    def submit(self, job: Job, backends: Sequence[LoggerBackend], epoch: int) -> None:
        """Draw ``job()``'s figures in the background, for ``backends``; ``epoch`` names it in reports.

        ``job`` must not read anything the training thread changes later: hand it copies.
        """
        if not backends:
            return
        if self._thread is None or not self._thread.is_alive():
            # The queues go in as arguments: after finish() a thread still drawing a dropped job
            # must not take the next fit's jobs or hand in its results.
            queues, name = (self._jobs, self._done), "InteractionMonitor figures"
            self._thread = threading.Thread(target=_draw_jobs, args=queues, name=name, daemon=True)
            self._thread.start()
        self._waiting.append(epoch)
        self._jobs.put((job, list(backends), epoch))

    def deliver(self, on_error: Callable[[int, BaseException], None] | None = None) -> int:
        """Log the images finished so far, on this thread; returns how many jobs were logged.

        A job that failed, or whose logging fails, goes to ``on_error(epoch, error)`` (raised
        without one); the other jobs are logged all the same.
        """
        logged = 0
        while True:
            try:
                drawn = self._done.get_nowait()
            except queue.Empty:
                return logged
            self._waiting.remove(drawn.epoch)
            logged += 1
            try:
                if drawn.error is not None:
                    raise drawn.error
                for backend in drawn.backends:
                    for tag, (image, step) in drawn.images.items():
                        backend.log_image(tag, image, step)
                    backend.flush()
            except Exception as error:
                if on_error is None:
                    raise
                on_error(drawn.epoch, error)

    def finish(
        self, timeout: float, on_error: Callable[[int, BaseException], None] | None = None
    ) -> Finished:
        """Wait up to ``timeout`` seconds for the pending jobs, log them, and drop what is still drawing.

        The thread is told to stop after its current job; a dropped job's figures are never logged.
        """
        deadline = time.monotonic() + timeout
        logged = 0
        while self._waiting and time.monotonic() < deadline:
            logged += self.deliver(on_error)
            if self._waiting:
                time.sleep(min(0.02, max(deadline - time.monotonic(), 0.0)))
        logged += self.deliver(on_error)
        dropped = tuple(self._waiting)
        if self._thread is not None:
            self._jobs.put(None)
        self._reset()
        return Finished(logged=logged, dropped_epochs=dropped)


def _draw_jobs(jobs: queue.Queue, done: queue.Queue) -> None:
    """The thread: draw each job's figures into pixels until told to stop (a ``None`` job)."""
    from lightning_interactions.plot._canvas import render_rgb

    while True:
        item = jobs.get()
        if item is None:
            return
        job, backends, epoch = item
        drawn = Drawn(epoch, backends)
        try:
            for tag, (figure, step) in job().items():
                drawn.images[tag] = (render_rgb(figure), step)
        except Exception as error:  # reported on the training thread, by deliver()
            drawn.error = error
        done.put(drawn)
