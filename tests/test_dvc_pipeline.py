"""README's main job, ``dvc repro`` on the committed ``cpu`` profile, end to end in a scratch clone
of the working tree; then a second ``dvc repro`` must rerun nothing, and a ``dvc exp run -S``
override must reach the notebooks and rerun only the stages that read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, timeout: int = 2700) -> subprocess.CompletedProcess:
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


TABLES = ("table1_main", "table2_crossarch", "table3_pruning", "table4_geodm_ablation")
FIGURES = ("0_samples-digits", "1_geometry-digits", "2_accuracy_vs_iteration", "3_pruning", "4_geodm_trajectories",
           "5_synthetic_images", "6_poincare", "7_loss")


@pytest.fixture(scope="module")
def reproduced(repo) -> Path:
    """The README's main job: ``dvc repro`` with the committed params.yaml (the cpu profile)."""
    assert (repo / "params.yaml").read_text() == (repo / "profiles" / "cpu.yaml").read_text(), \
        "params.yaml must be the cpu profile: it is what `dvc repro` runs on a fresh machine"
    run([str(BIN / "dvc"), "repro"], repo)
    return repo


def test_dvc_repro_on_the_cpu_profile_writes_every_table_and_figure(reproduced):
    tables = [reproduced / "results" / "tables" / f"{t}.{ext}" for t in TABLES for ext in ("md", "csv", "tex")]
    figures = [reproduced / "results" / "figures" / f"fig{n}.png" for n in FIGURES]
    missing = [str(p) for p in tables + figures if not p.is_file()]
    assert not missing, missing
    main = (reproduced / "results" / "tables" / "table1_main.md").read_text()
    assert "profile: cpu" in main and "100 distillation iterations" in main
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in main.splitlines() if line.startswith("| ")]
    header, body = rows[0], [r for r in rows[1:] if r[0].startswith("scikit-learn digits")]
    assert [r[1] for r in body] == ["1", "10"]
    for method in ("DM", "DM+HDD", "IDM", "IDM+HDD", "GeoDM"):  # every cell measured: "mean ± std"
        assert all("±" in r[header.index(method)] for r in body), (method, body)


def test_second_dvc_repro_reruns_nothing(reproduced):
    dvc = str(BIN / "dvc")
    second = run([dvc, "repro"], reproduced)
    assert "Running stage" not in second.stdout, second.stdout
    status = run([dvc, "status"], reproduced)
    assert "up to date" in status.stdout.lower(), status.stdout
    metrics = run([dvc, "metrics", "show"], reproduced)
    assert "results/metrics/eval" in metrics.stdout


def test_dvc_exp_run_override_reaches_the_notebook_and_reruns_only_its_stages(reproduced):
    dvc = str(BIN / "dvc")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    run(git + ["add", "-A"], reproduced)
    run(git + ["commit", "-qm", "reproduced", "--allow-empty"], reproduced)
    out = run([dvc, "exp", "run", "-S", "report.methods=[dm_hdd,dm]"], reproduced).stdout
    ran = sorted({line.split("'")[1].split("@")[0] for line in out.splitlines() if line.startswith("Running stage")})
    assert ran == ["figures", "tables"], out
    main = (reproduced / "results" / "tables" / "table1_main.md").read_text()
    header = next(line for line in main.splitlines() if line.startswith("| Dataset"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("DM+HDD") < columns.index("DM") and "IDM" not in columns and "GeoDM" not in columns
