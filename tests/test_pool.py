"""Pools of pretrained networks: what they are built for, resumable pretraining, refusal of other pools."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hdd_lib import pool
from hdd_lib.config import ModelConfig
from hdd_lib.data import ImageSet
from hdd_lib.storage import load_torch

MODEL = ModelConfig(width=8)
CFG = pool.PretrainConfig(nets=3, epochs=2, batch=16)


def test_pretrain_keeps_init_and_trained_weights_and_learns(tiny_imageset, tmp_path):
    train, test = tiny_imageset
    manifest = pool.pretrain(train, MODEL, dataclasses.replace(CFG, epochs=6, cutmix=0.0), tmp_path, device="cpu",
                             progress=False)
    assert manifest["built_for"] == pool.built_for(train, MODEL, dataclasses.replace(CFG, epochs=6, cutmix=0.0))
    nets = pool.load(tmp_path, manifest["built_for"])
    assert len(nets) == 3 and len(manifest["accuracy"]) == 3
    for k, n in enumerate(nets):
        fresh = pool.make_model(train.spec, MODEL, torch.Generator().manual_seed(k))  # pool seed 0: network k
        assert all(torch.equal(n["init"][name], t) for name, t in fresh.state_dict().items())
        assert not torch.equal(n["init"]["classifier.weight"], n["trained"]["classifier.weight"])
        fresh.load_state_dict(n["trained"])
        with torch.no_grad():
            acc = (fresh(test.images).argmax(1) == test.labels).float().mean().item()
        assert acc > 0.6, acc  # 3 easy classes: far above chance (1/3)


def test_an_interrupted_pretraining_resumes_at_the_next_network_and_equals_an_uninterrupted_one(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    pool.pretrain(train, MODEL, CFG, tmp_path / "full", device="cpu", progress=False)
    pool.pretrain(train, MODEL, dataclasses.replace(CFG, nets=1), tmp_path / "cut", device="cpu", progress=False)
    first = (tmp_path / "cut" / "net000.pt").stat().st_mtime_ns
    pool.pretrain(train, MODEL, CFG, tmp_path / "cut", device="cpu", progress=False)  # other settings: all rebuilt
    assert (tmp_path / "cut" / "net000.pt").stat().st_mtime_ns != first
    (tmp_path / "cut" / "net002.pt").unlink()  # killed while training network 2
    with pytest.raises(ValueError, match=r"no complete pretrained pool at .*cut \(1 of 3 networks missing\)"):
        pool.load(tmp_path / "cut", pool.built_for(train, MODEL, CFG))
    kept = (tmp_path / "cut" / "net001.pt").stat().st_mtime_ns
    again = pool.pretrain(train, MODEL, CFG, tmp_path / "cut", device="cpu", progress=False)
    assert (tmp_path / "cut" / "net001.pt").stat().st_mtime_ns == kept  # not retrained
    for k in range(3):
        a, b = (load_torch(tmp_path / d / f"net{k:03d}.pt") for d in ("full", "cut"))
        assert all(torch.equal(a["trained"][n], b["trained"][n]) for n in a["trained"])
    assert again == pool.pretrain(train, MODEL, CFG, tmp_path / "full", device="cpu", progress=False)
    pool.pretrain(train, MODEL, dataclasses.replace(CFG, nets=2), tmp_path / "cut", device="cpu", progress=False)
    assert sorted(p.name for p in (tmp_path / "cut").glob("net*.pt")) == ["net000.pt", "net001.pt"]


def test_a_pool_that_is_missing_or_built_for_something_else_is_refused(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = dataclasses.replace(CFG, nets=1, epochs=1)
    want = pool.built_for(train, MODEL, cfg)
    with pytest.raises(ValueError, match=r"no complete pretrained pool at .*absent.*pretrain --dataset tiny"):
        pool.load(tmp_path / "absent", want)
    pool.pretrain(train, MODEL, cfg, tmp_path, device="cpu", progress=False)
    other_data = ImageSet(train.images + 0.5, train.labels, train.spec)
    renamed = ImageSet(train.images, train.labels, dataclasses.replace(train.spec, name="tiny2"))
    cases = {"another dataset": pool.built_for(renamed, MODEL, cfg),
             "another data copy": pool.built_for(other_data, MODEL, cfg),
             "another architecture": pool.built_for(train, ModelConfig(width=16), cfg),
             "another pretraining settings": pool.built_for(train, MODEL, dataclasses.replace(cfg, epochs=2))}
    for what, expected in cases.items():
        with pytest.raises(ValueError, match=f"was built for {what} .*rebuild it") as e:
            pool.load(tmp_path, expected)
        assert "\n" not in str(e.value)
    assert len(pool.load(tmp_path, want)) == 1


def test_pretrain_settings_are_validated():
    with pytest.raises(ValueError, match="nets must be >= 1"):
        pool.PretrainConfig(nets=0)
    with pytest.raises(ValueError, match="cutmix must be <= 1"):
        pool.PretrainConfig(cutmix=2.0)
