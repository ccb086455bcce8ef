"""Which code each stage runs: dvc.yaml declares it, code digests ignore comments but not code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from hdd_lib import deps

ROOT = Path(__file__).resolve().parents[1]


def test_dvc_yaml_declares_the_code_every_stage_runs():
    stale = {name: pair for name, pair in deps.dvc_deps(ROOT / "dvc.yaml").items() if pair[0] != pair[1]}
    assert not stale, f"run `python -m hdd_lib deps --write`: {stale}"


def test_compute_stages_do_not_depend_on_reporting_and_reporting_not_on_the_loop():
    declared = {name: old for name, (old, _) in deps.dvc_deps(ROOT / "dvc.yaml").items()}
    for stage in ("distill", "evaluate", "crossarch", "prune", "ablation_distill", "ablation_evaluate"):
        assert not [d for d in declared[stage] if d.startswith("hdd_lib/report")], stage
    assert "hdd_lib/losses/" in declared["distill"] and "hdd_lib/strategies/" in declared["distill"]
    for stage in ("tables", "figures"):
        assert "hdd_lib/distill.py" not in declared[stage] and "hdd_lib/evaluate.py" not in declared[stage], stage


def test_closure_follows_registries_and_function_scope():
    mods = deps.closure(["hdd_lib.distill"])
    assert {"hdd_lib.losses.hdd", "hdd_lib.losses.geodm", "hdd_lib.strategies.idm", "hdd_lib.models"} <= set(mods)
    evaluate_only = deps.closure(["hdd_lib.stages:evaluate_cell"])
    assert "hdd_lib.evaluate" in evaluate_only and "hdd_lib.distill" not in evaluate_only


def digest_in(package_root: Path) -> str:
    code = "from hdd_lib import deps; print(deps.code_digest('hdd_lib.distill'))"
    r = subprocess.run([sys.executable, "-c", code], cwd=package_root, capture_output=True, text=True,
                       env={"PYTHONPATH": str(package_root), "PATH": ""})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_code_digest_ignores_comments_and_docstrings_but_not_code(tmp_path):
    shutil.copytree(ROOT / "hdd_lib", tmp_path / "hdd_lib", ignore=shutil.ignore_patterns("__pycache__"))
    hdd = tmp_path / "hdd_lib" / "losses" / "hdd.py"
    base = digest_in(tmp_path)
    assert base == deps.code_digest("hdd_lib.distill")
    source = hdd.read_text()
    hdd.write_text('"""Another docstring."""\n# a comment\n' + source.split('"""', 2)[2] + "\n# trailing\n")
    assert digest_in(tmp_path) == base
    hdd.write_text(source.replace("return self.settings.lam * geometry.dist(", "return 2 * self.settings.lam * geometry.dist("))
    assert digest_in(tmp_path) != base
