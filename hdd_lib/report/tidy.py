r"""Metric files -> tidy frames, display names, the protocol line: the one way the report reads results.

:func:`load_metrics` reads the metric dicts the pipeline writes (``results/metrics/<kind>/*.json``), :func:`accuracies`
gives one row per test accuracy and :func:`pooled` pools them over seeds: mean, population std (``np.std``, as the
DM/IDM/HDD scripts) and count of **all** accuracies of all seeds (``num_exp x num_eval``). Curve entries carry
``mean``/``std`` (and a count ``n``, default 1), pooled exactly: :math:`\mu = \sum_i n_i \mu_i / n`, :math:`\sigma^2 =
\sum_i n_i(\sigma_i^2 + \mu_i^2)/n - \mu^2`. A run id seen twice raises ``ValueError``. Method names come only from
:func:`method_label` and :func:`known_methods`; architecture names from :data:`hdd_lib.models.MODELS`; dataset names
from each metric's ``data_copy``, in the order of :data:`hdd_lib.data.SPECS`.
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

from ..data import SPECS
from ..models import MODELS

__all__ = ["SCORES", "CURVE_COLUMNS", "method_label", "learn_labels", "known_methods", "method_order", "arch_label", "arch_order", "ordered",
           "copy_label", "sort_rows", "load_metrics", "accuracies", "pooled", "curve_rows", "tidy_curves",
           "protocol_line", "provenance_note", "profile_notes"]

#: Display names of the methods read so far (``method`` -> ``method_label`` of each record, which the
#: stage computed from the strategy and loss registries), in the order first read.
_LABELS: dict[str, str] = {}
#: Display names of the pruning scores, in row order.
SCORES = {"hyperbolic": "hyperbolic", "euclidean": "Euclidean", "random": "random"}
#: Columns of ``results/tables/curves.csv`` (:func:`curve_rows`; ``dvc plots`` draws one line per ``run_id``).
CURVE_COLUMNS = ["iteration", "mean", "std", "run_id", "method", "dataset", "ipc", "seed", "data_copy"]


def method_label(name: str) -> str:
    """Display name of a method (the name itself when no record named it): every method label of the report."""
    return _LABELS.get(name, name)


def learn_labels(records: Sequence[dict[str, Any]]) -> None:
    """Remember each record's ``method_label`` (every frame of this module does, from its records)."""
    for r in records:
        if r.get("method") and r.get("method_label"):
            _LABELS.setdefault(r["method"], r["method_label"])


def _rank(name: str) -> tuple:
    label = _LABELS[name]
    base, *extra = label.split("+")
    return ({"DM": 0, "IDM": 1}.get(base, 2), base, len(extra), label)


def known_methods() -> list[str]:
    """Every method with a display name, in table order: DM-based, then IDM-based, then others; the strategy alone
    before it with other losses."""
    return sorted(_LABELS, key=_rank)


def method_order(names: Iterable[str]) -> list[str]:
    """Distinct ``names`` in table order (unknown ones last, sorted)."""
    return ordered(names, known_methods())


def arch_label(name: str) -> str:
    """Display name of an architecture: its class name in :data:`hdd_lib.models.MODELS`."""
    return MODELS[name].__name__ if name in MODELS else name


def arch_order(names: Iterable[str]) -> list[str]:
    """Distinct ``names`` in :data:`hdd_lib.models.MODELS` order (unknown ones last, sorted)."""
    return ordered(names, MODELS)


def ordered(keys: Iterable[Any], known: Iterable[Any]) -> list[Any]:
    """Distinct ``keys`` in the order of ``known``, then the unknown ones sorted."""
    keys, known = set(keys), list(known)
    return [k for k in known if k in keys] + sorted(keys - set(known), key=str)


def copy_label(m: dict[str, Any]) -> str:
    """How a metric names its data: its ``data_copy`` (else its dataset key)."""
    return m.get("data_copy") or m.get("dataset") or "?"


def sort_rows(df: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """``df`` sorted by dataset (:data:`~hdd_lib.data.SPECS` order), IPC, then ``by`` (stable)."""
    rank = {d: i for i, d in enumerate(ordered(df["dataset"], SPECS))}
    return df.sort_values(["dataset", "ipc", *by], key=lambda c: c.map(rank) if c.name == "dataset" else c,
                          kind="stable", ignore_index=True)


# ----------------------------------------------------------------------------- reading and pooling
def load_metrics(folder: str | os.PathLike, pattern: str = "*.json") -> list[dict[str, Any]]:
    """All records in ``folder``, sorted by file name (a missing folder: ``[]``); their method labels become those of
    :func:`method_label`."""
    records = [json.loads(p.read_text()) for p in sorted(Path(folder).glob(pattern))]
    learn_labels(records)
    return records


def _check_unique(metrics: Sequence[dict[str, Any]]) -> None:
    dup = sorted(i for i, c in Counter(m.get("run_id") for m in metrics).items() if c > 1 and i is not None)
    if dup:
        raise ValueError(f"metric files repeat run ids {dup}; each distillation must be counted once")


def accuracies(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per test accuracy in the metrics' ``results``: the run's fields (``run_id, data_copy, dataset, ipc,
    method, variant, seed``), then ``model`` (evaluations) or ``score`` and ``keep`` (pruning:
    ``results[score][keep]``), and ``acc``; a result without accuracies gives one NaN row."""
    _check_unique(metrics)
    learn_labels(metrics)
    rows, cols = [], ["run_id", "data_copy", "dataset", "ipc", "method", "variant", "seed"]
    for m in metrics:
        run = dict(zip(cols, (m.get("run_id"), copy_label(m), m.get("dataset"), int(m.get("ipc", 0)), m.get("method"),
                              m.get("variant"), m.get("seed"))))
        prune = "ratios" in m or m.get("kind") == "prune"
        for name, res in (m.get("results") or {}).items():
            for where, r in ([({"score": name, "keep": float(k)}, v) for k, v in (res or {}).items()] if prune
                             else [({"model": name}, res)]):
                accs = [a for a in (r or {}).get("accs") or [] if a is not None] or [math.nan]
                rows += [{**run, **where, "acc": float(a)} for a in accs]
    return pd.DataFrame(rows, columns=[*cols, "model", "score", "keep", "acc"])


def pooled(acc: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """:func:`accuracies` pooled over seeds: one row per distinct ``keys`` (first-seen order) with ``data_copy, *keys,
    mean, std`` (population), ``n`` (finite accuracies), ``num_exp`` (runs), ``seeds``."""
    cols = ["data_copy", *keys, "mean", "std", "n", "num_exp", "seeds"]
    if acc.empty:
        return pd.DataFrame(columns=cols)
    out = acc.groupby(list(keys), sort=False, dropna=False).agg(
        copies=("data_copy", lambda s: " / ".join(dict.fromkeys(s))), mean=("acc", "mean"),
        std=("acc", lambda a: float(np.std(a.dropna())) if a.notna().any() else math.nan),
        n=("acc", "count"), num_exp=("run_id", "nunique"),
        seeds=("seed", lambda s: " ".join(str(int(x)) for x in sorted(set(s.dropna())))))
    return out.reset_index().rename(columns={"copies": "data_copy"})[cols]


def curve_rows(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The accuracy-vs-iteration curves, one row per run and logged iteration (not pooled), with the
    :data:`CURVE_COLUMNS` (plus ``n``, the entry's count, default 1), sorted by ``run_id``, ``iteration``."""
    _check_unique(metrics)
    learn_labels(metrics)
    rows = [{"iteration": int(e["iteration"]), "mean": _float(e.get("mean")), "std": _float(e.get("std")),
             "run_id": m.get("run_id"), "method": m.get("method"), "dataset": m.get("dataset"),
             "ipc": int(m.get("ipc", 0)), "seed": m.get("seed"), "data_copy": copy_label(m), "n": int(e.get("n") or 1)}
            for m in metrics for e in m.get("curve") or [] if isinstance(e, dict) and "iteration" in e]
    return pd.DataFrame(rows, columns=[*CURVE_COLUMNS, "n"]).sort_values(["run_id", "iteration"], kind="stable",
                                                                         ignore_index=True)


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def tidy_curves(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The curves pooled over seeds (exact moments of the union): one row per ``dataset, ipc, method, iteration`` with
    ``data_copy, mean, std, n, num_exp``."""
    c = curve_rows(metrics).dropna(subset=["mean"])
    keys = ["dataset", "ipc", "method", "iteration"]
    c = c.assign(s1=c["n"] * c["mean"], s2=c["n"] * (c["std"].fillna(0.0) ** 2 + c["mean"] ** 2))
    g = c.groupby(keys, sort=True).agg(data_copy=("data_copy", "last"), s1=("s1", "sum"), s2=("s2", "sum"),
                                       n=("n", "sum"), num_exp=("run_id", "count")).reset_index()
    mean = g["s1"] / g["n"]
    return g.assign(mean=mean, std=np.sqrt((g["s2"] / g["n"] - mean**2).clip(lower=0.0)))[
        [*keys[:3], "data_copy", "iteration", "mean", "std", "n", "num_exp"]]


# ----------------------------------------------------------------------------- protocol line and notes
def _values(metrics: Sequence[dict[str, Any]], get) -> str:
    def value(m: dict[str, Any]) -> Any:
        try:
            return get(m)
        except (KeyError, TypeError, AttributeError):
            return None
    vals = dict.fromkeys(v for v in map(value, metrics) if v is not None and not isinstance(v, dict))
    return "/".join(str(v) for v in sorted(vals, key=str)) or "?"


def _span(values: Iterable[int]) -> str:
    v = sorted(set(values))
    return "?" if not v else str(v[0]) if len(v) == 1 else f"{v[0]}–{v[-1]}"


def protocol_line(metrics: Sequence[dict[str, Any]], *, num_exp: Iterable[int] | None = None) -> str:
    """One line saying how the numbers were obtained, from the metrics' ``protocol`` and ``provenance``: iterations,
    ``num_exp x num_eval``, epochs, profile, device (where a record names it), data copy. ``num_exp`` (distillations
    per cell) defaults to the seeds per ``(dataset, ipc, method, variant)``. Differing values are joined with ``/``
    (spans with ``–``), unknown ones read ``?``; data copies run with different protocols get one clause each."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        groups.setdefault(copy_label(m), []).append(m)
    clauses = {name: _clause(ms, num_exp) for name, ms in groups.items()}
    if len(set(clauses.values())) > 1:
        return "Protocol per data copy: " + " ".join(f"{name}: {c}." for name, c in sorted(clauses.items()))
    return f"Protocol: {_clause(metrics, num_exp)}; data: {_values(metrics, copy_label)}."


def _clause(metrics: Sequence[dict[str, Any]], num_exp: Iterable[int] | None) -> str:
    if num_exp is None:
        counts = Counter((m.get("dataset"), m.get("ipc"), m.get("method"), m.get("variant")) for m in metrics)
        num_exp = counts.values()
    p = lambda key: lambda m: m["protocol"][key]  # noqa: E731

    def epochs(m: dict[str, Any]) -> str:  # stages record a non-round schedule as eval_schedule
        official = m["protocol"].get("eval_schedule") == "official"
        return f"{m['protocol']['epochs']}{' (official schedule: +1 epoch, lr drop one later)' if official else ''}"

    device = ""  # records made by the pipeline keep the machine out (results/provenance): README names it
    if any((m.get("provenance") or {}).get("device") for m in metrics):
        device = f"; device: {_values(metrics, lambda m: m['provenance']['device'])}"
    return (f"{_values(metrics, p('iterations'))} distillation iterations; "
            f"num_exp × num_eval = {_span(num_exp)} × {_values(metrics, p('num_eval'))} "
            f"(distillations × evaluated networks per cell); {_values(metrics, epochs)} training epochs; "
            f"profile: {_values(metrics, p('profile'))}{device}")


def provenance_note(metrics: Sequence[dict[str, Any]]) -> str:
    """A footnote: how many records, and digests of the distillation code that produced them."""
    codes = _values(metrics, lambda m: str((m.get("code") or {}).get("distill") or "unknown"))
    return f"Generated from {len(metrics)} record(s); distillation code digest(s): {codes}."


def profile_notes(metrics: Sequence[dict[str, Any]]) -> list[str]:
    """A footnote (or none) warning that some metrics come from a reduced, non-paper profile."""
    profiles = {(m.get("protocol") or {}).get("profile") for m in metrics} - {None, "paper"}
    return [f"Profile {', '.join(sorted(map(str, profiles)))}: a reduced protocol, not comparable with the papers' "
            "numbers."] if profiles else []
