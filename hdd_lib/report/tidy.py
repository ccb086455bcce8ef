r"""Metric files -> tidy numbers: pooling over seeds, the protocol line, display names.

Inputs are the metric dicts the pipeline writes (``results/metrics/{eval,crossarch,prune,ablation}/
*.json``, read with :func:`load_metrics`); outputs are ``pandas`` frames with one row per cell,
which :mod:`~hdd_lib.report.tables` lays out and :mod:`~hdd_lib.report.figures` plots. ::

    from hdd_lib.report import tidy
    metrics = tidy.load_metrics("results/metrics/eval")
    tidy.tidy_eval(metrics)          # dataset, ipc, method, model, mean, std, n, num_exp, seeds
    tidy.protocol_line(metrics)      # "Protocol: 20000 distillation iterations; ..."

Statistics
----------
Each metrics file is one distillation (one ``seed``) evaluated by ``num_eval`` networks. A cell
pools **all** accuracies of all its seeds (``num_exp x num_eval`` values) and reports their mean, the
population standard deviation (``np.std``, as the DM/IDM/HDD scripts) and ``n``. Where a file only
has ``mean``/``std`` (accuracy-vs-iteration curves), the union's moments are pooled exactly:
:math:`\mu = \sum_i n_i \mu_i / n`, :math:`\sigma^2 = \sum_i n_i(\sigma_i^2 + \mu_i^2)/n - \mu^2`.
A run id seen twice raises ``ValueError`` (each distillation is counted once).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "METHODS", "DATASETS", "ARCHITECTURES", "SCORES", "CURVE_COLUMNS", "label", "ordered", "copy_label",
    "load_metrics", "pool", "tidy_eval", "tidy_prune", "tidy_ablation", "tidy_curves", "curve_rows",
    "protocol_line", "provenance_note", "profile_notes",
]

#: Display names of the methods, in table order.
METHODS = {"dm": "DM", "dm_hdd": "DM+HDD", "idm": "IDM", "idm_hdd": "IDM+HDD", "geodm": "GeoDM",
           "idm_geodm": "IDM+GeoDM"}
#: Display names of the datasets (a metric's ``data_copy`` takes precedence), in table order.
DATASETS = {"mnist": "MNIST", "fashionmnist": "Fashion-MNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
            "cifar10_jpeg": "CIFAR-10 (JPEG copy)", "cifar100": "CIFAR-100", "tinyimagenet": "Tiny-ImageNet",
            "digits": "Digits (8x8)"}
#: Display names of the evaluation architectures, in column order.
ARCHITECTURES = {"convnet": "ConvNet", "alexnet": "AlexNet", "vgg11": "VGG11", "resnet18": "ResNet18",
                 "resnet18_bn": "ResNet18-BN"}
#: Display names of the pruning scores, in row order.
SCORES = {"hyperbolic": "hyperbolic", "euclidean": "Euclidean", "random": "random"}


def label(key: str, names: dict[str, str]) -> str:
    """Display name of ``key`` in ``names`` (the key itself when unknown)."""
    return names.get(key, key)


def ordered(keys: Iterable[str], names: dict[str, str]) -> list[str]:
    """Known keys in the order of ``names``, then unknown ones sorted."""
    keys = set(keys)
    return [k for k in names if k in keys] + sorted(k for k in keys if k not in names)


def copy_label(m: dict[str, Any]) -> str:
    """How a metric names its data (its ``data_copy``, else the dataset's display name)."""
    return m.get("data_copy") or label(m.get("dataset", "?"), DATASETS)


# ----------------------------------------------------------------------------- tidy numbers
def load_metrics(folder: str | os.PathLike, pattern: str = "*.json") -> list[dict[str, Any]]:
    """All metric dicts in ``folder`` (sorted by file name); a missing folder gives ``[]``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob(pattern))]


def pool(parts: Sequence[dict[str, Any]]) -> tuple[float, float, int]:
    """Mean, population std and count of the union of ``parts``.

    Each part is ``{"accs": [...]}`` or ``{"mean", "std"}`` with an optional count ``n`` (default 1);
    NaN accuracies are dropped. Returns ``(nan, nan, 0)`` when nothing is left.
    """
    s1 = s2 = 0.0
    n = 0
    for p in parts:
        accs = p.get("accs")
        if accs is not None:
            a = np.asarray([x for x in accs if x is not None], dtype=np.float64)
            a = a[np.isfinite(a)]
            s1, s2, n = s1 + a.sum(), s2 + (a**2).sum(), n + a.size
        elif p.get("mean") is not None and math.isfinite(float(p["mean"])):
            m, s, c = float(p["mean"]), float(p.get("std") or 0.0), int(p.get("n") or 1)
            s1, s2, n = s1 + c * m, s2 + c * (s * s + m * m), n + c
    if n == 0:
        return math.nan, math.nan, 0
    mean = s1 / n
    return mean, math.sqrt(max(s2 / n - mean * mean, 0.0)), n


def _check_unique(metrics: Sequence[dict[str, Any]]) -> None:
    counts = Counter(m.get("run_id") for m in metrics if m.get("run_id") is not None)
    dup = sorted(i for i, c in counts.items() if c > 1)
    if dup:
        raise ValueError(f"metric files repeat run ids {dup}; each distillation must be counted once")


def _frame(rows: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    cols = ["data_copy", *keys, "mean", "std", "n", "num_exp", "seeds"]
    if not rows:
        return pd.DataFrame(columns=cols)
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(tuple(r[k] for k in keys), {"parts": [], "seeds": [], "copies": []})
        g["parts"].append(r["part"])
        g["seeds"].append(r["seed"])
        g["copies"].append(r["data_copy"])
    out = []
    for key, g in groups.items():
        mean, std, n = pool(g["parts"])
        seeds = sorted({s for s in g["seeds"] if s is not None})
        out.append({"data_copy": " / ".join(dict.fromkeys(g["copies"])), **dict(zip(keys, key)),
                    "mean": mean, "std": std, "n": n, "num_exp": len(g["seeds"]),
                    "seeds": " ".join(str(s) for s in seeds)})
    return pd.DataFrame(out, columns=cols)


def tidy_eval(metrics: Sequence[dict[str, Any]], *, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Pool evaluation (or cross-architecture) metrics over seeds.

    Returns
    -------
    DataFrame with one row per ``(dataset, ipc, method, model)``: ``data_copy, dataset, ipc, method,
    model, mean, std, n, num_exp, seeds`` (``n`` accuracies from ``num_exp`` distillations).
    """
    _check_unique(metrics)
    rows = []
    for m in metrics:
        for model, res in (m.get("results") or {}).items():
            if models is None or model in models:
                rows.append({"data_copy": copy_label(m), "dataset": m.get("dataset"), "ipc": int(m.get("ipc", 0)),
                             "method": m.get("method"), "model": model, "seed": m.get("seed"), "part": res or {}})
    return _frame(rows, ["dataset", "ipc", "method", "model"])


def tidy_prune(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Pool pruning metrics over seeds: one row per ``(dataset, ipc, method, score, keep)``."""
    _check_unique(metrics)
    rows = []
    for m in metrics:
        for score, by_ratio in (m.get("results") or {}).items():
            for ratio, res in (by_ratio or {}).items():
                rows.append({"data_copy": copy_label(m), "dataset": m.get("dataset"), "ipc": int(m.get("ipc", 0)),
                             "method": m.get("method"), "score": score, "keep": float(ratio),
                             "seed": m.get("seed"), "part": res or {}})
    return _frame(rows, ["dataset", "ipc", "method", "score", "keep"])


def tidy_ablation(metrics: Sequence[dict[str, Any]], *, model: str = "convnet") -> pd.DataFrame:
    """Pool GeoDM ablation metrics over seeds: one row per ``(dataset, ipc, method, variant)``, plus one
    column per ``variant_settings`` key (``setting_<key>``), each row with its own cell's settings
    (a variant may run with other settings on another dataset or IPC)."""
    _check_unique(metrics)
    rows, settings = [], {}
    for m in metrics:
        variant = m.get("variant", "?")
        key = (m.get("dataset"), int(m.get("ipc", 0)), m.get("method"), variant)
        settings.setdefault(key, m.get("variant_settings") or {})
        res = (m.get("results") or {}).get(model)
        if res is not None:
            rows.append({"data_copy": copy_label(m), "dataset": m.get("dataset"), "ipc": int(m.get("ipc", 0)),
                         "method": m.get("method"), "variant": variant, "seed": m.get("seed"), "part": res})
    df = _frame(rows, ["dataset", "ipc", "method", "variant"])
    keys = list(dict.fromkeys(k for s in settings.values() for k in s))
    cells = list(zip(df["dataset"], df["ipc"], df["method"], df["variant"]))
    for k in keys:
        df[f"setting_{k}"] = [settings.get(c, {}).get(k) for c in cells]
    return df


def tidy_curves(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy-vs-iteration curves pooled over seeds: ``dataset, ipc, method, data_copy, iteration,
    mean, std, n, num_exp``. A curve entry counts ``n`` (or ``len(accs)``, else 1) models."""
    _check_unique(metrics)
    groups: dict[tuple, list] = {}
    copies: dict[tuple, str] = {}
    for m in metrics:
        for e in m.get("curve") or []:
            if not isinstance(e, dict) or "iteration" not in e:
                continue
            key = (m.get("dataset"), int(m.get("ipc", 0)), m.get("method"), int(e["iteration"]))
            groups.setdefault(key, []).append(e)
            copies[key] = copy_label(m)
    rows = [{"dataset": d, "ipc": i, "method": me, "data_copy": copies[(d, i, me, it)], "iteration": it,
             **dict(zip(("mean", "std", "n"), pool(parts))), "num_exp": len(parts)}
            for (d, i, me, it), parts in groups.items()]
    cols = ["dataset", "ipc", "method", "data_copy", "iteration", "mean", "std", "n", "num_exp"]
    return pd.DataFrame(rows, columns=cols).sort_values(["dataset", "ipc", "method", "iteration"], ignore_index=True)


#: Columns of :func:`curve_rows` (``results/tables/curves.csv``, read by ``dvc plots``).
CURVE_COLUMNS = ["iteration", "mean", "std", "run_id", "method", "dataset", "ipc", "seed", "data_copy"]


def curve_rows(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy-vs-iteration curves, one row per run and logged iteration (not pooled): the
    :data:`CURVE_COLUMNS`, sorted by ``run_id`` then ``iteration``. Entries without an
    ``iteration`` are skipped; a missing ``std`` is NaN."""
    _check_unique(metrics)
    rows = []
    for m in metrics:
        for e in m.get("curve") or []:
            if not isinstance(e, dict) or "iteration" not in e:
                continue
            rows.append({"iteration": int(e["iteration"]), "mean": _float(e.get("mean")), "std": _float(e.get("std")),
                         "run_id": m.get("run_id"), "method": m.get("method"), "dataset": m.get("dataset"),
                         "ipc": int(m.get("ipc", 0)), "seed": m.get("seed"), "data_copy": copy_label(m)})
    df = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return df.sort_values(["run_id", "iteration"], kind="stable", ignore_index=True) if len(df) else df


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


# ----------------------------------------------------------------------------- protocol line
def _values(metrics: Sequence[dict[str, Any]], get) -> str:
    vals = []
    for m in metrics:
        try:
            v = get(m)
        except (KeyError, TypeError, AttributeError):
            v = None
        if v is not None and v not in vals:
            vals.append(v)
    return "/".join(str(v) for v in sorted(vals, key=str) if not isinstance(v, dict)) or "?"


def _span(values: Iterable[int]) -> str:
    values = sorted(set(values))
    if not values:
        return "?"
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def protocol_line(metrics: Sequence[dict[str, Any]], *, num_exp: Iterable[int] | None = None) -> str:
    """One line stating how the numbers were obtained, from the metrics' ``protocol`` and
    ``provenance``: iterations, ``num_exp x num_eval``, epochs, data copy, profile, device.

    ``num_exp`` (distillations per cell) defaults to the seeds per ``(dataset, ipc, method)``.
    Differing values are joined with ``/`` (spans with ``–``); unknown ones read ``?``. When the
    data copies were run with different protocols, each copy gets its own clause.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        groups.setdefault(copy_label(m), []).append(m)
    clauses = {name: _protocol_clause(ms, num_exp) for name, ms in groups.items()}
    if len(set(clauses.values())) > 1:
        return "Protocol per data copy: " + " ".join(f"{name}: {c}." for name, c in sorted(clauses.items()))
    data = _values(metrics, copy_label) if metrics else "?"
    return f"Protocol: {_protocol_clause(metrics, num_exp)}; data: {data}."


def _protocol_clause(metrics: Sequence[dict[str, Any]], num_exp: Iterable[int] | None) -> str:
    """The protocol line's body, without the data copy."""
    if num_exp is None:
        counts: dict[tuple, set] = {}
        for m in metrics:
            key = (m.get("dataset"), m.get("ipc"), m.get("method"), m.get("variant"))
            counts.setdefault(key, set()).add(m.get("seed", m.get("run_id")))
        num_exp = [len(s) for s in counts.values()]
    p = lambda key: (lambda m: m["protocol"][key])  # noqa: E731
    return (f"{_values(metrics, p('iterations'))} distillation iterations; "
            f"num_exp × num_eval = {_span(num_exp)} × {_values(metrics, p('num_eval'))} "
            f"(distillations × evaluated networks per cell); {_values(metrics, p('epochs'))} training epochs; "
            f"profile: {_values(metrics, p('profile'))}; "
            f"device: {_values(metrics, lambda m: m['provenance']['device'])}")


def provenance_note(metrics: Sequence[dict[str, Any]]) -> str:
    """A footnote: how many metric files, and the code commits that wrote them."""
    commits = _values(metrics, lambda m: str(m["provenance"]["git_commit"])[:12])
    return f"Generated from {len(metrics)} metric file(s); code commit(s): {commits}."


def profile_notes(metrics: Sequence[dict[str, Any]]) -> list[str]:
    """A footnote (or none) warning that some metrics come from a reduced, non-paper profile."""
    profiles = {((m.get("protocol") or {}).get("profile")) for m in metrics} - {None, "paper"}
    if not profiles:
        return []
    return [f"Profile {', '.join(sorted(map(str, profiles)))}: a reduced protocol, not comparable with the papers' numbers."]

