"""Reading matplotlib figures back in the plot tests: PNG bytes, vertical epoch marks, a quiet run."""

from __future__ import annotations

from helpers.report_history import PNG_MAGIC

ONSET = "tab:orange"
ALERT = "tab:red"


def saved_png(figure, path) -> None:
    figure.savefig(path, format="png", dpi=50)
    data = path.read_bytes()
    assert len(data) > len(PNG_MAGIC) and data[:8] == PNG_MAGIC


def vertical_lines(ax) -> list:
    """The lines of ``ax`` drawn by ``axvline``: two points, one x, y from 0 to 1 (axes units)."""
    return [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2
        and line.get_xdata()[0] == line.get_xdata()[1]
        and list(line.get_ydata()) == [0, 1]
    ]


def epoch_marks(ax) -> dict[str, float]:
    """``{"onset": x, "alert": x}`` of the epoch marks on ``ax``, by colour and line style."""
    kinds = {(ONSET, "--"): "onset", (ALERT, ":"): "alert"}
    marks = {}
    for line in vertical_lines(ax):
        kind = kinds[(line.get_color(), line.get_linestyle())]
        assert kind not in marks, f"two {kind} marks"
        marks[kind] = float(line.get_xdata()[0])
    return marks


def quiet(history: list[dict]) -> list[dict]:
    """The history with no record's alert set: the figures must not need it to mark the epochs."""
    return [dict(record, overfit_alert=0, phase=1) for record in history]
