"""A finished table (:class:`Table`: what is shown and the numbers behind it) and its three files.

``<name>.md`` and ``<name>.tex`` hold the display table (pandas' ``to_markdown`` and ``to_latex``):
title, the protocol line as caption, cells ``mean ± std`` (missing ``–``), numbered footnotes.
``<name>.csv`` holds the tidy numbers behind it, one row per cell, after ``#`` comment lines with the
title, the protocol line and the footnotes (read it with :func:`read_table_csv`). ::

    from hdd_lib.report import render
    render.write_table(table, "results/tables")      # table.name + .md, .csv, .tex (atomic)
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..storage import atomic_write

__all__ = ["MISSING", "Table", "write_table", "read_table_csv", "fmt", "cell", "usual_n", "n_note", "ratio_label"]

#: What an empty cell shows.
MISSING = "–"


def fmt(x: Any, digits: int, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals (``sign``: always signed); None or non-finite: :data:`MISSING`."""
    if x is None or not math.isfinite(x):
        return MISSING
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def cell(mean: float, std: float, digits: int, n: int | None = None, n_usual: int | None = None) -> str:
    """``"mean ± std"`` (the mean alone when ``std`` is missing), with ``" (n=…)"`` when the count ``n``
    differs from the table's usual ``n_usual``; a missing mean gives :data:`MISSING`."""
    if fmt(mean, digits) == MISSING:
        return MISSING
    s = fmt(mean, digits) + ("" if fmt(std, digits) == MISSING else f" ± {std:.{digits}f}")
    return s + (f" (n={n})" if n is not None and n_usual is not None and n != n_usual else "")


def usual_n(df: pd.DataFrame) -> int | None:
    """The most common positive count in ``df["n"]`` (None when there is none)."""
    ns = df.loc[df["n"] > 0, "n"] if len(df) else pd.Series([], dtype=int)
    return int(ns.mode().iloc[0]) if len(ns) else None


def n_note(df: pd.DataFrame, what: str) -> str:
    """The footnote saying what a cell is (``what``), how it was pooled and its usual count."""
    n = usual_n(df)
    extra = "; cells with another count say (n=…)" if n is not None and (df["n"] != n).any() else ""
    return (f"Cells: {what}, mean ± std (population std, np.std) over all n = num_exp × num_eval test accuracies (%) "
            f"pooled over distillations; n = {n if n is not None else '?'}{extra}. {MISSING}: no result.")


def ratio_label(r: float) -> str:
    """A keep ratio as shown in a column name: ``1.0``, ``0.8``, ``0.25``."""
    s = f"{r:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?(e[+-]?\d+)?( ± \d+(\.\d+)?)?†?( \(n=\d+\))?$")
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--",
        "−": "$-$", "Δ": r"$\Delta$", "†": r"$^\dagger$", "λ": r"$\lambda$", "×": r"$\times$",
        "≥": r"$\geq$", "→": r"$\to$", "…": r"\ldots{}"}


def _tex(s: Any) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


@dataclass(frozen=True)
class Table:
    """A finished table: ``name`` (file stem), ``title``, ``display`` (strings as shown), ``data`` (the
    tidy numbers behind it, written as the CSV), ``protocol`` (the protocol line) and ``notes``."""

    name: str
    title: str
    display: pd.DataFrame
    data: pd.DataFrame
    protocol: str
    notes: tuple[str, ...] = ()

    def _numeric(self) -> list[bool]:
        """Per column: every non-missing cell is a number (``61.3 ± 0.4``, ``+1.2``, ``48.9†``, ``60.1 (n=10)``)."""
        cols = [[str(v) for v in self.display[c] if str(v) != MISSING] for c in self.display.columns]
        return [bool(vals) and all(_NUMBER.match(v) for v in vals) for vals in cols]

    def to_markdown(self) -> str:
        """Heading, the protocol line, a pipe table (numbers right-aligned) and numbered footnotes."""
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        shown = self.display.map(esc).rename(columns=esc)
        table = shown.to_markdown(index=False, disable_numparse=True,
                                  colalign=["right" if n else "left" for n in self._numeric()])
        empty = ["", f"{MISSING} no results yet."] if self.display.empty else []
        notes = [f"{i}. {n}" for i, n in enumerate(self.notes, 1)]
        return "\n".join([f"### {self.title}", "", f"*{self.protocol}*", "", table, *empty, "", *notes]) + "\n"

    def to_latex(self) -> str:
        """A ``table`` float, the protocol line in its caption and the notes below (needs booktabs)."""
        spec = "".join("r" if n else "l" for n in self._numeric()) or "l"
        tabular = self.display.map(_tex).rename(columns=_tex).to_latex(index=False, escape=False, column_format=spec)
        return "\n".join([f"% generated by hdd_lib.report.tables ({self.name}); do not edit", "\\begin{table}[t]",
                          "\\centering", "\\small", f"\\caption{{{_tex(self.title)}. {_tex(self.protocol)}}}",
                          f"\\label{{tab:{self.name}}}", tabular, "\\par\\footnotesize",
                          *(f"({i}) {_tex(n)}\\\\" for i, n in enumerate(self.notes, 1)), "\\end{table}"]) + "\n"

    def to_csv(self) -> str:
        """The tidy numbers, after ``#`` comment lines (title, protocol, notes)."""
        head = [self.title, self.protocol, *(f"({i}) {n}" for i, n in enumerate(self.notes, 1))]
        return "".join(f"# {h}\n" for h in head) + self.data.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def write_table(table: Table, folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``<name>.md``, ``.csv`` and ``.tex`` in ``folder``, each atomically. Returns the paths by suffix."""
    out = {}
    for suffix, text in (("md", table.to_markdown()), ("csv", table.to_csv()), ("tex", table.to_latex())):
        out[suffix] = atomic_write(Path(folder) / f"{table.name}.{suffix}", lambda f, b=text.encode(): f.write(b))
    return out


def read_table_csv(path: str | os.PathLike) -> pd.DataFrame:
    """A table CSV written by :func:`write_table` (its ``#`` comment lines skipped)."""
    return pd.read_csv(path, comment="#")
