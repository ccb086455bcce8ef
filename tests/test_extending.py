"""A new matching loss is one file plus params: nothing else in the repository is edited."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

NEW_LOSS = '''
"""L1 distance of the class means: a loss written for this test."""

from dataclasses import dataclass

from ..config import NonNegative, Settings
from .base import LOSSES, MatchingLoss


@dataclass(frozen=True)
class MeanL1Settings(Settings):
    scale: NonNegative = 1.0


@LOSSES.register("mean_l1", label="L1")
class MeanL1(MatchingLoss):
    """``scale * |mean(real) - mean(syn)|_1`` per class."""

    Settings = MeanL1Settings

    def per_class(self, real, syn):
        return self.settings.scale * (real.mean(1) - syn.mean(1)).abs().sum(-1)
'''


def test_a_loss_module_and_params_are_all_a_new_method_needs(tmp_path):
    shutil.copytree(ROOT / "hdd_lib", tmp_path / "hdd_lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "hdd_lib" / "losses" / "mean_l1.py").write_text(NEW_LOSS)
    params = yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text())
    params["methods"]["dm_l1"] = {"strategy": "dm", "loss": {"name": "mean_l1", "scale": 2.0}}
    params["grid"]["method"] = ["dm_l1"]
    params["distill"].update(iterations=3, batch_real=8, curve_every=0)
    params["distill"]["model"]["width"] = 8
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent),
           "HDD_WARM_DIR": os.environ["HDD_WARM_DIR"]}  # the session's warm servers (tests/conftest.py)
    library = ("from hdd_lib import data, distill; from hdd_lib.config import DistillConfig, from_dict; "
               "cfg = from_dict(DistillConfig, {'loss': {'name': 'mean_l1', 'scale': 3}, 'ipc': 1, 'iterations': 2, "
               "'batch_real': 8, 'model': {'width': 8}}); s = distill.run(cfg, data.load('digits'), progress=False); "
               "print('LABEL', s.meta['config']['loss'], distill.build_loss(cfg.loss).label)")
    r = subprocess.run([sys.executable, "-c", library], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "{'name': 'mean_l1', 'scale': 3.0} L1" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "notebook", "notebooks/02_distill.ipynb",
                        "results/notebooks/02_distill-digits-ipc1-dm_l1-s0.ipynb", "-p", "ipc", "1", "-p", "method",
                        "dm_l1"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    record = yaml.safe_load((tmp_path / "results" / "runs" / "digits-ipc1-dm_l1-s0" / "distill.json").read_text())
    assert record["config"]["loss"] == {"name": "mean_l1", "scale": 2.0} and record["config"]["strategy"]["name"] == "dm"
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "deps"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout  # the loss package is a declared folder: dvc.yaml needs no edit
