"""Every figure renders to a PNG from fabricated data and from nothing, without pyplot state."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest
import torch

from hdd_lib.data import get_spec
from hdd_lib.pipeline import Paths
from hdd_lib.report import figures as F
from hdd_lib.storage import save_json
from hdd_lib.synset import SyntheticSet

from . import eval_metric, png_size, prune_metric


@pytest.fixture(scope="module")
def history() -> list[dict]:
    h = [{"iteration": i, "loss": 5.0 / (1 + i), "k_H": 1.0 + i / 100, "k_S": 1.0 - i / 400,
          "w_E": 1 / 3, "w_H": 1 / 3 + i / 1000, "w_S": 1 / 3 - i / 1000, "d_H": 0.1, "ot": 0.2}
         for i in range(0, 300, 10)]
    return h + [{"iteration": 300, "convnet": 41.0}]      # an evaluation entry (no loss)


@pytest.mark.parametrize("dataset", ["digits", "cifar10"])   # 1 and 3 channels
def test_image_grid_denormalises_with_the_spec(tmp_path, dataset):
    spec = get_spec(dataset)
    images = torch.randn(spec.num_classes, 3, spec.channels, *spec.image_size)
    fig = F.image_grid(images, spec)
    assert png_size(fig, tmp_path / f"{dataset}.png") > 0
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [str(n) for n in spec.class_names][: len(labels)] and len(labels) == 10


def test_image_grid_takes_mean_std_and_names(tmp_path):
    fig = F.image_grid(np.zeros((2, 4, 3, 8, 8)), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                       class_names=["cat", "dog"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["cat", "dog"]
    image = fig.axes[0].get_images()[0].get_array()
    assert np.isclose(image[1:9, 1:9], 0.5).all()               # 0 * 0.25 + 0.5
    assert png_size(fig, tmp_path / "grid.png") > 0
    assert png_size(F.image_grid(None), tmp_path / "none.png") > 0
    assert png_size(F.image_grid(torch.zeros(0, 0, 3, 8, 8)), tmp_path / "zero.png") > 0
    with pytest.raises(ValueError, match="channels"):
        F.image_grid(torch.zeros(1, 1, 2, 4, 4))


def test_accuracy_vs_iteration(tmp_path):
    curve = [(0, 20.0, 1.0), (500, 40.0, 2.0), (1000, 45.0, 1.5)]
    metrics = [eval_metric("cifar10_jpeg", ipc, m, s, [45.0], curve=curve)
               for ipc in (1, 10) for m in ("dm", "dm_hdd") for s in (0, 1)]
    fig = F.accuracy_vs_iteration(metrics)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    assert png_size(fig, tmp_path / "acc.png") > 1000
    no_curve = [eval_metric("svhn", 1, "dm", 0, [20.0])]
    for m in ([], None, no_curve):
        assert png_size(F.accuracy_vs_iteration(m), tmp_path / "empty.png") > 0


def test_pruning_curves(tmp_path):
    accs = {s: {r: [50.0 * r + off, 51.0 * r + off] for r in (1.0, 0.6, 0.2)}
            for s, off in (("hyperbolic", 10), ("euclidean", 8), ("random", 5))}
    metrics = [prune_metric("cifar10_jpeg", 10, m, s, accs) for m in ("dm_hdd", "idm_hdd") for s in (0, 1)]
    fig = F.pruning_curves(metrics)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2     # one panel per method
    assert any(line.get_label() == "paper (hyperbolic)" for line in fig.axes[0].get_lines())
    assert png_size(fig, tmp_path / "prune.png") > 1000
    assert png_size(F.pruning_curves([]), tmp_path / "empty.png") > 0


def test_geodm_trajectories_and_loss_curve(tmp_path, history):
    fig = F.geodm_trajectories(history)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3]
    assert png_size(fig, tmp_path / "geo.png") > 1000
    fig = F.loss_curve(history, smooth=3)
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].get_lines()) == 2
    assert png_size(fig, tmp_path / "loss.png") > 1000
    dm_only = [{"iteration": i, "loss": 1.0} for i in range(5)]     # a DM run: no geometry logged
    for h in ([], None, dm_only):
        assert png_size(F.geodm_trajectories(h), tmp_path / "geo_empty.png") > 0
    for h in ([], None, [{"iteration": 10, "convnet": 30.0}]):
        assert png_size(F.loss_curve(h), tmp_path / "loss_empty.png") > 0


def test_no_global_matplotlib_state(tmp_path, history):
    before = dict(matplotlib.rcParams)
    fig = F.loss_curve(history)
    F.save_figure(fig, tmp_path / "a.png")
    assert dict(matplotlib.rcParams) == before
    import matplotlib.pyplot as plt   # seaborn imports pyplot; no figure may be registered with it

    assert plt.get_fignums() == []
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)


def test_save_figure_is_atomic_and_rewritable(tmp_path, history):
    path = tmp_path / "figs" / "fig9_loss.png"
    F.save_figure(F.loss_curve(history), path)
    first = path.read_bytes()
    F.save_figure(F.loss_curve(history[:5]), path)
    assert path.read_bytes() != first
    assert [p.name for p in path.parent.iterdir()] == ["fig9_loss.png"]


def test_accuracy_bars(tmp_path):
    m = eval_metric("digits", 10, "dm_hdd", 0, [80.0, 82.0, 84.0], models=("resnet18", "convnet"))
    m["results"]["resnet18"]["accs"] = [60.0, 70.0, 80.0]
    fig = F.accuracy_bars(m, title="digits-ipc10-dm_hdd-s0")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ConvNet", "ResNet18"]     # column order
    assert [p.get_height() for p in ax.patches] == pytest.approx([82.0, 70.0])         # the means
    assert [len(c.get_offsets()) for c in ax.collections if len(c.get_offsets()) == 3] == [3, 3]  # every network
    assert "70.0 ± 8.2\n(n=3)" in [t.get_text() for t in ax.texts]                    # population std
    assert png_size(fig, tmp_path / "bars.png") > 1000
    for empty in (None, {}, {"results": {"convnet": {"accs": []}}}):
        assert png_size(F.accuracy_bars(empty), tmp_path / "empty.png") > 0


def test_note_figure(tmp_path):
    fig = F.note_figure("nothing here yet", title="Figure 9")
    assert fig.axes[0].texts[0].get_text() == "nothing here yet" and fig.axes[0].get_title() == "Figure 9"
    assert png_size(fig, tmp_path / "note.png") > 0


# ----------------------------------------------------------------------------- write_all
FIGURE_RUN = {"dataset": "digits", "ipc": 2, "method": "dm_hdd", "seed": 0}


def _fabricate_results(paths: Paths, history: list[dict]) -> None:
    """Metric files, two distillation records and a synthetic set, as the pipeline writes them."""
    curve = [(0, 20.0, 1.0), (50, 40.0, 2.0)]
    for m in ("dm", "dm_hdd"):
        metric = eval_metric("digits", 2, m, 0, [40.0, 42.0], curve=curve)
        save_json(paths.metric("eval", metric["run_id"]), metric)
    accs = {s: {r: [50.0 * r, 51.0 * r] for r in (1.0, 0.5)} for s in ("hyperbolic", "euclidean", "random")}
    save_json(paths.metric("prune", "digits-ipc2-dm_hdd-s0"), prune_metric("digits", 2, "dm_hdd", 0, accs))
    spec = dataclasses.replace(get_spec("digits"), mean=(0.25,), std=(0.5,))
    syn = SyntheticSet(torch.zeros(10, 2, 1, 8, 8), meta={"dataset": dataclasses.asdict(spec), "history": history})
    syn.save(paths.synset("digits-ipc2-dm_hdd-s0"))
    save_json(paths.distill_record("digits-ipc2-dm_hdd-s0"), {"history": [h for h in history if "k_H" not in h]})
    save_json(paths.distill_record("digits-ipc2-geodm-s0"), {"history": history})


def png_size_of(path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return len(data)


@pytest.fixture
def calls(monkeypatch) -> dict[str, list]:
    """Record the arguments of the figure functions write_all calls."""
    seen: dict[str, list] = {}
    for name in ("image_grid", "geodm_trajectories", "loss_curve", "note_figure"):
        original = getattr(F, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            seen.setdefault(_name, []).append((args, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(F, name, spy)
    return seen


def test_write_all_draws_every_figure_from_the_files(tmp_path, history, calls):
    paths = Paths(tmp_path)
    _fabricate_results(paths, history)
    written = F.write_all(paths.metrics, paths, figure_run=FIGURE_RUN)
    assert written == [paths.figures / name for name in F.FIGURES.values()]
    assert [p.name for p in written] == ["fig2_accuracy_vs_iteration.png", "fig3_pruning.png",
                                         "fig4_geodm_trajectories.png", "fig5_synthetic_images.png", "fig7_loss.png"]
    assert all(png_size_of(p) > 1000 for p in written)
    assert "note_figure" not in calls
    (images, spec), kw = calls["image_grid"][0]
    assert tuple(images.shape) == (10, 2, 1, 8, 8) and (spec.mean, spec.std) == ((0.25,), (0.5,))
    assert spec.class_names == get_spec("digits").class_names and "digits-ipc2-dm_hdd-s0" in kw["title"]
    (geo_history,), kw = calls["geodm_trajectories"][0]
    assert "digits-ipc2-geodm-s0" in kw["title"] and any("k_H" in h for h in geo_history)
    (loss_history,), kw = calls["loss_curve"][0]
    assert "digits-ipc2-dm_hdd-s0" in kw["title"] and not any("k_H" in h for h in loss_history)
    # without a figure_run: the first evaluation metric's run (file order: dm before dm_hdd)
    calls.clear()
    F.write_all(paths.metrics, paths)
    assert [kw["title"] for _, kw in calls["note_figure"]] == ["Synthetic images: digits-ipc2-dm-s0",
                                                               "Matching loss: digits-ipc2-dm-s0"]  # not distilled
    assert "digits-ipc2-geodm-s0" in calls["geodm_trajectories"][0][1]["title"]


def test_write_all_without_inputs_still_writes_every_figure(tmp_path, calls):
    paths = Paths(tmp_path)
    written = F.write_all(paths.metrics, paths)
    assert [p.name for p in written] == list(F.FIGURES.values()) and all(png_size_of(p) > 0 for p in written)
    assert len(calls["note_figure"]) == 3 and "no run to show" in calls["note_figure"][0][0][0]
    calls.clear()
    F.write_all(paths.metrics, paths, figure_run=FIGURE_RUN)
    notes = [args[0] for args, _ in calls["note_figure"]]
    assert len(notes) == 3 and all("does not exist" in n for n in notes)
    assert "results/runs/digits-ipc2-geodm-s0/distill.json" in notes[0]
    assert "results/runs/digits-ipc2-dm_hdd-s0/synset.pt" in notes[1]


def test_write_all_survives_a_corrupt_record(tmp_path, calls):
    paths = Paths(tmp_path)
    paths.distill_record("digits-ipc2-dm_hdd-s0").parent.mkdir(parents=True)
    paths.distill_record("digits-ipc2-dm_hdd-s0").write_text("{truncated")
    written = F.write_all(paths.metrics, paths, figure_run=FIGURE_RUN)
    assert all(p.exists() for p in written)
    assert "cannot be read" in calls["note_figure"][-1][0][0]


def test_write_all_rejects_an_incomplete_figure_run(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        F.write_all(tmp_path, Paths(tmp_path), figure_run={"dataset": "digits", "ipc": 2, "method": "dm"})
