"""The GPU campaign driver (``benchmarks/gpu_campaign.py``) dry-run end to end on the CPU (``--tiny``):
every step runs and leaves its output, the exported files stay inside the device tool's limits,
a rerun resumes instead of repeating, and the budget and the subprocess timeout behave."""

from __future__ import annotations

import importlib
import json
import sys
import tarfile
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
LONG = ("dm_hdd", "dm")
METHODS = ("dm", "dm_hdd", "idm", "idm_hdd", "geodm", "idm_geodm")


@pytest.fixture
def campaign(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for name in ("HDD_CACHE_DIR", "PYTHONPATH"):  # restored afterwards, whatever the driver sets
        monkeypatch.setenv(name, "")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield importlib.import_module("gpu_campaign")
    torch.set_num_threads(threads)


def _files(out: Path) -> dict[str, Path]:
    return {p.name: p for p in out.iterdir()}


def test_tiny_dry_run_runs_every_step_and_exports_them(campaign, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    argv = ["--tiny", "--work", str(work), "--out", str(out), "--budget-s", "900"]
    result = campaign.main(argv)
    steps = result["steps"]
    names = ["env", "tests", "smoke", "smoke_eval", "bench_distill", "bench_eval",
             *[f"long_{m}_{part}" for m in LONG for part in ("distill", "eval")], "smoke_compile"]
    assert list(steps) == names
    assert {n: s["status"] for n, s in steps.items()} == dict.fromkeys(names, "ok")

    # each step's own output
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["data"]["sha256"] == campaign._sha256(work / "data" / campaign.DATA_FILE)
    assert prov["data"]["is_shared_copy"] is False and prov["torch"] == torch.__version__
    assert len(prov["code_sha256"]) == 64 and prov["commit"] and not prov["import_errors"]
    assert steps["tests"]["tests"] >= 1 and (work / "logs" / "pytest-gpu.xml").exists()
    for m in METHODS:
        row = steps["smoke"]["methods"][m]
        assert row["iterations"] == 1 and row["ms_per_iteration"] > 0, m
        assert (work / "smoke" / m / "synset.pt").exists()
    assert 0 <= steps["smoke_eval"]["accuracy"]["convnet"]["mean"] <= 100
    bench = json.loads((work / "bench" / "distill-gpu.json").read_text())
    assert {(r["method"], r["ipc"]) for r in steps["bench_distill"]["median_ms_per_iteration"]} == {
        (m, i) for m in ("dm", "dm_hdd") for i in (1, 2)}
    assert all(r["ratio"] > 0 for r in steps["bench_distill"]["median_ms_per_iteration"]) and bench["speedups"]
    assert (work / "bench" / "eval-gpu.json").exists() and steps["bench_eval"]["seconds_per_model"]["convnet"] > 0
    for m in LONG:
        assert steps[f"long_{m}_distill"]["iterations"] == 2
        record = json.loads((work / steps[f"long_{m}_eval"]["metric_file"]).read_text())
        assert record["run_id"] == f"cifar10_jpeg-ipc2-{m}-s0" and record["data_copy"] == "CIFAR-10 (JPEG copy)"
        assert record["protocol"]["profile"] == "tiny" and record["protocol"]["iterations"] == 2
        assert record["provenance"]["data_sha256"] == prov["data"]["sha256"]
        assert len(record["results"]["convnet"]["accs"]) == 1
    assert steps["smoke_compile"]["iterations"] == 1

    # the export: three files within the device tool's limits, the bundle holds every step's output
    files = _files(out)
    assert set(files) == {"summary.json", "provenance.json", "campaign.tgz"}
    assert all(p.stat().st_size < 16 << 20 for p in files.values())
    summary = json.loads(files["summary.json"].read_text())
    assert [s["name"] for s in summary["steps"]] == names and summary["provenance"]["data"] == prov["data"]
    with tarfile.open(files["campaign.tgz"]) as tar:
        bundled = set(tar.getnames())
    assert {"steps.json", "provenance.json", "bench/distill-gpu.json", "bench/eval-gpu.json",
            "smoke/eval-dm_hdd.json", "long/dm_hdd/synset.pt", "long/dm_hdd/checkpoint.pt",
            "long/dm/cifar10_jpeg-ipc2-dm-s0.json"} <= bundled
    assert {f"smoke/{m}/distill.json" for m in METHODS} <= bundled
    assert not any(n.startswith(("cache/", "data/")) or (n.startswith("smoke/") and n.endswith(".pt")) for n in bundled)

    # a rerun installs and checks again but repeats nothing that is done
    again = campaign.main(argv)["steps"]
    assert again["env"]["attempts"] == 2
    assert all(again[n]["attempts"] == 1 and again[n]["status"] == "ok" for n in names[1:])
    assert len(json.loads((out / "provenance.json").read_text())["earlier_runs"]) == 1


def test_budget_skips_steps_and_still_exports(campaign, tmp_path):
    result = campaign.main(["--tiny", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--budget-s", "1"])
    assert {s["status"] for s in result["steps"].values()} == {"skipped"}
    assert "budget" in result["steps"]["env"]["reason"] and "needs env" in result["steps"]["tests"]["reason"]
    assert set(_files(tmp_path / "o")) == {"summary.json", "provenance.json", "campaign.tgz"}


def test_timeout_interrupts_a_subprocess_and_says_so(campaign, tmp_path):
    """On the GPU each command is a subprocess: past its time it gets SIGINT (a distillation then
    checkpoints and exits with 130), and the step is recorded as stopped by the budget."""
    args = campaign.build_parser().parse_args(["--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")])
    c = campaign.Campaign(args, campaign.Settings())
    script = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('stopped'); raise SystemExit(130)"
    call = c.call("sleeper", ["-c", script], timeout=1.5, interrupt=True)
    assert call.timed_out and call.rc == 130 and call.seconds < 30 and "stopped" in call.tail()
    with pytest.raises(campaign.OutOfTime):
        c.check(call, "sleeper")
    ok = c.call("quick", ["-c", "import sys; sys.exit(3)"], timeout=30)
    assert not ok.timed_out and ok.rc == 3


def test_commands_block_matches_the_scripts_flags(campaign):
    """Every flag the driver passes exists in the parser it is passed to (full and tiny settings)."""
    from hdd_lib.cli import build_parser

    for s in (campaign.Settings(), campaign.TINY):
        for args in (campaign.cmd_long_distill(s, "/d", "dm_hdd", Path("/o")),
                     campaign.cmd_distill(s, "/d", "idm", 10, 50, Path("/o"), *s.compile_flags),
                     campaign.cmd_evaluate(s, "/d", Path("/s.pt"), 5, 1000, Path("/o.json"))):
            assert args[:2] == ["-m", "hdd_lib"]
            build_parser().parse_args(args[2:])  # exits (SystemExit) on an unknown flag
        for cmd, script in ((campaign.cmd_bench_distill, "bench_distill"), (campaign.cmd_bench_eval, "bench_eval")):
            args = cmd(s, Path("/o.json"))
            assert args[0] == f"benchmarks/{script}.py"
            importlib.import_module(script).parse_args(args[1:])
