"""The GPU campaign (issue 15): one budgeted command that spends a short GPU lease in priority order.

Steps, each started only if the budget still allows it, each recorded and exported as soon as it
ends (a failed step is recorded and the next one runs):

1. ``env``          install the carried wheels (``.whl/*.whl`` -> ``--site``), check the imports, write
                    the provenance (commit, torch/CUDA, GPU, sha256 of the data tarball);
2. ``tests``        ``pytest -m gpu``;
3. ``smoke``        50 iterations of every method on CIFAR-10 (JPEG copy), then ``smoke_eval``;
4. ``bench_distill`` library vs reference loop, IPC 1/10/50, DM and DM+HDD, one process;
5. ``bench_eval``   seconds per evaluation model at IPC 10;
6. ``long_<m>_distill`` / ``long_<m>_eval``: IPC 10 at 20,000 iterations (resumable), then 5 ConvNets
                    x 1000 epochs, for DM+HDD and then DM;
7. ``smoke_compile`` DM+HDD with ``torch.compile`` (lowest priority).

State lives in ``--work`` (default ``.campaign/``, ignored): a rerun skips the steps already ``ok``
and resumes a long distillation from its checkpoint. After every step ``--out`` (``$OUT`` on the
GPU machine) receives ``summary.json`` (provenance and every step's record), ``provenance.json`` and
``campaign.tgz`` (the work folder without the decode cache and the smoke runs' tensors, under
15 MiB): three files, inside the device tool's limits (8 files, 16 MiB each).

``--tiny`` is the CPU dry run of the whole plan (tests/test_gpu_campaign.py): CPU, tiny sizes, a
fabricated 10-class JPEG tarball in the real layout, no wheel install, every command run in this
process (``pytest.main`` too), no torch.compile. See benchmarks/README.md for the ``run`` call.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = "CIFAR10-JPEG/cifar10-jpeg.tar.gz"
#: sha256 of the shared copy (../shared/datasets/SHA256SUMS).
DATA_SHA256 = "fefac9756afd201886f5510953259ea585162558ba05f7560f28391fd40f5d03"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MAX_BUNDLE = 15 << 20  # bytes of files put into campaign.tgz (the tool brings back files up to 16 MiB)


@dataclass(frozen=True)
class Settings:
    """Sizes of every step. The defaults are the GPU campaign; :data:`TINY` the CPU dry run."""

    device: str = "auto"
    dataset: str = "cifar10_jpeg"
    methods: tuple[str, ...] = ("dm", "dm_hdd", "idm", "idm_hdd", "geodm", "idm_geodm")
    smoke_ipc: int = 10
    smoke_iterations: int = 50
    smoke_eval: tuple[int, int] = (2, 20)  # (num_eval, epochs) of the smoke evaluation
    bench_ipcs: tuple[int, ...] = (1, 10, 50)
    bench_iterations: int = 40
    bench_warmup: int = 5
    bench_eval_ipc: int = 10
    bench_eval: tuple[int, int] = (5, 1000)  # (num_eval, epochs)
    bench_shape: tuple[str, ...] = ()  # data/model flags of both bench scripts (default: CIFAR-10 shape)
    bench_distill_extra: tuple[str, ...] = ()
    bench_eval_extra: tuple[str, ...] = ()
    long_methods: tuple[str, ...] = ("dm_hdd", "dm")
    long_ipc: int = 10
    long_iterations: int = 20000
    long_eval: tuple[int, int] = (5, 1000)
    checkpoint_every: int = 500
    distill_extra: tuple[str, ...] = ()  # flags added to every `distill` (tiny: a narrow model)
    idm_extra: tuple[str, ...] = ()  # flags added to the `distill` of IDM methods (their strategy's settings)
    eval_extra: tuple[str, ...] = ()
    test_paths: tuple[str, ...] = ()  # () = the test files that use the gpu mark (collecting all costs ~15 s)
    in_process: bool = False  # run every command in this process (no interpreter starts, no timeouts)
    compile_flags: tuple[str, ...] = ("--set", "compile=true")  # the torch.compile smoke
    profile: str = "paper"  # the protocol label written into the metric records


TINY = Settings(
    device="cpu", smoke_ipc=1, smoke_iterations=1, smoke_eval=(1, 2), bench_ipcs=(1, 2), bench_iterations=2,
    bench_warmup=1, bench_eval_ipc=2, bench_eval=(2, 2),
    bench_shape=("--classes", "2", "--image-size", "8", "--width", "16", "--threads", "1"),
    bench_distill_extra=("--per-class", "12", "--batch-real", "8"), bench_eval_extra=("--test-size", "8"),
    long_ipc=2, long_iterations=2, long_eval=(1, 2), checkpoint_every=1,
    distill_extra=("--batch_real", "4", "--set", "model.width=8"),
    idm_extra=("--set", "strategy.model_train_steps=1", "--set", "strategy.train_batch=8"),
    eval_extra=("--set", "model.width=8"), test_paths=("tests/data/test_load.py",), in_process=True,
    compile_flags=(), profile="tiny",  # compiling on a CPU takes a minute: the dry run checks the step only
)

# ============================================================================================
# COMMANDS: every command line this driver gives the project's scripts, as arguments of
# `python` (run from the repository root). Update here when hdd_lib's CLI or a bench script changes.
# ============================================================================================


def _data(s: Settings, root: str) -> list[str]:
    return ["--dataset", s.dataset, "--data_root", root, "--device", s.device, "--no_progress"]


def cmd_pytest(s: Settings, junit: Path) -> list[str]:
    paths = s.test_paths or tuple(sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                                         if "mark.gpu" in p.read_text()))
    return ["-m", "pytest", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider", f"--junitxml={junit}", *paths]


def cmd_distill(s: Settings, root: str, method: str, ipc: int, iterations: int, out: Path,
                *extra: str) -> list[str]:
    return ["-m", "hdd_lib", "distill", *_data(s, root), "--method", method, "--ipc", str(ipc),
            "--iterations", str(iterations), "--out", str(out), *s.distill_extra,
            *(s.idm_extra if method.startswith("idm") else ()), *extra]


def cmd_long_distill(s: Settings, root: str, method: str, out: Path) -> list[str]:
    return cmd_distill(s, root, method, s.long_ipc, s.long_iterations, out, "--resume",
                       "--checkpoint_every", str(s.checkpoint_every), "--set", "log_every=50")


def cmd_evaluate(s: Settings, root: str, synset: Path, num_eval: int, epochs: int, out: Path) -> list[str]:
    return ["-m", "hdd_lib", "evaluate", *_data(s, root), "--synset", str(synset), "--models", "convnet",
            "--num_eval", str(num_eval), "--epochs", str(epochs), "--out", str(out), *s.eval_extra]


def cmd_bench_distill(s: Settings, out: Path) -> list[str]:
    return ["benchmarks/bench_distill.py", "--device", s.device, "--ipc", *map(str, s.bench_ipcs),
            "--methods", "dm", "dm_hdd", "--iterations", str(s.bench_iterations), "--warmup", str(s.bench_warmup),
            *s.bench_shape, *s.bench_distill_extra, "--out", str(out)]


def cmd_bench_eval(s: Settings, out: Path) -> list[str]:
    n, epochs = s.bench_eval
    return ["benchmarks/bench_eval.py", "--device", s.device, "--ipc", str(s.bench_eval_ipc), "--num-eval", str(n),
            "--epochs", str(epochs), *s.bench_shape, *s.bench_eval_extra, "--out", str(out)]


# ============================================================================================


class StepFailed(Exception):
    """A step did not do its job; ``detail`` goes into its record."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class OutOfTime(StepFailed):
    """A step was stopped by the budget (a long distillation keeps its checkpoint: rerun to resume)."""


@dataclass
class Call:
    rc: int
    seconds: float
    log: Path
    timed_out: bool = False

    def tail(self, n: int = 1500) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-n:]


class Campaign:
    """The run: settings, folders, budget, step records and their export."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args, self.s = args, settings
        self.work = Path(args.work).resolve()
        self.out = Path(args.out).resolve()
        self.site = Path(args.site)
        self.deadline = time.monotonic() + args.budget_s
        self.reserve_s = args.reserve_s
        for sub in ("logs", "smoke", "bench", "long"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data_root = str(Path(args.data_root).resolve())
        self.state_path = self.work / "steps.json"
        self.steps: dict[str, dict[str, Any]] = (
            json.loads(self.state_path.read_text()) if self.state_path.exists() and not args.fresh else {})
        self.provenance: dict[str, Any] = json.loads((self.work / "provenance.json").read_text()) \
            if (self.work / "provenance.json").exists() and not args.fresh else {}
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", HDD_CACHE_DIR=str(Path(args.cache_dir).resolve()))
        if args.commit:  # for hdd_lib's provenance where git is absent, once it reads this variable
            self.env["HDD_GIT_COMMIT"] = args.commit
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(self.site), *filter(None, [os.environ.get("PYTHONPATH")])])
        for path in (str(self.site), str(ROOT)):  # this process imports hdd_lib too (metric records)
            if path not in sys.path:
                sys.path.insert(0, path)

    # ---------------------------------------------------------------- budget and logging
    def remaining(self) -> float:
        """Seconds left for steps (the budget less the reserve kept for the last export)."""
        return self.deadline - time.monotonic() - self.reserve_s

    def say(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} {self.remaining():6.0f}s left] {message}"
        print(line, flush=True)
        with open(self.work / "logs" / "driver.log", "a") as f:
            f.write(line + "\n")

    # ---------------------------------------------------------------- running commands
    def call(self, name: str, args: Sequence[str], timeout: float, *, interrupt: bool = False) -> Call:
        """Run ``python args`` from the repository root, its output in ``logs/<name>.log``.

        On timeout: SIGINT first when ``interrupt`` (a distillation then checkpoints and exits),
        SIGKILL after 60 s or at once."""
        log = self.work / "logs" / f"{name}.log"
        t0 = time.monotonic()
        if self.s.in_process:
            return Call(_in_process(list(args), log, self.env), time.monotonic() - t0, log)
        with open(log, "w") as f:
            f.write("$ python " + " ".join(args) + "\n")
            f.flush()
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT)
            try:
                return Call(proc.wait(timeout=max(1.0, timeout)), time.monotonic() - t0, log)
            except subprocess.TimeoutExpired:
                if interrupt:
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                else:
                    proc.kill()
                proc.wait()
                return Call(proc.returncode, time.monotonic() - t0, log, timed_out=True)

    def check(self, call: Call, what: str) -> None:
        if call.timed_out:
            raise OutOfTime(f"{what}: stopped by the budget after {call.seconds:.0f} s", log_tail=call.tail())
        if call.rc != 0:
            raise StepFailed(f"{what}: exit status {call.rc}", log_tail=call.tail())

    # ---------------------------------------------------------------- steps and export
    def run_step(self, name: str, fn: Callable[[Campaign], dict[str, Any]], min_s: float,
                 needs: Sequence[str] = ()) -> None:
        done = self.steps.get(name, {})
        if done.get("status") == "ok" and name not in self.args.redo and name not in ALWAYS:
            self.say(f"{name}: done in an earlier run, skipped")
            return
        missing = [n for n in needs if self.steps.get(n, {}).get("status") != "ok"]
        record: dict[str, Any] = {"name": name, "attempts": done.get("attempts", 0)}
        if missing:
            record.update(status="skipped", reason=f"needs {', '.join(missing)}")
        elif self.remaining() < min_s:
            record.update(status="skipped", reason=f"budget: {self.remaining():.0f} s left, step needs {min_s:.0f} s")
        else:
            self.say(f"{name}: start")
            record["attempts"] += 1
            t0 = time.monotonic()
            try:
                record.update({**fn(self), "status": "ok"})
            except OutOfTime as e:
                record.update({**e.detail, "status": "timeout", "error": str(e)})
            except StepFailed as e:
                record.update({**e.detail, "status": "failed", "error": str(e)})
            except Exception as e:  # a bug in a step must not stop the campaign
                record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
            record["seconds"] = round(time.monotonic() - t0, 2)
        record["finished_utc"] = _utc()
        self.steps[name] = record
        self.say(f"{name}: {record['status']}" + (f" ({record.get('error') or record.get('reason')})"
                                                   if record["status"] != "ok" else f" in {record['seconds']} s"))
        if record["status"] == "failed":  # the cause, in the run tool's output tail too
            print("    | " + (record.get("log_tail") or record.get("traceback") or "")[-600:].replace("\n", "\n    | "))
        self.export()

    def export(self) -> None:
        """Write the state to ``work`` and the three result files to ``out`` (each atomically)."""
        _write_json(self.state_path, self.steps)
        summary = {"campaign": "gpu_campaign (issue 15)", "settings": dataclasses.asdict(self.s),
                   "budget_s": self.args.budget_s, "exported_utc": _utc(), "provenance": self.provenance,
                   "steps": list(self.steps.values())}
        _write_json(self.work / "summary.json", summary)
        _write_json(self.out / "summary.json", summary)
        _write_json(self.out / "provenance.json", self.provenance)
        left_out = _bundle(self.work, self.out / "campaign.tgz")
        if left_out:
            self.say(f"campaign.tgz: left out (size cap) {', '.join(left_out)}")


# ==================================================================================== steps


def step_env(c: Campaign) -> dict[str, Any]:
    """Install the wheels, check the imports, write ``provenance.json``."""
    installed: list[str] = []
    if not c.args.no_install:
        wheels = sorted(str(p) for p in (ROOT / ".whl").glob("*.whl"))
        if not wheels:
            raise StepFailed("no wheels in .whl/: run benchmarks/fetch_gpu_wheels.sh before the run call")
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                              "--no-cache-dir", "--upgrade", "--target", str(c.site), *wheels],
                             capture_output=True, text=True, timeout=300)
        if pip.returncode != 0:
            raise StepFailed(f"pip install: exit status {pip.returncode}", log_tail=(pip.stdout + pip.stderr)[-2000:])
        installed = [Path(w).name for w in wheels]
    importlib.invalidate_caches()
    versions, errors = _import_versions()
    tarball = Path(c.data_root) / DATA_FILE
    data = {"path": str(tarball), "exists": tarball.is_file()}
    if tarball.is_file():
        data.update(sha256=_sha256(tarball), bytes=tarball.stat().st_size)
        data["is_shared_copy"] = data["sha256"] == DATA_SHA256
    earlier = [p for p in (c.provenance.pop("earlier_runs", []) + [c.provenance]) if p]
    c.provenance = {"commit": c.args.commit or _git_commit(), "code_sha256": _code_digest(), "time_utc": _utc(),
                    "python": sys.version.split()[0], "executable": sys.executable, "packages": versions,
                    "import_errors": errors, "wheels_installed": installed, "data": data, **_device_info(),
                    "settings": "tiny (CPU dry run)" if c.s.profile == "tiny" else "full", "earlier_runs": earlier}
    _write_json(c.work / "provenance.json", c.provenance)
    needed = {"torch", "geoopt", "ot", "hdd_lib"} & set(errors)
    if needed or not data["exists"]:
        raise StepFailed("environment incomplete: " + ", ".join(
            [f"cannot import {m}" for m in sorted(needed)] + ([] if data["exists"] else [f"no {tarball}"])))
    return {"cuda": c.provenance.get("cuda_available"), "gpu": c.provenance.get("gpu_name"),
            "data_sha256": data.get("sha256")}


def step_tests(c: Campaign) -> dict[str, Any]:
    junit = c.work / "logs" / "pytest-gpu.xml"
    call = c.call("tests", cmd_pytest(c.s, junit), min(c.remaining(), 180))
    counts = _junit_counts(junit)
    out = {"rc": call.rc, **counts, "log_tail": call.tail(1200)}
    if call.timed_out or call.rc not in (0, 5) or counts.get("failures", 0) or counts.get("errors", 0):
        raise (OutOfTime if call.timed_out else StepFailed)(f"pytest -m gpu: exit status {call.rc}, {counts}", **out)
    return out


def step_smoke(c: Campaign) -> dict[str, Any]:
    """``smoke_iterations`` of every method; all run even if one fails."""
    rows, bad = {}, []
    for i, method in enumerate(c.s.methods):
        if c.remaining() < 20:
            rows[method] = {"status": "skipped", "reason": "budget"}
            bad.append(method)
            continue
        out = c.work / "smoke" / method
        call = c.call(f"smoke-{method}", cmd_distill(c.s, c.data_root, method, c.s.smoke_ipc, c.s.smoke_iterations, out),
                      min(c.remaining(), 90 if i else 150))  # the first one decodes the JPEGs (~30 s)
        rows[method] = _distill_row(call, out)
        if rows[method]["status"] != "ok":
            bad.append(method)
    if bad:
        raise StepFailed(f"smoke failed for {', '.join(bad)}", methods=rows)
    return {"methods": rows}


def step_smoke_eval(c: Campaign) -> dict[str, Any]:
    n, epochs = c.s.smoke_eval
    method = "dm_hdd" if "dm_hdd" in c.s.methods else c.s.methods[0]
    out = c.work / "smoke" / f"eval-{method}.json"
    call = c.call("smoke-eval", cmd_evaluate(c.s, c.data_root, c.work / "smoke" / method / "synset.pt", n, epochs, out),
                  min(c.remaining(), 120))
    c.check(call, "evaluate")
    return {"method": method, "num_eval": n, "epochs": epochs, **_eval_summary(out), "wall_seconds": round(call.seconds, 2)}


def step_bench_distill(c: Campaign) -> dict[str, Any]:
    out = c.work / "bench" / f"distill-{c.args.tag}.json"
    call = c.call("bench-distill", cmd_bench_distill(c.s, out), min(c.remaining(), 240))
    c.check(call, "bench_distill.py")
    result = json.loads(out.read_text())
    rows = [{"variant": s["variant"], "method": s["method"], "ipc": s["ipc"], "baseline": s["baseline"],
             "baseline_ms": s["baseline_ms_median"], "ratio": s["median_ratio"]} for s in result["speedups"]]
    return {"file": out.name, "median_ms_per_iteration": rows, "device": result.get("device", {}).get("name")}


def step_bench_eval(c: Campaign) -> dict[str, Any]:
    out = c.work / "bench" / f"eval-{c.args.tag}.json"
    call = c.call("bench-eval", cmd_bench_eval(c.s, out), min(c.remaining(), 180))
    c.check(call, "bench_eval.py")
    result = json.loads(out.read_text())
    return {"file": out.name, "seconds_per_model": {r["model"]: r["seconds_per_model"] for r in result["results"]},
            "for_epochs": {r["model"]: r["seconds_per_model_is_for_epochs"] for r in result["results"]}}


def long_distill(method: str) -> Callable[[Campaign], dict[str, Any]]:
    def step(c: Campaign) -> dict[str, Any]:
        out = c.work / "long" / method
        # SIGINT 15 s early: the loop finishes its iteration and writes the checkpoint within the budget
        call = c.call(f"long-{method}-distill", cmd_long_distill(c.s, c.data_root, method, out), c.remaining() - 15,
                      interrupt=True)
        row = _distill_row(call, out, checkpoint=True)
        if row["status"] == "timeout":
            raise OutOfTime(f"stopped at iteration {row.get('checkpoint_iteration')} of {c.s.long_iterations}; "
                            "rerun to resume", **row)
        if row["status"] != "ok":
            raise StepFailed(f"distill {method}: {row.get('error')}", **row)
        return row
    return step


def long_eval(method: str) -> Callable[[Campaign], dict[str, Any]]:
    def step(c: Campaign) -> dict[str, Any]:
        n, epochs = c.s.long_eval
        folder = c.work / "long" / method
        out = folder / "eval.json"
        call = c.call(f"long-{method}-eval", cmd_evaluate(c.s, c.data_root, folder / "synset.pt", n, epochs, out),
                      c.remaining())
        c.check(call, "evaluate")
        record = _metric_record(c, method, folder)
        name = f"{record['run_id']}.json"
        _write_json(folder / name, record)
        return {"metric_file": f"long/{method}/{name}", **_eval_summary(out), "wall_seconds": round(call.seconds, 2)}
    return step


def step_smoke_compile(c: Campaign) -> dict[str, Any]:
    out = c.work / "smoke" / "dm_hdd-compile"
    call = c.call("smoke-compile", cmd_distill(c.s, c.data_root, "dm_hdd", c.s.smoke_ipc, c.s.smoke_iterations, out,
                                               *c.s.compile_flags), min(c.remaining(), 180))
    row = _distill_row(call, out)
    if row["status"] != "ok":
        raise (OutOfTime if row["status"] == "timeout" else StepFailed)(f"compile smoke: {row.get('error')}", **row)
    return row


def eval_time_estimate(c: Campaign) -> float:
    """Seconds a long evaluation is expected to take: bench_eval's per-model figure x models, plus
    loading and testing; 120 s when there is none."""
    per_model = c.steps.get("bench_eval", {}).get("seconds_per_model", {}).get("convnet")
    for_epochs = c.steps.get("bench_eval", {}).get("for_epochs", {}).get("convnet")
    if not per_model or for_epochs != c.s.long_eval[1]:
        return 120.0
    return 30.0 + 1.3 * per_model * c.s.long_eval[0]


#: Steps that run on every call (a fresh machine needs its wheels installed again).
ALWAYS = ("env",)


def plan(s: Settings) -> list[tuple[str, Callable[[Campaign], dict[str, Any]], Callable[[Campaign], float], tuple[str, ...]]]:
    """(name, step, minimum seconds to start it, steps it needs), in priority order."""
    fixed = lambda s: (lambda _c: s)  # noqa: E731
    steps = [("env", step_env, fixed(5), ()), ("tests", step_tests, fixed(30), ("env",)),
             ("smoke", step_smoke, fixed(30), ("env",)), ("smoke_eval", step_smoke_eval, fixed(20), ("env",)),
             ("bench_distill", step_bench_distill, fixed(60), ("env",)),
             ("bench_eval", step_bench_eval, fixed(45), ("env",))]
    for m in s.long_methods:
        steps += [(f"long_{m}_distill", long_distill(m), fixed(45), ("env",)),
                  (f"long_{m}_eval", long_eval(m), eval_time_estimate, (f"long_{m}_distill",))]
    steps.append(("smoke_compile", step_smoke_compile, fixed(90), ("env",)))
    return steps


# ==================================================================================== helpers


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, check=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git here: pass --commit)"


def _code_digest() -> str:
    """sha256 over hdd_lib/ and benchmarks/ (paths and bytes): identifies the code where git is absent."""
    h = hashlib.sha256()
    for p in sorted([*ROOT.glob("hdd_lib/**/*.py"), *ROOT.glob("benchmarks/*.py")]):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _import_versions() -> tuple[dict[str, str], dict[str, str]]:
    """Import every module the campaign needs; versions of those that load, errors of the others."""
    versions, errors = {}, {}
    for mod in ("torch", "torchvision", "numpy", "scipy", "sklearn", "PIL", "yaml", "tqdm", "matplotlib", "pandas",
                "seaborn", "geoopt", "ot", "pytest", "hypothesis", "hdd_lib", "hdd_lib.distill", "hdd_lib.evaluate"):
        try:
            module = importlib.import_module(mod)
            versions[mod] = str(getattr(module, "__version__", "")) or "(no version)"
        except Exception as e:  # noqa: BLE001 - recorded, judged by the caller
            errors[mod] = f"{type(e).__name__}: {e}"
    return versions, errors


def _device_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as e:
        return {"torch_error": str(e)}
    info: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                            "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu_name=props.name, gpu_capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), gpu_multiprocessors=props.multi_processor_count)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            info["nvidia_smi"] = smi.stdout.strip()
    return info


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} if suite is not None else {}


def _distill_row(call: Call, out: Path, *, checkpoint: bool = False) -> dict[str, Any]:
    """A distillation's outcome: ms/iteration and the last loss from ``distill.json``, or its failure."""
    row: dict[str, Any] = {"rc": call.rc, "wall_seconds": round(call.seconds, 2)}
    record = out / "distill.json"
    if call.rc == 0 and not call.timed_out and record.exists():
        meta = json.loads(record.read_text())
        losses = [h["loss"] for h in meta.get("history", []) if "loss" in h]
        prov = meta.get("provenance", {})
        row.update(status="ok", iterations=meta.get("iteration"), ms_per_iteration=prov.get("ms_per_iteration"),
                   distill_seconds=prov.get("seconds"), final_loss=losses[-1] if losses else None,
                   device=prov.get("device"))
        return row
    row.update(status="timeout" if call.timed_out or call.rc == 130 else "failed", log_tail=call.tail())
    if checkpoint and (out / "checkpoint.pt").exists():
        row["checkpoint_iteration"] = _checkpoint_iteration(out / "checkpoint.pt")
    row["error"] = "stopped by the budget" if row["status"] == "timeout" else f"exit status {call.rc}"
    return row


def _checkpoint_iteration(path: Path) -> int | None:
    try:
        import torch

        return int(torch.load(path, map_location="cpu", weights_only=False)["iteration"])
    except Exception:  # noqa: BLE001 - informative only
        return None


def _eval_summary(path: Path) -> dict[str, Any]:
    results = json.loads(path.read_text())["results"]
    return {"accuracy": {m: {"mean": r["mean"], "std": r["std"], "accs": r["accs"]} for m, r in results.items()},
            "seconds_per_model": {m: r.get("seconds_per_model") for m, r in results.items()}}


def _metric_record(c: Campaign, method: str, folder: Path) -> dict[str, Any]:
    """The evaluation in the pipeline's record form (``results/records/eval/<run_id>.json``), with its provenance."""
    from hdd_lib.params import data_copy_label
    from hdd_lib.strategies import method_label

    meta = json.loads((folder / "distill.json").read_text())
    ev = json.loads((folder / "eval.json").read_text())
    cfg, e = meta["config"], ev["eval"]
    copy = data_copy_label(c.s.dataset)
    return {
        "run_id": f"{c.s.dataset}-ipc{cfg['ipc']}-{method}-s{cfg['seed']}", "dataset": c.s.dataset, "data_copy": copy,
        "ipc": cfg["ipc"], "method": method, "method_label": method_label(cfg["strategy"], cfg["loss"]),
        "seed": cfg["seed"], "variant": None, "kind": "eval", "code": {"distill": meta.get("code")},
        "protocol": {"profile": c.s.profile, "data_copy": copy, "iterations": cfg["iterations"],
                     "batch_real": cfg["batch_real"], "lr_img": cfg["lr_img"], "num_eval": e["num_eval"],
                     "epochs": e["epochs"], "eval_lr": e["lr"], "eval_batch": e["batch"]},
        "results": ev["results"], "curve": [], "distill_seconds": meta["provenance"].get("seconds"),
        "distill_ms_per_iteration": meta["provenance"].get("ms_per_iteration"), "variant_settings": None,
        "provenance": {**meta.get("provenance", {}), "git_commit": c.provenance.get("commit"),
                       "code_sha256": c.provenance.get("code_sha256"),
                       "data_sha256": c.provenance.get("data", {}).get("sha256"),
                       "torch_cuda": c.provenance.get("torch_cuda"), "source": "benchmarks/gpu_campaign.py"},
    }


def _bundle(work: Path, dest: Path) -> list[str]:
    """Tar ``work`` into ``dest``: JSON and logs first, then the long runs' tensors while under
    :data:`MAX_BUNDLE`; never the decode cache or the smoke runs' tensors. Returns what was left out."""
    files = sorted(p for p in work.rglob("*") if p.is_file() and not p.name.startswith("."))
    rel = lambda p: p.relative_to(work).as_posix()  # noqa: E731
    files = [p for p in files if not (rel(p).startswith("smoke/") and p.suffix == ".pt")
             and not rel(p).startswith(("cache/", "data/"))]
    files.sort(key=lambda p: (p.suffix == ".pt", p.name == "checkpoint.pt", rel(p)))
    total, left_out = 0, []
    tmp = dest.with_name(f".{dest.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in files:
            size = p.stat().st_size
            if total + size > MAX_BUNDLE:
                left_out.append(rel(p))
                continue
            total += size
            tar.add(p, arcname=rel(p))
    os.replace(tmp, dest)
    return left_out


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _in_process(args: list[str], log: Path, env: dict[str, str]) -> int:
    """Run ``python args`` inside this process (the dry run: no interpreter start per command)."""
    buffer = io.StringIO()
    rc = 0
    with _environ({k: env[k] for k in ("HDD_CACHE_DIR",)}), contextlib.redirect_stdout(buffer), \
            contextlib.redirect_stderr(buffer):
        print("$ python " + " ".join(args) + "  (in process)")
        try:
            if args[:2] == ["-m", "hdd_lib"]:
                from hdd_lib.cli import main as cli_main

                rc = cli_main(args[2:])
            elif args[:2] == ["-m", "pytest"]:
                import pytest

                rc = int(pytest.main(args[2:]))
            elif args[0].startswith("benchmarks/") and args[0].endswith(".py"):
                folder = str(ROOT / "benchmarks")
                sys.path.insert(0, folder)
                try:
                    spec = importlib.util.spec_from_file_location(Path(args[0]).stem, ROOT / args[0])
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    module.main(args[1:])
                finally:
                    sys.path.remove(folder)
            else:
                raise ValueError(f"cannot run {args[:2]} in process")
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except Exception:  # noqa: BLE001 - reported through the exit status and the log
            traceback.print_exc()
            rc = 1
    log.write_text(buffer.getvalue())
    return rc


def fabricate_jpeg_copy(root: Path, *, train: int = 8, test: int = 2, seed: int = 0) -> Path:
    """A tiny stand-in for ``<root>/CIFAR10-JPEG/cifar10-jpeg.tar.gz`` in the real layout
    (``train|test/<class>/NNNN.jpg``, CIFAR-10's class names, 32x32 RGB), one colour per class."""
    import numpy as np
    from PIL import Image

    path = root / DATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", train), ("test", test)):
            for k, name in enumerate(CIFAR10_CLASSES):
                colour = np.array([(37 * k) % 256, (91 * k) % 256, (150 + 53 * k) % 256], dtype=float)
                for i in range(n):
                    pixels = np.clip(colour + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(pixels).save(buf, format="JPEG", quality=75)
                    info = tarfile.TarInfo(f"{split}/{name}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


# ==================================================================================== main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget-s", type=float, default=540.0, help="wall-clock seconds for all steps (default: 540)")
    p.add_argument("--reserve-s", type=float, default=10.0, help="kept back for the last export (default: 10)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / ".campaign-out"),
                   help="where the three result files go (default: $OUT, else .campaign-out)")
    p.add_argument("--work", default=str(ROOT / ".campaign"), help="state kept between reruns (default: .campaign)")
    p.add_argument("--data-root", default=str(ROOT / ".data"), help=f"holds {DATA_FILE} (default: .data)")
    p.add_argument("--cache-dir", default="/tmp/hdd_gpu_campaign_cache", help="JPEG decode cache ($HDD_CACHE_DIR)")
    p.add_argument("--site", default="/tmp/site", help="where the wheels are installed (default: /tmp/site)")
    p.add_argument("--commit", default=None, help="git commit of the tree (git is absent on the GPU machine)")
    p.add_argument("--tag", default="gpu", help="bench file names: distill-TAG.json, eval-TAG.json (default: gpu)")
    p.add_argument("--only", nargs="+", default=None, metavar="STEP", help="run these steps only")
    p.add_argument("--redo", nargs="+", default=[], metavar="STEP", help="run these even if done before")
    p.add_argument("--fresh", action="store_true", help="forget the state of earlier runs in --work")
    p.add_argument("--no-install", action="store_true", help="do not install .whl/*.whl (use what is importable)")
    p.add_argument("--tiny", action="store_true",
                   help="CPU dry run: tiny sizes, a fabricated JPEG tarball in --work, no install, in-process commands")
    p.add_argument("--list", action="store_true", help="print the steps in priority order, run nothing")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    settings = TINY if args.tiny else Settings()
    if args.tiny:
        args.no_install = True
        args.data_root = str(Path(args.work) / "data")
        args.cache_dir = str(Path(args.work) / "cache")
    steps = plan(settings)
    names = [name for name, *_ in steps]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        raise SystemExit(f"--only: unknown step(s) {', '.join(unknown)}; steps: {', '.join(names)}")
    if args.list:
        print("\n".join(names))
        return {}
    c = Campaign(args, settings)
    if args.tiny and not (Path(args.data_root) / DATA_FILE).exists():
        fabricate_jpeg_copy(Path(args.data_root))
    c.say(f"gpu_campaign: budget {args.budget_s:.0f} s, work {c.work}, out {c.out}, {'tiny' if args.tiny else 'full'}")
    for name, fn, min_s, needs in steps:
        if args.only is None or name in args.only or name in ALWAYS:
            c.run_step(name, fn, min_s(c), needs)
    c.export()
    status = {n: c.steps[n]["status"] for n in names if n in c.steps}
    c.say("summary: " + ", ".join(f"{n}={s}" for n, s in status.items()))
    return {"steps": c.steps, "provenance": c.provenance, "out": str(c.out)}


if __name__ == "__main__":
    main()
