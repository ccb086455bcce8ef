"""Benchmarks (``benchmarks/``): the scripts still run end to end with tiny settings, and the
reference loop's per-class losses are the library's. Nothing here asserts anything about speed."""

from __future__ import annotations

import importlib
import json
import math
import warnings
from pathlib import Path

import pytest
import torch

from hdd_lib.losses import get_loss

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """Import a benchmark script as the command line does (its folder first on ``sys.path``).

    One torch thread meanwhile: the runs are tiny, and on a busy shared CPU two threads can wait
    on each other far longer than the work takes."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield importlib.import_module
    torch.set_num_threads(threads)


TINY_DATA = ["--device", "cpu", "--classes", "2", "--image-size", "8", "--width", "16"]


def test_bench_distill_interleaves_units_and_records(bench, tmp_path):
    out = tmp_path / "distill.json"
    result = bench("bench_distill").main(
        [*TINY_DATA, "--threads", "1", "--per-class", "12", "--batch-real", "8", "--ipc", "2", "--methods", "dm",
         "--iterations", "2", "--warmup", "1", "--variants", "default", "fp32+glibc", "--baselines", "official",
         "--out", str(out)])
    assert out.exists()
    for key in ("device", "provenance", "settings", "measurements", "speedups", "date_utc", "command", "load_average"):
        assert key in result
    assert "git_commit" in result["provenance"] and result["device"]["type"] == "cpu"
    rows = result["measurements"]
    order = [(r["implementation"], r.get("variant", r.get("position"))) for r in rows]
    assert order == [("official", "before"), ("hdd_lib", "default"), ("hdd_lib", "fp32+glibc"), ("official", "after")]
    for r in rows:
        assert r["ms_per_iteration"]["n"] == len(r["times_ms"]) == len(r["cpu_ms"]) == len(r["minor_faults"]) == 2
        assert all(math.isfinite(t) and t > 0 for t in r["times_ms"]) and math.isfinite(r["final_loss"])
    lib = {r["variant"]: r for r in rows if r["implementation"] == "hdd_lib"}
    assert lib["fp32+glibc"]["allocator"] is None  # HDD_MALLOC_TUNE=0 reached the worker
    assert result["settings"]["configs"]["dm-ipc2-fp32+glibc"]["real_precision"] == "fp32"
    assert not any(r.get("hdd_lib_imported", False) for r in rows if r["implementation"] == "official")
    assert {(s["variant"], s["baseline"]) for s in result["speedups"]} == {("default", "official"), ("fp32+glibc", "official")}
    assert all(s["median_ratio"] > 0 and s["cpu_time_ratio"] > 0 for s in result["speedups"])
    assert result["target"]["met"] is None and result["cpu_target"]["met"] is None  # ipc 2, 1 thread: not judged


def test_bench_distill_worker_times_the_reference_loop(bench):
    spec = {"threads": None, "device": "cpu", "seed": 0, "data": {"classes": 2, "per_class": 12, "image_size": 8},
            "warmup": 1, "iterations": 2, "kind": "reference",
            "config": {"method": "dm_hdd", "ipc": 2, "batch_real": 8, "device": "cpu", "model": {"width": 16}}}
    row = bench("bench_distill").worker(spec)
    assert len(row["times_ms"]) == len(row["cpu_ms"]) == 2 and math.isfinite(row["final_loss"])


def test_bench_distill_variant_names(bench):
    parse = bench("bench_distill").parse_variant
    assert parse("default") == {"name": "default", "overrides": {}, "malloc": True}
    assert parse("bf16+compile+glibc") == {"name": "bf16+compile+glibc", "malloc": False,
                                           "overrides": {"real_precision": "bf16", "compile": True}}
    with pytest.raises(ValueError, match="unknown variant token 'fp16'"):
        parse("fp16+compile")


def test_official_loop_convnet_is_the_library_convnet(bench):
    from hdd_lib.models import get_model

    official = bench("official_loop")
    for size, channels in ((32, 3), (28, 1)):
        ours = get_model("convnet", channels, 10, size, width=16, depth=3)
        theirs = official.convnet(channels, 16, 3, size)
        pairs = list(zip(theirs.parameters(), ours.features.parameters(), strict=True))
        assert [a.shape for a, _ in pairs] == [b.shape for _, b in pairs]
        with torch.no_grad():
            for a, b in pairs:
                a.copy_(b)
        x = torch.randn(4, channels, size, size)
        torch.testing.assert_close(theirs(x), ours.embed(x))


def test_official_loop_runs_without_hdd_lib(bench, tmp_path):
    result = bench("official_loop").main(["--classes", "2", "--per-class", "12", "--image-size", "8", "--width", "16",
                                          "--ipc", "2", "--batch-real", "8", "--iterations", "2", "--warmup", "1",
                                          "--dsa", "--out", str(tmp_path / "o.json")])
    assert len(result["wall_s"]) == len(result["cpu_s"]) == 2 and math.isfinite(result["final_loss"])


def test_bench_eval_runs_and_labels_the_extrapolation(bench, tmp_path):
    out = tmp_path / "eval.json"
    result = bench("bench_eval").main(
        [*TINY_DATA, "--ipc", "2", "--num-eval", "2", "--epochs", "2", "--test-size", "8", "--out", str(out)])
    assert out.exists()
    (row,) = result["results"]
    assert row["epochs"] == row["seconds_per_model_is_for_epochs"] == 2 and row["num_eval"] == 2
    assert row["seconds_per_model"] > 0 and len(row["accs"]) == 2
    assert row["extrapolation_to_1000_epochs"]["is_extrapolation"] is True
    assert "seconds_per_model_at_1000_epochs" not in row


@pytest.mark.parametrize("k, lam, scale", [(1.0, 20.0, 1.0), (1.0, 20.0, 0.01), (2.4, 100.0, 1.0)])
def test_reference_class_losses_equal_library_losses(bench, k, lam, scale):
    ref = bench("reference_loop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import geoopt
    g = torch.Generator().manual_seed(0)
    real = scale * (torch.randn(3, 16, 32, generator=g) + torch.arange(3.0).view(3, 1, 1)) * 4  # |f| ~ 23 at scale 1
    syn = scale * torch.randn(3, 4, 32, generator=g) * 4
    dm = sum(ref.dm_class_loss(real[c], syn[c]) for c in range(3))
    torch.testing.assert_close(dm, get_loss("dm")(real, syn))
    manifold = geoopt.Lorentz(k=torch.tensor(k, dtype=torch.float64))
    hdd = sum(ref.hdd_class_loss(manifold, real[c], syn[c], lam=lam) for c in range(3))
    expected = get_loss("hdd", k=k, lam=lam)(real.double(), syn.double())
    torch.testing.assert_close(hdd, expected, rtol=1e-6, atol=1e-9)


def test_bench_eval_cpu_interleaves_a_baseline_revision_with_the_variants(bench, tmp_path):
    out = tmp_path / "eval-cpu.json"
    result = bench("bench_eval_cpu").main(
        ["--before", "HEAD", "--variants", "fp32,bf16", "--threads", "1", "--ipc", "1", "--epochs", "2",
         "--rounds", "1", "--test-size", "20", "--image-size", "8", "--width", "8", "--out", str(out)])
    assert out.exists() and result["settings"]["order"] == ["before", "fp32", "bf16", "before"]
    for name in ("before", "fp32", "bf16"):
        s = result["summary"][name]
        for key in ("wall_s", "cpu_s"):  # the linear fit (timings themselves are not asserted: tiny, noisy runs)
            assert s[f"{key}_per_epoch"] >= 0 and s[f"{key}_fixed"] >= 0
            assert s[f"{key}_at_300_epochs"] == pytest.approx(s[f"{key}_fixed"] + 300 * s[f"{key}_per_epoch"])
    assert result["summary"]["bf16"]["speedup_wall_s_at_300_epochs"] > 0
    assert all(set(r["calls"]) == {"1", "2"} for r in result["rows"])


@pytest.mark.slow
def test_bench_stages_runs_a_stage_in_every_mode_in_a_clone(bench, tmp_path):
    out = tmp_path / "stages.json"
    result = bench("bench_stages").main(["--stages", "1", "--rounds", "1", "--out", str(out)])
    assert json.loads(out.read_text())["summary"] == result["summary"]
    assert [(r["mode"], r["round"]) for r in result["runs"]] == [("warm", -1), *((m, 0) for m in ("kernel", "in-process", "warm"))]
    assert all(r["wall_s"] > 0 and r["stage"] == "data@digits" for r in result["runs"])
    assert set(result["summary"]) == {"kernel", "in-process", "warm"} and result["summary"]["kernel"]["speedup_vs_kernel"] == 1


def test_numerics_fmnist_pairs_fp32_and_fast_runs_per_seed(bench, tmp_path, monkeypatch):
    from tests.data import fabricate

    fabricate.write_mnist(tmp_path, "FashionMNIST", n_train=120, n_test=20, gz=False, extracted=True)
    out = tmp_path / "numerics.json"
    result = bench("numerics_fmnist").main(
        ["--data-root", str(tmp_path), "--seeds", "0,1", "--iterations", "2", "--epochs", "2", "--num-eval", "1",
         "--width", "8", "--threads", "1", "--batch-real", "4", "--out", str(out)])
    rows = result["rows"]
    assert [r["seed"] for r in rows] == [0, 1] and out.with_suffix(".md").exists()
    for name in ("fp32 > fast", "fast"):
        diffs = result[f"paired {name} - fp32"]["diffs"]
        assert diffs == pytest.approx([r[name]["mean"] - r["fp32"]["mean"] for r in rows])
    assert "| fast − fp32 (paired) |" in out.with_suffix(".md").read_text()
    # an interrupted run keeps its finished seeds: a rerun with the same settings reuses them
    partial = out.with_suffix(".partial.json")
    assert not partial.exists()
    settings = {"iterations": 2, "epochs": 2, "num_eval": 1, "width": 8, "batch_real": 4, "data_root": str(tmp_path)}
    marked = {**rows[0], "fp32": {**rows[0]["fp32"], "mean": -1.0}}
    partial.write_text(json.dumps({"settings": settings, "rows": {"0": marked}}))
    again = bench("numerics_fmnist").main(
        ["--data-root", str(tmp_path), "--seeds", "0", "--iterations", "2", "--epochs", "2", "--num-eval", "1",
         "--width", "8", "--threads", "1", "--batch-real", "4", "--out", str(out)])
    assert again["rows"][0]["fp32"]["mean"] == -1.0 and not partial.exists()
