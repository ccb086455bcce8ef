"""Markdown summaries of one stage's output, from dicts shaped as hdd_lib.experiments writes them."""

from __future__ import annotations

import dataclasses
import math

import torch

from hdd_lib.data import get_spec
from hdd_lib.report import tables
from hdd_lib.report import summaries as S
from hdd_lib.geometry import feature_norm_stats

from . import md_rows


def _dataset_summary(**kw):
    """As :func:`hdd_lib.experiments.dataset_summary` writes it."""
    return {"dataset": "cifar10_jpeg", "data_copy": "CIFAR-10 (JPEG copy)",
            "spec": dataclasses.asdict(get_spec("cifar10")), "train_size": 50000, "test_size": 10000,
            "train_per_class": [4990] + [5001] * 9, "test_per_class": [1000] * 10,
            "normalised_mean": [0.001, -0.002, 0.0], "normalised_std": [1.0, 0.999, 1.001],
            "data_digest": "9f2c1ab3", "load_seconds": 2.4, "provenance": {}, **kw}


def test_summary_markdown_states_sizes_balance_normalisation_digest():
    md = S.summary_markdown(_dataset_summary())
    assert md.startswith("**CIFAR-10 (JPEG copy)** (`cifar10_jpeg`): 10 classes, 3×32×32 images")
    assert md_rows(md)[2:] == [["train", "50000", "4990–5001"], ["test", "10000", "1000"]]
    assert "mean 0.001, -0.002, 0.000; std 1.000, 0.999, 1.001" in md
    assert "`9f2c1ab3`" in md and "2.4 s" in md
    assert "do not fit" not in md
    off = S.summary_markdown(_dataset_summary(normalised_mean=[0.5, 0.0, 0.0]))
    assert "do not fit" in off
    assert tables.summary_markdown is S.summary_markdown                      # notebooks call it via tables


def test_norm_markdown_from_a_geometry_summary():
    feat = torch.tensor([[3.0, 4.0], [0.0, 30.0], [6.0, 8.0]])            # norms 5, 30, 10
    stats = feature_norm_stats(feat, k=1.0)
    summary = {"dataset": "digits", "data_copy": "Digits", "k": 1.0, "feature_dim": 2,
               "norms": {key: v for key, v in stats.items() if key != "norms"}}
    md = tables.norm_markdown(summary)
    assert "3 real features of dimension 2" in md and "k = 1" in md
    rows = md_rows(md)
    assert rows[0] == ["min", "5 %", "25 %", "median", "75 %", "95 %", "max", "mean"]
    assert rows[2][0] == "5.00" and rows[2][6] == "30.00"
    assert "Clamp radius 10·√k = 10.00: 66.7 %" in md
    k4 = dict(summary, k=4.0, norms={key: v for key, v in feature_norm_stats(feat, k=4.0).items() if key != "norms"})
    assert "Clamp radius 10·√k = 20.00: 33.3 %" in tables.norm_markdown(k4)
    unclamped = dict(summary, norms={"threshold": math.inf, "count": 3})
    assert "No radius clamp" in tables.norm_markdown(unclamped)

