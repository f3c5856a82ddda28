"""A readable table of interactions, for maskers without a drawing of their own.

Example:
    >>> from lightning_interactions.analysis.emerging import Change
    >>> from lightning_interactions.plot._canvas import new_figure
    >>> ax = new_figure().add_subplot()
    >>> draw_table(ax, [Change(2, "or", [0, 3], 2, 0.1, 1.5, 0.7)])
    >>> cells = ax.tables[0].get_celld()
    >>> cells[(1, 0)].get_text().get_text(), cells[(1, 2)].get_text().get_text()
    ('2', '{0, 3}')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.emerging import Change

__all__ = ["draw_table"]

COLUMNS = ("sample", "kind", "players", "order", "before", "after", "change")


def _cell(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3g}"


def draw_table(ax: Axes, changes: Sequence[Change]) -> None:
    """One row per interaction: sample, kind, player indices, order, both values and the change."""
    rows = [
        [
            str(c.sample),
            c.kind.upper(),
            "{" + ", ".join(map(str, c.players)) + "}",
            str(c.order),
            _cell(c.value_from),
            _cell(c.value_to),
            f"{c.change:.3g}",
        ]
        for c in changes
    ] or [["-", "none", "", "", "", "", ""]]
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=COLUMNS, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)
