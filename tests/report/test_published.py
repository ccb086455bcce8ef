"""Published numbers: the packaged file, its columns, and the source-priority rule."""

from __future__ import annotations

import pytest

from hdd_lib.report import published as P


def test_published_file_loads_with_its_columns(published):
    for col in ("dataset", "ipc", "method", "mean", "std", "source", "note", "base_method", "keep"):
        assert col in published.columns
    assert set(published["dataset"]) <= {"fashionmnist", "svhn", "cifar10", "cifar100"}
    assert set(published["source"]) <= set(P.SOURCES)
    hdd = published[published["source"] == "hdd_paper"]
    assert hdd["note"].str.contains("approximate, secondary summary").all()


def test_paper_numbers_prefer_the_hdd_paper(published):
    main = P.paper_numbers(published).set_index(["dataset", "ipc", "method"])
    assert main.index.is_unique
    assert main.loc[("cifar10", 1, "dm"), "source"] == "hdd_paper"     # HDD and DM papers both give one
    assert main.loc[("cifar100", 1, "idm"), "source"] == "hdd_paper"
    assert main.loc[("cifar10", 10, "dm"), "source"] == "dm_paper"     # only the DM paper
    both = published[(published["dataset"] == "cifar10") & (published["ipc"] == 1) & (published["method"] == "dm")]
    assert len(both) == 2
    assert main.loc[("cifar10", 1, "dm"), "mean"] == both.loc[both["source"] == "hdd_paper", "mean"].item()


def test_pruning_rows_parse_keep_ratios(published):
    prune = P.paper_numbers(published, pruning=True)
    assert set(prune["base_method"]) == {"dm_hdd", "idm_hdd"}
    assert sorted(set(prune["keep"])) == [0.2, 0.6, 0.8, 1.0]
    assert P.paper_numbers(published)["method"].str.contains("@").sum() == 0


def test_unknown_source_is_rejected(tmp_path):
    p = tmp_path / "pub.csv"
    p.write_text("dataset,ipc,method,mean,std,source,note\ncifar10,1,dm,1.0,,blog,\n")
    with pytest.raises(ValueError, match="unknown source"):
        P.load_published(p)
