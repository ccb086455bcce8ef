"""Accuracy effect of the CPU speed options, paired: Fashion-MNIST, IPC 10, DM+HDD, ConvNet width 128.

The ``cpu-fmnist`` profile's protocol (200 iterations, batch_real 64, 3 ConvNets x 300 epochs) with the network
width 128 everywhere. For each distillation seed, three runs with the same seed (so the same initial images and
the same random draws)::

    fp32         distil with real_precision fp32, evaluate fp32, eager   (the faithful arithmetic)
    fp32 > fast  the fp32 distillation, evaluated with the fast evaluation (eval.precision auto, eval.compile)
    fast         distil with real_precision auto, evaluate with the fast evaluation   (the cpu profiles' default)

``fast - fp32`` per seed is the end-to-end paired difference; ``fp32 > fast - fp32`` isolates the evaluation's
share. Needs the Fashion-MNIST files under ``--data-root`` (torchvision layout). Run from the repository root::

    python benchmarks/numerics_fmnist.py --data-root ../shared/datasets --out results/benchmarks/numerics-fmnist.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from hdd_lib import distill, params, provenance  # noqa: E402
from hdd_lib.data import load  # noqa: E402
from hdd_lib.evaluate import evaluate  # noqa: E402
from hdd_lib.runtime import cpu_has_bf16  # noqa: E402
from hdd_lib.storage import save_json  # noqa: E402

#: The fast settings (what the ``cpu`` profiles set) against float32.
FAST_DISTILL = {"real_precision": "auto"}
FAST_EVAL = {"precision": "auto", "compile": True}
FP32_DISTILL = {"real_precision": "fp32"}
FP32_EVAL = {"precision": "fp32", "compile": False}


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}


def run(data_root: str, seeds: Sequence[int], *, iterations: int, epochs: int, num_eval: int,
        width: int, batch_real: int | None = None, partial: Path | None = None) -> dict[str, Any]:
    """The rows per seed and their paired statistics; with ``partial`` each finished seed is saved there at once
    and reused by a rerun with the same settings (an interrupted run loses one seed at most)."""
    settings = {"iterations": iterations, "epochs": epochs, "num_eval": num_eval, "width": width,
                "batch_real": batch_real, "data_root": str(data_root)}
    done = json.loads(partial.read_text()) if partial is not None and partial.is_file() else {}
    done = done.get("rows", {}) if done.get("settings") == settings else {}
    p = params.load_params(path=_ROOT / "profiles" / "cpu-fmnist.yaml")
    train = load("fashionmnist", data_root, split="train")
    test = load("fashionmnist", data_root, split="test")
    model = {**(p["distill"].get("model") or {}), "width": width}
    extra = {"batch_real": batch_real} if batch_real else {}
    rows = []
    for seed in seeds:
        if str(seed) in done:
            print(f"seed {seed}: reused from {partial}", flush=True)
            rows.append(done[str(seed)])
            continue
        row: dict[str, Any] = {"seed": seed}
        syn, ev = {}, None
        for name, precision in (("fp32", FP32_DISTILL), ("fast", FAST_DISTILL)):
            d = params.resolve_distill(p, "fashionmnist", 10, "dm_hdd", seed, iterations=iterations, model=model,
                                       **extra, **precision)
            ev = ev or params._resolve_eval(p, d, seed, None)[0]  # the same protocol for both
            t0 = time.perf_counter()
            syn[name] = distill.run(d, train, progress=True)
            row[f"distill_seconds_{name}"] = time.perf_counter() - t0
        for name, source, eval_settings in (("fp32", "fp32", FP32_EVAL), ("fp32 > fast", "fp32", FAST_EVAL),
                                            ("fast", "fast", FAST_EVAL)):
            cfg = dataclasses.replace(ev, num_eval=num_eval, epochs=epochs, **eval_settings)
            r = evaluate(syn[source], test, cfg, progress=True)["convnet"]
            row[name] = {"accs": list(r.accs), "mean": r.mean, "seconds_per_model": r.seconds_per_model}
            print(f"seed {seed} {name:12s} {r.mean:6.2f} ± {r.std:4.2f} ({r.seconds_per_model:.1f} s/model)", flush=True)
        rows.append(row)
        if partial is not None:
            done[str(seed)] = row
            save_json(partial, {"settings": settings, "rows": done})
    out = {"rows": rows}
    for name in ("fp32", "fp32 > fast", "fast"):
        out[name] = _stats([r[name]["mean"] for r in rows])
    for name in ("fp32 > fast", "fast"):
        diffs = [r[name]["mean"] - r["fp32"]["mean"] for r in rows]
        s = _stats(diffs)
        s["std_error"] = s["std"] * math.sqrt(len(diffs) / max(len(diffs) - 1, 1)) / math.sqrt(len(diffs))
        out[f"paired {name} - fp32"] = {"diffs": diffs, **s}
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [f"Fashion-MNIST IPC 10, DM+HDD, ConvNet width {s['width']}; {s['iterations']} iterations, "
             f"{len(s['seeds'])} distillation seeds x {s['num_eval']} models x {s['epochs']} epochs "
             f"({s['machine']}).", "",
             "| run | " + " | ".join(f"seed {r['seed']}" for r in result["rows"]) + " | mean ± std |",
             "|---|" + "---|" * (len(result["rows"]) + 1)]
    for name in ("fp32", "fp32 > fast", "fast"):
        lines.append(f"| {name} | " + " | ".join(f"{r[name]['mean']:.2f}" for r in result["rows"])
                     + f" | {result[name]['mean']:.2f} ± {result[name]['std']:.2f} |")
    for name in ("fp32 > fast", "fast"):
        d = result[f"paired {name} - fp32"]
        lines.append(f"| {name} − fp32 (paired) | " + " | ".join(f"{x:+.2f}" for x in d["diffs"])
                     + f" | {d['mean']:+.2f} ± {d['std']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--data-root", default="../shared/datasets")
    a.add_argument("--seeds", default="0,1,2")
    a.add_argument("--iterations", type=int, default=200)
    a.add_argument("--epochs", type=int, default=300)
    a.add_argument("--num-eval", type=int, default=3)
    a.add_argument("--width", type=int, default=128)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--batch-real", type=int, default=None, help="real images per class (default: the profile's)")
    a.add_argument("--out", default="results/benchmarks/numerics-fmnist.json")
    args = a.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    result = run(args.data_root, seeds, iterations=args.iterations, epochs=args.epochs, num_eval=args.num_eval,
                 width=args.width, batch_real=args.batch_real, partial=Path(args.out).with_suffix(".partial.json"))
    machine = f"{provenance.environment('cpu').get('device', 'cpu')}, native bf16: {cpu_has_bf16()}"
    result = {"benchmark": "numerics-fmnist", "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "provenance": provenance.collect("cpu"), "fast": {"distill": FAST_DISTILL, "eval": FAST_EVAL},
        "settings": {"seeds": seeds, "iterations": args.iterations, "epochs": args.epochs, "num_eval": args.num_eval,
                     "width": args.width, "threads": args.threads, "machine": machine,
                     "data": params.data_copy_label("fashionmnist")},
        "seconds": time.perf_counter() - t0, **result}
    save_json(args.out, result)
    Path(args.out).with_suffix(".partial.json").unlink(missing_ok=True)
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
