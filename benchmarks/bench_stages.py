"""Seconds per pipeline stage, by how the notebook is run: a Jupyter kernel (papermill's default, the
pipeline before issue 12's runner work), in this process (``hdd_lib.notebook``), or in a child of the warm
server (``hdd_lib.warm``, the pipeline's default).

Runs real ``cpu``-profile stages (``python -m hdd_lib notebook …``, the commands of dvc.yaml) in a fresh clone
of the repository's HEAD, so ``results/`` here is untouched. Each round runs every mode over the same stages,
the modes' order rotating from round to round; the distillation's checkpoints are removed before it runs, so
every run distils from scratch. Per run: wall time, the CPU time of the process tree (``RUSAGE_CHILDREN``;
a warm child's CPU is its server's, so this misses it) and of the whole machine (``/proc/stat``; includes
other tenants). Usage: ``python benchmarks/bench_stages.py --rounds 3 --out results/benchmarks/stages-cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (stage, notebook, target, parameters): a chain of cpu-profile stages, each needing the one before.
STAGES = [
    ("data@digits", "00_data", "00_data-digits", {"dataset": "digits"}),
    ("geometry@digits", "01_geometry", "01_geometry-digits", {"dataset": "digits"}),
    ("distill@digits-1-dm_hdd-0", "02_distill", "02_distill-digits-ipc1-dm_hdd-s0",
     {"dataset": "digits", "ipc": 1, "method": "dm_hdd", "seed": 0}),
    ("evaluate@digits-1-dm_hdd-0", "03_evaluate", "03_evaluate-digits-ipc1-dm_hdd-s0",
     {"dataset": "digits", "ipc": 1, "method": "dm_hdd", "seed": 0}),
]

#: mode -> (extra arguments, environment)
MODES = {
    "kernel": (["--kernel"], {"HDD_WARM": "0"}),
    "in-process": ([], {"HDD_WARM": "0"}),
    "warm": ([], {}),
}


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``: user+nice+system+irq+softirq)."""
    fields = open("/proc/stat").readline().split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / ticks


def run_stage(clone: Path, stage: tuple, mode: str, env: dict) -> dict:
    name, notebook, target, params = stage
    extra, mode_env = MODES[mode]
    if name.startswith("distill"):
        shutil.rmtree(clone / "results" / "checkpoints", ignore_errors=True)
    cmd = [sys.executable, "-m", "hdd_lib", "notebook", f"notebooks/{notebook}.ipynb",
           f"results/notebooks/{target}.ipynb", *[a for k, v in params.items() for a in ("-p", k, str(v))], *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = machine_cpu(), time.perf_counter()
    r = subprocess.run(cmd, cwd=clone, env={**env, **mode_env}, capture_output=True, text=True)
    wall, machine = time.perf_counter() - t0, machine_cpu() - cpu0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise RuntimeError(f"{name} ({mode}) failed: {r.stderr[-2000:]}")
    tree = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"stage": name, "mode": mode, "wall_s": round(wall, 3), "tree_cpu_s": round(tree, 3),
            "machine_cpu_s": round(machine, 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stages", type=int, default=len(STAGES), help="the first N stages of the chain")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    stages = STAGES[:args.stages]
    work = Path(tempfile.mkdtemp(prefix="hdd-bench-stages-"))
    servers = Path(tempfile.mkdtemp(prefix="hw-", dir="/tmp"))
    clone = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "PYTHONPATH": str(clone), "HDD_WARM_DIR": str(servers), "HDD_WARM_IDLE": "600"}
    runs = []
    try:
        for stage in stages:  # prepare: each stage's inputs exist; the warm server is started (timed apart)
            runs.append({**run_stage(clone, stage, "warm", env), "round": -1})
        modes = list(MODES)
        for rnd in range(args.rounds):
            order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
            for mode in order:
                for stage in stages:
                    runs.append({**run_stage(clone, stage, mode, env), "round": rnd})
                    print(json.dumps(runs[-1]), flush=True)
    finally:
        from hdd_lib import warm
        warm.stop(servers)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(servers, ignore_errors=True)
    timed = [r for r in runs if r["round"] >= 0]
    summary = {}
    for mode in MODES:
        def chain(key: str) -> list[float]:  # the chain's total per round
            return [sum(r[key] for r in timed if r["mode"] == mode and r["round"] == k) for k in range(args.rounds)]
        per_stage = {s[0]: statistics.median(r["wall_s"] for r in timed if r["mode"] == mode and r["stage"] == s[0])
                     for s in stages}
        summary[mode] = {"chain_wall_s_median": round(statistics.median(chain("wall_s")), 2),
                         "chain_wall_s": [round(x, 2) for x in chain("wall_s")],
                         "stage_wall_s_median": per_stage,
                         "tree_cpu_s_median": round(statistics.median(chain("tree_cpu_s")), 2),
                         "machine_cpu_s_median": round(statistics.median(chain("machine_cpu_s")), 2)}
    base = summary["kernel"]["chain_wall_s_median"]
    for mode in MODES:
        summary[mode]["speedup_vs_kernel"] = round(base / summary[mode]["chain_wall_s_median"], 2)
    result = {"commit": commit, "machine": cpu_model(), "cpus": os.cpu_count(),
              "stages": [s[0] for s in stages], "rounds": args.rounds, "summary": summary, "runs": runs}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
