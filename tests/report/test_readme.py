"""README.md's results section is generated from results/ and must not drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdd_lib.report import readme

ROOT = Path(__file__).resolve().parents[2]


def test_readme_results_block_matches_results():
    text = (ROOT / "README.md").read_text()
    block = text.split(readme.BEGIN, 1)[1].split(readme.END, 1)[0]
    expected = readme.results_block(ROOT / "results", relative_to=ROOT)
    assert readme.BEGIN + block + readme.END == expected, "run `python -m hdd_lib readme` and commit README.md"
    facts = text.split(readme.FACTS_BEGIN, 1)[1].split(readme.FACTS_END, 1)[0]
    assert readme.FACTS_BEGIN + facts + readme.FACTS_END == readme.facts_block(ROOT / "results")
    assert "dimensional features with median norm" in facts  # the README states what the records measured


def test_facts_come_from_the_geometry_records(tmp_path):
    import json

    (tmp_path / "results" / "records" / "geometry").mkdir(parents=True)
    record = {"data_copy": "Digits", "k": 1.0, "feature_dim": 128, "model": {"width": 128, "depth": 3, "norm": "instancenorm"},
              "norms": {"median": 4.93, "q05": 4.87, "q95": 4.98, "threshold": 10.0, "fraction_saturated": 0.0}}
    (tmp_path / "results" / "records" / "geometry" / "digits.json").write_text(json.dumps(record))
    block = readme.facts_block(tmp_path / "results")
    assert "- Digits: a random ConvNet (width 128, depth 3, instancenorm) embeds real images into 128-dimensional " \
           "features with median norm 4.93 (5-95 %: 4.87-4.98); the expmap clamp is at 10 (k = 1), and 0 % " in block


def test_update_readme_rewrites_only_the_block(tmp_path):
    (tmp_path / "results" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "tables" / "table1_main.md").write_text("### Table one\n\n| a |\n| - |\n| 1 |\n")
    (tmp_path / "results" / "figures").mkdir()
    (tmp_path / "results" / "figures" / "fig2_x.png").write_bytes(b"png")
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\nintro\n\n{readme.BEGIN}\nold\n{readme.END}\n\nrest\n")
    assert readme.update_readme(path, tmp_path / "results") is True
    out = path.read_text()
    assert out.startswith("# Title\n\nintro\n\n") and out.endswith("\n\nrest\n")
    assert "#### Table one" in out and "[fig2_x](results/figures/fig2_x.png)" in out and "old" not in out
    assert readme.update_readme(path, tmp_path / "results") is False


def test_missing_markers_raise(tmp_path):
    (tmp_path / "README.md").write_text("no block\n")
    with pytest.raises(ValueError, match="results:begin"):
        readme.update_readme(tmp_path / "README.md", tmp_path)
