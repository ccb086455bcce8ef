"""Every notebook executes through papermill with tiny parameters on the embedded digits and writes
its outputs (in a scratch copy of the repository, so nothing here is touched)."""

from __future__ import annotations

import json
import os
import shutil
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
    ("00_data", {"dataset": "digits"}),
    ("01_geometry", {"dataset": "digits"}),
    ("02_distill", {"ipc": 2, "method": "dm_hdd"}),
    ("02_distill", {"ipc": 2, "method": "geodm", "variant": "EHS_ot"}),
    ("03_evaluate", {"ipc": 2, "method": "dm_hdd"}),
    ("03_evaluate", {"ipc": 2, "method": "dm_hdd", "kind": "crossarch"}),
    ("03_evaluate", {"ipc": 2, "method": "geodm", "variant": "EHS_ot", "kind": "ablation"}),
    ("04_prune", {"ipc": 2, "method": "dm_hdd"}),
    ("05_tables", {}),
    ("06_figures", {}),
]

EXPECTED = {
    "00_data": ["results/metrics/data/digits.json", "results/figures/fig0_samples-digits.png"],
    "01_geometry": ["results/metrics/geometry/digits.json", "results/figures/fig1_geometry-digits.png"],
    "02_distill": ["results/runs/digits-ipc2-dm_hdd-s0/synset.pt", "results/runs/digits-ipc2-dm_hdd-s0/distill.json",
                   "results/runs/digits-ipc2-geodm_EHS_ot-s0/synset.pt"],
    "03_evaluate": ["results/metrics/eval/digits-ipc2-dm_hdd-s0.json", "results/metrics/crossarch/digits-ipc2-dm_hdd-s0.json",
                    "results/metrics/ablation/digits-ipc2-geodm_EHS_ot-s0.json"],
    "04_prune": ["results/metrics/prune/digits-ipc2-dm_hdd-s0.json"],
    "05_tables": [f"results/tables/{t}.{ext}" for t in ("table1_main", "table2_crossarch", "table3_pruning",
                                                         "table4_geodm_ablation") for ext in ("md", "csv", "tex")]
                 + ["results/tables/curves.csv"],
    "06_figures": [f"results/figures/fig{n}.png" for n in ("2_accuracy_vs_iteration", "3_pruning",
                                                            "4_geodm_trajectories", "5_synthetic_images", "6_poincare",
                                                            "7_loss")],
}


def test_every_notebook_runs_in_order_and_writes_its_outputs(scratch):
    for i, (name, parameters) in enumerate(RUNS):
        papermill.execute_notebook(str(scratch / "notebooks" / f"{name}.ipynb"), str(scratch / f"out-{i}-{name}.ipynb"),
                                   parameters=parameters, cwd=str(scratch), progress_bar=False, kernel_name="python3")
    missing = [p for paths in EXPECTED.values() for p in paths if not (scratch / p).is_file()]
    assert not missing, missing
    table = (scratch / "results/tables/table4_geodm_ablation.md").read_text()
    assert "EHS_ot" in table or "E+H+S" in table
    assert "profile: cpu" in (scratch / "results/tables/table1_main.md").read_text()


def test_jupyterlab_cwd_resolves_the_same_root(scratch):
    # JupyterLab runs kernels in notebooks/: paths still resolve against the repository root
    papermill.execute_notebook(str(scratch / "notebooks" / "00_data.ipynb"), str(scratch / "out-cwd.ipynb"),
                               parameters={"dataset": "digits"}, cwd=str(scratch / "notebooks"), progress_bar=False,
                               kernel_name="python3")
    assert not (scratch / "notebooks" / "results").exists()


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
    data = json.loads((scratch / "results/metrics/data/fashionmnist.json").read_text())
    assert (data["train_size"], data["test_size"], data["data_copy"]) == (60000, 10000, "Fashion-MNIST")
    ev = json.loads((scratch / "results/metrics/eval/fashionmnist-ipc1-dm_hdd-s0.json").read_text())
    accs = ev["results"]["convnet"]["accs"]
    assert len(accs) == 1 and 10.0 < accs[0] <= 100.0  # 4 iterations, 3 epochs: above chance, not a claim
