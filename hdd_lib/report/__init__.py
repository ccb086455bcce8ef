"""Reporting: the papers' tables and figures from the pipeline's metric files, written atomically.

Modules, one job each:

- :mod:`~hdd_lib.report.published`: the published numbers (``hdd_lib/published.csv``) and the rule
  choosing among their sources.
- :mod:`~hdd_lib.report.tidy`: metric dicts -> tidy numbers (pooled over seeds), the protocol line,
  display names.
- :mod:`~hdd_lib.report.render`: :class:`Table` (display + numbers) -> ``.md`` / ``.csv`` / ``.tex``.
- :mod:`~hdd_lib.report.tables`: Tables 1–4 with their footnotes; :func:`tables.write_all` writes
  them all plus ``curves.csv``. Re-exports the names above that notebooks use.
- :mod:`~hdd_lib.report.summaries`: short Markdown of one stage's output for the notebooks.
- :mod:`~hdd_lib.report.figures`: :class:`matplotlib.figure.Figure` objects in one style
  (``hdd.mplstyle``), no pyplot state; :func:`save_figure` writes PNGs atomically and
  :func:`figures.write_all` every figure of the ``figures`` stage.
- :mod:`~hdd_lib.report.poincare`: the Poincaré-disk figures (re-exported by ``figures``);
  :mod:`~hdd_lib.report.panels`: the style and drawing blocks they share.

The geometry behind the Poincaré-disk figures is :mod:`hdd_lib.visual`. ::

    from hdd_lib import report
    metrics = report.load_metrics("results/metrics/eval")
    report.write_table(report.main_table(metrics), "results/tables")
    report.save_figure(report.accuracy_vs_iteration(metrics), "results/figures/fig2_accuracy_vs_iteration.png")
"""

from .figures import (
    accuracy_bars,
    accuracy_vs_iteration,
    geodm_trajectories,
    geometry_figure,
    image_grid,
    loss_curve,
    note_figure,
    poincare_plot,
    pruning_curves,
    save_figure,
    style,
)
from .published import load_published, paper_numbers
from .render import Table, read_table_csv, write_table
from .summaries import metrics_markdown, norm_markdown, summary_markdown
from .tables import ablation_table, crossarch_table, main_table, pruning_table
from .tidy import load_metrics, protocol_line

__all__ = [
    "Table",
    "load_metrics",
    "load_published",
    "paper_numbers",
    "protocol_line",
    "main_table",
    "crossarch_table",
    "pruning_table",
    "ablation_table",
    "write_table",
    "read_table_csv",
    "summary_markdown",
    "norm_markdown",
    "metrics_markdown",
    "style",
    "save_figure",
    "note_figure",
    "poincare_plot",
    "geometry_figure",
    "image_grid",
    "accuracy_vs_iteration",
    "accuracy_bars",
    "pruning_curves",
    "geodm_trajectories",
    "loss_curve",
]
