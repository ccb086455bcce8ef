"""Reporting: the papers' tables and figures from the pipeline's metric files, written atomically.

- :mod:`~hdd_lib.report.tidy`: metric files -> tidy frames (pooled over seeds), display names, the protocol line
- :mod:`~hdd_lib.report.published`: the published numbers and the rule choosing among their sources
- :mod:`~hdd_lib.report.render`: :class:`Table` -> ``.md`` / ``.csv`` / ``.tex``
- :mod:`~hdd_lib.report.tables`: Tables 1–4; :func:`tables.write_all` for the ``tables`` stage
- :mod:`~hdd_lib.report.summaries`: Markdown of one stage's output for the notebooks
- :mod:`~hdd_lib.report.figures`: the figures (``Figure`` objects shown as PNG in Jupyter);
  :func:`figures.write_all` for the ``figures`` stage; :mod:`~hdd_lib.report.poincare`: the Poincaré disk
- :mod:`~hdd_lib.report.readme`: README.md's generated results block ::

    from hdd_lib import report
    report.tables.write_all("results/metrics", "results/tables")
    report.figures.accuracy_vs_iteration(report.load_metrics("results/metrics/eval"))
"""

from . import figures, tables
from .figures import save_figure
from .render import Table, write_table
from .tidy import load_metrics, method_label, protocol_line

__all__ = ["figures", "tables", "Table", "write_table", "save_figure", "load_metrics", "method_label", "protocol_line"]
