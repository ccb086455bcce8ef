"""Reporting: the papers' tables (:mod:`.tables`) and figures (:mod:`.figures`, :mod:`.poincare`) from the metric
files, via :mod:`.tidy` (frames, labels), :mod:`.published`, :mod:`.render`, :mod:`.summaries`, :mod:`.readme`."""

from . import figures, tables
from .figures import save_figure
from .render import Table, write_table
from .tidy import load_metrics, method_label, protocol_line

__all__ = ["figures", "tables", "Table", "write_table", "save_figure", "load_metrics", "method_label", "protocol_line"]
