"""Tidy numbers: pooling over seeds, loading metric folders, the protocol line, curve rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hdd_lib.report import tables as T
from hdd_lib.report import tidy

from . import eval_metric


def test_pooled_equals_numpy_over_the_union_of_all_seeds():
    rng = np.random.default_rng(0)
    parts = [rng.normal(50, 3, n) for n in (5, 5, 3)]
    metrics = [eval_metric("svhn", 1, "dm", s, list(p)) for s, p in enumerate(parts)]
    metrics[2]["results"]["convnet"]["accs"].append(None)                  # not counted
    acc = tidy.accuracies(metrics)
    assert list(acc.columns) == ["run_id", "data_copy", "dataset", "ipc", "method", "variant", "seed", "model",
                                 "score", "keep", "acc"]
    row = tidy.pooled(acc, ["dataset", "ipc", "method", "model"]).iloc[0]
    allv = np.concatenate(parts)
    assert (row["mean"], row["std"]) == (pytest.approx(allv.mean()), pytest.approx(allv.std()))
    assert (row["n"], row["num_exp"], row["seeds"], row["data_copy"]) == (13, 3, "0 1 2", "SVHN")
    none = eval_metric("svhn", 1, "dm", 0, [1.0])
    none["results"]["convnet"]["accs"] = []
    empty = tidy.pooled(tidy.accuracies([none]), ["method"]).iloc[0]
    assert math.isnan(empty["mean"]) and empty["n"] == 0 and empty["num_exp"] == 1


def test_curves_pool_their_moments_exactly():
    a, b = np.array([10.0, 12.0, 14.0]), np.array([20.0, 22.0])
    metrics = [eval_metric("svhn", 1, "dm", s, [1.0], curve=[(100, x.mean(), x.std())]) for s, x in enumerate((a, b))]
    metrics[0]["curve"][0]["n"], metrics[1]["curve"][0]["n"] = 3, 2
    row = tidy.tidy_curves(metrics).iloc[0]
    both = np.concatenate([a, b])
    assert (row["mean"], row["std"], row["n"], row["num_exp"]) == (pytest.approx(both.mean()),
                                                                   pytest.approx(both.std()), 5, 2)


def test_protocol_line_states_the_protocol():
    metrics = [eval_metric("cifar10_jpeg", 10, "dm", s, [1.0] * 5) for s in range(5)]
    line = tidy.protocol_line(metrics)
    for part in ("20000", "5 × 5", "1000", "CIFAR-10 (JPEG copy)", "paper", "NVIDIA H100 80GB HBM3"):
        assert part in line
    assert "official schedule" not in line
    for m in metrics:
        m["protocol"] = {**m["protocol"], "eval_schedule": "official"}
    assert "1000 (official schedule: +1 epoch, lr drop one later) training epochs" in tidy.protocol_line(metrics)
    smoke = T.main_table([eval_metric("digits", 1, "dm", 0, [1.0], profile="smoke")])
    assert any("not comparable" in n for n in smoke.notes)


def test_protocol_line_gives_each_data_copy_its_own_protocol_when_they_differ():
    fm = eval_metric("fashionmnist", 10, "dm", 0, [1.0] * 3, profile="cpu-fmnist")
    digits = eval_metric("digits", 10, "dm", 0, [1.0] * 3, profile="cpu")
    digits["protocol"] = {**digits["protocol"], "iterations": 100}
    line = tidy.protocol_line([fm, digits])
    assert line.startswith("Protocol per data copy: ")
    fm_part = line.split(f"{tidy.copy_label(fm)}: ")[1].split(".")[0]
    digits_part = line.split(f"{tidy.copy_label(digits)}: ")[1].split(".")[0]
    assert "20000 distillation iterations" in fm_part and "profile: cpu-fmnist" in fm_part
    assert "100 distillation iterations" in digits_part and "profile: cpu;" in digits_part
    same = tidy.protocol_line([fm, eval_metric("mnist", 10, "dm", 0, [1.0] * 3, profile="cpu-fmnist")])
    assert same.startswith("Protocol: 20000 distillation iterations") and same.count("distillation iterations") == 1


def test_load_metrics_reads_a_folder(tmp_path):
    assert tidy.load_metrics(tmp_path / "absent") == []
    for s in (1, 0):
        m = eval_metric("svhn", 1, "dm", s, [20.0 + s])
        (tmp_path / f"{m['run_id']}.json").write_text(json.dumps(m))
    loaded = tidy.load_metrics(tmp_path)
    assert [m["seed"] for m in loaded] == [0, 1]



def test_curve_rows_keep_every_run_and_iteration():
    curve = [(500, 40.0, 2.0), (0, 20.0, 1.0)]
    metrics = [eval_metric("cifar10_jpeg", 10, "dm", s, [45.0], curve=curve) for s in (1, 0)]
    metrics.append(eval_metric("svhn", 1, "dm", 0, [20.0]))                  # no curve: no rows
    metrics[0]["curve"].append({"mean": 1.0})                                # no iteration: skipped
    rows = tidy.curve_rows(metrics)
    assert list(rows.columns) == [*tidy.CURVE_COLUMNS, "n"]
    assert list(rows.columns[:7]) == ["iteration", "mean", "std", "run_id", "method", "dataset", "ipc"]
    assert list(rows["run_id"]) == ["cifar10_jpeg-ipc10-dm-s0"] * 2 + ["cifar10_jpeg-ipc10-dm-s1"] * 2
    assert list(rows["iteration"]) == [0, 500, 0, 500]
    assert rows.loc[1, "mean"] == 40.0 and rows.loc[1, "data_copy"] == "CIFAR-10 (JPEG copy)"
    empty = tidy.curve_rows([])
    assert empty.empty and list(empty.columns) == [*tidy.CURVE_COLUMNS, "n"]


def test_display_names_and_order():
    tidy.learn_labels([{"method": m, "method_label": lab} for m, lab in
                       [("idm_hdd", "IDM+HDD"), ("geodm", "DM+GeoDM"), ("idm", "IDM"), ("dm", "DM"), ("dm_hdd", "DM+HDD")]])
    assert tidy.method_order(["zeta", "idm", "dm", "alpha"]) == ["dm", "idm", "alpha", "zeta"]
    assert tidy.method_order(["idm_hdd", "geodm", "idm", "dm_hdd", "dm"]) == ["dm", "geodm", "dm_hdd", "idm", "idm_hdd"]
    assert tidy.method_label("dm_hdd") == "DM+HDD" and tidy.method_label("new") == "new"
    assert tidy.arch_order(["resnet18", "x", "convnet"]) == ["convnet", "resnet18", "x"]
    assert tidy.arch_label("vgg11") == "VGG11" and tidy.arch_label("x") == "x"
    frame = pd.DataFrame({"dataset": ["digits", "cifar10", "mnist", "cifar10"], "ipc": [1, 10, 1, 1]})
    assert list(tidy.sort_rows(frame).itertuples(index=False, name=None)) == [("mnist", 1), ("cifar10", 1),
                                                                              ("cifar10", 10), ("digits", 1)]
    assert tidy.copy_label({"dataset": "svhn"}) == "svhn"
    assert tidy.copy_label({"dataset": "svhn", "data_copy": "SVHN (mine)"}) == "SVHN (mine)"
