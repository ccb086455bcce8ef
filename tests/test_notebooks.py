"""Every notebook executes with tiny parameters on the embedded digits (in a scratch copy of the
repository): by hand (papermill: outputs under scratch/) and for the pipeline (`python -m hdd_lib
notebook`: outputs under results/). Figures are inline images; user errors show one line; each stage
loads only library modules that dvc.yaml declares for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HDD_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    p = yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text())
    p["distill"].update(iterations=4, batch_real=16, checkpoint_every=2, log_every=2, curve_every=2)
    p["distill"]["model"]["width"] = 16
    p["eval"].update(epochs=3, num_eval=1, curve={"num_eval": 1, "epochs": 2})
    p["prune"].update(nets=1, ratios=[1.0, 0.5])
    p["geometry"].update(batch=16)
    p["report"]["figure_run"] = {"dataset": "digits", "ipc": 2, "method": "dm_hdd", "seed": 0}
    return p


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    return root


RUNS = [
    ("00_data", {"dataset": "digits"}, "data"),
    ("01_geometry", {"dataset": "digits"}, "geometry"),
    ("02_distill", {"ipc": 2, "method": "dm_hdd"}, "distill"),
    ("02_distill", {"ipc": 2, "method": "geodm", "variant": "EHS_ot"}, "ablation_distill"),
    ("03_evaluate", {"ipc": 2, "method": "dm_hdd"}, "evaluate"),
    ("03_evaluate", {"ipc": 2, "method": "dm_hdd", "kind": "crossarch"}, "crossarch"),
    ("03_evaluate", {"ipc": 2, "method": "geodm", "variant": "EHS_ot", "kind": "ablation"}, "ablation_evaluate"),
    ("04_prune", {"ipc": 2, "method": "dm_hdd"}, "prune"),
    ("05_tables", {}, "tables"),
    ("06_figures", {}, "figures"),
]

EXPECTED = {
    "00_data": ["records/data/digits.json", "metrics/data/digits.json", "figures/fig0_samples-digits.png"],
    "01_geometry": ["records/geometry/digits.json", "figures/fig1_geometry-digits.png"],
    "02_distill": ["runs/digits-ipc2-dm_hdd-s0/synset.pt", "runs/digits-ipc2-dm_hdd-s0/distill.json",
                   "runs/digits-ipc2-geodm_EHS_ot-s0/synset.pt", "provenance/distill/digits-ipc2-dm_hdd-s0.json"],
    "03_evaluate": ["records/eval/digits-ipc2-dm_hdd-s0.json", "records/crossarch/digits-ipc2-dm_hdd-s0.json",
                    "records/ablation/digits-ipc2-geodm_EHS_ot-s0.json", "metrics/eval/digits-ipc2-dm_hdd-s0.json"],
    "04_prune": ["records/prune/digits-ipc2-dm_hdd-s0.json"],
    "05_tables": [f"tables/{t}.{ext}" for t in ("table1_main", "table2_crossarch", "table3_pruning",
                                                 "table4_geodm_ablation") for ext in ("md", "csv", "tex")]
                 + ["tables/curves.csv"],
    "06_figures": [f"figures/fig{n}.png" for n in ("2_accuracy_vs_iteration", "3_pruning", "4_geodm_trajectories",
                                                    "5_synthetic_images", "6_poincare", "7_loss")],
}
#: Notebooks whose executed copy must show at least one inline image.
WITH_FIGURES = {"00_data", "01_geometry", "02_distill", "03_evaluate", "04_prune", "06_figures"}
PROBE = "import sys\nprint('HDD_MODULES', sorted(m for m in sys.modules if m.split('.')[0] == 'hdd_lib'))"


def with_probe(src: Path, dst: Path) -> Path:
    """A copy of notebook ``src`` with a last cell printing the hdd_lib modules the kernel loaded."""
    nb = json.loads(src.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [],
                        "source": PROBE})
    dst.write_text(json.dumps(nb))
    return dst


def outputs(path: Path) -> list[dict]:
    return [o for c in json.loads(path.read_text())["cells"] for o in c.get("outputs", [])]


def test_hand_runs_write_under_scratch_show_figures_and_load_only_declared_code(scratch):
    from hdd_lib.deps import PACKAGE_DIR

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for i, (name, parameters, stage) in enumerate(RUNS):
        nb = with_probe(scratch / "notebooks" / f"{name}.ipynb", scratch / f"probe-{name}.ipynb")
        out = scratch / f"out-{i}-{name}.ipynb"
        papermill.execute_notebook(str(nb), str(out), parameters=parameters, cwd=str(scratch), progress_bar=False,
                                   kernel_name="python3")
        shown = outputs(out)
        if name in WITH_FIGURES:
            assert any("image/png" in o.get("data", {}) for o in shown), f"{name}: no inline figure"
        assert not any("<Figure size" in "".join(o.get("data", {}).get("text/plain", "")) and
                       "image/png" not in o.get("data", {}) for o in shown), f"{name}: a figure shown as text"
        text = "".join("".join(o.get("text", "")) for o in shown)
        modules = eval(text.split("HDD_MODULES", 1)[1].strip().splitlines()[0])  # the probe's list
        declared = [d for d in dvc[stage]["deps"] if d.startswith("hdd_lib/")]
        for module in modules:
            rel = str((PACKAGE_DIR.parent / Path(*module.split("."))).relative_to(PACKAGE_DIR.parent))
            ok = any(f"{rel}.py" == d or f"{rel}/__init__.py" == d or rel.startswith(d.rstrip("/")) and d.endswith("/")
                     or f"{rel}/" == d for d in declared)
            assert ok, f"stage {stage} ran {module}, which dvc.yaml does not declare"
    missing = [p for paths in EXPECTED.values() for p in paths if not (scratch / "scratch" / p).is_file()]
    assert not missing, missing
    assert not (scratch / "results").exists(), "a hand run wrote under results/"
    table = (scratch / "scratch/tables/table4_geodm_ablation.md").read_text()
    assert "EHS_ot" in table or "E+H+S" in table
    assert "profile: cpu" in (scratch / "scratch/tables/table1_main.md").read_text()


def test_pipeline_runs_write_under_results_deterministically(scratch):
    run = lambda *a: subprocess.run([sys.executable, "-m", "hdd_lib", "notebook", *a], cwd=scratch,  # noqa: E731
                                    capture_output=True, text=True)
    target = "results/notebooks/02_distill-digits-ipc2-dm-s0.ipynb"
    r = run("notebooks/02_distill.ipynb", target, "-p", "ipc", "2", "-p", "method", "dm")
    assert r.returncode == 0, r.stderr[-3000:]
    first = (scratch / target).read_bytes()
    assert (scratch / "results/runs/digits-ipc2-dm-s0/synset.pt").is_file()
    assert b"start_time" not in first and b"duration" not in first and b"it/s" not in first
    shutil.rmtree(scratch / "results" / "checkpoints")
    assert run("notebooks/02_distill.ipynb", target, "-p", "ipc", "2", "-p", "method", "dm").returncode == 0
    assert (scratch / target).read_bytes() == first
    assert run("notebooks/02_distill.ipynb", target, "-p", "ipc", "2", "-p", "method", "dm").returncode == 0  # resumes
    assert (scratch / target).read_bytes() == first


def test_user_errors_show_one_line_in_the_notebook_and_on_the_command_line(scratch):
    out = scratch / "bad.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(str(scratch / "notebooks" / "02_distill.ipynb"), str(out),
                                   parameters={"ipc": 2, "method": "nope"}, cwd=str(scratch), progress_bar=False,
                                   kernel_name="python3")
    errors = [o for o in outputs(out) if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ValueError" and "unknown method 'nope'" in errors[0]["evalue"]
    assert len(errors[0]["traceback"]) <= 2, errors[0]["traceback"]  # one line and a hint, no stack
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "notebook", "notebooks/02_distill.ipynb", "results/bad.ipynb",
                        "-p", "ipc", "0"], cwd=scratch, capture_output=True, text=True)
    ours = [line for line in r.stderr.splitlines() if not line.startswith("[IPKernelApp]")]  # Jupyter's own notices
    assert r.returncode == 2 and ours[-1].startswith("error: ValueError: distill.ipc must be >= 1"), r.stderr
    assert "Traceback" not in r.stderr and len(ours) == 1, r.stderr


def test_jupyterlab_cwd_resolves_the_same_root(scratch):
    # JupyterLab runs kernels in notebooks/: paths still resolve against the repository root
    papermill.execute_notebook(str(scratch / "notebooks" / "00_data.ipynb"), str(scratch / "out-cwd.ipynb"),
                               parameters={"dataset": "digits"}, cwd=str(scratch / "notebooks"), progress_bar=False,
                               kernel_name="python3")
    assert not (scratch / "notebooks" / "scratch").exists() and (scratch / "scratch" / "records" / "data").is_dir()


@pytest.mark.skipif(not (SHARED / "FashionMNIST" / "raw").is_dir(),
                    reason=f"Fashion-MNIST not found under {SHARED} (set HDD_SHARED_DATASETS)")
def test_notebooks_read_real_data_from_a_data_root_parameter(scratch):
    # papermill -p data_root ...: the exact Fashion-MNIST copy, read in place (no download)
    common = {"dataset": "fashionmnist", "data_root": str(SHARED)}
    for name, parameters in [("00_data", {}), ("02_distill", {"ipc": 1, "method": "dm_hdd"}),
                             ("03_evaluate", {"ipc": 1, "method": "dm_hdd"})]:
        papermill.execute_notebook(str(scratch / "notebooks" / f"{name}.ipynb"), str(scratch / f"out-fm-{name}.ipynb"),
                                   parameters={**common, **parameters}, cwd=str(scratch), progress_bar=False,
                                   kernel_name="python3")
    data = json.loads((scratch / "scratch/records/data/fashionmnist.json").read_text())
    assert (data["train_size"], data["test_size"], data["data_copy"]) == (60000, 10000, "Fashion-MNIST")
    ev = json.loads((scratch / "scratch/records/eval/fashionmnist-ipc1-dm_hdd-s0.json").read_text())
    accs = ev["results"]["convnet"]["accs"]
    assert len(accs) == 1 and 10.0 < accs[0] <= 100.0  # 4 iterations, 3 epochs: above chance, not a claim
