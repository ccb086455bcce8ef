"""Benchmarks (``benchmarks/``): the scripts still run end to end with tiny settings, and the
reference loop's per-class losses are the library's. Nothing here asserts anything about speed."""

from __future__ import annotations

import importlib
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


def test_bench_distill_runs_and_records(bench, tmp_path):
    out = tmp_path / "distill.json"
    result = bench("bench_distill").main(
        [*TINY_DATA, "--per-class", "12", "--batch-real", "8", "--ipc", "2", "--methods", "dm", "dm_hdd",
         "--iterations", "2", "--warmup", "1", "--out", str(out)])
    assert out.exists()
    for key in ("device", "provenance", "settings", "measurements", "speedups", "date_utc"):
        assert key in result
    assert "git_commit" in result["provenance"] and result["device"]["type"] == "cpu"
    rows = result["measurements"]
    assert {(r["implementation"], r["method"], r["ipc"]) for r in rows} == {
        (impl, m, 2) for impl in ("hdd_lib", "reference") for m in ("dm", "dm_hdd")}
    for r in rows:
        stats = r["ms_per_iteration"]
        assert stats["n"] == len(r["times_ms"]) == 2
        assert all(math.isfinite(t) and t > 0 for t in r["times_ms"]) and math.isfinite(r["final_loss"])
    assert len(result["speedups"]) == 2 and all(s["median_ratio"] > 0 for s in result["speedups"])
    assert result["target"]["met"] is None  # only judged on an H100


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
