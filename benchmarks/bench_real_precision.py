"""What bf16 on the real images' forward changes: the synthetic-image gradient, and the speed.

For each of ``--trials`` draws (a fresh ConvNet, a real batch ``[C, batch_real]``, one Siamese DSA
draw; synthetic images = ``ipc`` real images per class, as at ``init="real"``) the gradient of the
matching loss (DM or DM+HDD) with respect to the synthetic images is computed with the real
features from a float32 and from a bf16-autocast forward (the synthetic path float32 in both), and
compared by cosine and relative norm :math:`\\|g_{bf16} - g_{fp32}\\| / \\|g_{fp32}\\|`. As a scale,
the same for a second, independent real batch (the sampling noise every iteration already has).
The real forward is timed (wall and CPU time, median over trials, fp32 and bf16 interleaved).
Run from the repository root::

    python benchmarks/bench_real_precision.py --datasets cifar10_jpeg fashionmnist --data-root ../shared/datasets \\
        --threads 2 --out results/benchmarks/real-precision-cpu.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from hdd_lib import augment, provenance  # noqa: E402
from hdd_lib.data import load  # noqa: E402
from hdd_lib.losses import get_loss  # noqa: E402
from hdd_lib.models import get_model  # noqa: E402
from hdd_lib.runtime import autocast, cpu_has_bf16  # noqa: E402
from hdd_lib.storage import save_json  # noqa: E402

from bench_distill import device_record, machine_load  # noqa: E402

__all__ = ["main", "gradient_change"]


def _grad(net, loss_fn, real: torch.Tensor, syn: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, float, float]:
    """d loss / d syn with the real features from an fp32 or bf16 forward; also that forward's wall/CPU s."""
    c, b = real.shape[:2]
    t, p = time.perf_counter(), time.process_time()
    with torch.no_grad(), autocast(bf16, real.device):
        f_real = net.embed(real.flatten(0, 1)).float().view(c, b, -1)
    wall, cpu = time.perf_counter() - t, time.process_time() - p
    syn = syn.detach().requires_grad_(True)
    f_syn = net.embed(syn.flatten(0, 1)).view(c, syn.shape[1], -1)
    loss_fn(f_real, f_syn).backward()
    return syn.grad, wall, cpu


def _compare(g: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    g, ref = g.double().flatten(), ref.double().flatten()
    return {"cosine": float(torch.nn.functional.cosine_similarity(g, ref, dim=0)),
            "relative_norm": float((g - ref).norm() / ref.norm())}


def gradient_change(train, *, method: str, ipc: int, batch_real: int, width: int, trials: int,
                    seed: int) -> dict[str, Any]:
    """Per-trial and median cosine / relative norm of bf16-real vs fp32-real gradients, the same for a
    second real batch, and the real forward's seconds in both precisions."""
    gen = torch.Generator().manual_seed(seed)
    spec = train.spec
    loss_fn = get_loss("hdd", k=1.0, lam=20.0) if method == "dm_hdd" else get_loss("dm")
    rows = []
    for _ in range(trials):
        net = get_model("convnet", spec.channels, spec.num_classes, spec.image_size[0], width=width,
                        generator=gen).requires_grad_(False).train()
        syn = train.sample(ipc, generator=gen)
        real, real2 = train.sample(batch_real, generator=gen), train.sample(batch_real, generator=gen)
        state = gen.get_state()
        real_aug, syn_aug = augment.siamese(real, syn, augment.DSAConfig(), generator=gen)
        gen.set_state(state)
        real2_aug, _ = augment.siamese(real2, syn, augment.DSAConfig(), generator=gen)  # the same DSA draw
        g32, w32, c32 = _grad(net, loss_fn, real_aug, syn_aug, False)
        g16, w16, c16 = _grad(net, loss_fn, real_aug, syn_aug, True)
        g2, _, _ = _grad(net, loss_fn, real2_aug, syn_aug, False)
        rows.append({"bf16_vs_fp32": _compare(g16, g32), "other_batch_vs_fp32": _compare(g2, g32),
                     "fp32_wall_s": w32, "bf16_wall_s": w16, "fp32_cpu_s": c32, "bf16_cpu_s": c16})

    def med(key, sub=None):
        return statistics.median(r[key][sub] if sub else r[key] for r in rows)

    return {"method": method, "ipc": ipc, "batch_real": batch_real, "width": width, "trials": rows,
            "median": {"bf16_cosine": med("bf16_vs_fp32", "cosine"),
                       "bf16_relative_norm": med("bf16_vs_fp32", "relative_norm"),
                       "other_batch_cosine": med("other_batch_vs_fp32", "cosine"),
                       "other_batch_relative_norm": med("other_batch_vs_fp32", "relative_norm"),
                       "real_forward_fp32_wall_s": med("fp32_wall_s"), "real_forward_bf16_wall_s": med("bf16_wall_s"),
                       "real_forward_fp32_cpu_s": med("fp32_cpu_s"), "real_forward_bf16_cpu_s": med("bf16_cpu_s")}}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["cifar10_jpeg", "fashionmnist"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--methods", nargs="+", default=["dm", "dm_hdd"], choices=("dm", "dm_hdd"))
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--batch-real", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(_ROOT) / "results" / "benchmarks" / "real-precision-cpu.json")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cpu")
    results = []
    load0 = machine_load()
    for name in a.datasets:
        train = load(name, a.data_root, split="train")
        for method in a.methods:
            r = gradient_change(train, method=method, ipc=a.ipc, batch_real=a.batch_real, width=a.width,
                                trials=a.trials, seed=a.seed)
            r["dataset"] = name
            results.append(r)
            m = r["median"]
            print(f"{name:14s} {method:7s} bf16 vs fp32: cosine {m['bf16_cosine']:.6f}, rel. norm "
                  f"{m['bf16_relative_norm']:.4%} | other real batch: cosine {m['other_batch_cosine']:.4f}, rel. "
                  f"norm {m['other_batch_relative_norm']:.2%} | real forward CPU s fp32 {m['real_forward_fp32_cpu_s']:.2f}"
                  f" bf16 {m['real_forward_bf16_cpu_s']:.2f}", flush=True)
    result = {"benchmark": "real-precision", "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["python", "benchmarks/bench_real_precision.py",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "device": device_record(device), "cpu_has_bf16": cpu_has_bf16(), "provenance": provenance.collect(device),
              "load_average": {"start": load0, "end": machine_load()}, "settings": vars(a) | {"out": str(a.out)},
              "results": results}
    save_json(a.out, result)
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
