"""The four panels of the replay figure: shape curves, noise level and fit error, complexity, losses.

Each ``draw_*`` draws on the axes it is given; those that mark epochs take the phase tracker's
``alert_epoch`` and ``onset_epoch`` (None: not marked) and never work them out themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lightning_interactions.analysis.losses import loss_gap_minimum, loss_rows
from lightning_interactions.plot._canvas import History, mark_epochs, orders

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes

    from lightning_interactions.analysis.replay import EpochFit

MAX_CURVES = 6


def chosen_indices(count: int, most: int = MAX_CURVES) -> list[int]:
    """Up to ``most`` evenly spaced indices of ``range(count)``, first and last included.

    Example:
        >>> chosen_indices(8)
        [0, 1, 3, 4, 6, 7]
    """
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def draw_shape_curves(
    ax: Axes, history: History, predicted_shapes: Mapping[int, Sequence[float]] | None
) -> None:
    """Measured (solid) and predicted (dashed) shapes at up to six epochs (panel 1)."""
    from matplotlib import colormaps

    chosen = chosen_indices(len(history))
    colours = colormaps["viridis"]
    source = "reference replay" if predicted_shapes is not None else "online fit"
    for rank, index in enumerate(chosen):
        record = history[index]
        epoch = int(record["epoch"])
        colour = colours(rank / max(1, len(chosen) - 1) * 0.9)
        ks = orders(record)
        ax.plot(
            ks,
            record["shape"],
            color=colour,
            linestyle="-",
            marker="o",
            markersize=3,
            label=f"epoch {epoch}",
        )
        if predicted_shapes is not None:
            predicted = predicted_shapes.get(epoch)
        elif record.get("fitted_epoch", epoch) == epoch:
            predicted = record.get("predicted_shape")
        else:
            predicted = None  # a reference-mode record predicts the previous epoch's shape
        if predicted is not None:
            ax.plot(ks, predicted, color=colour, linestyle="--", linewidth=1.2)
    ax.plot([], [], color="gray", linestyle="-", label="measured")
    ax.plot([], [], color="gray", linestyle="--", label=f"predicted ({source})")
    ax.set_xticks(orders(history[-1]))
    ax.set_xlabel("order k")
    ax.set_ylabel("share of strength A(k) / sum A")
    ax.set_title("strength by order: measured vs predicted")
    ax.legend(loc="best", fontsize="small", ncol=2)
    ax.grid(alpha=0.3)


def draw_noise(
    ax: Axes,
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    alert_epoch: int | None = None,
    onset_epoch: int | None = None,
) -> Axes:
    """Fitted noise level (log, left) and fit error (right) over epochs (panel 2); returns the right axes."""
    online = [
        (int(r["epoch"]), float(r["noise_level"]))
        for r in history
        if r.get("noise_level") is not None and float(r["noise_level"]) > 0
    ]
    errors_ax = ax.twinx()
    # The reference epoch (the last fit) fits itself at the lower bound of s: leave it out, it
    # would only stretch the log axis.
    fits = list(replay_fits or [])[:-1]
    if fits:
        ax.plot(
            [f.epoch for f in fits],
            [f.s for f in fits],
            color="tab:blue",
            marker="o",
            markersize=3,
            label=f"s, reference replay (ref. epoch {replay_fits[-1].epoch})",
        )
        errors_ax.plot(
            [f.epoch for f in fits],
            [f.error for f in fits],
            color="tab:gray",
            marker="s",
            markersize=3,
            linestyle="-",
            label="fit error, replay",
        )
    if online:
        mode = history[-1].get("prediction", "prior")
        ax.plot(
            [e for e, _ in online],
            [s for _, s in online],
            color="tab:green",
            linestyle="-.",
            label=f"s, online ({mode} mode)",
        )
        fitted = [
            (int(r["epoch"]), float(r["theory_error"])) for r in history if r.get("theory_error") is not None
        ]
        errors_ax.plot(
            [e for e, _ in fitted],
            [v for _, v in fitted],
            color="tab:olive",
            linestyle=":",
            label="fit error, online",
        )
    mark_epochs(ax, alert_epoch, onset_epoch)
    if fits or online:
        # Log scale, with headroom above the curves for the legend (two panels share it).
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * (high / low) ** 0.6)
        errors_ax.set_ylim(0, errors_ax.get_ylim()[1] * 1.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("fitted noise level s (log)")
    errors_ax.set_ylabel("fit error (L1 between shapes)")
    ax.set_title("fitted noise level and fit error")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = errors_ax.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, loc="upper right", fontsize="x-small", ncol=2)
    ax.grid(alpha=0.3)
    return errors_ax


def draw_complexity(
    ax: Axes, history: History, alert_epoch: int | None = None, onset_epoch: int | None = None
) -> None:
    """The complexity (mean order) over epochs (panel 3)."""
    ax.plot(
        [int(r["epoch"]) for r in history],
        [float(r["complexity"]) for r in history],
        color="tab:purple",
        marker="o",
        markersize=3,
        label="complexity (mean order)",
    )
    mark_epochs(ax, alert_epoch, onset_epoch)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean order of interactions")
    ax.set_title("complexity")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)


def draw_losses(
    ax: Axes, history: History, alert_epoch: int | None = None, onset_epoch: int | None = None
) -> None:
    """Training and validation loss, their gap and its smallest value (panel 4), or a note without them."""
    rows = loss_rows(history)
    ax.set_title("training and validation loss")
    if not rows:
        ax.text(0.5, 0.5, "no train/val loss recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    epochs = [row[0] for row in rows]
    ax.plot(epochs, [row[1] for row in rows], color="tab:blue", marker="o", markersize=3, label="train loss")
    ax.plot(epochs, [row[2] for row in rows], color="tab:orange", marker="o", markersize=3, label="val loss")
    gaps = [row[2] - row[1] for row in rows]
    ax.plot(epochs, gaps, color="tab:gray", linestyle="--", label="gap (val - train)")
    best = loss_gap_minimum(history)
    ax.plot(
        [best],
        [min(gaps)],
        linestyle="none",
        marker="v",
        color="black",
        markersize=8,
        label=f"smallest gap (epoch {best})",
    )
    mark_epochs(ax, alert_epoch, onset_epoch)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
