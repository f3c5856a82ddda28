"""Figures, the TensorBoard custom-scalars layout and a text summary of a monitored run.

Pure functions of the monitor's history: a list of records, one per measurement, each a
JSON-serialisable dict with (among others) ``epoch``, ``strength`` and ``shape`` (over orders
``1..n``), ``complexity``, ``prediction``, ``noise_level``, ``theory_error``, ``predicted_shape``,
``phase``, ``overfit_alert``, ``max_gap``, ``train_loss`` and ``val_loss``. Nothing here imports
Lightning. The figures need matplotlib (the optional extra ``plots``), which is imported only when
a figure is drawn; they are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas, so no
pyplot state is touched and no display is needed.

Example:
    >>> layout = scalar_layout(num_players=3)
    >>> layout["interactions"]["strength by order"][0]
    'Multiline'
    >>> record = {"epoch": 2, "strength": [0.5, 0.3, 0.2], "shape": [0.5, 0.3, 0.2], "complexity": 1.7,
    ...           "noise_level": None, "theory_error": None, "phase": 1, "overfit_alert": 0}
    >>> record_scalars(record)["interactions/order_2"]
    0.3
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lightning_interactions.analysis.theory import EpochFit

if TYPE_CHECKING:  # matplotlib is optional: only for type checkers
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "matplotlib_available",
    "scalar_tags",
    "scalar_layout",
    "record_scalars",
    "alert_epochs",
    "loss_gap_minimum",
    "summary_text",
    "figure_measured_vs_predicted",
    "figure_shape_heatmap",
    "figure_replay",
    "figure_report",
    "write_report_png",
]

Record = Mapping[str, Any]
History = Sequence[Record]

_INSTALL_HINT = "pip install lightning-interactions[plots]"
_ALERT_COLOR = "tab:red"
_ONSET_COLOR = "tab:orange"
_MAX_CURVES = 6
# The per-record scalars after the per-order ones, in logging order.
_RECORD_SCALARS = ("complexity", "noise_level", "theory_error", "phase", "overfit_alert")


# ---------------------------------------------------------------------------------------------
# TensorBoard scalars and their custom-scalars layout
# ---------------------------------------------------------------------------------------------


def scalar_tags(num_players: int, prefix: str = "interactions") -> list[str]:
    """Every scalar tag a record can produce, in logging order.

    ``{prefix}/order_k`` (raw strength ``A(k)``), ``{prefix}/shape/order_k`` (its share), then
    ``complexity``, ``noise_level``, ``theory_error``, ``phase`` and ``overfit_alert``.

    Example:
        >>> scalar_tags(2)
        ['interactions/order_1', 'interactions/order_2', 'interactions/shape/order_1', 'interactions/shape/order_2', 'interactions/complexity', 'interactions/noise_level', 'interactions/theory_error', 'interactions/phase', 'interactions/overfit_alert']
    """  # noqa: E501
    if num_players < 1:
        raise ValueError(f"num_players must be at least 1, got {num_players}")
    orders = range(1, num_players + 1)
    return (
        [f"{prefix}/order_{k}" for k in orders]
        + [f"{prefix}/shape/order_{k}" for k in orders]
        + [f"{prefix}/{name}" for name in _RECORD_SCALARS]
    )


def _exact(tag: str) -> str:
    # The custom-scalars plugin treats each entry as a regex and uses re.match: anchor it, so
    # that order_1 does not also pick up order_10.
    return f"^{re.escape(tag)}$"


def scalar_layout(num_players: int, prefix: str = "interactions") -> dict[str, dict[str, list[Any]]]:
    """The layout for ``SummaryWriter.add_custom_scalars``: one category named ``prefix``.

    Charts (all ``"Multiline"``; every entry is an anchored regex matching exactly one tag):
    ``strength by order`` (``{prefix}/order_k``, ``k = 1..n``), ``shape by order``
    (``{prefix}/shape/order_k``), ``complexity``, ``noise level and theory error`` and
    ``phase and over-fitting alert``.

    Example:
        >>> scalar_layout(2, prefix="ia")["ia"]["complexity"]
        ['Multiline', ['^ia/complexity$']]
    """
    scalar_tags(num_players, prefix)  # validates num_players
    orders = range(1, num_players + 1)
    return {
        prefix: {
            "strength by order": ["Multiline", [_exact(f"{prefix}/order_{k}") for k in orders]],
            "shape by order": ["Multiline", [_exact(f"{prefix}/shape/order_{k}") for k in orders]],
            "complexity": ["Multiline", [_exact(f"{prefix}/complexity")]],
            "noise level and theory error": [
                "Multiline",
                [_exact(f"{prefix}/noise_level"), _exact(f"{prefix}/theory_error")],
            ],
            "phase and over-fitting alert": [
                "Multiline",
                [_exact(f"{prefix}/phase"), _exact(f"{prefix}/overfit_alert")],
            ],
        }
    }


def record_scalars(record: Record, prefix: str = "interactions") -> dict[str, float]:
    """Map one history record to its scalars, keyed by the tags of :func:`scalar_tags`.

    Values that are ``None`` (no fitted noise level yet, for example) are left out.

    Example:
        >>> sorted(record_scalars({"strength": [2.0], "shape": [1.0], "complexity": 1.0,
        ...                        "noise_level": None, "phase": 1}, prefix="p"))
        ['p/complexity', 'p/order_1', 'p/phase', 'p/shape/order_1']
    """
    scalars: dict[str, float] = {}
    for key, group in (("strength", ""), ("shape", "shape/")):
        values = record.get(key)
        if values is None:
            continue
        for k, value in enumerate(values, start=1):
            if value is not None:
                scalars[f"{prefix}/{group}order_{k}"] = float(value)
    for name in _RECORD_SCALARS:
        value = record.get(name)
        if value is not None:
            scalars[f"{prefix}/{name}"] = float(value)
    return scalars


# ---------------------------------------------------------------------------------------------
# Numbers read off the history
# ---------------------------------------------------------------------------------------------


def _check_history(history: History) -> None:
    if not history:
        raise ValueError("the history is empty: nothing to report")


def alert_epochs(history: History) -> tuple[int | None, int | None]:
    """``(alert_epoch, onset_epoch)`` read off the records, or ``(None, None)`` without an alert.

    The alert epoch is that of the first record with ``overfit_alert`` set; the onset is the epoch
    of the smallest complexity before it (the first one, on ties), as the phase tracker names it.
    Use the tracker's own values where you have them; this is for histories read back from disk.

    Example:
        >>> history = [{"epoch": e, "complexity": c, "overfit_alert": int(e == 4)}
        ...            for e, c in enumerate([3.0, 2.4, 2.0, 2.2, 2.3])]
        >>> alert_epochs(history)
        (4, 2)
    """
    for index, record in enumerate(history):
        if record.get("overfit_alert"):
            before = history[: index + 1]
            onset = min(range(len(before)), key=lambda i: float(before[i]["complexity"]))
            return int(record["epoch"]), int(before[onset]["epoch"])
    return None, None


def _losses(history: History) -> list[tuple[int, float, float]]:
    """``(epoch, train_loss, val_loss)`` of the records that carry both, finite."""
    rows = []
    for record in history:
        train, val = record.get("train_loss"), record.get("val_loss")
        if train is None or val is None:
            continue
        train, val = float(train), float(val)
        if math.isfinite(train) and math.isfinite(val):
            rows.append((int(record["epoch"]), train, val))
    return rows


def loss_gap_minimum(history: History) -> int | None:
    """Epoch where ``val_loss - train_loss`` is smallest (the first, on ties), or None without losses.

    Example:
        >>> loss_gap_minimum([{"epoch": 0, "train_loss": 1.0, "val_loss": 1.2},
        ...                   {"epoch": 1, "train_loss": 0.8, "val_loss": 0.9},
        ...                   {"epoch": 2, "train_loss": 0.5, "val_loss": 0.9}])
        1
    """
    rows = _losses(history)
    if not rows:
        return None
    return min(rows, key=lambda row: row[2] - row[1])[0]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summary_text(
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    alert_epoch: int | None,
    onset_epoch: int | None,
) -> str:
    """A short markdown summary of a monitored run.

    ``alert_epoch`` and ``onset_epoch`` are the phase tracker's (None: no alert). ``replay_fits`` is
    the reference replay (:func:`lightning_interactions.analysis.theory.replay`, reference = its last
    entry) or None. The replay means leave out the reference epoch, which fits itself trivially.

    Example:
        >>> history = [{"epoch": e, "complexity": c, "num_players": 4}
        ...            for e, c in enumerate([3.0, 2.0, 2.5])]
        >>> print(summary_text(history, None, None, None).splitlines()[3])
        - **Over-fitting alert:** no alert: the complexity has not risen clearly above its minimum.
    """
    _check_history(history)
    first, last = history[0], history[-1]
    players = last.get("num_players")
    samples = last.get("num_samples")
    setup = f"{len(history)} measurement(s), epochs {int(first['epoch'])} to {int(last['epoch'])}"
    if players is not None:
        setup += f", {int(players)} players"
    if samples is not None:
        setup += f", {int(samples)} samples"
    if alert_epoch is None:
        alert = "no alert: the complexity has not risen clearly above its minimum"
    elif onset_epoch is None:
        alert = f"fired at epoch {alert_epoch}"
    else:
        alert = f"fired at epoch {alert_epoch}; phase 2 began at epoch {onset_epoch}, the complexity minimum"
    lines = ["## Interaction report", "", f"- **Run:** {setup}.", f"- **Over-fitting alert:** {alert}."]

    complexities = [(int(r["epoch"]), float(r["complexity"])) for r in history]
    low_epoch, low = min(complexities, key=lambda item: item[1])
    lines.append(
        f"- **Complexity (mean order):** minimum {low:.4g} at epoch {low_epoch}; "
        f"final {complexities[-1][1]:.4g} at epoch {complexities[-1][0]}."
    )

    gap_epoch = loss_gap_minimum(history)
    if gap_epoch is not None:
        gap = min(val - train for _, train, val in _losses(history))
        lines.append(f"- **Loss gap (val - train):** smallest at epoch {gap_epoch} ({gap:.4g}).")

    if replay_fits:
        reference = replay_fits[-1].epoch
        fits = [fit for fit in replay_fits if fit.epoch != reference]
        overall = _mean([fit.error for fit in fits])
        text = f"- **Reference replay** (reference: epoch {reference}; fit error = L1 between shapes): "
        if onset_epoch is None:
            text += "no phase 2 yet; "
        else:
            phase2 = _mean([fit.error for fit in fits if fit.epoch >= onset_epoch])
            text += "mean error over phase 2 (epochs >= {}) {}; ".format(
                onset_epoch, "n/a" if phase2 is None else f"{phase2:.3g}"
            )
        text += "over all other epochs {}.".format("n/a" if overall is None else f"{overall:.3g}")
        lines.append(text)

    gaps = [float(r["max_gap"]) for r in history if r.get("max_gap") is not None]
    if gaps:
        lines.append(f"- **Extraction:** largest certified gap {max(gaps):.3g}.")

    lines += [
        "",
        "The alert marks the onset of over-fitted features: the epoch after which the network starts "
        "to learn more complex (higher-order) interactions again, which the two-phase theory ties to "
        "the widening of the gap between training and validation loss. It is not the best epoch to "
        "stop training: the validation loss often keeps falling for a while after it.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (the optional extra ``plots``)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def _new_figure(**kwargs: Any) -> Figure:
    """A Figure on an Agg canvas, without pyplot; a clear error if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            f"the figures of lightning_interactions.reporting.report need matplotlib: {_INSTALL_HINT}"
        ) from err
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def _orders(record: Record) -> list[int]:
    return list(range(1, len(record["shape"]) + 1))


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(float(value), spec)


def _mark_epochs(ax: Axes, alert_epoch: int | None, onset_epoch: int | None) -> None:
    if onset_epoch is not None:
        ax.axvline(
            onset_epoch,
            color=_ONSET_COLOR,
            linestyle="--",
            linewidth=1.2,
            label=f"onset (complexity min., epoch {onset_epoch})",
        )
    if alert_epoch is not None:
        ax.axvline(
            alert_epoch,
            color=_ALERT_COLOR,
            linestyle=":",
            linewidth=1.5,
            label=f"alert (epoch {alert_epoch})",
        )


def _draw_measured_vs_predicted(ax: Axes, record: Record) -> None:
    orders = _orders(record)
    # In reference mode a record fits the previous measurement's shape against its own
    # interactions; fitted_epoch and fitted_shape say which shape the prediction is for.
    fitted_epoch = record.get("fitted_epoch", record["epoch"])
    shape = record.get("fitted_shape") or record["shape"]
    fitted = _fmt(fitted_epoch, ".0f")
    ax.bar(orders, shape, color="tab:blue", alpha=0.6, label=f"measured, epoch {fitted}")
    predicted = record.get("predicted_shape")
    mode = record.get("prediction", "prior")
    if predicted is not None:
        ax.plot(orders, predicted, color="black", marker="o", linewidth=1.5, label=f"predicted ({mode} mode)")
    ax.set_xticks(orders)
    ax.set_xlabel("order k")
    ax.set_ylabel("share of strength A(k) / sum A")
    own = fitted_epoch in (None, record["epoch"])
    reference = "" if own else f" (reference: epoch {int(record['epoch'])})"
    ax.set_title(
        f"epoch {fitted}{reference}: noise level s = {_fmt(record.get('noise_level'), '.3g')}, "
        f"fit error = {_fmt(record.get('theory_error'), '.3f')}"
    )
    ax.legend(loc="best")
    ax.grid(axis="y", alpha=0.3)


def figure_measured_vs_predicted(record: Record) -> Figure:
    """Bars of one record's measured shape over orders ``1..n`` and a line of its predicted shape.

    The title gives the epoch, the fitted noise level and the fit error (L1 between shapes).
    One axes.
    """
    figure = _new_figure(figsize=(6.4, 4.2), layout="constrained")
    _draw_measured_vs_predicted(figure.add_subplot(), record)
    return figure


def _draw_heatmap(figure: Figure, ax: Axes, history: History) -> None:
    import numpy as np

    shapes = np.array([record["shape"] for record in history], dtype=float).T  # (orders, records)
    epochs = [int(record["epoch"]) for record in history]
    n = shapes.shape[0]
    image = ax.imshow(
        shapes,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(-0.5, len(epochs) - 0.5, 0.5, n + 0.5),
    )
    figure.colorbar(image, ax=ax, label="share of strength A(k) / sum A")
    step = max(1, math.ceil(len(epochs) / 15))
    ax.set_xticks(range(0, len(epochs), step))
    ax.set_xticklabels([str(epochs[i]) for i in range(0, len(epochs), step)])
    ax.set_yticks(range(1, n + 1, max(1, math.ceil(n / 12))))
    ax.set_xlabel("epoch")
    ax.set_ylabel("order k")
    ax.set_title("strength by order over training (shape)")
    alert_epoch, onset_epoch = alert_epochs(history)
    # The columns are measurements: mark the first column of each epoch.
    _mark_epochs(
        ax,
        None if alert_epoch is None else epochs.index(alert_epoch),
        None if onset_epoch is None else epochs.index(onset_epoch),
    )
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small")


def figure_shape_heatmap(history: History) -> Figure:
    """Heat map of the shape: orders ``1..n`` (y) by measurements (x, labelled with epochs).

    The onset and alert epochs (read off the records, see :func:`alert_epochs`) are marked when the
    alert has fired. Two axes: the map and its colour bar; ``axes[0].images[0]`` holds the
    ``(n, len(history))`` array of shapes.
    """
    _check_history(history)
    figure = _new_figure(figsize=(7.5, 4.2), layout="constrained")
    _draw_heatmap(figure, figure.add_subplot(), history)
    return figure


def _chosen_indices(count: int, most: int = _MAX_CURVES) -> list[int]:
    """Up to ``most`` evenly spaced indices of ``range(count)``, first and last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _draw_shape_curves(
    ax: Axes, history: History, predicted_shapes: Mapping[int, Sequence[float]] | None
) -> None:
    from matplotlib import colormaps

    chosen = _chosen_indices(len(history))
    colours = colormaps["viridis"]
    source = "reference replay" if predicted_shapes is not None else "online fit"
    for rank, index in enumerate(chosen):
        record = history[index]
        epoch = int(record["epoch"])
        colour = colours(rank / max(1, len(chosen) - 1) * 0.9)
        orders = _orders(record)
        ax.plot(
            orders,
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
            ax.plot(orders, predicted, color=colour, linestyle="--", linewidth=1.2)
    ax.plot([], [], color="gray", linestyle="-", label="measured")
    ax.plot([], [], color="gray", linestyle="--", label=f"predicted ({source})")
    ax.set_xticks(_orders(history[-1]))
    ax.set_xlabel("order k")
    ax.set_ylabel("share of strength A(k) / sum A")
    ax.set_title("strength by order: measured vs predicted")
    ax.legend(loc="best", fontsize="small", ncol=2)
    ax.grid(alpha=0.3)


def _draw_noise(
    ax: Axes,
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    alert_epoch: int | None,
    onset_epoch: int | None,
) -> Axes:
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
    _mark_epochs(ax, alert_epoch, onset_epoch)
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


def _draw_complexity(ax: Axes, history: History, alert_epoch: int | None, onset_epoch: int | None) -> None:
    ax.plot(
        [int(r["epoch"]) for r in history],
        [float(r["complexity"]) for r in history],
        color="tab:purple",
        marker="o",
        markersize=3,
        label="complexity (mean order)",
    )
    _mark_epochs(ax, alert_epoch, onset_epoch)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean order of interactions")
    ax.set_title("complexity")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)


def _draw_losses(ax: Axes, history: History, alert_epoch: int | None, onset_epoch: int | None) -> None:
    rows = _losses(history)
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
    _mark_epochs(ax, alert_epoch, onset_epoch)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)


def _draw_replay(
    figure: Figure,
    axes: Sequence[Axes],
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    predicted_shapes: Mapping[int, Sequence[float]] | None,
) -> None:
    alert_epoch, onset_epoch = alert_epochs(history)
    _draw_shape_curves(axes[0], history, predicted_shapes)
    _draw_noise(axes[1], history, replay_fits, alert_epoch, onset_epoch)
    _draw_complexity(axes[2], history, alert_epoch, onset_epoch)
    _draw_losses(axes[3], history, alert_epoch, onset_epoch)
    status = (
        "no over-fitting alert"
        if alert_epoch is None
        else (f"over-fitting alert at epoch {alert_epoch} (onset: epoch {onset_epoch})")
    )
    figure.suptitle(f"Interaction dynamics over training: {status}", fontsize="large")


def figure_replay(
    history: History,
    replay_fits: Sequence[EpochFit] | None = None,
    predicted_shapes: Mapping[int, Sequence[float]] | None = None,
) -> Figure:
    """The replay of a whole run, in the style of the paper, on a 2 x 2 grid.

    1. strength by order (shapes) at up to six evenly spaced epochs, first and last included:
       measured solid, predicted dashed, from ``predicted_shapes`` (epoch -> shape, the reference
       replay) when given, else each record's online ``predicted_shape``;
    2. the fitted noise level ``s`` over epochs (log scale) and the fit error (right axis), from
       ``replay_fits`` (its last entry, the reference epoch, which fits itself, is left out) and
       from the records' online fits;
    3. the complexity (mean order);
    4. training and validation loss and their gap, when recorded.

    The onset and alert epochs (see :func:`alert_epochs`) are marked. Five axes: the four panels,
    then the right-hand axis of panel 2.
    """
    _check_history(history)
    figure = _new_figure(figsize=(13, 9), layout="constrained")
    axes = figure.subplots(2, 2).ravel()
    _draw_replay(figure, axes, history, replay_fits, predicted_shapes)
    return figure


def figure_report(
    history: History,
    replay_fits: Sequence[EpochFit] | None = None,
    predicted_shapes: Mapping[int, Sequence[float]] | None = None,
) -> Figure:
    """:func:`figure_replay` with the shape heat map below it, on one page (seven axes)."""
    _check_history(history)
    figure = _new_figure(figsize=(13, 13), layout="constrained")
    grid = figure.add_gridspec(3, 2, height_ratios=(1, 1, 0.8))
    axes = [figure.add_subplot(grid[row, col]) for row in range(2) for col in range(2)]
    _draw_replay(figure, axes, history, replay_fits, predicted_shapes)
    _draw_heatmap(figure, figure.add_subplot(grid[2, :]), history)
    return figure


def write_report_png(
    history: History,
    replay_fits: Sequence[EpochFit] | None,
    predicted_shapes: Mapping[int, Sequence[float]] | None,
    path: str | os.PathLike[str],
    dpi: int = 100,
) -> str:
    """Draw :func:`figure_report` and save it as a PNG at ``path``; returns the path as a string."""
    figure = figure_report(history, replay_fits, predicted_shapes)
    target = os.fspath(path)
    figure.savefig(target, format="png", dpi=dpi)
    return target
