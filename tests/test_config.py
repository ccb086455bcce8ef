"""Typed settings: defaults from SPEC, strict parsing with the key named, registries, round trips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from hdd_lib.config import Count, DistillConfig, EvalConfig, Fraction, Positive, Settings, from_dict, to_dict


def test_defaults_are_the_papers():
    cfg = DistillConfig()
    assert (cfg.iterations, cfg.lr_img, cfg.batch_real, cfg.init) == (20000, 1.0, 256, "real")
    assert cfg.loss == {"name": "hdd", "k": 1.0, "lam": 20.0, "how": "expmap0", "clamp": 10.0, "dtype": "float64"}
    idm = from_dict(DistillConfig, {"strategy": "idm"}).strategy
    assert (idm["net_num"], idm["net_generate_interval"], idm["fetch_net_num"], idm["model_train_steps"]) == (100, 30, 2, 10)
    ev = EvalConfig()
    assert (ev.epochs, ev.lr, ev.momentum, ev.weight_decay, ev.batch, ev.decay_epoch) == (1000, 0.01, 0.9, 5e-4, 256, 500)
    assert cfg.dsa.strategy == "color_crop_cutout_flip_scale_rotate" and cfg.model.depth == 3


def test_round_trip_and_int_to_float():
    cfg = from_dict(DistillConfig, {"method": "idm_hdd", "strategy": "idm", "lr_img": 1,
                                    "loss": {"name": "hdd", "k": 2, "lam": 100}})
    assert cfg.lr_img == 1.0 and isinstance(cfg.lr_img, float) and cfg.loss["k"] == 2.0
    assert cfg.strategy["name"] == "idm" and cfg.loss["name"] == "hdd"
    assert from_dict(DistillConfig, to_dict(cfg)) == cfg


def test_a_list_of_losses_is_resolved_term_by_term():
    cfg = from_dict(DistillConfig, {"loss": [{"name": "dm"}, {"name": "hdd", "lam": 2}]})
    assert [t["name"] for t in cfg.loss] == ["dm", "hdd"] and cfg.loss[1]["lam"] == 2.0
    with pytest.raises(ValueError, match=r"loss\[1\].lam must be >= 0"):
        from_dict(DistillConfig, {"loss": [{"name": "dm"}, {"name": "hdd", "lam": -2}]})


@pytest.mark.parametrize(
    "data, match",
    [
        ({"ipc": "10"}, r"ipc must be of type int, got ipc='10'"),
        ({"ipc": True}, r"ipc must be of type int"),
        ({"loss": {"name": "hdd", "kk": 1}}, r"unknown key\(s\) loss.kk"),
        ({"loss": {"name": "hdd", "how": "poincare"}}, r"loss.how must be one of 'expmap0', 'lift', got how='poincare'"),
        ({"loss": {"name": "hdd", "clamp": float("inf")}}, r"loss.clamp must be a finite number, got clamp=inf"),
        ({"loss": {"k": 1}}, r"loss must be a mapping with a 'name'"),
        ({"model": 3}, r"model must be a mapping"),
        ({"model": {"width": 0}}, r"model.width must be >= 1, got width=0"),
        ({"strategy": {"name": "idm", "momentum_net": 1.5}}, r"strategy.momentum_net must be <= 1"),
        ({"dsa": {"scale": 0.5}}, r"scale must be >= 1"),
    ],
)
def test_strict_parsing_names_the_key(data, match):
    with pytest.raises(ValueError, match=match):
        from_dict(DistillConfig, data)


def test_settings_check_annotations_on_direct_construction():
    @dataclass(frozen=True)
    class S(Settings):
        a: Positive = 1.0
        n: Count = 1
        p: Fraction = 0.5
        mode: Literal["x", "y"] = "x"
        sizes: tuple[Count, ...] = (1,)

    assert S(a=2, sizes=[3, 4]).sizes == (3, 4)
    for kwargs, match in [({"a": 0}, "a must be > 0, got a=0"), ({"n": 1.5}, "n must be of type int"),
                          ({"p": 2.0}, "p must be <= 1"), ({"mode": "z"}, "mode must be one of"),
                          ({"sizes": [1, 0]}, r"sizes\[1\] must be >= 1"), ({"a": float("nan")}, "finite")]:
        with pytest.raises(ValueError, match=match):
            S(**kwargs)
