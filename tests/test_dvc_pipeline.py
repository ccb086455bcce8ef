"""README's main job, ``dvc repro`` on the committed ``cpu`` profile, end to end in a scratch clone of
the working tree, narrowed to fit CI (:data:`CI_NARROWING`: IPC 1, fewer iterations and epochs; every
stage kind, every method and every notebook still runs); then: a second ``dvc repro`` reruns nothing; rerunning stages from nothing (as on a
fresh clone) leaves every tracked file unchanged; a plotting change leaves the compute stages up to
date; a changed loss reaches the synthetic images; a ``dvc exp run -S`` override reaches the notebooks
and reruns only the stages that read it; editing one method makes only that method's stages stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hdd_lib.params import _merge

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow
GIT = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]


def run(cmd: list[str], cwd: Path, timeout: int = 2700) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    env.pop("HDD_PIPELINE", None)
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], cwd)


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
    run(["git", "init", "-q"], dest)
    run(GIT + ["add", "-A"], dest)
    run(GIT + ["commit", "-qm", "scratch"], dest)
    return dest


TABLES = ("table1_main", "table2_crossarch", "table3_pruning", "table4_geodm_ablation", "table5_pool")
FIGURES = ("0_samples-digits", "1_geometry-digits", "2_accuracy_vs_iteration", "3_pruning", "4_geodm_trajectories",
           "5_synthetic_images", "6_poincare", "7_loss")


#: What CI changes in the cpu profile (the full profile's 44 stages take about 6 min on 2 cores): 23 stages, each
#: kind and each method once, at IPC 1 with short schedules; the pool bases run one method (NCFM+HDD: its pool is
#: pretrained, then distilled and evaluated).
CI_NARROWING = {
    "pool_grid": {"method": ["ncfm_hdd"]},
    "grid": {"ipc": [1]},
    "crossarch_grid": {"ipc": [1], "method": ["dm_hdd"]},
    "prune_grid": {"ipc": [1]},
    "ablation_grid": {"ipc": [1], "variant": ["E", "EHS_ot"]},
    "report": {"figure_run": {"ipc": 1}},
    "distill": {"iterations": 20, "curve_every": 10, "checkpoint_every": 10},
    "eval": {"epochs": 60, "curve": {"epochs": 30}},
}


@pytest.fixture(scope="module")
def reproduced(repo) -> Path:
    """The README's main job: ``dvc repro`` with the committed params.yaml (the cpu profile, narrowed), committed."""
    import yaml

    params = repo / "params.yaml"
    assert params.read_text() == (repo / "profiles" / "cpu.yaml").read_text(), \
        "params.yaml must be the cpu profile: it is what `dvc repro` runs on a fresh machine"
    narrowed = _merge(yaml.safe_load(params.read_text()), CI_NARROWING, "CI_NARROWING")
    params.write_text(yaml.safe_dump(narrowed, sort_keys=False))
    run(GIT + ["commit", "-qam", "narrowed for CI"], repo)
    dvc("repro", cwd=repo)
    run(GIT + ["add", "-A"], repo)
    run(GIT + ["commit", "-qm", "reproduced"], repo)
    return repo


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of a Markdown table's rows, the header first."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| ")]


def test_dvc_repro_on_the_cpu_profile_writes_every_table_and_figure(reproduced):
    tables = [reproduced / "results" / "tables" / f"{t}.{ext}" for t in TABLES for ext in ("md", "csv", "tex")]
    figures = [reproduced / "results" / "figures" / f"fig{n}.png" for n in FIGURES]
    missing = [str(p) for p in tables + figures if not p.is_file()]
    assert not missing, missing
    pool = table_rows((reproduced / "results" / "tables" / "table5_pool.md").read_text())
    assert any(r[pool[0].index("Base")] == "NCFM" and "±" in r[pool[0].index("+HDD")] for r in pool[1:]), pool
    for table in TABLES:  # every record names the code that distilled it (pruning records once did not)
        assert "digest(s): unknown" not in (reproduced / "results" / "tables" / f"{table}.md").read_text(), table
    main = (reproduced / "results" / "tables" / "table1_main.md").read_text()
    assert "profile: cpu" in main and f"{CI_NARROWING['distill']['iterations']} distillation iterations" in main
    rows = table_rows(main)
    header, body = rows[0], [r for r in rows[1:] if r[0].startswith("scikit-learn digits")]
    assert [r[1] for r in body] == [str(i) for i in CI_NARROWING["grid"]["ipc"]]
    for method in ("DM", "DM+HDD", "IDM", "IDM+HDD", "DM+GeoDM"):  # every cell measured: "mean ± std"
        assert all("±" in r[header.index(method)] for r in body), (method, body)
    notebooks = [reproduced / "results" / "notebooks" / n for n in ("01_geometry-digits.ipynb", "05_tables.ipynb",
                                                                    "06_figures.ipynb")]
    for nb in notebooks:  # the committed report notebooks show their figures and tables
        text = nb.read_text()
        assert ("image/png" in text or "text/markdown" in text) and len(text) < 3_000_000, nb.name


def test_second_dvc_repro_reruns_nothing(reproduced):
    second = dvc("repro", cwd=reproduced)
    assert "Running stage" not in second.stdout, second.stdout
    assert "up to date" in dvc("status", cwd=reproduced).stdout.lower()
    metrics = dvc("metrics", "show", cwd=reproduced).stdout
    assert "results/metrics/eval" in metrics and max(map(len, metrics.splitlines())) < 400


def test_rerunning_stages_from_nothing_leaves_tracked_files_unchanged(reproduced):
    """As on a fresh clone (no DVC cache of their outputs, no checkpoints): the same bytes everywhere."""
    shutil.rmtree(reproduced / "results" / "checkpoints", ignore_errors=True)
    stages = ["distill@digits-1-dm-0", "evaluate@digits-1-dm-0", "tables", "figures"]
    for stage in stages:
        dvc("repro", "--force", "--single-item", stage, cwd=reproduced)
    status = run(["git", "status", "--porcelain"], reproduced).stdout
    assert status == "", f"tracked files changed on rerun:\n{status}"


def test_a_plotting_change_leaves_the_compute_stages_up_to_date(reproduced):
    figures = reproduced / "hdd_lib" / "report" / "figures.py"
    original = figures.read_text()
    try:
        figures.write_text(original + "\n# a comment\n")
        changed = {name.split("@")[0] for name in json.loads(dvc("status", "--json", cwd=reproduced).stdout)}
        assert changed and changed <= {"tables", "figures", "data", "geometry"}, changed
    finally:
        figures.write_text(original)


def test_editing_one_method_leaves_the_other_methods_stages_up_to_date(reproduced):
    import yaml

    params = reproduced / "params.yaml"
    original = params.read_text()
    try:
        edited = yaml.safe_load(original)
        edited["methods"]["idm"]["lr_img"] = 0.25
        params.write_text(yaml.safe_dump(edited, sort_keys=False))
        changed = set(json.loads(dvc("status", "--json", cwd=reproduced).stdout))
        assert {"distill@digits-1-idm-0", "evaluate@digits-1-idm-0"} <= changed, changed
        others = {name for name in changed if "-idm-" not in name}
        assert others <= {"pretrain@digits"}, changed  # pretrain reads every method (which pools to build)
    finally:
        params.write_text(original)


def test_a_changed_loss_reaches_the_synthetic_images(reproduced, tmp_path):
    from hdd_lib.synset import SyntheticSet

    clone = tmp_path / "clone"
    shutil.copytree(reproduced, clone, symlinks=True)
    rid = "digits-ipc1-dm_hdd-s0"
    before = SyntheticSet.load(clone / "results" / "runs" / rid / "synset.pt").images
    hdd = clone / "hdd_lib" / "losses" / "hdd.py"
    hdd.write_text(hdd.read_text().replace("return self.settings.lam * geometry.dist(", "return 0.5 * self.settings.lam * geometry.dist("))
    env_path = {"PYTHONPATH": str(clone)}
    r = subprocess.run([str(BIN / "dvc"), "repro", "--single-item", f"distill@digits-1-dm_hdd-0"], cwd=clone,
                       capture_output=True, text=True, env={**os.environ, **env_path, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert r.returncode == 0 and "Running stage 'distill@digits-1-dm_hdd-0'" in r.stdout, r.stdout + r.stderr
    after = SyntheticSet.load(clone / "results" / "runs" / rid / "synset.pt").images
    assert not torch_equal(before, after)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_dvc_exp_run_override_reaches_the_notebook_and_reruns_only_its_stages(reproduced):
    out = dvc("exp", "run", "-S", "report.methods=[dm_hdd,dm]", cwd=reproduced).stdout
    ran = sorted({line.split("'")[1].split("@")[0] for line in out.splitlines() if line.startswith("Running stage")})
    assert ran == ["figures", "tables"], out
    main = (reproduced / "results" / "tables" / "table1_main.md").read_text()
    header = next(line for line in main.splitlines() if line.startswith("| Dataset"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("DM+HDD") < columns.index("DM") and "IDM" not in columns and "DM+GeoDM" not in columns
