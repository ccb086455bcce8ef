"""Run a pipeline notebook through papermill, in this process.

Papermill injects the parameters, keeps per-cell state and writes the executed notebook as usual; the
``hdd-inprocess`` engine below executes the cells in an IPython shell inside the calling process instead
of a Jupyter kernel. A pipeline stage then pays one Python start and one set of imports, not a kernel's
start, a message channel and a second interpreter (2-3 s a stage on 2 cores: benchmarks/README.md).
The outputs are those a kernel records: stream text, ``display()`` bundles, the last expression's value,
inline matplotlib figures and the error of a failing cell, which stops the run.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import nbformat
import papermill
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from papermill.engines import Engine, papermill_engines
from traitlets import Type
from traitlets.config import Config

__all__ = ["run_notebook", "ENGINE"]

#: The name under which importing this module registers :class:`InProcessEngine` with papermill.
ENGINE = "hdd-inprocess"

#: Run metadata papermill records that changes from run to run; dropped so an output changes only with
#: what it shows.
_VOLATILE = ("start_time", "end_time", "duration", "environment_variables", "input_path", "output_path")


def run_notebook(source: str | Path, target: str | Path, parameters: Mapping[str, Any] | None = None, *,
                 in_process: bool = True) -> None:
    """Execute ``source`` with ``parameters`` into ``target`` (papermill), without run times or papermill's
    random cell id; the written notebook is kept when a cell fails (papermill marks the failing cell) and
    papermill's ``PapermillExecutionError`` is raised. ``in_process=False``: a Jupyter kernel, as plain
    papermill does."""
    if in_process and InteractiveShell.initialized():
        in_process = False  # already inside IPython or Jupyter: its shell is the one display() reaches
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(source), str(target), parameters=dict(parameters or {}),
                                   engine_name=ENGINE if in_process else None, progress_bar=False,
                                   log_output=False, cwd=None)
    finally:
        if target.exists():
            nb = nbformat.read(str(target), as_version=4)
            for key in _VOLATILE:
                nb.metadata.get("papermill", {}).pop(key, None)
            markers = 0
            for cell in nb.cells:
                cell.metadata.pop("execution", None)
                cell.metadata.pop("papermill", None)
                tags = cell.metadata.get("tags", [])
                if "injected-parameters" in tags:
                    cell["id"] = "injected-parameters"
                elif "papermill-error-cell-tag" in tags:  # papermill's error header and anchor
                    cell["id"], markers = f"papermill-error-{markers}", markers + 1
            nbformat.write(nb, str(target))


#: What an IPython kernel reports as the notebook's language.
_LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
    "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
    "version": ".".join(map(str, sys.version_info[:3])),
}


class _Outputs:
    """The current cell's nbformat outputs; consecutive writes to one stream share an output."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def stream(self, name: str, text: str) -> None:
        if self.items and self.items[-1]["output_type"] == "stream" and self.items[-1]["name"] == name:
            self.items[-1]["text"] += text
        else:
            self.items.append({"output_type": "stream", "name": name, "text": text})

    def bundle(self, output_type: str, data: Mapping[str, Any], metadata: Mapping[str, Any] | None,
               **extra: Any) -> None:
        self.items.append({"output_type": output_type, "data": _json_bundle(data),
                           "metadata": dict(metadata or {}), **extra})


def _json_bundle(data: Mapping[str, Any]) -> dict:
    """A MIME bundle as a kernel sends it: binary data (PNG bytes) base64-encoded."""
    return {mime: base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else value
            for mime, value in data.items()}


class _Stream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while a notebook runs: text goes to the current cell's outputs."""

    def __init__(self, name: str, shell: Any) -> None:
        self.name, self._shell = name, shell

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if text:
            self._shell.outputs.stream(self.name, str(text))
        return len(text)


class _Publisher(DisplayPublisher):
    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        self.shell.outputs.bundle("display_data", data, metadata)

    def clear_output(self, wait=False):
        self.shell.outputs.items.clear()


class _ResultHook(DisplayHook):
    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.shell.outputs.bundle("execute_result", format_dict, md_dict, execution_count=self.shell.cell_count)

    def finish_displayhook(self):
        pass


class _Shell(InteractiveShell):
    """An InteractiveShell whose displays, results and tracebacks land in ``self.outputs``."""

    display_pub_class = Type(_Publisher)
    displayhook_class = Type(_ResultHook)

    def enable_gui(self, gui=None):  # inline figures need no event loop
        pass

    def _showtraceback(self, etype, evalue, stb):
        self.outputs.items.append({"output_type": "error", "ename": etype.__name__, "evalue": str(evalue),
                                   "traceback": list(stb)})

    def run(self, source: str) -> tuple[list[dict], int, bool]:
        """Execute one cell: (outputs, execution count, succeeded)."""
        self.outputs, self.cell_count = _Outputs(), self.execution_count
        result = self.run_cell(source, store_history=True)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return [nbformat.from_dict(o) for o in self.outputs.items], self.cell_count, result.success


class InProcessEngine(Engine):
    """Execute each code cell in a fresh in-process IPython shell; stop at the first error."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        with _shell() as shell:
            for index, cell in enumerate(nb_man.nb.cells):
                nb_man.cell_start(cell, index)
                try:
                    if cell.cell_type == "code":
                        cell.outputs, cell.execution_count, ok = shell.run(cell.source)
                        if not ok:
                            nb_man.cell_exception(cell, cell_index=index)
                            break
                finally:
                    nb_man.cell_complete(cell, cell_index=index)
            nb_man.nb.metadata["language_info"] = _LANGUAGE_INFO
        return nb_man.nb


papermill_engines.register(ENGINE, InProcessEngine)


@contextmanager
def _shell() -> Iterator[Any]:
    """A fresh shell (the process's IPython instance while it lives) with stdout, stderr, stdin, argv and
    the matplotlib backend redirected to it; all restored on exit."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # no history database in the user's home
    config.InteractiveShell.colors = "nocolor"    # tracebacks as plain text in the notebook
    shell = _Shell.instance(config=config)
    shell.outputs = _Outputs()
    saved = sys.stdout, sys.stderr, sys.stdin, sys.argv, sys.modules.get("__main__")
    sys.stdout, sys.stderr, sys.stdin = _Stream("stdout", shell), _Stream("stderr", shell), io.StringIO()
    sys.argv = [""]
    restore_backend = _inline_figures(shell)
    try:
        yield shell
    finally:
        sys.stdout, sys.stderr, sys.stdin, sys.argv = saved[:4]
        if saved[4] is not None:
            sys.modules["__main__"] = saved[4]
        restore_backend()
        shell.history_manager.end_session()
        _Shell.clear_instance()


_INLINE = "module://matplotlib_inline.backend_inline"


def _inline_figures(shell: Any):
    """Make matplotlib draw inline into ``shell`` (as a kernel does); return the function that undoes it."""
    env = os.environ.get("MPLBACKEND")
    if "matplotlib.pyplot" in sys.modules:    # pyplot already chose a backend: switch it
        import matplotlib.pyplot as plt
        from IPython.core.pylabtools import activate_matplotlib
        from matplotlib_inline.backend_inline import configure_inline_support
        previous = plt.get_backend()
        activate_matplotlib(_INLINE)  # as importing the backend module does (its _enable_matplotlib_integration)
        configure_inline_support(shell, _INLINE)
    elif "matplotlib" in sys.modules:         # matplotlib read $MPLBACKEND already: set its rc value
        import matplotlib
        previous = dict.__getitem__(matplotlib.rcParams, "backend")
        dict.__setitem__(matplotlib.rcParams, "backend", _INLINE)
    else:                                     # read when the notebook imports matplotlib
        previous = None
        os.environ["MPLBACKEND"] = _INLINE

    def restore() -> None:
        if env is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt
            if plt.get_backend() in (_INLINE, "inline"):  # no inline figures outside the run
                keep = isinstance(previous, str) and previous not in (_INLINE, "inline")
                plt.switch_backend(previous if keep else "agg")
        elif previous is not None:
            import matplotlib
            dict.__setitem__(matplotlib.rcParams, "backend", previous)
    return restore
