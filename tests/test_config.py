"""Typed configs: defaults from SPEC, strict parsing, round trips."""

from __future__ import annotations

import pytest

from hdd_lib.config import DistillConfig, EvalConfig, from_dict, to_dict


def test_defaults_are_the_papers():
    cfg = DistillConfig()
    assert (cfg.iterations, cfg.lr_img, cfg.batch_real, cfg.init) == (20000, 1.0, 256, "real")
    assert (cfg.hdd.k, cfg.hdd.lam, cfg.hdd.how, cfg.hdd.clamp) == (1.0, 20.0, "expmap0", 10.0)
    assert (cfg.idm.net_num, cfg.idm.net_generate_interval, cfg.idm.fetch_net_num, cfg.idm.model_train_steps) == (100, 30, 2, 10)
    ev = EvalConfig()
    assert (ev.epochs, ev.lr, ev.momentum, ev.weight_decay, ev.batch, ev.decay_epoch) == (1000, 0.01, 0.9, 5e-4, 256, 500)
    assert cfg.dsa.strategy == "color_crop_cutout_flip_scale_rotate"


def test_round_trip_and_int_to_float():
    cfg = from_dict(DistillConfig, {"method": "idm_hdd", "lr_img": 1, "hdd": {"k": 2.4, "lam": 100}})
    assert cfg.lr_img == 1.0 and isinstance(cfg.lr_img, float)
    assert cfg.strategy == "idm" and cfg.loss == "hdd"
    assert from_dict(DistillConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data, match",
    [
        ({"ipc": "10"}, r"ipc must be of type int, got '10'"),
        ({"ipc": True}, r"ipc must be of type int"),
        ({"hdd": {"kk": 1}}, r"unknown key\(s\) hdd.kk"),
        ({"hdd": {"how": "poincare"}}, r"hdd.how must be one of 'expmap0', 'lift'"),
        ({"model": 3}, r"model"),
        ({"method": "dm+hdd"}, r"unknown method 'dm\+hdd'"),
    ],
)
def test_strict_parsing(data, match):
    with pytest.raises(ValueError, match=match):
        from_dict(DistillConfig, data)


def test_loss_settings_follow_the_method():
    import torch

    assert from_dict(DistillConfig, {"method": "dm"}).loss_settings() == {}
    s = from_dict(DistillConfig, {"method": "dm_hdd", "hdd": {"dtype": "float32"}}).loss_settings()
    assert s["dtype"] is torch.float32 and s["k"] == 1.0
