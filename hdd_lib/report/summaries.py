"""Short Markdown of one stage's output for the notebooks: formatting only, nothing computed. ::

    display(Markdown(tables.summary_markdown(summary)))        # 00_data: stages.dataset_summary
    display(Markdown(tables.norm_markdown(geo["summary"])))    # 01_geometry: stages.geometry_summary
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from .render import MISSING, fmt

__all__ = ["summary_markdown", "norm_markdown", "NORMALISATION_TOLERANCE"]

#: How far the normalised training images' per-channel mean (from 0) and std (from 1) may be before
#: :func:`summary_markdown` says the spec's constants do not fit the data copy.
NORMALISATION_TOLERANCE = 0.1
#: Norm statistics shown by :func:`norm_markdown`, in order, where present.
_NORM_COLUMNS = {"min": "min", "q05": "5 %", "q25": "25 %", "median": "median", "q75": "75 %", "q95": "95 %",
                 "max": "max", "mean": "mean"}


def _num(x: Any, digits: int = 2) -> str:
    try:
        return fmt(float(x), digits)
    except (TypeError, ValueError):
        return MISSING


def _table(rows: Sequence[dict[str, Any]], right: Sequence[str]) -> str:
    df = pd.DataFrame(rows).astype(str)
    return df.to_markdown(index=False, disable_numparse=True,
                          colalign=["right" if c in right else "left" for c in df.columns])


def summary_markdown(summary: dict[str, Any]) -> str:
    """A dataset summary (:func:`hdd_lib.stages.dataset_summary`): shape, classes, split sizes and per-class ranges, the
    normalised images' per-channel mean and std (remark beyond :data:`NORMALISATION_TOLERANCE`), digest."""
    spec = summary.get("spec") or {}
    shape = "×".join(str(v) for v in [spec.get("channels", "?"), *(spec.get("image_size") or ("?", "?"))])
    classes = spec.get("num_classes", len(summary.get("train_per_class") or []))
    span = lambda c: MISSING if not c else f"{min(c)}" if min(c) == max(c) else f"{min(c)}–{max(c)}"  # noqa: E731
    rows = [{"split": s, "images": summary.get(f"{s}_size", MISSING), "per class (min–max)": span(summary.get(f"{s}_per_class"))}
            for s in ("train", "test")]
    mean, std = summary.get("normalised_mean") or [], summary.get("normalised_std") or []
    values = lambda xs: ", ".join(_num(x, 3) for x in xs) or MISSING  # noqa: E731
    norm = f"Normalised training images, per channel: mean {values(mean)}; std {values(std)}."
    if max([abs(float(m)) for m in mean] + [abs(float(s) - 1.0) for s in std], default=0.0) > NORMALISATION_TOLERANCE:
        norm += (f" These are more than {NORMALISATION_TOLERANCE:g} from 0 and 1: the spec's mean/std do not fit "
                 "this copy of the data.")
    seconds = summary.get("load_seconds")
    return "\n".join([f"**{summary.get('data_copy') or summary.get('dataset', '?')}** (`{summary.get('dataset', '?')}`): "
                      f"{classes} classes, {shape} images", "", _table(rows, ["images", "per class (min–max)"]), "", norm,
                      "", f"Data digest: `{summary.get('data_digest') or MISSING}`"
                      + (f"; loaded in {_num(seconds, 1)} s." if seconds is not None else ".")]) + "\n"


def norm_markdown(summary: dict[str, Any]) -> str:
    r"""Feature norms (``geometry_summary(...)["summary"]``): statistics, the clamp radius :math:`\text{clamp}\sqrt{k}`
    and the fraction at or above it (``expmap0`` maps them all to that distance: the rim of the disk)."""
    norms, k = summary.get("norms") or {}, float(summary.get("k", 1.0))
    threshold = float(norms.get("threshold", math.nan))
    lines = [f"**{summary.get('data_copy') or summary.get('dataset', '?')}**: {norms.get('count', '?')} real "
             f"features of dimension {summary.get('feature_dim', '?')} (random ConvNet), k = {k:g}", ""]
    cols = [key for key in _NORM_COLUMNS if key in norms]
    if cols:
        lines += ["Feature norms |f|:", "", _table([{_NORM_COLUMNS[c]: _num(norms[c]) for c in cols}],
                                                   list(_NORM_COLUMNS.values())), ""]
    if not math.isfinite(threshold):
        lines.append("No radius clamp: no feature saturates.")
    else:
        frac = float(norms.get("fraction_saturated", math.nan))
        share = f"{100 * frac:.1f} %" if math.isfinite(frac) else MISSING
        lines.append(f"Clamp radius {threshold / math.sqrt(k):g}·√k = {threshold:.2f}: {share} of the features have "
                     f"|f| ≥ {threshold:.2f} and are mapped to distance exactly {threshold:.2f} from the origin "
                     "(the rim of the disk).")
    return "\n".join(lines) + "\n"

