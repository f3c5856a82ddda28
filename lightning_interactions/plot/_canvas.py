"""What every figure shares: the Agg canvas without pyplot, the epoch marks and small formatters.

matplotlib (the optional extra ``plots``) is imported only when a figure is made, so importing this
package never needs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = Mapping[str, Any]
History = Sequence[Record]

INSTALL_HINT = "pip install lightning-interactions[plots]"
ALERT_COLOR = "tab:red"
ONSET_COLOR = "tab:orange"


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (the optional extra ``plots``)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def new_figure(**kwargs: Any) -> Figure:
    """A Figure on an Agg canvas, without pyplot; a clear error if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            f"the figures of lightning_interactions.plot need matplotlib: {INSTALL_HINT}"
        ) from err
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def render_rgb(figure: Figure) -> Any:
    """The figure as pixels: an ``(height, width, 3)`` uint8 array, drawn at the figure's dpi.

    Drawing is the slow part of a figure (its layout, text and paths); after this a logger only
    stores pixels, so the drawing can happen on another thread than the logging.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(figure.canvas, FigureCanvasAgg):  # a Figure made without a canvas of ours
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def check_history(history: History) -> None:
    if not history:
        raise ValueError("the history is empty: nothing to draw")


def orders(record: Record) -> list[int]:
    """The orders ``1..n`` of a record's shape."""
    return list(range(1, len(record["shape"]) + 1))


def fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``"n/a"`` for None."""
    return "n/a" if value is None else format(float(value), spec)


def mark_epochs(
    ax: Axes,
    alert_epoch: int | None,
    onset_epoch: int | None,
    position: Callable[[int], float | None] | None = None,
) -> None:
    """Vertical lines at the onset (dashed, orange) and the alert (dotted, red) epochs given.

    ``position`` maps an epoch to its x value (None: not on this axes, no mark); without it the x
    value is the epoch. No epochs, no marks: the figures never work the alert out themselves.
    """
    marks = (
        (onset_epoch, ONSET_COLOR, "--", 1.2, "onset (complexity min., epoch {})"),
        (alert_epoch, ALERT_COLOR, ":", 1.5, "alert (epoch {})"),
    )
    for epoch, color, linestyle, linewidth, label in marks:
        if epoch is None:
            continue
        x = epoch if position is None else position(epoch)
        if x is not None:
            ax.axvline(x, color=color, linestyle=linestyle, linewidth=linewidth, label=label.format(epoch))
