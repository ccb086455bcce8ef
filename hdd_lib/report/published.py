"""The papers' published numbers (``hdd_lib/published.csv``) and the rule choosing among their sources.

Columns ``dataset, ipc, method, mean, std, source, note``; ``source`` is a key of :data:`SOURCES`. Pruning rows use
``method = "<method>@keep<ratio>"`` (``dm_hdd@keep0.8``): HDD's hyperbolic pruning at that keep ratio, the paper's
"ratio 0/20/40/80 %" read as the fraction pruned (unclear; said in ``note``), filed under CIFAR-10 IPC 10 by inference.
Where two sources give a number for a cell, the one with the lowest priority in :data:`SOURCES` wins (the HDD paper's,
same protocol as its other numbers). Runs on ``cifar10_jpeg`` are compared with ``cifar10`` numbers
(:data:`PAPER_DATASET`)."""

from __future__ import annotations

import io
import os
from importlib import resources

import pandas as pd

__all__ = ["SOURCES", "PAPER_DATASET", "OTHER_SOURCE", "PRUNE_TAG", "load_published", "paper_numbers",
           "paper_lookup", "paper_pruning"]

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
    """``published.csv`` (the packaged one by default) plus ``base_method`` (``method`` without its pruning tag) and
    ``keep`` (a pruning row's keep ratio, else NaN); an unknown source raises ``ValueError``."""
    df = pd.read_csv(io.StringIO(resources.files("hdd_lib").joinpath("published.csv").read_text())
                     if path is None else path)
    unknown = sorted(set(df["source"]) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown} in published numbers; known: {', '.join(SOURCES)}")
    split = df["method"].str.split(PRUNE_TAG, n=1, expand=True).reindex(columns=[0, 1])
    return df.assign(base_method=split[0], keep=pd.to_numeric(split[1], errors="coerce"), note=df["note"].fillna(""))


def paper_numbers(published: pd.DataFrame | None = None, *, pruning: bool = False) -> pd.DataFrame:
    """One published number per cell by source priority: the main-table rows (keyed by ``dataset, ipc, method``) or,
    with ``pruning``, the pruning rows (keyed by ``dataset, ipc, base_method, keep``)."""
    df = load_published() if published is None else published
    if df.empty:
        return df
    df = df[df["keep"].notna() == pruning]
    keys = ["dataset", "ipc", "base_method", "keep"] if pruning else ["dataset", "ipc", "method"]
    prio = df["source"].map(lambda s: SOURCES[s][0])
    return df.iloc[prio.argsort(kind="stable").to_numpy()].drop_duplicates(keys)


def paper_lookup(published: pd.DataFrame | None = None) -> dict[tuple, tuple]:
    """The resolved main-table numbers as ``{(dataset, ipc, method): row}`` (named tuples: ``mean``, ``std``,
    ``source``, ...)."""
    return {(r.dataset, int(r.ipc), r.method): r for r in paper_numbers(published).itertuples()}


def paper_pruning(pub: pd.DataFrame, dataset: str, ipc: int, method: str) -> pd.DataFrame:
    """The rows of ``pub`` (:func:`paper_numbers` with ``pruning``) for a run's dataset (:data:`PAPER_DATASET`), IPC and
    method."""
    return pub[(pub["dataset"] == PAPER_DATASET.get(dataset, dataset)) & (pub["ipc"] == ipc)
               & (pub["base_method"] == method)] if len(pub) else pub
