"""Seconds per distillation iteration: ``hdd_lib.distill.run`` against baselines, interleaved.

On random CIFAR-10-shaped data (10 classes x ``--per-class`` images, 3x32x32, ``batch_real`` 256)
every timed unit runs in its own fresh process, in this order::

    baselines (before) | library variants (round 1) | baselines | ... | variants (round R) | baselines (after)

so that a shared machine's load drifts over library and baselines alike. Run from the repository root::

    python benchmarks/bench_distill.py --device cpu --threads 2 --ipc 10 --methods dm \\
        --iterations 3 --warmup 1 --per-class 600 --variants fp32+glibc fp32 bf16 bf16+compile default

Baselines (``--baselines``): ``official`` / ``official-dsa`` (``official_loop.py``: plain PyTorch,
no ``hdd_lib`` import, so glibc's default allocator; per-class loop, a fresh ConvNet per
iteration, float32; without / with per-class Siamese DSA), ``reference`` (``reference_loop.py``:
the same structure on ``hdd_lib``'s building blocks, incl. DM+HDD). Library variants
(``--variants``): ``default`` (the library's defaults) or ``+``-joined tokens: ``fp32`` / ``bf16`` /
``auto`` (``real_precision``), ``compile``, ``glibc`` (``HDD_MALLOC_TUNE=0``: glibc's default
allocator settings).

Per iteration every unit records wall time (``perf_counter``; CUDA: events), process CPU time
(``process_time``, all threads) and minor page faults (``getrusage``); the library is marked by
``run``'s ``on_iteration`` hook (``warmup + N + 1`` iterations; the first ``warmup`` intervals are
dropped, the last iteration, which runs into the end-of-run snapshot, is not timed). With
``compile`` the compilation happens in iteration 0: the time from ``run``'s start through the warm-up, less
``warmup + 1`` steady iterations, is stored as ``compile_s`` (an upper bound: the run's setup is in it) and amortised over runs of 100 / 200 / 20,000 iterations.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

# Benchmark the checked-out hdd_lib (the one whose commit is recorded), installed or not.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from hdd_lib import distill, provenance  # noqa: E402
from hdd_lib.config import DistillConfig, from_dict, to_dict  # noqa: E402
from hdd_lib.data import ImageSet, get_spec  # noqa: E402
from hdd_lib.allocator import MALLOC_ENV  # noqa: E402
from hdd_lib.runtime import resolve_device, use_bf16, use_bf16_real  # noqa: E402
from hdd_lib.storage import save_json  # noqa: E402

__all__ = ["main", "Clock", "random_imageset", "resolve_indexed", "device_record", "summarise", "default_out",
           "parse_variant", "machine_load"]

REPO = Path(_ROOT)
HERE = Path(__file__).resolve().parent
METHODS = ("dm", "dm_hdd")
BASELINES = ("official", "official-dsa", "reference")
#: Run lengths the compile time is amortised over: the cpu profile, cpu-fmnist, the paper.
AMORTISE_OVER = (100, 200, 20000)
#: The issue's goals. GPU: on one NVIDIA H100 at IPC 10, >= 10x the reference loop and <= 8 ms/iteration.
#: CPU (2 cores): the default library >= 3.5x the official-structure loop (no DSA), stretch <= 1.1 s.
TARGET = {"device": "NVIDIA H100", "ipc": 10, "min_speedup": 10.0, "max_ms_per_iteration": 8.0,
          "reference_ms_per_iteration_seen": 86.0}
CPU_TARGET = {"threads": 2, "ipc": 10, "method": "dm", "variant": "default", "baseline": "official",
              "min_cpu_time_ratio": 3.5, "stretch_max_s_per_iteration": 1.1}


# ------------------------------------------------------------------------------------ clock


class Clock:
    """Marks on a timeline: :meth:`intervals_ms` gives the time between consecutive marks.

    CUDA: a CUDA event per mark (nothing is synchronised at a mark unless its index is in
    ``sync_at``), read after a final ``torch.cuda.synchronize``. CPU: ``time.perf_counter``.
    Every mark also takes the process CPU time and minor page-fault count (:meth:`cpu_ms`, :meth:`faults`).
    """

    def __init__(self, device: torch.device, *, sync_at: Sequence[int] = ()) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.sync_at = set(sync_at)
        self.events: list[Any] = []
        self.host: dict[int, float] = {}
        self.cpu: list[float] = []
        self.flt: list[int] = []

    def __len__(self) -> int:
        return len(self.events)

    def mark(self) -> None:
        i = len(self.events)
        if self.cuda:
            if i in self.sync_at:
                torch.cuda.synchronize(self.device)
                self.host[i] = time.perf_counter()
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.events.append(event)
        else:
            now = time.perf_counter()
            self.events.append(now)
            self.host[i] = now
        self.cpu.append(time.process_time())
        self.flt.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def intervals_ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return [a.elapsed_time(b) for a, b in zip(self.events, self.events[1:])]
        return [1e3 * (b - a) for a, b in zip(self.events, self.events[1:])]

    def cpu_ms(self) -> list[float]:
        return [1e3 * (b - a) for a, b in zip(self.cpu, self.cpu[1:])]

    def faults(self) -> list[int]:
        return [b - a for a, b in zip(self.flt, self.flt[1:])]

    def wall_ms(self, i: int, j: int) -> float:
        """Host milliseconds from mark ``i`` to mark ``j`` (both in ``sync_at`` on CUDA)."""
        return 1e3 * (self.host[j] - self.host[i])


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Median, mean, population std, min and max of per-iteration values."""
    t = list(values)
    return {"median": statistics.median(t), "mean": statistics.fmean(t), "std": statistics.pstdev(t),
            "min": min(t), "max": max(t), "n": len(t)}


# ------------------------------------------------------------------------------------ records


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The SIMD flags that decide float32 / bf16 convolution speed (Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx512f", "avx512_bf16", "amx", "avx2")))


def machine_load() -> list[float]:
    """1, 5 and 15-minute load averages (``os.getloadavg``), or ``[]``."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def device_record(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: GPU name and capability, or CPU model, flags and threads,
    plus the precision switches that change float32 convolution / matmul speed."""
    rec: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads(),
                           "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(), "cpu_flags": _cpu_flags()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rec.update(name=torch.cuda.get_device_name(device), capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    else:
        rec["name"] = f"CPU {rec['cpu_model']} ({rec['torch_threads']} threads)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec["float32_matmul_precision"] = torch.get_float32_matmul_precision()
        rec["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        rec["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    return rec


def default_out(kind: str, device: torch.device) -> Path:
    """``results/benchmarks/<kind>-<device>.json``, e.g. ``distill-nvidia-h100-80gb-hbm3.json``."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return REPO / "results" / "benchmarks" / f"{kind}-{slug}.json"


def resolve_indexed(name: str) -> torch.device:
    """:func:`hdd_lib.runtime.resolve_device` with the CUDA index filled in (``cuda`` -> ``cuda:N``),
    so that ``ImageSet.to`` in the loop sees the data already in place and keeps the timed set."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def random_imageset(classes: int, per_class: int, image_size: int, device: torch.device, *, seed: int = 0,
                    channels: int = 3, split: str = "train") -> ImageSet:
    """A fabricated CIFAR-10-shaped training set: standard-normal 'normalised' images, ``per_class`` per class."""
    spec = dataclasses.replace(get_spec("cifar10"), name="random_cifar10_shaped", channels=channels,
                               image_size=(image_size, image_size), num_classes=classes, class_names=None,
                               mean=(0.0,) * channels, std=(1.0,) * channels)
    g = torch.Generator(device).manual_seed(seed)
    images = torch.randn(classes * per_class, channels, image_size, image_size, generator=g, device=device)
    labels = torch.arange(classes, device=device).repeat_interleave(per_class)
    return ImageSet(images, labels, spec, split=split)


def parse_variant(name: str) -> dict[str, Any]:
    """``"default"`` or ``+``-joined tokens -> ``{"name", "overrides" (DistillConfig fields), "malloc"}``.

    Tokens: ``fp32`` / ``bf16`` / ``auto`` (``real_precision``), ``compile``, ``glibc`` (allocator
    tuning off). Raises ``ValueError`` naming an unknown token.
    """
    overrides: dict[str, Any] = {}
    malloc = True
    for token in ([] if name == "default" else name.split("+")):
        if token in ("fp32", "bf16", "auto"):
            overrides["real_precision"] = token
        elif token == "compile":
            overrides["compile"] = True
        elif token == "glibc":
            malloc = False
        else:
            raise ValueError(f"unknown variant token {token!r} in {name!r}; use 'default' or fp32|bf16|auto, "
                             "compile, glibc joined by '+'")
    return {"name": name, "overrides": overrides, "malloc": malloc}


# ------------------------------------------------------------------------------------ timing (worker side)


def _rows(clock: Clock, warmup: int, iterations: int, first_ms: float = 0.0) -> dict[str, Any]:
    """``first_ms``: run start to the first mark (iteration 0 and the run's setup, where ``torch.compile`` compiles);
    it counts in ``compile_s``, an upper bound on the compile time (setup included)."""
    times, cpu, flt = clock.intervals_ms(), clock.cpu_ms(), clock.faults()
    timed = slice(warmup, warmup + iterations)
    steady = statistics.median(times[timed])
    return {"times_ms": times[timed], "ms_per_iteration": summarise(times[timed]),
            "cpu_ms": cpu[timed], "cpu_ms_per_iteration": summarise(cpu[timed]),
            "minor_faults": flt[timed], "minor_faults_per_iteration": statistics.median(flt[timed]),
            "wall_ms_per_iteration": clock.wall_ms(warmup, warmup + iterations) / iterations,
            "warmup_ms": times[:warmup], "first_ms": first_ms,
            "compile_s": max(first_ms + sum(times[:warmup]) - (warmup + (first_ms > 0)) * steady, 0.0) / 1e3}


def time_library(cfg: DistillConfig, data: ImageSet, *, warmup: int, iterations: int) -> dict[str, Any]:
    """Run ``hdd_lib.distill.run`` for ``warmup + iterations + 1`` iterations; time the middle ``iterations``."""
    device = resolve_device(cfg.device)
    total = warmup + iterations + 1
    cfg = dataclasses.replace(cfg, iterations=total)
    clock = Clock(device, sync_at=(0, warmup, warmup + iterations))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        start = time.perf_counter()
        syn = distill.run(cfg, data, progress=False, on_iteration=lambda it: clock.mark())
    if len(clock) != total:
        raise RuntimeError(f"expected one mark per iteration ({total}), got {len(clock)}")
    return {**_rows(clock, warmup, iterations, 1e3 * (clock.host[0] - start)), "final_loss": syn.meta["history"][-1]["loss"],
            "bf16_real": use_bf16_real(cfg.real_precision, cfg.amp, device),
            "warnings": [str(w.message) for w in caught if "compile" in str(w.message)]}


def time_reference(cfg: DistillConfig, data: ImageSet, *, warmup: int, iterations: int) -> dict[str, Any]:
    """Run the reference loop for ``warmup + iterations`` iterations; time the last ``iterations``."""
    from reference_loop import ReferenceLoop

    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # the reference draws its networks from the global RNG
    loop = ReferenceLoop(cfg, data)
    clock = Clock(device, sync_at=(warmup, warmup + iterations))
    loss = math.nan
    for _ in range(warmup + iterations):
        clock.mark()
        loss = loop.step()
    clock.mark()
    if not math.isfinite(loss):
        raise FloatingPointError(f"the reference loop's loss became {loss} (method={cfg.method}, ipc={cfg.ipc})")
    return {**_rows(clock, warmup, iterations), "final_loss": loss}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one unit in this process (``--worker``): the library or the reference loop."""
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = resolve_indexed(spec["device"])
    d = spec["data"]
    data = random_imageset(d["classes"], d["per_class"], d["image_size"], device, seed=spec["seed"])
    cfg = from_dict(DistillConfig, spec["config"])
    timer = time_library if spec["kind"] == "library" else time_reference
    import hdd_lib

    return {**timer(cfg, data, warmup=spec["warmup"], iterations=spec["iterations"]),
            "allocator": hdd_lib.ALLOCATOR, "threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------ orchestration


def _run_unit(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    load0, t0 = machine_load(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark unit failed ({shlex.join(cmd)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    row = json.loads(out.read_text())
    row.update(process_s=time.perf_counter() - t0, load_before=load0, load_after=machine_load())
    return row


def _official_cmd(kind: str, args: argparse.Namespace, ipc: int, out: Path) -> list[str]:
    return [sys.executable, str(HERE / "official_loop.py"), "--classes", str(args.classes),
            "--per-class", str(args.per_class), "--image-size", str(args.image_size), "--width", str(args.width),
            "--ipc", str(ipc), "--batch-real", str(args.batch_real), "--iterations", str(args.iterations),
            "--warmup", str(args.warmup), "--seed", str(args.seed), "--out", str(out),
            *(["--threads", str(args.threads)] if args.threads else []), *(["--dsa"] if kind == "official-dsa" else [])]


def _worker_cmd(spec: dict[str, Any], out: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec), "--out", str(out)]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every library row against every baseline of its IPC (official loops: DM only): ratios of the
    baseline's median (pooled over its runs before and after) to the library's, wall and CPU time."""
    out = []
    for lib in (r for r in rows if r["implementation"] == "hdd_lib"):
        for name in BASELINES:
            base = [r for r in rows if r["implementation"] == name and r["ipc"] == lib["ipc"]
                    and (name != "reference" or r["method"] == lib["method"])]
            if not base:
                continue
            wall = statistics.median([t for r in base for t in r["times_ms"]])
            cpu = statistics.median([t for r in base for t in r["cpu_ms"]])
            out.append({"variant": lib["variant"], "method": lib["method"], "ipc": lib["ipc"], "baseline": name,
                        "baseline_ms_median": wall, "baseline_cpu_ms_median": cpu,
                        "median_ratio": _ratio(wall, lib["ms_per_iteration"]["median"]),
                        "mean_ratio": _ratio(statistics.fmean([t for r in base for t in r["times_ms"]]),
                                             lib["ms_per_iteration"]["mean"]),
                        "cpu_time_ratio": _ratio(cpu, lib["cpu_ms_per_iteration"]["median"]),
                        "baseline_runs_ms": [r["ms_per_iteration"]["median"] for r in base]})
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available, the default), 'cpu', 'cuda', 'cuda:N'")
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50], help="images per class (default: %(default)s)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="(default: %(default)s)")
    p.add_argument("--iterations", type=int, default=50,
                   help="timed iterations per unit (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations before them (default: %(default)s)")
    p.add_argument("--variants", nargs="+", default=["default"],
                   help="library variants: 'default' or '+'-joined fp32|bf16|auto, compile, glibc (default: %(default)s)")
    p.add_argument("--baselines", nargs="*", default=None, choices=BASELINES,
                   help="timed before and after the library (default: official official-dsa on a CPU, "
                        "reference on CUDA; the official loops run on the CPU only)")
    p.add_argument("--rounds", type=int, default=1,
                   help="library rounds, each followed by the baselines (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default results/benchmarks/distill-<device>.json)")
    p.add_argument("--no-reference", action="store_true", help="time the library only (no baselines)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16"),
                   help="the library's autocast setting (default: %(default)s, i.e. bf16 on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--warm-compile-cache", action="store_true",
                   help="let compile variants use inductor's on-disk cache (default: a fresh, cold one per unit)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    g = p.add_argument_group("data and model (defaults: CIFAR-10 shape, the DC-benchmark ConvNet)")
    g.add_argument("--classes", type=int, default=10, help="(default: %(default)s)")
    g.add_argument("--per-class", type=int, default=5000, help="training images per class (default: %(default)s)")
    g.add_argument("--image-size", type=int, default=32, help="(default: %(default)s)")
    g.add_argument("--batch-real", type=int, default=256,
                   help="real images per class per iteration (default: %(default)s)")
    g.add_argument("--width", type=int, default=128, help="ConvNet width (default: %(default)s)")
    args = p.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.rounds < 1:
        p.error("--iterations and --rounds must be >= 1 and --warmup >= 0")
    for v in args.variants:
        try:
            parse_variant(v)
        except ValueError as e:
            p.error(str(e))
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker is not None:
        save_json(args.out, worker(json.loads(args.worker)))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_indexed(args.device)
    on_cuda = device.type == "cuda"
    baselines = [] if args.no_reference else (args.baselines if args.baselines is not None
                                              else (["reference"] if on_cuda else ["official", "official-dsa"]))
    if on_cuda:
        baselines = [b for b in baselines if b == "reference"]
    dev = device_record(device)
    print(f"bench_distill on {dev['name']}: {args.classes} classes x {args.per_class} random "
          f"{args.image_size}x{args.image_size} images, batch_real {args.batch_real}, {args.warmup} warm-up + "
          f"{args.iterations} timed iterations, variants {args.variants}, baselines {baselines}, load {machine_load()}",
          flush=True)

    configs: dict[str, Any] = {}
    units: list[tuple[str, dict[str, Any]]] = []  # (kind, details), in run order

    def baseline_units(position: str) -> None:
        for ipc in args.ipc:
            for name in baselines:
                for method in (args.methods if name == "reference" else ["dm"]):
                    units.append((name, {"ipc": ipc, "method": method, "position": position}))

    baseline_units("before")
    for r in range(args.rounds):
        for ipc in args.ipc:
            for method in args.methods:
                for v in args.variants:
                    units.append(("hdd_lib", {"ipc": ipc, "method": method, "variant": v, "round": r}))
        baseline_units("after" if r == args.rounds - 1 else f"between-{r}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (kind, u) in enumerate(units):
            out = Path(tmp) / f"unit{i}.json"
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([_ROOT, str(HERE), os.environ.get("PYTHONPATH", "")]))
            base_cfg = {"method": u["method"], "ipc": u["ipc"], "batch_real": args.batch_real, "seed": args.seed,
                        "device": str(device), "amp": args.amp, "model": {"width": args.width}}
            data = {"classes": args.classes, "per_class": args.per_class, "image_size": args.image_size}
            spec = {"threads": args.threads, "device": str(device), "seed": args.seed, "data": data,
                    "warmup": args.warmup, "iterations": args.iterations}
            if kind.startswith("official"):
                cmd = _official_cmd(kind, args, u["ipc"], out)
            else:
                if kind == "hdd_lib":
                    v = parse_variant(u["variant"])
                    base_cfg.update(v["overrides"])
                    if not v["malloc"]:
                        env[MALLOC_ENV] = "0"
                    if v["overrides"].get("compile") and not args.warm_compile_cache:
                        env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / f"inductor{i}")  # a cold compile
                    configs[f"{u['method']}-ipc{u['ipc']}-{u['variant']}"] = to_dict(from_dict(DistillConfig, base_cfg))
                cmd = _worker_cmd({**spec, "kind": "library" if kind == "hdd_lib" else "reference",
                                   "config": base_cfg}, out)
            row = _run_unit(cmd, env, out)
            row = {"implementation": kind, **u, **{k: v for k, v in row.items() if k != "settings"}}
            if kind.startswith("official"):  # official_loop.py reports seconds
                row["times_ms"] = [1e3 * t for t in row.pop("wall_s")]
                row["cpu_ms"] = [1e3 * t for t in row.pop("cpu_s")]
                row["ms_per_iteration"], row["cpu_ms_per_iteration"] = summarise(row["times_ms"]), summarise(row["cpu_ms"])
                row["minor_faults_per_iteration"] = statistics.median(row["minor_faults"])
            rows.append(row)
            s, c = row["ms_per_iteration"], row["cpu_ms_per_iteration"]
            label = kind + (f":{u['variant']}" if kind == "hdd_lib" else f" ({u['position']})")
            print(f"  {u['method']:7s} ipc {u['ipc']:3d} {label:28s} {s['median']:9.1f} ms/it wall, {c['median']:9.1f} "
                  f"ms/it CPU, {row['minor_faults_per_iteration']:9.0f} faults/it"
                  + (f", compile {row['compile_s']:.1f} s" if "compile" in u.get("variant", "") else "")
                  + f" (load {row['load_after'][:1]})", flush=True)

    ups = speedups(rows)
    for s in ups:
        print(f"  {s['method']:7s} ipc {s['ipc']:3d} {s['variant']:20s} vs {s['baseline']:12s} "
              f"{s['median_ratio']:6.2f}x wall, {s['cpu_time_ratio']:6.2f}x CPU", flush=True)
    amortised = [{"variant": r["variant"], "method": r["method"], "ipc": r["ipc"], "compile_s": r["compile_s"],
                  **{f"s_per_iteration_over_{n}": (r["compile_s"] + n * r["ms_per_iteration"]["median"] / 1e3) / n
                     for n in AMORTISE_OVER}}
                 for r in rows if r["implementation"] == "hdd_lib" and "compile" in r["variant"]]

    target = dict(TARGET, met=None, note="checked only on an H100")
    if on_cuda and "H100" in dev["name"]:
        at = [s for s in ups if s["ipc"] == TARGET["ipc"] and s["baseline"] == "reference"]
        lib = [m for m in rows if m["implementation"] == "hdd_lib" and m["ipc"] == TARGET["ipc"]]
        if at and lib:
            fast = all(m["ms_per_iteration"]["median"] <= TARGET["max_ms_per_iteration"] for m in lib)
            target["met"] = bool(fast and all(s["median_ratio"] >= TARGET["min_speedup"] for s in at))
            target["note"] = "all methods at the target IPC, medians"
    cpu_target = dict(CPU_TARGET, met=None, note="judged on a CPU run with 2 threads, default variant vs official")
    at = [s for s in ups if all(s[k] == CPU_TARGET[k] for k in ("ipc", "method", "variant", "baseline"))]
    if not on_cuda and args.threads == CPU_TARGET["threads"] and at:
        cpu_target.update(met=bool(at[0]["cpu_time_ratio"] >= CPU_TARGET["min_cpu_time_ratio"]),
                          wall_ratio=at[0]["median_ratio"], cpu_time_ratio=at[0]["cpu_time_ratio"])
    library_bf16 = {v: use_bf16_real(from_dict(DistillConfig, {"amp": args.amp, **parse_variant(v)["overrides"]})
                                     .real_precision, args.amp, device) for v in args.variants}
    result = {
        "benchmark": "distill",
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/bench_distill.py", *(sys.argv[1:] if argv is None else argv)]),
        "device": dev,
        "provenance": provenance.collect(device),
        "settings": {
            "data": {"kind": "random standard-normal images (CIFAR-10-shaped)", "classes": args.classes,
                     "per_class": args.per_class, "shape": [3, args.image_size, args.image_size]},
            "batch_real": args.batch_real, "ipc": args.ipc, "methods": args.methods, "threads": args.threads,
            "iterations": args.iterations, "warmup": args.warmup, "seed": args.seed, "amp": args.amp,
            "variants": args.variants, "baselines": baselines, "rounds": args.rounds,
            "compile_cache": "inductor's on-disk cache" if args.warm_compile_cache else "cold (a fresh cache per unit)",
            "order": [f"{k}:{u.get('variant', u.get('position'))}:ipc{u['ipc']}:{u['method']}" for k, u in units],
            "library": {"bf16_autocast": use_bf16(args.amp, device), "bf16_real_by_variant": library_bf16,
                        "channels_last": on_cuda,
                        "how": "hdd_lib.distill.run(iterations=warmup+iterations+1) in a fresh process, clock marked "
                               "by its on_iteration hook after each step"},
            "baselines_how": {
                "official": "benchmarks/official_loop.py: plain PyTorch, no hdd_lib import (glibc malloc defaults), "
                            "per-class loop, fresh ConvNet per iteration, float32, no DSA",
                "official-dsa": "the same with per-class Siamese DSA (the official DM default)",
                "reference": "benchmarks/reference_loop.py: loop over classes, one DSA call per class, new "
                             "default-initialised net per iteration, float64 geoopt Lorentz per class, loss.item()"},
            "timing": ("CUDA events between iteration marks; wall_ms_per_iteration from synchronize+perf_counter"
                       if on_cuda else "time.perf_counter between iteration marks")
                      + "; CPU time: time.process_time (all threads); faults: getrusage ru_minflt",
            "configs": configs,
        },
        "load_average": {"start": rows[0]["load_before"] if rows else machine_load(), "end": machine_load()},
        "measurements": rows,
        "speedups": ups,
        "compile_amortised": amortised,
        "target": target,
        "cpu_target": cpu_target,
    }
    out = args.out or default_out("distill", device)
    save_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
