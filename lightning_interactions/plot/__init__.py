"""Figures of a monitored run, drawn from its history (matplotlib, the optional extra ``plots``).

Each is a plain :class:`matplotlib.figure.Figure` on an Agg canvas: no pyplot state is touched and
no display is needed; matplotlib is imported only when a figure is drawn.

- :func:`figure_measured_vs_predicted`: one record's measured shape (bars over orders ``1..n``) and
  its predicted shape (a line); the title gives the epoch, noise level and fit error.
- :func:`figure_shape_heatmap`: the shape of every measurement, orders (y) by measurements (x).
- :func:`figure_replay`: the run in the style of the paper, 2 x 2: measured and predicted shapes at
  up to six epochs, the fitted noise level and fit error, the complexity, the losses and their gap.
- :func:`figure_orders_over_epochs`: strength and shape of every order over the epochs, a line
  per order in distinct colours.
- :func:`replay_panel_figures`: the replay's four panels as four figures, for dashboards.
- :func:`figure_report`: the replay with the heat map below, one page; :func:`write_report_png`
  saves it as a PNG.

The figures that mark epochs take ``alert_epoch`` and ``onset_epoch`` as keyword arguments, the
phase tracker's (:class:`~lightning_interactions.analysis.phases.PhaseTracker`, the one alert
rule); without them nothing is marked.
"""

from lightning_interactions.plot._canvas import matplotlib_available
from lightning_interactions.plot.heatmap import figure_shape_heatmap
from lightning_interactions.plot.measured_vs_predicted import figure_measured_vs_predicted
from lightning_interactions.plot.orders_over_epochs import figure_orders_over_epochs
from lightning_interactions.plot.replay import figure_replay, replay_panel_figures
from lightning_interactions.plot.report_page import figure_report, write_report_png

__all__ = [
    "matplotlib_available",
    "figure_measured_vs_predicted",
    "figure_shape_heatmap",
    "figure_orders_over_epochs",
    "figure_replay",
    "replay_panel_figures",
    "figure_report",
    "write_report_png",
]
