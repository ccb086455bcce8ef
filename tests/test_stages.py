"""Stage bodies: deterministic records, sandboxed hand runs, and results that follow the code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hdd_lib import params, stages
from hdd_lib.synset import SyntheticSet

ROOT = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    p = yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text())
    p["distill"].update(iterations=4, batch_real=16, checkpoint_every=2, log_every=2, curve_every=2)
    p["distill"]["model"]["width"] = 16
    p["eval"].update(epochs=2, num_eval=2, curve={"num_eval": 1, "epochs": 1})
    p["prune"].update(nets=1, ratios=[1.0, 0.5])
    return p


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.setenv(params.PIPELINE_ENV, "1")
    return tmp_path


def cfg(repo, stage="distill", **kw):
    return params.load_config(stage, dataset="digits", ipc=2, method=kw.pop("method", "dm_hdd"), root=repo, **kw)


def test_records_are_identical_for_identical_runs_and_volatile_data_is_kept_apart(repo):
    c = cfg(repo)
    first = stages.distill_cell(c, progress=False)
    record = (repo / "results" / "runs" / c.run_id / "distill.json").read_bytes()
    synset = (repo / "results" / "runs" / c.run_id / "synset.pt").read_bytes()
    shutil.rmtree(repo / "results" / "checkpoints")
    again = stages.distill_cell(c, progress=False)
    assert torch.equal(first.images, again.images)
    assert (repo / "results" / "runs" / c.run_id / "distill.json").read_bytes() == record
    assert (repo / "results" / "runs" / c.run_id / "synset.pt").read_bytes() == synset
    prov = json.loads((repo / "results" / "provenance" / "distill" / f"{c.run_id}.json").read_text())
    assert prov["git_commit"] and prov["seconds"] > 0 and "time_utc" in prov
    assert "time_utc" not in record.decode() and "seconds" not in record.decode()

    e = cfg(repo, "evaluate")
    stages.evaluate_cell(e, progress=False)
    rec = (repo / "results" / "records" / "eval" / f"{e.run_id}.json").read_bytes()
    stages.evaluate_cell(e, progress=False)
    assert (repo / "results" / "records" / "eval" / f"{e.run_id}.json").read_bytes() == rec
    metric = json.loads((repo / "results" / "metrics" / "eval" / f"{e.run_id}.json").read_text())
    assert set(metric) == {"convnet"} and set(metric["convnet"]) == {"mean", "std"}
    assert json.loads(rec)["curve"] and json.loads(rec)["code"]["distill"] == first.meta["code"]


def test_hand_runs_are_sandboxed(repo, monkeypatch):
    monkeypatch.delenv(params.PIPELINE_ENV)
    c = cfg(repo)
    stages.distill_cell(c, progress=False)
    assert (repo / "scratch" / "runs" / c.run_id / "synset.pt").exists() and not (repo / "results").exists()
    stages.evaluate_cell(cfg(repo, "evaluate"), progress=False)  # reads the hand run's own set
    assert (repo / "scratch" / "records" / "eval" / f"{c.run_id}.json").exists() and not (repo / "results").exists()


def run_stage(repo: Path, package: Path) -> str:
    code = ("from hdd_lib import params, stages; "
            "c = params.load_config('distill', dataset='digits', ipc=2, method='dm_hdd'); "
            "stages.distill_cell(c, progress=True)")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                       env={"PYTHONPATH": str(package), "PATH": "", params.PIPELINE_ENV: "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_a_changed_loss_reaches_the_images_instead_of_resuming_the_old_checkpoint(repo, tmp_path_factory):
    package = tmp_path_factory.mktemp("code")
    shutil.copytree(ROOT / "hdd_lib", package / "hdd_lib", ignore=shutil.ignore_patterns("__pycache__"))
    run_stage(repo, package)
    rid = "digits-ipc2-dm_hdd-s0"
    before = SyntheticSet.load(repo / "results" / "runs" / rid / "synset.pt").images
    assert "resumed" in run_stage(repo, package)  # same code: the finished checkpoint is reused
    hdd = package / "hdd_lib" / "losses" / "hdd.py"
    hdd.write_text(hdd.read_text().replace("return self.settings.lam * geometry.dist(", "return 0 * geometry.dist("))
    out = run_stage(repo, package)
    assert "cannot resume" in out and "code (checkpoint" in out and "starting afresh" in out
    after = SyntheticSet.load(repo / "results" / "runs" / rid / "synset.pt").images
    assert not torch.equal(before, after)


def test_pretrain_stage_builds_the_grids_pools_which_the_pool_cells_use(repo, monkeypatch):
    monkeypatch.chdir(repo)  # the strategy finds the pool in the repository it runs in
    p = yaml.safe_load((repo / "params.yaml").read_text())
    for name in ("ncfm", "dsdm"):
        p["distill"][name]["pretrain"].update(nets=2, epochs=1)
    p["pool_grid"].update(ipc=[2], method=["ncfm_hdd", "dsdm"])
    p["distill"]["settings"] = [r for r in p["distill"]["settings"] if "iterations" not in r["set"]]  # keep 4
    (repo / "params.yaml").write_text(yaml.safe_dump(p))
    (repo / "results" / "pools" / "digits" / "old").mkdir(parents=True)  # a pool no cell uses any more
    c = params.load_config("pretrain", dataset="digits", root=repo)
    assert set(c.section) == {"ncfm", "dsdm"} and c.section["ncfm"].method == "ncfm_hdd"
    record = stages.pretrain_pools(c, progress=False)
    assert sorted(q.name for q in (repo / "results" / "pools" / "digits").iterdir()) == ["dsdm", "ncfm"]
    assert len(record["pools"]["ncfm"]["accuracy"]) == 2 and record["pools"]["dsdm"]["built_for"]["dataset"] == "digits"
    assert (repo / "results" / "records" / "pools" / "digits.json").exists()
    d = cfg(repo, method="ncfm_hdd")
    stages.distill_cell(d, progress=False)
    rec = stages.evaluate_cell(cfg(repo, "evaluate", method="ncfm_hdd"), progress=False)
    assert (rec["method_label"], rec["protocol"]["pool"]) == ("NCFM+HDD", {"nets": 2, "epochs": 1})
    assert "eval_protocol" not in rec["protocol"]  # the default (dc) is not written, as before
    p["pool_grid"]["method"] = ["ncfm", "ncfm_hdd"]
    p["methods"]["ncfm"]["strategy"] = "ncfm"
    p["methods"]["ncfm_hdd"]["batch_real"] = 4
    p["distill"]["settings"].append({"when": {"method": "ncfm_hdd"}, "set": {"ncfm": {"pretrain": {"epochs": 2}}}})
    (repo / "params.yaml").write_text(yaml.safe_dump(p))
    with pytest.raises(ValueError, match="ncfm and ncfm_hdd .* use the ncfm pool of digits with different pretrain"):
        params.load_config("pretrain", dataset="digits", root=repo)
