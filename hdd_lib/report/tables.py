"""The papers' Tables 1–4 and Table 5 (the pretrained-pool bases) from metric files (numbers from
:mod:`~hdd_lib.report.tidy` and :mod:`~hdd_lib.report.published`), and :func:`write_all` for the ``tables`` stage."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..storage import atomic_write
from .published import OTHER_SOURCE, PAPER_DATASET, SOURCES, load_published, paper_lookup, paper_numbers, paper_pruning
from .render import MISSING, Table, cell, fmt, n_note, ratio_label, read_table_csv, usual_n, write_table
from .summaries import norm_markdown, summary_markdown
from .tidy import (CURVE_COLUMNS, SCORES, accuracies, arch_label, arch_order, curve_rows, load_metrics,
                   method_label, method_order, ordered, pooled, profile_notes, protocol_line, provenance_note, sort_rows)

__all__ = ["main_table", "crossarch_table", "pruning_table", "ablation_table", "pool_table", "write_all", "KINDS", "CURVES_FILE",
           "MISSING", "Table", "write_table", "read_table_csv", "load_metrics", "load_published", "protocol_line",
           "summary_markdown", "norm_markdown"]

#: Metric folders (under ``results/metrics``) read by :func:`write_all`, and the table each feeds.
KINDS = {"eval": "table1_main", "crossarch": "table2_crossarch", "prune": "table3_pruning",
         "ablation": "table4_geodm_ablation"}
#: The accuracy-vs-iteration rows beside the tables, one line per ``run_id`` (``dvc plots``).
CURVES_FILE = "curves.csv"
#: Column names of the GeoDM settings in Table 4 (others: the setting's own name).
_SETTING_LABELS = {"factors": "Factors", "lambda_ot": "λ_OT", "learn": "Learn"}


def _cells(tidy: pd.DataFrame, keys: Sequence[str], digits: int) -> dict[tuple, str]:
    """Each row's shown cell (:func:`~.render.cell`, ``(n=…)`` off the usual count) by its ``keys``."""
    n_usual = usual_n(tidy)
    return {tuple(r[k] for k in keys): cell(r["mean"], r["std"], digits, r["n"], n_usual) for r in tidy.to_dict("records")}


def _groups(tidy: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The distinct ``keys`` (dataset, IPC, ...) with their first ``data_copy``, in row order."""
    return sort_rows(tidy[[*keys, "data_copy"]].drop_duplicates(keys), keys[2:])


def _pool(record: dict[str, Any]) -> bool:
    """Whether a record's method embeds with a pretrained pool (Table 5)."""
    return bool((record.get("protocol") or {}).get("pool"))


def _table(name: str, title: str, display: pd.DataFrame, data: pd.DataFrame, metrics: Sequence[dict[str, Any]],
           notes: Sequence[str], protocol: str | None = None) -> Table:
    """A :class:`Table` with the protocol line, then ``notes``, the profile warning and the provenance footnote."""
    return Table(name, title, display, data, protocol or protocol_line(metrics),
                 (*notes, *profile_notes(metrics), provenance_note(metrics)))


def main_table(metrics: Sequence[dict[str, Any]], *, published: pd.DataFrame | None = None, model: str = "convnet",
               methods: Sequence[str] | None = None, digits: int = 1, name: str = "table1_main") -> Table:
    """Table 1: test accuracy of ``model`` per dataset x IPC (rows) and method (columns; default: those present, in
    table order). A method with a published number in any row gets two more columns: the paper's number (``<M> paper``,
    ``†``: from the method's own paper) and ``Δ <M>`` = ours − paper. Pool-based records are Table 5's."""
    metrics = [m for m in metrics if (m.get("method") in methods if methods is not None else not _pool(m))]
    acc = accuracies(metrics)
    tidy = pooled(acc[acc["model"] == model], ["dataset", "ipc", "method", "model"])
    paper = paper_lookup(published)
    cols = list(methods) if methods is not None else method_order(tidy["method"])
    stats = {(r["dataset"], r["ipc"], r["method"]): r for r in tidy.to_dict("records")}
    shown = _cells(tidy, ["dataset", "ipc", "method"], digits)
    rows = _groups(tidy, ["dataset", "ipc"])
    with_paper = [me for me in cols if any((PAPER_DATASET.get(d, d), i, me) in paper
                                           for d, i in zip(rows["dataset"], rows["ipc"]))]
    display, data, columns = [], [], ["Dataset", "IPC"]
    for me in cols:
        columns += [method_label(me)] + ([f"{method_label(me)} paper", f"Δ {method_label(me)}"] if me in with_paper else [])
    for d, i, copy in rows.itertuples(index=False):
        line = {"Dataset": copy, "IPC": str(i)}
        for me in cols:
            c, p, label = stats.get((d, i, me)), paper.get((PAPER_DATASET.get(d, d), i, me)), method_label(me)
            pm, ps = (float(p.mean), float(p.std)) if p is not None else (math.nan, math.nan)
            delta = c["mean"] - pm if c and c["n"] > 0 else math.nan
            line[label] = shown.get((d, i, me), MISSING)
            if me in with_paper:
                mark = "" if p is None or p.source == "hdd_paper" else OTHER_SOURCE
                line[f"{label} paper"] = cell(pm, ps, digits) + mark if p is not None else MISSING
                line[f"Δ {label}"] = fmt(delta, digits, sign=True)
            if c or p is not None:
                data.append({**_NO_RESULT, **(c or {}), "dataset": d, "data_copy": copy, "ipc": i, "method": me,
                             "model": model, "paper_dataset": PAPER_DATASET.get(d, d) if p is not None else "",
                             "paper_mean": pm, "paper_std": ps, "paper_source": p.source if p is not None else "",
                             "delta": delta})
        display.append(line)
    notes = [n_note(tidy, arch_label(model))]
    if with_paper:
        used = sorted(dict.fromkeys(r["paper_source"] for r in data if r["paper_source"]), key=lambda s: SOURCES[s][0])
        other = "; ".join(SOURCES[s][1] for s in used if s != "hdd_paper")
        notes.append("Paper numbers: " + "; ".join([SOURCES[s][1] for s in used if s == "hdd_paper"]
                                                   + ([f"{OTHER_SOURCE} the method's own paper: {other}"] if other else []))
                     + ". Where two sources give a number for a cell, the HDD paper's is used (same protocol as "
                     "HDD's other numbers). Δ = ours − paper (means).")
    if any(PAPER_DATASET.get(d, d) != d for d in rows["dataset"]):
        notes.append("Runs on a data copy (e.g. CIFAR-10 (JPEG copy)) are compared with the papers' numbers on the "
                     "original dataset.")
    return _table(name, f"Test accuracy (%) of {arch_label(model)} trained on the distilled sets",
                  pd.DataFrame(display, columns=columns), pd.DataFrame(data, columns=_MAIN_DATA), metrics, notes)


#: Columns of Table 1's CSV, and their values for a cell without our result.
_MAIN_DATA = ["dataset", "data_copy", "ipc", "method", "model", "mean", "std", "n", "num_exp", "seeds",
              "paper_dataset", "paper_mean", "paper_std", "paper_source", "delta"]
_NO_RESULT = {"mean": math.nan, "std": math.nan, "n": 0, "num_exp": 0, "seeds": ""}


def crossarch_table(metrics: Sequence[dict[str, Any]], *, methods: Sequence[str] | None = None,
                    models: Sequence[str] | None = None, digits: int = 1, name: str = "table2_crossarch") -> Table:
    """Table 2: cross-architecture generalisation; rows dataset x IPC x method, columns architectures."""
    acc = accuracies(metrics)
    tidy = pooled(acc if models is None else acc[acc["model"].isin(models)], ["dataset", "ipc", "method", "model"])
    archs = list(models) if models is not None else arch_order(tidy["model"])
    shown = _cells(tidy, ["dataset", "ipc", "method", "model"], digits)
    present = set(zip(tidy["dataset"], tidy["ipc"], tidy["method"]))
    display = [[copy, str(i), method_label(me), *(shown.get((d, i, me, a), MISSING) for a in archs)]
               for d, i, copy in _groups(tidy, ["dataset", "ipc"]).itertuples(index=False)
               for me in (methods if methods is not None else method_order(tidy["method"]))
               if methods is not None or (d, i, me) in present]
    return _table(name, "Cross-architecture test accuracy (%) of the distilled sets",
                  pd.DataFrame(display, columns=["Dataset", "IPC", "Method", *map(arch_label, archs)]),
                  sort_rows(tidy, ["method", "model"]), metrics,
                  [n_note(tidy, "each architecture trained from scratch on the distilled set")])


def pruning_table(metrics: Sequence[dict[str, Any]], *, published: pd.DataFrame | None = None, digits: int = 1,
                  name: str = "table3_pruning") -> Table:
    """Table 3: accuracy after pruning the distilled set; rows dataset x IPC x method x score, columns keep ratios; a
    ``paper (hyperbolic)`` row follows a row group with published pruning numbers."""
    keys = ["dataset", "ipc", "method", "score", "keep"]
    tidy = pooled(accuracies(metrics), keys)
    pub = paper_numbers(published, pruning=True)
    keeps = sorted(set(tidy["keep"]), reverse=True)
    shown = _cells(tidy, keys, digits)
    display, paper_rows = [], []
    for d, i, me, copy in _groups(tidy, ["dataset", "ipc", "method"]).itertuples(index=False):
        base = [copy, str(i), method_label(me)]
        for s in ordered(tidy.loc[(tidy["dataset"] == d) & (tidy["ipc"] == i) & (tidy["method"] == me), "score"], SCORES):
            display.append([*base, SCORES.get(s, s), *(shown.get((d, i, me, s, kp), MISSING) for kp in keeps)])
        p = paper_pruning(pub, d, i, me)
        if len(p):
            hits = [p[np.isclose(p["keep"].astype(float), kp)] for kp in keeps]
            display.append([*base, "paper (hyperbolic)", *(cell(float(h["mean"].iloc[0]), float(h["std"].iloc[0]),
                                                                 digits) if len(h) else MISSING for h in hits)])
            paper_rows += [{"data_copy": copy, "dataset": d, "ipc": i, "method": me, "score": "paper_hyperbolic",
                            "keep": float(r.keep), "mean": float(r.mean), "std": float(r.std), "n": math.nan,
                            "num_exp": math.nan, "seeds": "", "source": r.source} for r in p.itertuples()]
    notes = [n_note(tidy, "ConvNet on the pruned set"),
             "Scores (hdd_lib.prune; the nearest are kept): hyperbolic = geodesic distance of each synthetic "
             "sample's lifted feature to its class's real Lorentzian centroid, Euclidean = feature-space distance "
             "to the real class mean, random = uniform scores. keep r = fraction of the set kept per class."]
    data = sort_rows(tidy, ["method", "score", "keep"]).assign(source="ours")
    if paper_rows:
        notes.append("Paper rows: HDD's hyperbolic pruning, " + SOURCES["hdd_paper"][1] + "; the paper's ratios "
                     "0/20/40/80 % are read as the fraction pruned (keep 1.0/0.8/0.6/0.2), a reading SPEC calls "
                     "unclear; dataset and IPC inferred.")
        data = pd.concat([data, pd.DataFrame(paper_rows)], ignore_index=True)
    return _table(name, "Test accuracy (%) after pruning the distilled set",
                  pd.DataFrame(display, columns=["Dataset", "IPC", "Method", "Score", *(f"keep {ratio_label(k)}" for k in keeps)]),
                  data, metrics, notes)


def ablation_table(metrics: Sequence[dict[str, Any]], *, model: str = "convnet", variants: Sequence[str] | None = None,
                   digits: int = 1, name: str = "table4_geodm_ablation") -> Table:
    """Table 4: GeoDM ablation; rows dataset x (base method) x variant, columns the GeoDM settings
    (``variant_settings``) that differ between rows, then IPC. Settings shared by every row go into the protocol line; a
    setting that differs between a row's IPCs reads ``a/b``. ``variants`` fixes the row order (default: first
    appearance); ``Method`` shows only with more than one base method."""
    acc = accuracies(metrics)
    tidy = pooled(acc[acc["model"] == model], ["dataset", "ipc", "method", "variant"])
    settings: dict[tuple, dict] = {}
    for m in metrics:
        settings.setdefault((m.get("dataset"), int(m.get("ipc", 0)), m.get("method"), m.get("variant", "?")),
                            m.get("variant_settings") or {})
    labels = {k: _SETTING_LABELS.get(k, k) for k in dict.fromkeys(k for s in settings.values() for k in s)}
    for k in labels:
        tidy[f"setting_{k}"] = [settings.get(c, {}).get(k) for c in
                                zip(tidy["dataset"], tidy["ipc"], tidy["method"], tidy["variant"])]
    ipcs = sorted(set(tidy["ipc"]))
    seen = list(dict.fromkeys(tidy["variant"]))
    order = seen if variants is None else [*variants, *(v for v in seen if v not in variants)]
    show_method = tidy["method"].nunique() > 1
    shown = _cells(tidy, ["dataset", "method", "variant", "ipc"], digits)
    display = []
    for d in sort_rows(tidy)["dataset"].unique():
        sel = tidy[tidy["dataset"] == d]
        for me in method_order(sel["method"]):
            for v in order:
                vs = sel[(sel["method"] == me) & (sel["variant"] == v)].sort_values("ipc")
                if variants is None and vs.empty:
                    continue
                line = {"Dataset": sel["data_copy"].iloc[0], **({"Method": method_label(me)} if show_method else {}),
                        "Variant": v}
                for k, label in labels.items():  # a setting that differs between the row's IPCs reads "a/b"
                    vals = [str(x) for x in vs[f"setting_{k}"] if x is not None and x == x]   # x != x: NaN
                    line[label] = "/".join(dict.fromkeys(vals)) or MISSING
                display.append({**line, **{f"IPC {i}": shown.get((d, me, v, i), MISSING) for i in ipcs}})
    display = pd.DataFrame(display, columns=["Dataset", *(["Method"] if show_method else []), "Variant",
                                             *labels.values(), *(f"IPC {i}" for i in ipcs)])
    shared = [c for c in labels.values() if len(display) and display[c].nunique() == 1]
    protocol = protocol_line(metrics)
    if shared:
        protocol += " GeoDM settings of every row: " + ", ".join(
            f"{c} = {str(display[c].iloc[0]).replace(MISSING, 'None')}" for c in shared) + "."
    notes = [n_note(tidy, arch_label(model)), "Variants: GeoDM factors (E Euclidean, H hyperbolic, S spherical), OT "
             "weight λ_OT and how the geometry parameters learn (joint, adversarial, fixed)."]
    return _table(name, "GeoDM ablation: test accuracy (%) per variant", display.drop(columns=shared),
                  sort_rows(tidy, ["method", "variant"]), metrics, notes, protocol)


def pool_table(metrics: Sequence[dict[str, Any]], *, bases: Sequence[str] = ("NCFM", "DSDM"), model: str = "convnet",
               digits: int = 1, name: str = "table5_pool") -> Table:
    """Table 5: the pretrained-pool bases (records with a ``protocol.pool``) alone and with the losses added to them
    (HDD, GeoDM); rows dataset x IPC x base, a column per added loss with ``(Δ)`` = it − the base alone (means)."""
    ms = [m for m in metrics if _pool(m)]
    acc = accuracies(ms)
    tidy = pooled(acc[acc["model"] == model], ["dataset", "ipc", "method", "model"])
    base, extra = {}, {}
    for me in tidy["method"]:
        base[me], _, rest = method_label(me).partition("+")
        extra[me] = f"+{rest}" if rest else "alone"
    tidy = tidy.assign(base=tidy["method"].map(base), added=tidy["method"].map(extra))
    cols = ["alone", *dict.fromkeys(e for e in tidy["added"] if e != "alone")]
    keys = ["dataset", "ipc", "base", "added"]
    shown, means, display = _cells(tidy, keys, digits), {tuple(r[:4]): r[4] for r in tidy[[*keys, "mean"]].itertuples(index=False)}, []
    for d, i, copy in _groups(tidy, ["dataset", "ipc"]).itertuples(index=False):
        for b in sorted(set(tidy.loc[(tidy["dataset"] == d) & (tidy["ipc"] == i), "base"]),
                        key=lambda b: (bases.index(b) if b in bases else len(bases), b)):
            line, ref = {"Dataset": copy, "IPC": str(i), "Base": b}, means.get((d, i, b, "alone"))
            for e in cols:
                c = means.get((d, i, b, e))
                delta = f" ({fmt(c - ref, digits, sign=True)})" if c is not None and ref is not None and e != "alone" else ""
                line[e] = shown.get((d, i, b, e), MISSING) + delta
            display.append(line)
    pools = sorted({f"{m.get('method_label', '?').split('+')[0]}: {p['nets']} nets x {p['epochs']} epochs"
                    for m in ms if (p := (m.get("protocol") or {}).get("pool"))})
    notes = (n_note(tidy, arch_label(model)),
             "Bases: NCFM embeds with pool networks interpolated between their initial and trained weights, plus a "
             "calibration cross-entropy; DSDM with a random trained pool network. +HDD and +GeoDM add their loss to "
             "NCFM's; +HDD replaces DSDM's Euclidean mean term. Pools: " + ("; ".join(pools) or "?") + ".",
             "Evaluation protocol(s): " + ("/".join(sorted({str(m["protocol"].get("eval_protocol", "dc")) for m in ms})) or "?")
             + " (dc: this project's DC protocol; the papers' own are options, see hdd_lib.config.EVAL_PROTOCOLS).")
    return _table(name, "Pretrained-pool bases alone and with HDD / GeoDM: test accuracy (%)",
                  pd.DataFrame(display, columns=["Dataset", "IPC", "Base", *cols]), sort_rows(tidy, ["base", "added"]), ms, notes)


def write_all(metrics_dir: str | os.PathLike, tables_dir: str | os.PathLike, *,
              methods: Sequence[str] | None = None, published: pd.DataFrame | None = None) -> list[Path]:
    """Write every table of the ``tables`` stage from ``metrics_dir/{eval,crossarch,prune,ablation}/*.json``; ``methods``:
    Table 1's method columns in order (``params.yaml`` ``report.methods``; default: those present; Table 2
    keeps those it has results for); ``published``: default the packaged numbers. Returns the written paths: each
    table's ``.md``, ``.csv``, ``.tex`` (:data:`KINDS` order; Table 5 last), then ``curves.csv``
    (:data:`~hdd_lib.report.tidy.CURVE_COLUMNS`: one row per evaluated run and logged iteration, no comment lines, for
    ``dvc plots`` grouped by ``run_id``). Every file is written atomically."""
    found = {kind: load_metrics(Path(metrics_dir) / kind) for kind in KINDS}
    cross = {m.get("method") for m in found["crossarch"]}
    built = [main_table(found["eval"], published=published, methods=methods),
             crossarch_table(found["crossarch"], methods=None if methods is None else [m for m in methods if m in cross]),
             pruning_table(found["prune"], published=published), ablation_table(found["ablation"]),
             pool_table(found["eval"])]
    written = [p for t in built for p in write_table(t, tables_dir).values()]
    text = curve_rows(found["eval"])[CURVE_COLUMNS].to_csv(index=False, float_format="%.6g", lineterminator="\n")
    return written + [atomic_write(Path(tables_dir) / CURVES_FILE, lambda f: f.write(text.encode()))]
