"""Every figure renders to a PNG from fabricated data, without pyplot state, and shows as a PNG in Jupyter."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import matplotlib
import nbformat
import numpy as np
import pytest
import torch

from hdd_lib.data import get_spec
from hdd_lib.params import Paths
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
    assert image.shape == (2 * 9 + 1, 4 * 9 + 1, 3)                  # one row per class, 1-px gaps
    assert np.isclose(image[1:9, 1:9], 0.5).all() and image[0, 0, 0] == 1.0   # 0 * 0.25 + 0.5; white gap
    assert png_size(fig, tmp_path / "grid.png") > 0
    with pytest.raises(ValueError, match="channels"):
        F.image_grid(torch.zeros(1, 1, 2, 4, 4))
    with pytest.raises(ValueError, match="mean/std"):
        F.image_grid(torch.zeros(1, 1, 3, 4, 4), mean=(0.0, 0.0))


def test_accuracy_vs_iteration_has_error_bars_and_one_legend(tmp_path):
    metrics = [eval_metric("cifar10_jpeg", ipc, m, s, [45.0], curve=[(0, 20.0 + s, 1.0), (500, 40.0, 2.0 + s)])
               for ipc in (1, 10) for m in ("dm", "dm_hdd") for s in (0, 1)]
    fig = F.accuracy_vs_iteration(metrics)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2 and all(ax.get_legend() is None for ax in panels)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["DM", "DM+HDD"]
    bars = panels[0].containers[0]                                   # DM: pooled over the two seeds
    assert bars.has_yerr and np.allclose(bars.lines[0].get_ydata(), [20.5, 40.0])
    segments = bars.lines[2][0].get_segments()                      # ± std at iteration 0: sqrt(1 + 0.25)
    assert np.isclose(segments[0][1][1] - segments[0][0][1], 2 * np.sqrt(1.25))
    assert "(0 here" not in fig.get_supxlabel()
    assert png_size(fig, tmp_path / "acc.png") > 1000
    flat = F.accuracy_vs_iteration([eval_metric("svhn", 1, "dm", 0, [20.0], curve=[(0, 1.0, 0.0), (5, 2.0, 0.0)])])
    assert "(0 here" in flat.get_supxlabel()
    off = F.accuracy_vs_iteration([eval_metric("svhn", 1, "dm", 0, [20.0])])          # curve_every 0
    assert "evaluation during distillation was off" in off.axes[0].texts[0].get_text()


def test_pruning_curves(tmp_path):
    accs = {s: {r: [50.0 * r + off, 51.0 * r + off] for r in (1.0, 0.6, 0.2)}
            for s, off in (("hyperbolic", 10), ("euclidean", 8), ("random", 5))}
    metrics = [prune_metric("cifar10_jpeg", 10, m, s, accs) for m in ("dm_hdd", "idm_hdd") for s in (0, 1)]
    fig = F.pruning_curves(metrics)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2     # one panel per method
    assert any(line.get_label() == "paper (hyperbolic)" for line in fig.axes[0].get_lines())
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"hyperbolic", "Euclidean", "random",
                                                                            "paper (hyperbolic)"}
    assert png_size(fig, tmp_path / "prune.png") > 1000


def test_geodm_trajectories_and_loss_curve(tmp_path, history):
    fig = F.geodm_trajectories(history)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3]
    assert png_size(fig, tmp_path / "geo.png") > 1000
    dm_only = [{"iteration": i, "loss": 1.0} for i in range(5)]     # a DM run: no geometry logged
    for h in (dm_only, None):                                       # None: no GeoDM run beside the figure run
        assert all("not a GeoDM run" in ax.texts[0].get_text() for ax in F.geodm_trajectories(h).axes)
    fig = F.loss_curve(history, smooth=3)
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].get_lines()) == 2
    assert png_size(fig, tmp_path / "loss.png") > 1000
    narrow = F.loss_curve([{"iteration": i, "loss": 1.0 + 0.1 * (-1) ** i} for i in range(40)])
    assert narrow.axes[0].get_yscale() == "linear"                    # less than a decade: readable ticks
    assert len([t for t in narrow.axes[0].get_yticks() if 0.9 <= t <= 1.1]) >= 3


def test_history_columns_skip_missing_and_non_finite_values():
    h = [{"iteration": 20, "loss": 1.0, "k_H": 2.0}, {"iteration": 10, "loss": 3.0},
         {"iteration": 30, "convnet": 50.0}, {"iteration": 40, "loss": float("nan")}, {"loss": 9.0}]
    s = F.history(h, ("loss", "k_H", "w_E"))
    assert set(s) == {"loss", "k_H"}
    np.testing.assert_array_equal(s["loss"][0], [10, 20])
    np.testing.assert_array_equal(s["loss"][1], [3.0, 1.0])
    assert F.history(None, ("loss",)) == {}


def test_grid_colours_and_style():
    fig, axes = F.grid(4, ncols=3)
    assert len(axes) == 4 and [ax.get_visible() for ax in fig.axes] == [True] * 4 + [False] * 2
    assert F.method_colors(["dm_hdd"])["dm_hdd"] == F.method_colors(["dm_hdd", "dm"])["dm_hdd"]   # stable
    assert len(set(F.method_colors(["x", "dm"]).values())) > 1
    before = matplotlib.rcParams["axes.spines.top"]

    @F.styled
    def make():
        assert matplotlib.rcParams["axes.spines.top"] is False               # hdd.mplstyle
        return F.grid(1)[0]

    assert not make().axes[0].spines["top"].get_visible() and matplotlib.rcParams["axes.spines.top"] == before


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


def test_every_figure_registers_a_png_formatter_in_ipython(monkeypatch, history):
    IPython = pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    shell = SimpleNamespace(display_formatter=DisplayFormatter())
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    data, _ = shell.display_formatter.format(F.loss_curve(history))
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_figures_show_as_png_in_an_executed_notebook(tmp_path):
    papermill = pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from hdd_lib.report import figures\n"
                                  "figures.loss_curve([{'iteration': i, 'loss': 1.0 / (1 + i)} for i in range(20)])"),
        nbformat.v4.new_code_cell("from IPython.display import display\n"
                                  "display(figures.geodm_trajectories([{'iteration': 0, 'k_H': 1.0}]))"),
    ])
    nbformat.write(nb, tmp_path / "in.ipynb")
    papermill.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path))
    for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells:
        (out,) = [o for o in c.outputs if o.output_type in ("execute_result", "display_data")]
        assert "image/png" in out.data and out.data["image/png"].startswith("iVBORw0KGgo")   # base64 of \x89PNG


# ----------------------------------------------------------------------------- write_all
FIGURE_RUN = {"dataset": "digits", "ipc": 2, "method": "dm_hdd", "seed": 0}


def _fabricate_results(paths: Paths, history: list[dict]) -> None:
    """Metric files, distillation records and a synthetic set, as the pipeline writes them."""
    for m in ("dm", "dm_hdd"):
        metric = eval_metric("digits", 2, m, 0, [40.0, 42.0], curve=[(0, 20.0, 1.0), (50, 40.0, 2.0)])
        save_json(paths.record("eval", metric["run_id"]), metric)
    accs = {s: {r: [50.0 * r, 51.0 * r] for r in (1.0, 0.5)} for s in ("hyperbolic", "euclidean", "random")}
    save_json(paths.record("prune", "digits-ipc2-dm_hdd-s0"), prune_metric("digits", 2, "dm_hdd", 0, accs))
    spec = dataclasses.replace(get_spec("digits"), mean=(0.25,), std=(0.5,))
    config = {"model": {"name": "convnet", "width": 8}, "hdd": {"k": 1.0, "how": "expmap0", "clamp": 10.0}}
    syn = SyntheticSet(torch.zeros(10, 2, 1, 8, 8), meta={"dataset": dataclasses.asdict(spec), "config": config})
    syn.save(paths.synset("digits-ipc2-dm_hdd-s0"))
    dm_history = [{k: h[k] for k in ("iteration", "loss") if k in h} for h in history]     # no geometry logged
    save_json(paths.run_dir("digits-ipc2-dm_hdd-s0") / "distill.json", {"history": dm_history})
    save_json(paths.run_dir("digits-ipc2-geodm-s0") / "distill.json", {"history": history})


@pytest.fixture
def calls(monkeypatch) -> dict[str, list]:
    """Record the arguments of the figure functions write_all calls."""
    seen: dict[str, list] = {}
    for name in ("image_grid", "geodm_trajectories", "loss_curve", "poincare_plot"):
        original = getattr(F, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            seen.setdefault(_name, []).append((args, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(F, name, spy)
    return seen


def test_write_all_draws_every_figure_from_the_files(tmp_path, history, calls):
    paths = Paths(tmp_path, tmp_path / "results")
    _fabricate_results(paths, history)
    written = F.write_all(paths.records, paths, figure_run=FIGURE_RUN)
    assert [p.name for p in written] == ["fig2_accuracy_vs_iteration.png", "fig3_pruning.png",
                                         "fig4_geodm_trajectories.png", "fig5_synthetic_images.png",
                                         "fig6_poincare.png", "fig7_loss.png"]
    assert all(p.parent == paths.figures and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    (images,), kw = calls["image_grid"][0]
    assert tuple(images.shape) == (10, 2, 1, 8, 8) and (list(kw["mean"]), list(kw["std"])) == ([0.25], [0.5])
    assert list(kw["class_names"]) == list(get_spec("digits").class_names) and "digits-ipc2-dm_hdd-s0" in kw["title"]
    (geo_history,), kw = calls["geodm_trajectories"][0]
    assert "digits-ipc2-geodm-s0" in kw["title"] and any("k_H" in h for h in geo_history)
    (loss_history,), kw = calls["loss_curve"][0]
    assert "digits-ipc2-dm_hdd-s0" in kw["title"] and not any("k_H" in h for h in loss_history)
    (disk,), kw = calls["poincare_plot"][0]
    assert disk["run_id"] == "digits-ipc2-dm_hdd-s0" and disk["syn"].shape == (10, 2, 2)


def test_write_all_needs_the_figure_run_and_its_files(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        F.write_all(tmp_path, Paths(tmp_path, tmp_path / "results"), figure_run={"dataset": "digits", "ipc": 2, "method": "dm"})
    with pytest.raises(FileNotFoundError):
        F.write_all(tmp_path, Paths(tmp_path, tmp_path / "results"), figure_run=FIGURE_RUN)
