"""Seconds per evaluation model on a CPU, interleaved: the code before the speed work against today's variants.

Each unit runs ``evaluate_images`` in its own fresh process (one model, ``--epochs`` epochs, a random
10,000-image test set, CIFAR-10 shape, ConvNet width 128, IPC 10) and records wall time, process CPU time and
page faults for a 1-epoch call and an ``--epochs`` call after a discarded warm-up (which also compiles). The two
calls fit ``T(E) = fixed + E * per_epoch``; ``fixed`` is mostly the test pass. Order::

    before, variant 1, ..., variant n, before, variant 1, ..., variant n, ..., before

``before`` is the hdd_lib of ``--before`` (a git revision, checked out into a temporary worktree; the default
is the commit before the CPU-speed work: glibc's allocator, fp32). Variants: ``fp32`` (today's library
default), ``bf16`` (``precision``), ``compile``, ``bf16+compile``. Run from the repository root::

    python benchmarks/bench_eval_cpu.py --threads 2 --epochs 100 --rounds 2 --out results/benchmarks/eval-cpu-speed.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
#: The last commit before the CPU-speed work (issue 12): no allocator tuning, no precision options.
BEFORE = "5ef9d87^1"
VARIANTS = {"fp32": {}, "bf16": {"precision": "bf16"}, "compile": {"compile": True},
            "bf16+compile": {"precision": "bf16", "compile": True}}
#: Epoch counts the per-model time is reported at: the cpu profiles' and the protocol's.
REPORT_EPOCHS = (300, 1000)


def _usage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_minflt + r.ru_majflt


def unit(spec: dict[str, Any]) -> dict[str, Any]:
    """One unit in this process, with the hdd_lib found at ``spec["tree"]``."""
    sys.path.insert(0, spec["tree"])
    import torch
    from hdd_lib.config import EvalConfig, from_dict
    from hdd_lib.data import ImageSet, get_spec
    from hdd_lib.evaluate import evaluate_images

    torch.set_num_threads(spec["threads"])
    size, per_class = spec["image_size"], spec["test_size"] // 10
    s = dataclasses.replace(get_spec("cifar10"), image_size=(size, size))
    g = torch.Generator().manual_seed(0)
    test = ImageSet(torch.randn(10 * per_class, 3, size, size, generator=g), torch.arange(10).repeat_interleave(
        per_class), s, split="test")
    images = torch.randn(10 * spec["ipc"], 3, size, size, generator=g)
    labels = torch.arange(10).repeat_interleave(spec["ipc"])
    base = {"models": ["convnet"], "num_eval": 1, "model": {"width": spec["width"]}, "seed": 0, "device": "cpu",
            **spec["overrides"]}
    evaluate_images(images, labels, test, from_dict(EvalConfig, {**base, "epochs": 1}), progress=False)  # warm-up
    out = {}
    for epochs in (1, spec["epochs"]):
        (c0, f0), t0 = _usage(), time.perf_counter()
        r = evaluate_images(images, labels, test, from_dict(EvalConfig, {**base, "epochs": epochs}), progress=False)
        (c1, f1), t1 = _usage(), time.perf_counter()
        out[epochs] = {"wall_s": t1 - t0, "cpu_s": c1 - c0, "faults": f1 - f0, "acc": r["convnet"].accs[0]}
    return out


def _fit(calls: dict[str, Any], epochs: int) -> dict[str, float]:
    one, many = calls["1"], calls[str(epochs)]
    row = {}
    for key in ("wall_s", "cpu_s"):
        per_epoch = max(many[key] - one[key], 0.0) / (epochs - 1)
        fixed = max(one[key] - per_epoch, 0.0)
        row[f"{key}_per_epoch"], row[f"{key}_fixed"] = per_epoch, fixed
        for e in REPORT_EPOCHS:
            row[f"{key}_at_{e}_epochs"] = fixed + e * per_epoch
    row["faults_per_epoch"] = max(many["faults"] - one["faults"], 0) / (epochs - 1)
    return row


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unit", help=argparse.SUPPRESS)
    p.add_argument("--before", default=BEFORE, help="git revision of the baseline (default: %(default)s)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--epochs", type=int, default=100, help="the long call's epochs (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--test-size", type=int, default=10000, help="random test images (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--width", type=int, default=128, help="ConvNet width (default: %(default)s)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "eval-cpu-speed.json")
    args = p.parse_args(argv)
    if args.unit:
        spec = json.loads(args.unit)
        Path(spec["out"]).write_text(json.dumps(unit(spec)))
        return {}
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or args.epochs < 2:
        p.error(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})" if unknown else "--epochs must be >= 2")
    sys.path.insert(0, str(REPO))
    from hdd_lib import provenance
    from hdd_lib.runtime import cpu_has_bf16
    from hdd_lib.storage import save_json

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)
        try:
            order = [("before", {})]
            for _ in range(args.rounds):
                order += [(v, VARIANTS[v]) for v in variants] + [("before", {})]
            for i, (name, overrides) in enumerate(order):
                tree = before if name == "before" else REPO
                spec = {"tree": str(tree), "threads": args.threads, "ipc": args.ipc, "epochs": args.epochs,
                        "test_size": args.test_size, "image_size": args.image_size, "width": args.width,
                        "overrides": overrides, "out": str(Path(tmp) / f"unit{i}.json")}
                t0 = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--unit", json.dumps(spec)], check=True, cwd=tree,
                               stdout=subprocess.DEVNULL)
                calls = json.loads(Path(spec["out"]).read_text())
                row = {"variant": name, "unit": i, "process_s": time.perf_counter() - t0, "calls": calls,
                       **_fit(calls, args.epochs)}
                rows.append(row)
                print(f"{i:2d} {name:13s} {row['wall_s_per_epoch'] * 1e3:6.1f} ms/epoch, fixed {row['wall_s_fixed']:5.2f} s; "
                      f"{row['wall_s_at_300_epochs']:6.1f} s/model at 300 epochs", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)

    summary = {}
    for name in ["before", *variants]:
        mine = [r for r in rows if r["variant"] == name]
        summary[name] = {k: statistics.median(r[k] for r in mine) for k in mine[0] if k.endswith(("_epochs", "_epoch",
                                                                                                   "_fixed"))}
    for name in variants:
        for e in REPORT_EPOCHS:
            for key in ("wall_s", "cpu_s"):
                summary[name][f"speedup_{key}_at_{e}_epochs"] = (summary["before"][f"{key}_at_{e}_epochs"]
                                                                 / summary[name][f"{key}_at_{e}_epochs"])
    result = {"benchmark": "eval-cpu-speed", "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "provenance": provenance.collect("cpu"), "native_bf16": cpu_has_bf16(),
              "settings": {"before": args.before, "variants": {v: VARIANTS[v] for v in variants},
                           "threads": args.threads, "ipc": args.ipc, "epochs": args.epochs, "rounds": args.rounds,
                           "data": f"random 3x{args.image_size}x{args.image_size} images, {args.test_size} random "
                                   "test images", "model": f"convnet width {args.width}",
                           "order": [r["variant"] for r in rows],
                           "fit": "per model: T(E) = fixed + E * per_epoch from a 1-epoch and an --epochs call, "
                                  "after a discarded 1-epoch warm-up in the same process"},
              "summary": summary, "rows": rows}
    save_json(args.out, result)
    for name in variants:
        s = summary[name]
        print(f"{name:13s} speed-up at 300 epochs {s['speedup_wall_s_at_300_epochs']:.2f}x wall, "
              f"{s['speedup_cpu_s_at_300_epochs']:.2f}x CPU; at 1000: {s['speedup_wall_s_at_1000_epochs']:.2f}x wall, "
              f"{s['speedup_cpu_s_at_1000_epochs']:.2f}x CPU")
    return result


if __name__ == "__main__":
    main()
