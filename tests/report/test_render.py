"""Table files: Markdown, CSV and LaTeX with the protocol line; atomic and rewritable."""

from __future__ import annotations

import pandas as pd
import pytest

from hdd_lib.report import render
from hdd_lib.report import tables as T

from . import eval_metric, md_rows


def test_written_files_carry_the_protocol_and_are_rewritable(tmp_path, published):
    metrics = [eval_metric("cifar10_jpeg", 10, "idm_hdd", s, [60.0, 61.0]) for s in range(3)]
    t = T.main_table(metrics, published=published)
    paths = render.write_table(t, tmp_path / "tables")
    assert {p.name for p in paths.values()} == {"table1_main.md", "table1_main.csv", "table1_main.tex"}
    md, csv, tex = (paths[s].read_text() for s in ("md", "csv", "tex"))
    assert t.protocol in md and f"# {t.protocol}" in csv
    assert "20000 distillation iterations" in tex and "3 $\\times$ 2" in tex and "\\caption{" in tex
    assert "CIFAR-10 (JPEG copy)" in md and "CIFAR-10 (JPEG copy)" in tex and "\\toprule" in tex
    back = render.read_table_csv(paths["csv"])
    assert back.loc[0, "mean"] == pytest.approx(60.5) and back.loc[0, "data_copy"] == "CIFAR-10 (JPEG copy)"
    # re-writing replaces the files completely and leaves no temporary file behind
    t2 = T.main_table(metrics[:1], published=published)
    render.write_table(t2, tmp_path / "tables")
    assert render.read_table_csv(paths["csv"]).loc[0, "n"] == 2
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(p.name for p in paths.values())


def test_table_renders_a_hand_made_table():
    display = pd.DataFrame({"Method": ["DM_x", "A|B"], "Acc": ["61.3 ± 0.4", render.MISSING]})
    data = pd.DataFrame({"method": ["dm_x", "a|b"], "mean": [61.25, float("nan")]})
    t = render.Table("table9_test", "Accuracy & more", display, data, "Protocol: p.", ("first", "second"))
    md = t.to_markdown()
    assert md.startswith("### Accuracy & more\n\n*Protocol: p.*")
    assert md_rows(md)[:2] == [["Method", "Acc"], [":---------", "-----------:"]] and "A\\|B" in md
    assert md.rstrip().endswith("1. first\n2. second")
    tex = t.to_latex()
    assert "{lr}" in tex and "DM\\_x" in tex and "61.3 $\\pm$ 0.4" in tex and "Accuracy \\& more" in tex
    csv = t.to_csv().splitlines()
    assert csv[:4] == ["# Accuracy & more", "# Protocol: p.", "# (1) first", "# (2) second"]
    assert csv[4:6] == ["method,mean", "dm_x,61.25"]


def test_cell_formatting():
    assert render.cell(61.25, 0.44, 1) == "61.2 ± 0.4"
    assert render.cell(61.25, float("nan"), 1) == "61.2"
    assert render.cell(61.0, 1.0, 1, n=4, n_usual=5) == "61.0 ± 1.0 (n=4)"
    assert render.cell(float("nan"), 1.0, 1) == render.fmt(None, 1) == render.MISSING
    assert render.fmt(1.234, 1, sign=True) == "+1.2"
    assert [render.ratio_label(r) for r in (1.0, 0.8, 0.25)] == ["1.0", "0.8", "0.25"]
