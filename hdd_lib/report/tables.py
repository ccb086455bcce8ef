r"""The papers' tables (Tables 1–4), built from metric files, and :func:`write_all` for the pipeline.

Inputs are the metric dicts the pipeline writes (``results/metrics/{eval,crossarch,prune,ablation}/
*.json``, read with :func:`~hdd_lib.report.tidy.load_metrics`) and the published numbers
(:mod:`~hdd_lib.report.published`); no number is typed here. Pooling over seeds is
:mod:`~hdd_lib.report.tidy`'s, the files :mod:`~hdd_lib.report.render`'s. ::

    from hdd_lib.report import tables
    t = tables.main_table(tables.load_metrics("results/metrics/eval"))
    tables.write_table(t, "results/tables")    # table1_main.md, .csv, .tex (atomic)
    tables.write_all("results/metrics", "results/tables")   # all four tables and curves.csv

The names of :mod:`~hdd_lib.report.published`, :mod:`~hdd_lib.report.tidy`,
:mod:`~hdd_lib.report.render` and :mod:`~hdd_lib.report.summaries` that notebooks use are
re-exported here, so ``tables.load_metrics``, ``tables.write_table`` or ``tables.summary_markdown``
work as they did.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..storage import atomic_write
from .published import OTHER_SOURCE, PAPER_DATASET, SOURCES, load_published, paper_lookup, paper_numbers
from .render import MISSING, Table, cell, fmt, n_note, ratio_label, read_table_csv, usual_n, write_table
from .summaries import metrics_markdown, norm_markdown, summary_markdown
from .tidy import (ARCHITECTURES, DATASETS, METHODS, SCORES, curve_rows, label, load_metrics, ordered, pool,
                   profile_notes, protocol_line, provenance_note, tidy_ablation, tidy_curves, tidy_eval, tidy_prune)

#: Metric folders (under ``results/metrics``) read by :func:`write_all`, and the table each feeds.
KINDS = {"eval": "table1_main", "crossarch": "table2_crossarch", "prune": "table3_pruning",
         "ablation": "table4_geodm_ablation"}
#: The tidy accuracy-vs-iteration rows beside the tables (``dvc plots``: x ``iteration``, y ``mean``).
CURVES_FILE = "curves.csv"

__all__ = [
    "main_table", "crossarch_table", "pruning_table", "ablation_table", "write_all", "KINDS", "CURVES_FILE",
    # re-exported
    "METHODS", "DATASETS", "ARCHITECTURES", "SCORES", "SOURCES", "PAPER_DATASET", "MISSING", "load_published",
    "paper_numbers", "load_metrics", "pool", "tidy_eval", "tidy_prune", "tidy_curves", "tidy_ablation",
    "protocol_line", "Table", "write_table", "read_table_csv", "label", "ordered", "summary_markdown",
    "norm_markdown", "metrics_markdown",
]


# ----------------------------------------------------------------------------- tables
def _row_order(df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    order = {d: i for i, d in enumerate(ordered(df["dataset"], DATASETS))}
    return df.assign(_d=df["dataset"].map(order)).sort_values(["_d", "ipc", *extra], kind="stable").drop(columns="_d")


def _method_columns(present: Iterable[str], methods: Sequence[str] | None) -> list[str]:
    return list(methods) if methods is not None else ordered(present, METHODS)


def main_table(metrics: Sequence[dict[str, Any]], *, published: pd.DataFrame | None = None, model: str = "convnet",
               methods: Sequence[str] | None = None, digits: int = 1, name: str = "table1_main") -> Table:
    """Table 1: test accuracy of ``model`` per dataset x IPC (rows) and method (columns).

    For each method with a published number in any row, two more columns follow it: the paper's
    number (``<M> paper``) and ``Δ <M>`` = ours − paper (means).

    Parameters
    ----------
    metrics : evaluation metric dicts (``results/metrics/eval/*.json``)
    published : published numbers (default: the packaged ``published.csv``; an empty frame: none)
    model : architecture whose accuracies are shown
    methods : method columns in order (default: those present, in :data:`METHODS` order)
    """
    tidy = tidy_eval(metrics, models=[model])
    paper = paper_lookup(published)
    cols = _method_columns(tidy["method"], methods)
    cells = {(r.dataset, r.ipc, r.method): r for r in tidy.itertuples()}
    rows = _row_order(tidy[["dataset", "ipc"]].drop_duplicates()) if len(tidy) else tidy[["dataset", "ipc"]]
    n_usual = usual_n(tidy)
    with_paper = [me for me in cols if any((PAPER_DATASET.get(d, d), i, me) in paper for d, i in
                                           zip(rows["dataset"], rows["ipc"]))]
    display, data = [], []
    for d, i in zip(rows["dataset"], rows["ipc"]):
        labels = tidy.loc[(tidy["dataset"] == d) & (tidy["ipc"] == i), "data_copy"]
        line = {"Dataset": labels.iloc[0] if len(labels) else label(d, DATASETS), "IPC": str(i)}
        pd_key = PAPER_DATASET.get(d, d)
        for me in cols:
            c = cells.get((d, i, me))
            p = paper.get((pd_key, i, me))
            line[label(me, METHODS)] = cell(c.mean, c.std, digits, c.n, n_usual) if c is not None else MISSING
            ours = c.mean if c is not None else math.nan
            pm = float(p.mean) if p is not None else math.nan
            delta = ours - pm if p is not None and c is not None and c.n > 0 else math.nan
            if me in with_paper:
                mark = "" if p is None or p.source == "hdd_paper" else OTHER_SOURCE
                line[f"{label(me, METHODS)} paper"] = cell(pm, float(p.std), digits) + mark if p is not None else MISSING
                line[f"Δ {label(me, METHODS)}"] = fmt(delta, digits, sign=True)
            if c is not None or p is not None:
                data.append({"dataset": d, "data_copy": line["Dataset"], "ipc": i, "method": me, "model": model,
                             "mean": ours, "std": c.std if c is not None else math.nan,
                             "n": c.n if c is not None else 0, "num_exp": c.num_exp if c is not None else 0,
                             "seeds": c.seeds if c is not None else "", "paper_dataset": pd_key if p is not None else "",
                             "paper_mean": pm, "paper_std": float(p.std) if p is not None else math.nan,
                             "paper_source": p.source if p is not None else "", "delta": delta})
        display.append(line)
    notes = [n_note(tidy, label(model, ARCHITECTURES))]
    if with_paper:
        used = sorted({r["paper_source"] for r in data if r["paper_source"]}, key=lambda s: SOURCES[s][0])
        hdd = [SOURCES[s][1] for s in used if s == "hdd_paper"]
        other = [SOURCES[s][1] for s in used if s != "hdd_paper"]
        notes.append("Paper numbers: " + "; ".join(hdd + ([f"{OTHER_SOURCE} the method's own paper: "
                                                             + "; ".join(other)] if other else []))
                     + ". Where two sources give a number for a cell, the HDD paper's is used (same protocol as "
                     "HDD's other numbers). Δ = ours − paper (means).")
    if any(PAPER_DATASET.get(d, d) != d for d in rows["dataset"]):
        notes.append("Runs on a data copy (e.g. CIFAR-10 (JPEG copy)) are compared with the papers' numbers on the "
                     "original dataset.")
    notes += profile_notes(metrics) + [provenance_note(metrics)]
    return Table(name, f"Test accuracy (%) of {label(model, ARCHITECTURES)} trained on the distilled sets",
                 pd.DataFrame(display, columns=["Dataset", "IPC", *_main_columns(cols, with_paper)]),
                 pd.DataFrame(data, columns=_MAIN_DATA), protocol_line(metrics), tuple(notes))


_MAIN_DATA = ["dataset", "data_copy", "ipc", "method", "model", "mean", "std", "n", "num_exp", "seeds",
              "paper_dataset", "paper_mean", "paper_std", "paper_source", "delta"]


def _main_columns(cols: Sequence[str], with_paper: Sequence[str]) -> list[str]:
    out = []
    for me in cols:
        out.append(label(me, METHODS))
        if me in with_paper:
            out += [f"{label(me, METHODS)} paper", f"Δ {label(me, METHODS)}"]
    return out


def crossarch_table(metrics: Sequence[dict[str, Any]], *, methods: Sequence[str] | None = None,
                    models: Sequence[str] | None = None, digits: int = 1, name: str = "table2_crossarch") -> Table:
    """Table 2: cross-architecture generalisation; rows dataset x IPC x method, columns architectures."""
    tidy = tidy_eval(metrics, models=models)
    archs = list(models) if models is not None else ordered(tidy["model"], ARCHITECTURES)
    meths = _method_columns(tidy["method"], methods)
    cells = {(r.dataset, r.ipc, r.method, r.model): r for r in tidy.itertuples()}
    rows = _row_order(tidy[["dataset", "ipc"]].drop_duplicates()) if len(tidy) else tidy[["dataset", "ipc"]]
    n_usual = usual_n(tidy)
    display = []
    for d, i in zip(rows["dataset"], rows["ipc"]):
        labels = tidy.loc[(tidy["dataset"] == d) & (tidy["ipc"] == i), "data_copy"]
        for me in meths:
            if methods is None and not any((d, i, me, a) in cells for a in archs):
                continue
            line = {"Dataset": labels.iloc[0], "IPC": str(i), "Method": label(me, METHODS)}
            for a in archs:
                c = cells.get((d, i, me, a))
                line[label(a, ARCHITECTURES)] = cell(c.mean, c.std, digits, c.n, n_usual) if c is not None else MISSING
            display.append(line)
    notes = [n_note(tidy, "each architecture trained from scratch on the distilled set"),
             *profile_notes(metrics), provenance_note(metrics)]
    data = _row_order(tidy, ["method", "model"]).reset_index(drop=True) if len(tidy) else tidy
    return Table(name, "Cross-architecture test accuracy (%) of the distilled sets",
                 pd.DataFrame(display, columns=["Dataset", "IPC", "Method", *(label(a, ARCHITECTURES) for a in archs)]),
                 data, protocol_line(metrics), tuple(notes))


def pruning_table(metrics: Sequence[dict[str, Any]], *, published: pd.DataFrame | None = None, digits: int = 1,
                  name: str = "table3_pruning") -> Table:
    """Table 3: accuracy after pruning the distilled set; rows dataset x IPC x method x score, columns
    keep ratios. Where published pruning numbers exist for a row group, a ``paper (hyperbolic)`` row
    follows its scores."""
    tidy = tidy_prune(metrics)
    pub = paper_numbers(published, pruning=True)
    keeps = sorted(set(tidy["keep"]), reverse=True)
    cells = {(r.dataset, r.ipc, r.method, r.score, r.keep): r for r in tidy.itertuples()}
    groups = _row_order(tidy[["dataset", "ipc", "method"]].drop_duplicates(), ["method"]) if len(tidy) else tidy
    n_usual = usual_n(tidy)
    display, paper_rows = [], []
    for d, i, me in (zip(groups["dataset"], groups["ipc"], groups["method"]) if len(tidy) else []):
        sel = tidy[(tidy["dataset"] == d) & (tidy["ipc"] == i) & (tidy["method"] == me)]
        base = {"Dataset": sel["data_copy"].iloc[0], "IPC": str(i), "Method": label(me, METHODS)}
        for s in ordered(sel["score"], SCORES):
            line = dict(base, Score=label(s, SCORES))
            for kp in keeps:
                c = cells.get((d, i, me, s, kp))
                line[f"keep {ratio_label(kp)}"] = cell(c.mean, c.std, digits, c.n, n_usual) if c is not None else MISSING
            display.append(line)
        p = pub[(pub["dataset"] == PAPER_DATASET.get(d, d)) & (pub["ipc"] == i) & (pub["base_method"] == me)] \
            if len(pub) else pub
        if len(p):
            line = dict(base, Score="paper (hyperbolic)")
            for kp in keeps:
                hit = p[np.isclose(p["keep"].astype(float), kp)]
                line[f"keep {ratio_label(kp)}"] = cell(float(hit["mean"].iloc[0]), float(hit["std"].iloc[0]), digits) \
                    if len(hit) else MISSING
            display.append(line)
            paper_rows += [{"data_copy": base["Dataset"], "dataset": d, "ipc": i, "method": me,
                            "score": "paper_hyperbolic", "keep": float(r.keep), "mean": float(r.mean),
                            "std": float(r.std), "n": math.nan, "num_exp": math.nan, "seeds": "",
                            "source": r.source} for r in p.itertuples()]
    notes = [n_note(tidy, "ConvNet on the pruned set"),
             "Scores (hdd_lib.prune; the nearest are kept): hyperbolic = geodesic distance of each synthetic "
             "sample's lifted feature to its class's real Lorentzian centroid, Euclidean = feature-space distance "
             "to the real class mean, random = uniform scores. keep r = fraction of the set kept per class."]
    if paper_rows:
        notes.append("Paper rows: HDD's hyperbolic pruning, " + SOURCES["hdd_paper"][1] + "; the paper's ratios "
                     "0/20/40/80 % are read as the fraction pruned (keep 1.0/0.8/0.6/0.2), a reading SPEC calls "
                     "unclear; dataset and IPC inferred.")
    notes += profile_notes(metrics) + [provenance_note(metrics)]
    data = _row_order(tidy, ["method", "score", "keep"]).reset_index(drop=True) if len(tidy) else tidy
    data = data.assign(source="ours")
    if paper_rows:
        data = pd.concat([data, pd.DataFrame(paper_rows)], ignore_index=True)
    return Table(name, "Test accuracy (%) after pruning the distilled set",
                 pd.DataFrame(display, columns=["Dataset", "IPC", "Method", "Score", *(f"keep {ratio_label(k)}" for k in keeps)]),
                 data, protocol_line(metrics), tuple(notes))


def ablation_table(metrics: Sequence[dict[str, Any]], *, model: str = "convnet", variants: Sequence[str] | None = None,
                   digits: int = 1, name: str = "table4_geodm_ablation") -> Table:
    """Table 4: GeoDM ablation; rows dataset x (base method) x variant with its settings, columns IPC.

    ``variants`` fixes the row order (default: order of first appearance); the ``Method`` column is
    shown only when the metrics hold more than one base method.
    """
    tidy = tidy_ablation(metrics, model=model)
    ipcs = sorted(set(tidy["ipc"]))
    setting_cols = [c for c in tidy.columns if c.startswith("setting_")]
    seen = list(dict.fromkeys(tidy["variant"]))
    order = seen if variants is None else [*variants, *(v for v in seen if v not in variants)]
    show_method = tidy["method"].nunique() > 1
    cells = {(r.dataset, r.method, r.variant, r.ipc): r for r in tidy.itertuples()}
    n_usual = usual_n(tidy)
    display = []
    datasets = ordered(tidy["dataset"], DATASETS)
    for d in datasets:
        sel = tidy[tidy["dataset"] == d]
        for me in ordered(sel["method"], METHODS):
            for v in order:
                vs = sel[(sel["method"] == me) & (sel["variant"] == v)]
                if variants is None and vs.empty:
                    continue
                line = {"Dataset": sel["data_copy"].iloc[0]}
                if show_method:
                    line["Method"] = label(me, METHODS)
                line["Variant"] = v
                for sc in setting_cols:  # a setting that differs between the row's IPCs reads "a/b"
                    vals = [str(x) for x in vs.sort_values("ipc")[sc]
                            if not (x is None or (isinstance(x, float) and math.isnan(x)))]
                    line[_setting_label(sc)] = "/".join(dict.fromkeys(vals)) or MISSING
                for i in ipcs:
                    c = cells.get((d, me, v, i))
                    line[f"IPC {i}"] = cell(c.mean, c.std, digits, c.n, n_usual) if c is not None else MISSING
                display.append(line)
    columns = ["Dataset", *(["Method"] if show_method else []), "Variant",
               *(_setting_label(c) for c in setting_cols), *(f"IPC {i}" for i in ipcs)]
    notes = [n_note(tidy, label(model, ARCHITECTURES)),
             "Variants: GeoDM factors (E Euclidean, H hyperbolic, S spherical), OT weight λ_OT and how the geometry "
             "parameters learn (joint, adversarial, fixed).", *profile_notes(metrics), provenance_note(metrics)]
    data = _row_order(tidy, ["method", "variant"]).reset_index(drop=True) if len(tidy) else tidy
    return Table(name, "GeoDM ablation: test accuracy (%) per variant", pd.DataFrame(display, columns=columns),
                 data, protocol_line(metrics), tuple(notes))


_SETTING_LABELS = {"factors": "Factors", "lambda_ot": "λ_OT", "learn": "Learn"}


def _setting_label(col: str) -> str:
    key = col[len("setting_"):]
    return _SETTING_LABELS.get(key, key)


# ----------------------------------------------------------------------------- the pipeline's tables
def write_all(metrics_dir: str | os.PathLike, tables_dir: str | os.PathLike, *,
              methods: Sequence[str] | None = None, published: pd.DataFrame | None = None) -> list[Path]:
    """Write every table of the pipeline from ``metrics_dir/{eval,crossarch,prune,ablation}/*.json``.

    Parameters
    ----------
    metrics_dir : folder holding the metric folders (``results/metrics``)
    tables_dir : output folder (``results/tables``), created if needed
    methods : method columns of Table 1, in order (``params.yaml`` ``report.methods``; default: those
        present); Table 2 keeps those of them it has results for, in that order
    published : published numbers (default: the packaged ``published.csv``)

    Returns
    -------
    The written paths: ``table1_main``, ``table2_crossarch``, ``table3_pruning`` and
    ``table4_geodm_ablation`` as ``.md``, ``.csv``, ``.tex`` each, then ``curves.csv`` (one row per
    run and logged iteration of the evaluation metrics: :data:`~hdd_lib.report.tidy.CURVE_COLUMNS`,
    no comment lines, so that ``dvc plots`` reads it). A table without metric files is written
    too, with a note saying there are no runs yet. Every file is written atomically.
    """
    metrics_dir, tables_dir = Path(metrics_dir), Path(tables_dir)
    found = {kind: load_metrics(metrics_dir / kind) for kind in KINDS}
    cross_present = {m.get("method") for m in found["crossarch"]}
    tables = {
        "eval": main_table(found["eval"], published=published, methods=methods),
        "crossarch": crossarch_table(found["crossarch"], methods=None if methods is None else
                                     [m for m in methods if m in cross_present]),
        "prune": pruning_table(found["prune"], published=published),
        "ablation": ablation_table(found["ablation"]),
    }
    written: list[Path] = []
    for kind, table in tables.items():
        if not found[kind]:
            note = f"No runs yet: no metric files in {metrics_dir.name}/{kind}/."
            table = Table(table.name, table.title, table.display, table.data, table.protocol, (note, *table.notes))
        paths = write_table(table, tables_dir)
        written += [paths["md"], paths["csv"], paths["tex"]]
    text = curve_rows(found["eval"]).to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()
    written.append(atomic_write(tables_dir / CURVES_FILE, lambda f: f.write(text)))
    return written
