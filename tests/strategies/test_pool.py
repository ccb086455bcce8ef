"""Pretrained-pool strategies (NCFM, DSDM): interpolation / draw, pixel-space steps, calibration, resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hdd_lib import distill, pool
from hdd_lib.config import DistillConfig, ModelConfig, from_dict
from hdd_lib.data import DatasetSpec
from hdd_lib.strategies import get_strategy, method_label
from hdd_lib.strategies.pool import PixelSpace

from .. import interrupted_then_resumed

PRETRAIN = {"nets": 2, "epochs": 1, "batch": 16}


@pytest.fixture
def pools(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    for name in ("ncfm", "dsdm"):
        pool.pretrain(train, ModelConfig(width=8), pool.PretrainConfig(**PRETRAIN), tmp_path / name, device="cpu",
                      progress=False)
    return tmp_path


def config(pools, strategy="ncfm", loss=None, **kw) -> DistillConfig:
    return from_dict(DistillConfig, {
        "method": strategy, "ipc": 2, "iterations": 6, "batch_real": 8, "lr_img": 0.01, "seed": 1, "device": "cpu",
        "model": {"width": 8}, "checkpoint_every": 2, "log_every": 2, "loss": loss or {"name": strategy},
        "strategy": {"name": strategy, "factor": 1, "path": str(pools / strategy), "pretrain": PRETRAIN}, **kw})


@pytest.mark.parametrize("strategy", ["ncfm", "dsdm"])
def test_each_iteration_embeds_with_a_random_member_interpolated_or_drawn(strategy, pools, tiny_imageset):
    train, _ = tiny_imageset
    s = get_strategy(config(pools, strategy), train, torch.device("cpu"))
    s.start(torch.Generator().manual_seed(0))
    nets = pool.load(pools / strategy, pool.built_for(train, ModelConfig(width=8), pool.PretrainConfig(**PRETRAIN)))
    gen = torch.Generator().manual_seed(5)
    for it in range(4):
        mirror = torch.Generator().set_state(gen.get_state())
        k = int(torch.randint(2, (1,), generator=mirror))
        lam = float(torch.rand((), generator=mirror)) if strategy == "ncfm" else 0.0
        net = s.network(it, gen)
        for name, w in net.state_dict().items():
            torch.testing.assert_close(w, lam * nets[k]["init"][name] + (1 - lam) * nets[k]["trained"][name])
        if strategy == "ncfm":  # the calibration network is the member's trained one
            assert all(torch.equal(w, nets[k]["trained"][n]) for n, w in s.trained.state_dict().items())
    assert s.trained is None if strategy == "dsdm" else not any(p.requires_grad for p in s.trained.parameters())


def test_calibration_is_the_mean_cross_entropy_of_each_class_through_the_trained_member(pools, tiny_imageset):
    train, _ = tiny_imageset
    s = get_strategy(config(pools, dsa={"strategy": "none"}), train, torch.device("cpu"))
    s.start(torch.Generator().manual_seed(0))
    net = s.network(0, torch.Generator().manual_seed(2))
    syn = train.sample(2, generator=torch.Generator().manual_seed(3))
    x = s.images(syn)
    expected = sum(F.cross_entropy(s.trained(x[c]), torch.full((2,), c)) for c in range(3))
    torch.testing.assert_close(s.regulariser(net, None), expected)


@pytest.mark.parametrize("per_class", [False, True])
@pytest.mark.parametrize("make", [lambda p: torch.optim.AdamW(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.5)])
def test_pixel_space_steps_equal_the_optimiser_on_clamped_pixels(per_class, make):
    spec = DatasetSpec("t", 2, (3, 3), 4, (0.4, 0.6), (0.2, 0.3))
    mean, std = torch.tensor(spec.mean).view(-1, 1, 1), torch.tensor(spec.std).view(-1, 1, 1)
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(4, 2, 2, 3, 3, generator=g, dtype=torch.float64).float()
    w = torch.randn(4, 2, 2, 3, 3, generator=g)
    syn = ((pixels - mean) / std).requires_grad_(True)
    opt = PixelSpace(syn, spec, make, per_class=per_class)
    ref = pixels.clone().requires_grad_(True)
    ref_opt = make([ref])
    for _ in range(5):
        opt.zero_grad()
        (w * syn.sin()).sum().backward()  # a loss of the stored (normalised) images
        opt.step()
        grad = w * ((ref.detach() - mean) / std).cos() / std  # the same loss, differentiated in pixels
        for c in range(4) if per_class else [None]:
            ref.grad = grad if c is None else grad * (torch.arange(4) == c).view(-1, 1, 1, 1, 1)
            ref_opt.step()
        with torch.no_grad():
            ref.clamp_(0, 1)
    torch.testing.assert_close(opt.p.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(syn.detach(), (ref.detach() - mean) / std, rtol=1e-5, atol=1e-5)
    p = opt.p.detach()
    assert float(p.min()) >= 0 and float(p.max()) <= 1 and bool((p == 1).any() | (p == 0).any())


@pytest.mark.parametrize("strategy, loss", [("ncfm", [{"name": "ncfm", "num_freqs": 32}, {"name": "hdd", "lam": 0.5}]),
                                            ("dsdm", {"name": "dsdm", "proto_start": 2})])
def test_pool_runs_stay_in_pixel_range_and_resume_exactly(strategy, loss, pools, tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = config(pools, strategy, loss)
    full = distill.run(cfg, train, out_dir=tmp_path / "full", progress=False)
    assert 0 <= float(full.images.min()) and float(full.images.max()) <= 1  # mean 0, std 1: pixels = images
    start = distill.run(config(pools, strategy, loss, iterations=1, lr_img=1e-12), train, progress=False)
    assert not torch.allclose(start.images, full.images)

    resumed = interrupted_then_resumed(cfg, train, tmp_path / "cut", at=3)
    assert torch.equal(resumed.images, full.images)


def test_a_missing_pool_or_one_of_another_architecture_stops_the_run(pools, tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = config(pools)
    with pytest.raises(ValueError, match="no complete pretrained pool at"):
        distill.run(from_dict(DistillConfig, {**cfg.to_dict(), "strategy": {**cfg.strategy, "path": str(tmp_path / "x")}}),
                    train, progress=False)
    with pytest.raises(ValueError, match="built for another architecture"):
        distill.run(config(pools, model={"width": 16}), train, progress=False)


def test_without_a_path_outside_the_repository_the_error_says_to_give_one(pools, tiny_imageset, tmp_path,
                                                                         monkeypatch):
    train, _ = tiny_imageset
    cfg = config(pools)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("hdd_lib.params._PACKAGE", tmp_path)
    no_path = from_dict(DistillConfig, {**cfg.to_dict(), "strategy": {**cfg.strategy, "path": None}})
    with pytest.raises(FileNotFoundError, match="give strategy.path"):
        distill.run(no_path, train, progress=False)


def test_labels_name_the_base_and_the_added_losses():
    assert method_label("ncfm", "ncfm") == "NCFM" and method_label("dsdm", {"name": "dsdm"}) == "DSDM"
    assert method_label("ncfm", [{"name": "ncfm"}, {"name": "hdd"}]) == "NCFM+HDD"
    assert method_label("dsdm", [{"name": "dsdm", "mean_weight": 0.0}, {"name": "hdd"}]) == "DSDM+HDD"
    assert method_label("dm", "hdd") == "DM+HDD" and method_label("idm", "dm") == "IDM"
