"""hdd_lib.notebook: papermill with the in-process engine records what a Jupyter kernel records."""

import base64
import json
import subprocess
import sys

import nbformat
import papermill
import pytest

from hdd_lib.notebook import run_notebook

CELLS = [
    "import sys, warnings\nprint('x is', x, 'name is', name)\nprint('to stderr', file=sys.stderr)",
    "from IPython.display import Markdown, display\ndisplay(Markdown('**shown**'))\n{'a': x}",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot([0, 1], [1, x]);",
    "x * 2;",
    "leaked = 'from this run'",
]


def notebook(path, cells, parameters="x = 1\nname = 'a'"):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# probe"), params, *map(nbformat.v4.new_code_cell, cells)]
    nbformat.write(nb, str(path))
    return path


def code_outputs(path):
    return [(c["execution_count"], c["outputs"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"]


def test_outputs_are_those_a_kernel_records(tmp_path):
    src = notebook(tmp_path / "in.ipynb", CELLS)
    run_notebook(src, tmp_path / "here.ipynb", {"x": 3, "name": "b"})
    run_notebook(src, tmp_path / "kernel.ipynb", {"x": 3, "name": "b"}, in_process=False)
    here, kernel = code_outputs(tmp_path / "here.ipynb"), code_outputs(tmp_path / "kernel.ipynb")
    assert [count for count, _ in here] == [1, 2, 3, 4, 5, 6, 7]
    assert here == kernel  # counts, streams, display bundles, the last value, the inline figure's PNG bytes
    first = [(o["name"], "".join(o["text"])) for o in here[2][1]]
    assert first == [("stdout", "x is 3 name is b\n"), ("stderr", "to stderr\n")]
    shown = here[3][1]
    assert [o["output_type"] for o in shown] == ["display_data", "execute_result"]
    assert shown[0]["data"]["text/markdown"] == ["**shown**"] and shown[1]["data"]["text/plain"] == ["{'a': 3}"]
    png = [o for o in here[4][1] if "image/png" in o.get("data", {})]
    assert len(png) == 1 and base64.b64decode(png[0]["data"]["image/png"]).startswith(b"\x89PNG")
    assert here[5][1] == []  # a trailing semicolon shows nothing
    meta = json.loads((tmp_path / "here.ipynb").read_text())
    assert meta["metadata"]["language_info"]["name"] == "python"
    injected = [c for c in meta["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and injected[0]["id"] == "injected-parameters"
    assert "duration" not in json.dumps(meta) and "start_time" not in json.dumps(meta)


def test_a_failing_cell_stops_the_run_keeps_the_notebook_and_restores_the_process(tmp_path):
    import matplotlib
    from IPython.core.interactiveshell import InteractiveShell

    stdout, backend = sys.stdout, matplotlib.get_backend()
    src = notebook(tmp_path / "in.ipynb", ["print('before')", "1 / 0", "print('never')"])
    with pytest.raises(papermill.PapermillExecutionError) as e:
        run_notebook(src, tmp_path / "out.ipynb")
    assert e.value.ename == "ZeroDivisionError" and e.value.exec_count == 3
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1 and any("1 / 0" in line for line in errors[0]["traceback"])
    assert not any("never" in json.dumps(c.get("outputs", [])) for c in cells)
    assert any("papermill-error-cell-tag" in c["metadata"].get("tags", []) for c in cells)  # papermill's marker
    assert sys.stdout is stdout and matplotlib.get_backend() == backend
    assert not InteractiveShell.initialized()


def test_each_run_starts_from_a_fresh_namespace(tmp_path):
    run_notebook(notebook(tmp_path / "a.ipynb", CELLS[-1:]), tmp_path / "a-out.ipynb")
    with pytest.raises(papermill.PapermillExecutionError) as e:
        run_notebook(notebook(tmp_path / "b.ipynb", ["leaked"]), tmp_path / "b-out.ipynb")
    assert e.value.ename == "NameError"


def test_interrupting_a_cell_exits_130_and_keeps_the_notebook(tmp_path):
    src = notebook(tmp_path / "in.ipynb", ["print('started')", "raise KeyboardInterrupt"])
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "notebook", str(src), str(tmp_path / "out.ipynb")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 130, r.stderr
    assert "started" in (tmp_path / "out.ipynb").read_text()
