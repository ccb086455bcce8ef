r"""A plain-PyTorch DM iteration in the official loop's structure: the acceptance baseline.

Does **not** import ``hdd_lib`` (so it runs with glibc's default allocator settings, as the public
DM scripts do). Written in our own words after the DM family's public loop (SPEC):

* every iteration a **freshly constructed** DC-benchmark ConvNet (conv3x3 -> GroupNorm(C, C) ->
  ReLU -> AvgPool2d(2), ``depth`` blocks; PyTorch's default initialisation), train mode, frozen;
* a **Python loop over classes**: a real batch (a NumPy permutation of the class's indices), the
  class's synthetic images, optionally one Siamese DSA draw applied to both (one family per class
  picked from ``color_crop_cutout_flip_scale_rotate``; the affine families build their matrices
  image by image on the CPU, as the public code does), two forwards (real detached) and the loss
  :math:`\|\bar f^{real}_c - \bar f^{syn}_c\|^2`;
* one SGD (momentum 0.5) step on all synthetic images, then ``loss.item()``. float32, NCHW.

Data are random standard-normal images (timing does not depend on pixel values). Per iteration it
records wall time (``perf_counter``), process CPU time (``process_time``, all threads) and minor
page faults (``getrusage``); the first ``--warmup`` iterations are dropped. Prints one JSON object
(or writes it to ``--out``)::

    python benchmarks/official_loop.py --threads 2 --ipc 10 --per-class 600 --iterations 3 --warmup 1 --dsa
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")


def convnet(channels: int, width: int, depth: int, image_size: int) -> nn.Sequential:
    """The DC-benchmark ConvNet's feature extractor (``flatten`` at the end); 28 px is padded to 32."""
    layers: list[nn.Module] = []
    for i in range(depth):
        pad = 3 if (i == 0 and image_size == 28) else 1
        layers += [nn.Conv2d(channels if i == 0 else width, width, 3, padding=pad),
                   nn.GroupNorm(width, width, affine=True), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
    return nn.Sequential(*layers, nn.Flatten())


def dsa(x: torch.Tensor, family: str, rng: np.random.Generator) -> torch.Tensor:
    """One Siamese DSA draw of ``family`` applied to a batch ``x [N, C, H, W]`` (the same draw for
    every image: call it with the same ``rng`` state for the real and the synthetic batch)."""
    n, _, h, w = x.shape
    r = rng.random(8)
    if family == "color":
        x = x + (r[0] - 0.5)
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (r[1] * 2.0) + m
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - m) * (r[2] + 0.5) + m
    if family == "crop":
        sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
        dy, dx = int(rng.integers(-sh, sh + 1)), int(rng.integers(-sw, sw + 1))
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        gy, gx = (gy + dy + 1).clamp(0, h + 1), (gx + dx + 1).clamp(0, w + 1)
        return F.pad(x, (1, 1, 1, 1))[:, :, gy.to(x.device), gx.to(x.device)]
    if family == "cutout":
        kh, kw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
        cy, cx = int(rng.integers(0, h + 1 - kh % 2)), int(rng.integers(0, w + 1 - kw % 2))
        mask = torch.ones(h, w, device=x.device)
        mask[max(cy - kh // 2, 0): max(cy - kh // 2 + kh, 0), max(cx - kw // 2, 0): max(cx - kw // 2 + kw, 0)] = 0
        return x * mask
    if family == "flip":
        return x.flip(3) if r[0] < 0.5 else x
    if family == "scale":
        sy, sx = 1 / 1.2 + r[0] * (1.2 - 1 / 1.2), 1 / 1.2 + r[1] * (1.2 - 1 / 1.2)
        theta = torch.tensor([[[sx, 0, 0], [0, sy, 0]] for _ in range(n)], dtype=torch.float32)
    else:  # rotate
        a = (r[0] - 0.5) * 2 * 15 / 180 * np.pi
        theta = torch.tensor([[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0]] for _ in range(n)],
                             dtype=torch.float32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True).to(x.device)
    return F.grid_sample(x, grid, align_corners=True)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=600)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--batch-real", type=int, default=256)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--dsa", action="store_true", help="per-class Siamese DSA (the official DM default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON file (default: print it)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    k, s = a.classes, a.image_size
    images = torch.randn(k * a.per_class, a.channels, s, s)
    by_class = [np.arange(c * a.per_class, (c + 1) * a.per_class) for c in range(k)]
    syn = torch.cat([images[rng.permutation(i)[: a.ipc]] for i in by_class]).clone().requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    wall, cpu, faults = [], [], []
    for _ in range(a.warmup + a.iterations):
        t, c, f = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net = convnet(a.channels, a.width, a.depth, s).train()
        for q in net.parameters():
            q.requires_grad = False
        loss = torch.tensor(0.0)
        for cls in range(k):
            real = images[rng.permutation(by_class[cls])[: a.batch_real]]
            img = syn[cls * a.ipc: (cls + 1) * a.ipc]
            if a.dsa:
                family, state = FAMILIES[int(rng.integers(len(FAMILIES)))], rng.bit_generator.state
                real = dsa(real, family, rng)
                rng.bit_generator.state = state  # Siamese: the same draw for the synthetic images
                img = dsa(img, family, rng)
            f_real = net(real).detach()
            f_syn = net(img)
            loss = loss + ((f_real.mean(0) - f_syn.mean(0)) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)
    w = a.warmup
    result = {"implementation": "official-dsa" if a.dsa else "official", "threads": torch.get_num_threads(),
              "wall_s": wall[w:], "cpu_s": cpu[w:], "minor_faults": faults[w:], "final_loss": loss.item(),
              "hdd_lib_imported": "hdd_lib" in sys.modules,
              "settings": vars(a)}
    text = json.dumps(result)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)
    else:
        print(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
