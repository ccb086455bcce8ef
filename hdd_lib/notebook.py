"""How the pipeline runs a notebook (:func:`execute`: papermill, ``HDD_PIPELINE=1``, timestamps removed so
the output changes only with what it shows), and :func:`short_errors`: library errors shown as one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["execute", "clean", "short_errors"]

def clean(nb: Any) -> Any:
    """Drop run times from a notebook and give papermill's parameters cell a fixed id (not random), in place."""
    pm = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "environment_variables", "input_path", "output_path"):
        pm.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
    return nb


def execute(source: str | Path, target: str | Path, parameters: dict[str, Any]) -> None:
    """Run ``source`` with ``parameters`` into ``target`` for the pipeline (see the module docstring)."""
    import nbformat
    import papermill
    os.environ["HDD_PIPELINE"] = "1"
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(source), str(target), parameters=parameters, progress_bar=False,
                                   log_output=False, cwd=None)
    finally:
        if Path(target).exists():
            nb = nbformat.read(str(target), as_version=4)
            nbformat.write(clean(nb), str(target))


def _from_library(tb) -> bool:
    last = None
    while tb is not None:
        last, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    return last is not None and Path(last).resolve().is_relative_to(Path(__file__).resolve().parent)


def short_errors() -> None:
    """In an IPython kernel, show ``ValueError``/``OSError`` raised inside ``hdd_lib`` as one line."""
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return
    if ip is None or os.environ.get("HDD_DEBUG"):
        return
    def handler(shell, etype, value, tb, tb_offset=None):
        if not _from_library(tb):
            return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        lines = [f"{etype.__name__}: {value}", "(set HDD_DEBUG=1 for the traceback)"]
        builtin = next(c for c in etype.__mro__ if c.__module__ == "builtins")  # what papermill reports as ename
        shell._showtraceback(builtin, value, lines)
        return lines
    ip.set_custom_exc((ValueError, OSError), handler)
