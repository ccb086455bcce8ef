"""Tables 1–4 from fabricated metric dicts: pooled cells, paper columns, labels; write_all."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hdd_lib.report import tables as T

from . import ablation_metric, eval_metric, prune_metric


def test_main_table_pools_all_accuracies_of_all_seeds(published):
    accs = {0: [60, 61, 62, 63, 64], 1: [58, 59, 60, 61, 62], 2: [65, 65, 66, 66, 67]}
    metrics = [eval_metric("svhn", 50, "idm_hdd", s, a) for s, a in accs.items()]
    t = T.main_table(metrics, published=published)
    row = t.data[(t.data["method"] == "idm_hdd")].iloc[0]
    allv = np.concatenate(list(accs.values())).astype(float)
    assert row["mean"] == pytest.approx(allv.mean())
    assert row["std"] == pytest.approx(allv.std())          # population std over 15 values
    assert (row["n"], row["num_exp"], row["seeds"]) == (15, 3, "0 1 2")
    assert t.display.loc[0, "IDM+HDD"] == f"{allv.mean():.1f} ± {allv.std():.1f}"


def test_main_table_paper_column_and_delta_come_from_published(published):
    metrics = [eval_metric("svhn", 1, "dm_hdd", 0, [30.0, 32.0])]
    t = T.main_table(metrics, published=published)
    paper = published.query("dataset == 'svhn' and ipc == 1 and method == 'dm_hdd'")["mean"].item()
    row = t.data[t.data["method"] == "dm_hdd"].iloc[0]
    assert row["paper_mean"] == paper and row["paper_source"] == "hdd_paper"
    assert row["delta"] == pytest.approx(31.0 - paper)
    assert t.display.loc[0, "DM+HDD paper"] == f"{paper:.1f}"
    assert t.display.loc[0, "Δ DM+HDD"] == f"{31.0 - paper:+.1f}"


def test_numbers_come_from_the_given_published_frame(tmp_path):
    p = tmp_path / "pub.csv"
    p.write_text("dataset,ipc,method,mean,std,source,note\nsvhn,1,dm_hdd,12.5,0.5,dm_paper,test\n")
    t = T.main_table([eval_metric("svhn", 1, "dm_hdd", 0, [20.0])], published=T.load_published(p))
    assert t.display.loc[0, "DM+HDD paper"] == "12.5 ± 0.5†"
    assert t.display.loc[0, "Δ DM+HDD"] == "+7.5"
    none = T.main_table([eval_metric("svhn", 1, "dm_hdd", 0, [20.0])], published=T.load_published(p).iloc[:0])
    assert list(none.display.columns) == ["Dataset", "IPC", "DM+HDD"]


def test_jpeg_copy_is_labelled_and_compared_with_cifar10(published):
    metrics = [eval_metric("cifar10_jpeg", 10, "idm_hdd", s, [60.0 + s]) for s in range(2)]
    t = T.main_table(metrics, published=published)
    assert t.display.loc[0, "Dataset"] == "CIFAR-10 (JPEG copy)"
    row = t.data.iloc[0]
    assert row["paper_dataset"] == "cifar10"
    cifar = published.query("dataset == 'cifar10' and ipc == 10 and method == 'idm_hdd'")["mean"].item()
    assert row["delta"] == pytest.approx(60.5 - cifar)
    assert "CIFAR-10 (JPEG copy)" in t.protocol
    assert any("original dataset" in n for n in t.notes)


def test_missing_cells_show_a_dash(published):
    metrics = [eval_metric("cifar10", 1, "dm", 0, [26.0]), eval_metric("cifar10", 10, "dm_hdd", 0, [50.0])]
    from hdd_lib.report import tidy

    tidy.learn_labels([{"method": "geodm", "method_label": "DM+GeoDM"}])  # as a GeoDM record elsewhere would
    t = T.main_table(metrics, published=published, methods=["dm", "dm_hdd", "geodm"])
    d = t.display.set_index("IPC")
    assert d.loc["1", "DM+HDD"] == T.MISSING and d.loc["10", "DM"] == T.MISSING
    assert (d["DM+GeoDM"] == T.MISSING).all()
    assert d.loc["10", "DM paper"] != T.MISSING and d.loc["10", "Δ DM"] == T.MISSING   # paper, no result
    assert d.loc["10", "DM+HDD paper"] == T.MISSING                                       # result, no paper


def test_methods_are_ordered_and_unequal_counts_flagged(published):
    metrics = [eval_metric("digits", 10, m, 0, [50.0, 52.0]) for m in ("idm", "dm_hdd", "dm")]
    metrics.append(eval_metric("digits", 10, "dm", 1, [51.0, 53.0]))
    t = T.main_table(metrics, published=published)
    assert list(t.display.columns) == ["Dataset", "IPC", "DM", "DM+HDD", "IDM"]   # no paper numbers for digits
    assert t.display.loc[0, "DM"].endswith("(n=4)")


def test_duplicate_run_ids_are_rejected():
    m = eval_metric("svhn", 1, "dm", 0, [20.0])
    with pytest.raises(ValueError, match="repeat run ids"):
        T.main_table([m, dict(m)])


# ----------------------------------------------------------------------------- other tables
def test_crossarch_table_rows_methods_columns_architectures():
    models = ("resnet18", "convnet", "alexnet")
    metrics = [eval_metric("cifar10", 10, m, 0, [40.0, 42.0], models=models) for m in ("dm_hdd", "dm")]
    t = T.crossarch_table(metrics)
    assert list(t.display.columns) == ["Dataset", "IPC", "Method", "ConvNet", "AlexNet", "ResNet18"]
    assert list(t.display["Method"]) == ["DM", "DM+HDD"]
    assert t.display.loc[0, "AlexNet"] == "41.0 ± 1.0"
    assert len(t.data) == 6


def test_pruning_table_pools_scores_and_adds_paper_row(published):
    accs = {s: {1.0: [60.0, 62.0], 0.2: [40.0, 44.0]} for s in ("hyperbolic", "euclidean", "random")}
    metrics = [prune_metric("cifar10_jpeg", 10, "dm_hdd", seed, accs) for seed in range(2)]
    t = T.pruning_table(metrics, published=published)
    assert list(t.display.columns) == ["Dataset", "IPC", "Method", "Score", "keep 1.0", "keep 0.2"]
    assert list(t.display["Score"]) == ["hyperbolic", "Euclidean", "random", "paper (hyperbolic)"]
    assert t.display.loc[0, "keep 0.2"] == "42.0 ± 2.0"
    paper = published.query("method == 'dm_hdd@keep0.2'")["mean"].item()
    assert t.display.loc[3, "keep 0.2"] == f"{paper:.1f}"
    row = t.data[(t.data["score"] == "hyperbolic") & (t.data["keep"] == 0.2)].iloc[0]
    assert (row["n"], row["num_exp"], row["source"]) == (4, 2, "ours")
    theirs = t.data[t.data["score"] == "paper_hyperbolic"]
    assert len(theirs) == 4 and (theirs["source"] == "hdd_paper").all()
    assert theirs.loc[theirs["keep"] == 0.2, "mean"].item() == paper


def test_ablation_table_rows_variants_columns_ipc():
    settings = {"E": {"factors": "E", "lambda_ot": 0.0, "learn": "fixed"},
                "EHS_ot": {"factors": "EHS", "lambda_ot": 1.0, "learn": "joint"}}
    metrics = [ablation_metric("digits", ipc, v, 0, [50.0 + ipc], s) for v, s in settings.items() for ipc in (1, 10)]
    metrics = metrics[:-1]                                   # EHS_ot at IPC 10 missing
    t = T.ablation_table(metrics, variants=["EHS_ot", "E", "S"])
    assert list(t.display.columns) == ["Dataset", "Variant", "Factors", "λ_OT", "Learn", "IPC 1", "IPC 10"]  # all vary
    assert list(t.display["Variant"]) == ["EHS_ot", "E", "S"]
    assert t.display.loc[0, "IPC 10"] == T.MISSING and t.display.loc[1, "IPC 10"] == "60.0 ± 0.0"
    assert (t.display.loc[2, ["Factors", "IPC 1"]] == T.MISSING).all()


def test_ablation_table_shows_each_rows_own_settings():
    # the same variant run with lam 10 on one dataset and lam 0.1 (IPC 10: 0.2) on another
    metrics = [ablation_metric("fashionmnist", ipc, "E", 0, [70.0], {"factors": "E", "lam": 10.0}) for ipc in (1, 10)]
    metrics += [ablation_metric("digits", 1, "E", 0, [80.0], {"factors": "E", "lam": 0.1}),
                ablation_metric("digits", 10, "E", 0, [90.0], {"factors": "E", "lam": 0.2})]
    t = T.ablation_table(metrics)
    lam = dict(zip(t.display["Dataset"].map(lambda d: "digits" if "igits" in d else "fm"), t.display["lam"]))
    assert lam == {"fm": "10.0", "digits": "0.1/0.2"}
    assert list(t.display.columns) == ["Dataset", "Variant", "lam", "IPC 1", "IPC 10"]   # factors E in every row:
    assert t.protocol.endswith(" GeoDM settings of every row: Factors = E.")             # in the protocol line
    assert list(t.data["setting_factors"]) == ["E"] * 4                                  # and in the CSV


@pytest.mark.parametrize("build", [T.main_table, T.crossarch_table, T.pruning_table, T.ablation_table])
def test_tables_of_nothing_are_still_written(build, tmp_path):
    t = build([])
    paths = T.write_table(t, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert "no results" in paths["md"].read_text()


# ----------------------------------------------------------------------------- write_all
def _save(folder, metrics):
    folder.mkdir(parents=True, exist_ok=True)
    for m in metrics:
        (folder / f"{m['run_id']}.json").write_text(json.dumps(m))


def test_write_all_writes_every_table_and_the_curves(tmp_path):
    metrics_dir = tmp_path / "metrics"
    curve = [(0, 20.0, 1.0), (100, 30.0, 2.0)]
    _save(metrics_dir / "eval", [eval_metric("digits", 10, m, 0, [50.0, 52.0], curve=curve) for m in ("dm_hdd", "dm")])
    _save(metrics_dir / "crossarch", [eval_metric("digits", 10, "dm", 0, [40.0], models=("convnet", "alexnet"))])
    _save(metrics_dir / "other", [eval_metric("svhn", 1, "dm", 0, [1.0])])          # not a table's folder
    written = T.write_all(metrics_dir, tmp_path / "tables", methods=["idm", "dm", "dm_hdd"])
    names = [p.name for p in written]
    assert names == [f"{t}.{s}" for t in (*T.KINDS.values(), "table5_pool") for s in ("md", "csv", "tex")] + ["curves.csv"]
    assert all(p.parent == tmp_path / "tables" and p.stat().st_size > 0 for p in written)
    main = T.read_table_csv(tmp_path / "tables" / "table1_main.csv")
    assert set(main["method"]) == {"dm", "dm_hdd"} and len(main) == 2
    md = (tmp_path / "tables" / "table1_main.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Dataset"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["Dataset", "IPC", "IDM", "DM", "DM+HDD"]  # as params say
    assert "no results yet" not in md
    cross = (tmp_path / "tables" / "table2_crossarch.md").read_text()
    assert "| DM  " in cross and "IDM" not in cross                          # only methods it has
    for empty in ("table3_pruning", "table4_geodm_ablation", "table5_pool"):
        assert "no results yet" in (tmp_path / "tables" / f"{empty}.md").read_text()
    lines = (tmp_path / "tables" / "curves.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,mean,std,run_id,method,dataset,ipc")
    curves = pd.read_csv(tmp_path / "tables" / "curves.csv")
    assert len(curves) == 4 and set(curves["run_id"]) == {"digits-ipc10-dm-s0", "digits-ipc10-dm_hdd-s0"}
    assert curves.loc[curves["iteration"] == 100, "mean"].tolist() == [30.0, 30.0]


def test_write_all_of_nothing_writes_empty_tables(tmp_path):
    written = T.write_all(tmp_path / "absent", tmp_path / "tables")
    assert len(written) == 16
    for p in written:
        if p.suffix == ".md":
            assert "no results yet" in p.read_text()
    assert (tmp_path / "tables" / "curves.csv").read_text().startswith("iteration,mean,std,run_id,method,dataset,ipc")
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(p.name for p in written)


def test_pool_table_rows_are_bases_columns_the_added_losses_with_deltas():
    labels = {"ncfm": "NCFM", "ncfm_hdd": "NCFM+HDD", "ncfm_geodm": "NCFM+GeoDM", "dsdm": "DSDM", "dsdm_hdd": "DSDM+HDD"}
    accs = {"ncfm": [80.0, 82.0], "ncfm_hdd": [83.0, 83.0], "ncfm_geodm": [79.0, 81.0], "dsdm": [70.0, 70.0],
            "dsdm_hdd": [71.0, 73.0]}
    ms = []
    for method, a in accs.items():
        m = eval_metric("digits", 10, method, 0, a)
        m.update(method_label=labels[method], strategy=method.split("_")[0])
        m["protocol"].update(pool={"nets": 3, "epochs": 4}, eval_protocol="dc")
        ms.append(m)
    ms.append(eval_metric("digits", 10, "dm", 0, [10.0]))  # not a pool strategy: not in this table
    t = T.pool_table(ms)
    assert list(t.display.columns) == ["Dataset", "IPC", "Base", "alone", "+HDD", "+GeoDM"]
    ncfm, dsdm = t.display.to_dict("records")
    assert (ncfm["Base"], ncfm["alone"], ncfm["+HDD"], ncfm["+GeoDM"]) == ("NCFM", "81.0 ± 1.0", "83.0 ± 0.0 (+2.0)",
                                                                          "80.0 ± 1.0 (-1.0)")
    assert (dsdm["Base"], dsdm["+HDD"], dsdm["+GeoDM"]) == ("DSDM", "72.0 ± 1.0 (+2.0)", T.MISSING)
    notes = " ".join(t.notes)
    assert "NCFM: 3 nets x 4 epochs" in notes and "Evaluation protocol(s): dc" in notes
    assert "20000 distillation iterations" in t.protocol and len(t.data) == 5
    main = T.main_table(ms)  # the pool records are Table 5's: not in Table 1's columns, counts or protocol line
    assert list(main.display.columns) == ["Dataset", "IPC", "DM"] and "from 1 record(s)" in main.notes[-1]
    assert list(T.main_table(ms, methods=["dm", "ncfm"]).display.columns) == ["Dataset", "IPC", "DM", "NCFM"]
