"""Real data, end to end on a CPU: DM+HDD on Fashion-MNIST beats its own real-image initialisation.

Uses the exact Fashion-MNIST copy in ``../shared/datasets`` (or ``$HDD_SHARED_DATASETS``); skipped,
with the reason shown, when it is absent. Reduced protocol so that it fits CI: ConvNet width 64,
IPC 1, 150 iterations with 32 real images per class, 3 evaluation models x 300 epochs each, tested
on the full 10,000-image test set; the initial and the distilled set are evaluated with identical
seeds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import torch

from hdd_lib import data, distill
from hdd_lib.config import DistillConfig, EvalConfig, from_dict
from hdd_lib.evaluate import evaluate
from hdd_lib.synset import SyntheticSet

SHARED = Path(os.environ.get("HDD_SHARED_DATASETS", Path(__file__).resolve().parents[1].parent / "shared" / "datasets"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED / "FashionMNIST" / "raw").is_dir(),
                       reason=f"Fashion-MNIST not found under {SHARED} (set HDD_SHARED_DATASETS)"),
]


def test_dm_hdd_on_fashionmnist_beats_its_real_initialisation():
    train = data.load("fashionmnist", SHARED, split="train")
    test = data.load("fashionmnist", SHARED, split="test")
    cfg = from_dict(DistillConfig, {"method": "dm_hdd", "ipc": 1, "iterations": 150, "batch_real": 32, "seed": 0,
                                    "model": {"width": 64}})
    init = SyntheticSet(distill.initial_images(cfg, train, torch.Generator().manual_seed(cfg.seed)))
    distilled = distill.run(cfg, train, progress=False)
    ev = from_dict(EvalConfig, {"num_eval": 3, "epochs": 300, "seed": 1, "model": {"width": 64}})
    before = evaluate(init, test, ev, progress=False)["convnet"]
    after = evaluate(distilled, test, ev, progress=False)["convnet"]
    print(f"real init {before.mean:.2f} ± {before.std:.2f} -> DM+HDD {after.mean:.2f} ± {after.std:.2f}")
    assert after.mean > before.mean + 3.0, (before.accs, after.accs)
    assert min(after.accs) > max(before.accs)
