"""Short Markdown summaries of one stage's output, for the notebooks to display.

Each function takes the dict a stage of :mod:`hdd_lib.experiments` returns (and writes as JSON) and
returns a Markdown string; nothing is computed beyond formatting. ::

    from IPython.display import Markdown, display
    from hdd_lib.report import tables
    display(Markdown(tables.summary_markdown(summary)))        # 00_data: experiments.dataset_summary
    display(Markdown(tables.norm_markdown(geo["summary"])))    # 01_geometry: experiments.geometry_summary
    display(Markdown(tables.metrics_markdown(metrics)))        # 03_evaluate: experiments.evaluate_cell
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .render import MISSING, cell
from .tidy import ARCHITECTURES, METHODS, label, ordered, protocol_line

__all__ = ["summary_markdown", "norm_markdown", "metrics_markdown", "NORMALISATION_TOLERANCE"]

#: How far the normalised training images' per-channel mean (from 0) and std (from 1) may be before
#: :func:`summary_markdown` says the spec's constants do not fit the data copy.
NORMALISATION_TOLERANCE = 0.1

#: Norm statistics shown by :func:`norm_markdown`, in order, where present.
_NORM_COLUMNS = {"min": "min", "q05": "5 %", "q25": "25 %", "median": "median", "q75": "75 %", "q95": "95 %",
                 "max": "max", "mean": "mean"}


def _num(x: Any, digits: int = 2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return MISSING
    return f"{x:.{digits}f}" if math.isfinite(x) else MISSING


def _values(xs: Sequence[Any] | None, digits: int = 3) -> str:
    return ", ".join(_num(x, digits) for x in xs) if xs else MISSING


def _span(counts: Sequence[int] | None) -> str:
    if not counts:
        return MISSING
    lo, hi = min(counts), max(counts)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(str(v) for v in r) + " |" for r in rows)]


def summary_markdown(summary: dict[str, Any]) -> str:
    """A dataset summary (:func:`hdd_lib.experiments.dataset_summary`) as Markdown.

    Shows the data copy, image shape and class count, split sizes with the range of per-class
    counts, the per-channel mean and std of the normalised training images (a remark when they are
    further than :data:`NORMALISATION_TOLERANCE` from 0 and 1) and the data digest.
    """
    spec = summary.get("spec") or {}
    shape = "×".join(str(v) for v in [spec.get("channels", "?"), *(spec.get("image_size") or ("?", "?"))])
    n_classes = spec.get("num_classes", len(summary.get("train_per_class") or []))
    lines = [f"**{summary.get('data_copy') or summary.get('dataset', '?')}** (`{summary.get('dataset', '?')}`): "
             f"{n_classes} classes, {shape} images", ""]
    lines += _table(["split", "images", "per class (min–max)"], [":---", "---:", "---:"],
                    [(split, summary.get(f"{split}_size", MISSING), _span(summary.get(f"{split}_per_class")))
                     for split in ("train", "test")])
    mean, std = summary.get("normalised_mean") or [], summary.get("normalised_std") or []
    lines += ["", f"Normalised training images, per channel: mean {_values(mean)}; std {_values(std)}."]
    off = [abs(float(m)) for m in mean] + [abs(float(s) - 1.0) for s in std]
    if off and max(off) > NORMALISATION_TOLERANCE:
        lines[-1] += (f" These are more than {NORMALISATION_TOLERANCE:g} from 0 and 1: the spec's mean/std "
                      "do not fit this copy of the data.")
    digest = summary.get("data_digest")
    seconds = summary.get("load_seconds")
    lines += ["", f"Data digest: `{digest or MISSING}`" + (f"; loaded in {_num(seconds, 1)} s." if seconds is not None
                                                          else ".")]
    return "\n".join(lines) + "\n"


def norm_markdown(summary: dict[str, Any]) -> str:
    r"""Feature norms against the clamp radius (``geometry_summary(...)["summary"]``) as Markdown.

    Shows the feature dimension, the norm statistics present (min, quantiles, median, max, mean),
    the threshold :math:`\text{clamp}\sqrt{k}` (10·√k for HDD) and the fraction of features at or
    above it, which ``expmap0`` maps to the same distance from the origin (the rim of the disk).
    """
    norms = summary.get("norms") or {}
    k = float(summary.get("k", 1.0))
    threshold = float(norms.get("threshold", math.nan))
    clamp = threshold / math.sqrt(k) if math.isfinite(threshold) else math.nan
    lines = [f"**{summary.get('data_copy') or summary.get('dataset', '?')}**: {norms.get('count', '?')} real "
             f"features of dimension {summary.get('feature_dim', '?')} (random ConvNet), k = {k:g}", ""]
    cols = [key for key in _NORM_COLUMNS if key in norms]
    if cols:
        lines += ["Feature norms |f|:", ""]
        lines += _table([_NORM_COLUMNS[c] for c in cols], ["---:"] * len(cols), [[_num(norms[c]) for c in cols]])
        lines.append("")
    frac = float(norms.get("fraction_saturated", math.nan))
    if not math.isfinite(threshold):
        lines.append("No radius clamp: no feature saturates.")
    else:
        share = f"{100 * frac:.1f} %" if math.isfinite(frac) else MISSING
        lines.append(f"Clamp radius {clamp:g}·√k = {threshold:.2f}: {share} of the features have |f| ≥ {threshold:.2f} "
                     f"and are mapped to distance exactly {threshold:.2f} from the origin (the rim of the disk).")
    return "\n".join(lines) + "\n"


def metrics_markdown(metrics: dict[str, Any], *, digits: int = 2) -> str:
    """One evaluation metrics dict (:func:`hdd_lib.experiments.evaluate_cell`, kinds ``eval``,
    ``crossarch``, ``ablation``) as Markdown: per architecture the mean ± std test accuracy (%),
    the number of networks and the seconds per network, then the protocol line."""
    variant = metrics.get("variant")
    head = (f"**{label(metrics.get('method', '?'), METHODS)}{f' ({variant})' if variant else ''} on "
            f"{metrics.get('data_copy') or metrics.get('dataset', '?')}, IPC {metrics.get('ipc', '?')}, "
            f"seed {metrics.get('seed', '?')}** (`{metrics.get('run_id', '?')}`, {metrics.get('kind', 'eval')})")
    results = metrics.get("results") or {}
    rows = []
    for model in ordered(results, ARCHITECTURES):
        r = results[model] or {}
        n = len(r.get("accs") or [])
        mean, std = float(r.get("mean", math.nan)), float(r.get("std", math.nan))
        rows.append((label(model, ARCHITECTURES), cell(mean, std, digits), n or MISSING,
                     _num(r.get("seconds_per_model"), 1)))
    lines = [head, ""]
    if rows:
        lines += _table(["Architecture", "test accuracy (%)", "n", "s/model"], [":---", "---:", "---:", "---:"], rows)
    else:
        lines.append(f"{MISSING} no results.")
    seconds = metrics.get("distill_seconds")
    if seconds is not None:
        lines += ["", f"Distillation: {_num(seconds, 0)} s."]
    lines += ["", f"*{protocol_line([metrics])}*"]
    return "\n".join(lines) + "\n"
