"""The papers' published numbers (``hdd_lib/published.csv``) and the rule choosing among them.

File format
-----------
Columns ``dataset, ipc, method, mean, std, source, note``; ``source`` is a key of :data:`SOURCES`.
Pruning rows use ``method = "<method>@keep<ratio>"`` (e.g. ``dm_hdd@keep0.8``) for HDD's
hyperbolic pruning at that keep ratio; the paper's "ratio 0/20/40/80 %" is read as the fraction
pruned (keep 1.0/0.8/0.6/0.2; the reading is unclear, said in ``note``). Those rows are filed under
CIFAR-10 IPC 10 by inference (IDM+HDD at 0 % pruned equals its CIFAR-10 IPC 10 number, 61.3).

Rule
----
Where two sources give a number for the same cell, the source with the lowest priority in
:data:`SOURCES` wins, i.e. the HDD paper's (same protocol as HDD's other numbers) over the DM/IDM
papers'. Runs on ``cifar10_jpeg`` are compared with ``cifar10`` numbers (:data:`PAPER_DATASET`). ::

    from hdd_lib.report import published
    published.paper_numbers()                  # one row per (dataset, ipc, method)
    published.paper_numbers(pruning=True)      # one row per (dataset, ipc, base_method, keep)
"""

from __future__ import annotations

import io
import os
from importlib import resources

import pandas as pd

__all__ = ["SOURCES", "PAPER_DATASET", "OTHER_SOURCE", "PRUNE_TAG", "load_published", "paper_numbers",
           "paper_lookup"]

#: Published-number sources: key -> (priority, lower wins; citation).
SOURCES = {
    "hdd_paper": (0, "HDD (Li et al., NeurIPS 2025), from a secondary summary: approximate"),
    "dm_paper": (1, "DM (Zhao & Bilen, WACV 2023)"),
    "idm_paper": (1, "IDM (Zhao et al., CVPR 2023)"),
}
#: Dataset whose published numbers a data copy is compared with.
PAPER_DATASET = {"cifar10_jpeg": "cifar10"}
#: Marks a paper cell that comes from the method's own paper rather than the HDD paper.
OTHER_SOURCE = "†"
#: Separates a pruning row's method from its keep ratio (``dm_hdd@keep0.8``).
PRUNE_TAG = "@keep"


def load_published(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read ``published.csv`` (the packaged one by default).

    Returns
    -------
    DataFrame with the file's columns plus ``base_method`` (``method`` without its pruning tag)
    and ``keep`` (keep ratio of a pruning row, NaN otherwise); unknown sources raise ``ValueError``.
    """
    if path is None:
        text = resources.files("hdd_lib").joinpath("published.csv").read_text()
        df = pd.read_csv(io.StringIO(text))
    else:
        df = pd.read_csv(path)
    unknown = sorted(set(df["source"]) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown} in published numbers; known: {', '.join(SOURCES)}")
    split = df["method"].str.split(PRUNE_TAG, n=1, expand=True).reindex(columns=[0, 1])
    df["base_method"] = split[0]
    df["keep"] = pd.to_numeric(split[1], errors="coerce")
    df["note"] = df["note"].fillna("")
    return df


def paper_numbers(published: pd.DataFrame | None = None, *, pruning: bool = False) -> pd.DataFrame:
    """One published number per cell, resolved by source priority (:data:`SOURCES`).

    Returns the main-table rows (``pruning=False``: keyed by ``dataset, ipc, method``) or the pruning
    rows (``pruning=True``: keyed by ``dataset, ipc, base_method, keep``).
    """
    df = load_published() if published is None else published.copy()
    if df.empty:
        return df
    df = df[df["keep"].notna()] if pruning else df[df["keep"].isna()]
    keys = ["dataset", "ipc", "base_method", "keep"] if pruning else ["dataset", "ipc", "method"]
    df = df.assign(_prio=df["source"].map(lambda s: SOURCES[s][0]))
    return df.sort_values("_prio", kind="stable").drop_duplicates(keys).drop(columns="_prio")


def paper_lookup(published: pd.DataFrame | None = None) -> dict[tuple, pd.Series]:
    """The resolved main-table numbers as ``{(dataset, ipc, method): row}`` (rows are named tuples
    with ``mean``, ``std``, ``source``, ...)."""
    df = paper_numbers(published)
    return {(r.dataset, int(r.ipc), r.method): r for r in df.itertuples()} if len(df) else {}
