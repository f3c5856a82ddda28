"""One record: its measured shape over orders ``1..n`` as bars, its predicted shape as a line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_interactions.plot._canvas import Record, fmt, new_figure, orders

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_measured_vs_predicted"]


def _draw_measured_vs_predicted(ax: Axes, record: Record) -> None:
    ks = orders(record)
    # In reference mode a record fits the previous measurement's shape against its own
    # interactions; fitted_epoch and fitted_shape say which shape the prediction is for.
    fitted_epoch = record.get("fitted_epoch", record["epoch"])
    shape = record.get("fitted_shape") or record["shape"]
    fitted = fmt(fitted_epoch, ".0f")
    ax.bar(ks, shape, color="tab:blue", alpha=0.6, label=f"measured, epoch {fitted}")
    predicted = record.get("predicted_shape")
    mode = record.get("prediction", "prior")
    if predicted is not None:
        ax.plot(ks, predicted, color="black", marker="o", linewidth=1.5, label=f"predicted ({mode} mode)")
    ax.set_xticks(ks)
    ax.set_xlabel("order k")
    ax.set_ylabel("share of strength A(k) / sum A")
    own = fitted_epoch in (None, record["epoch"])
    reference = "" if own else f" (reference: epoch {int(record['epoch'])})"
    ax.set_title(
        f"epoch {fitted}{reference}: noise level s = {fmt(record.get('noise_level'), '.3g')}, "
        f"fit error = {fmt(record.get('theory_error'), '.3f')}"
    )
    ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)


def figure_measured_vs_predicted(record: Record) -> Figure:
    """Bars of one record's measured shape over orders ``1..n`` and a line of its predicted shape.

    The title gives the epoch, the fitted noise level and the fit error (L1 between shapes).
    One axes.
    """
    figure = new_figure(figsize=(6.4, 4.2), layout="constrained")
    _draw_measured_vs_predicted(figure.add_subplot(), record)
    return figure
