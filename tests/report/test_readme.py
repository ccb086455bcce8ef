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
