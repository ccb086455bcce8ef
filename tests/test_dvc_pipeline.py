"""``dvc exp run`` of a reduced CPU profile, end to end, in a scratch clone of the working tree.

With ``../shared/datasets`` present the real Fashion-MNIST copy is used (profile ``cpu-fmnist``),
otherwise the embedded digits (profile ``cpu``); both with ``-S`` overrides that shrink the run to
CI size — which also checks that ``dvc exp run -S`` overrides reach the notebooks. Then the tables
and figures must exist and a second ``dvc repro`` must rerun nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HDD_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

OVERRIDES = [
    "distill.iterations=20", "distill.batch_real=16", "distill.model.width=16", "distill.curve_every=10",
    "distill.checkpoint_every=10", "eval.epochs=20", "eval.num_eval=1", "eval.curve.epochs=5",
    "geometry.batch=16", "prune.nets=1", "prune.ratios=[1.0,0.4]", "crossarch.models=[convnet,alexnet]",
    "grid.ipc=[1]", "grid.method=[dm,dm_hdd,geodm]", "crossarch_grid.ipc=[1]", "crossarch_grid.method=[dm_hdd]",
    "prune_grid.ipc=[1]", "prune_grid.method=[dm_hdd]", "ablation_grid.ipc=[1]", "ablation_grid.variant=[E,EHS_ot]",
    "report.figure_run.ipc=1",
]


def run(cmd: list[str], cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("clone")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and (not name.startswith("results/") or name.endswith(".gitkeep")):  # no old results
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    run(["git", "init", "-q"], dest)
    run(git + ["add", "-A"], dest)
    run(git + ["commit", "-qm", "scratch"], dest)
    return dest


def test_dvc_exp_run_on_a_reduced_cpu_profile_then_nothing_reruns(repo):
    dvc = str(BIN / "dvc")
    if (SHARED / "FashionMNIST" / "raw").is_dir():
        profile, extra = "cpu-fmnist", [f"data.data_root={SHARED}"]
    else:
        profile, extra = "cpu", []
    run([sys.executable, "-m", "hdd_lib", "profile", profile], repo)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    run(git + ["commit", "-qam", f"profile {profile}", "--allow-empty"], repo)
    cmd = [dvc, "exp", "run"]
    for item in OVERRIDES + extra:
        cmd += ["-S", item]
    run(cmd, repo)
    tables = [repo / "results" / "tables" / f"{t}.md" for t in
              ("table1_main", "table2_crossarch", "table3_pruning", "table4_geodm_ablation")]
    figures = [repo / "results" / "figures" / f"fig{n}.png" for n in
               ("2_accuracy_vs_iteration", "3_pruning", "4_geodm_trajectories", "5_synthetic_images", "6_poincare",
                "7_loss")]
    missing = [str(p) for p in tables + figures if not p.is_file()]
    assert not missing, missing
    main = tables[0].read_text()
    assert "iterations" in main and "DM+HDD" in main  # the protocol line and a method column
    second = run([dvc, "repro"], repo)
    assert "Running stage" not in second.stdout, second.stdout
    status = run([dvc, "status"], repo)
    assert "up to date" in status.stdout.lower(), status.stdout
    metrics = run([dvc, "metrics", "show"], repo)
    assert "results/metrics/eval" in metrics.stdout
