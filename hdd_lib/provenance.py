"""Where a result came from: what it depends on (:func:`versions`, digests; stored with it) and what varies
between identical runs (:func:`collect`: time, machine, commit; kept beside it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as _metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

__all__ = ["git_commit", "environment", "versions", "code_digest", "tensor_digest", "data_digest", "collect"]

_REPO = Path(__file__).resolve().parent.parent


def git_commit(repo: Path = _REPO) -> str:
    """The checked-out commit (with ``-dirty`` if the tree has changes), or ``"unknown"``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of the libraries whose numerics a result depends on."""
    out = {"torch": str(torch.__version__).split("+")[0]}
    for key, dist in (("geoopt", "geoopt"), ("pot", "POT")):
        try:
            out[key] = _metadata.version(dist)
        except _metadata.PackageNotFoundError:
            pass
    return out


def code_digest(*entries: str) -> str:
    """Digest of the library code ``entries`` run (see :func:`hdd_lib.deps.code_digest`)."""
    from .deps import code_digest as digest
    return digest(*entries)


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions and hardware: python, torch, geoopt, POT, the device's name."""
    info: dict[str, Any] = {"python": platform.python_version(), "torch": str(torch.__version__),
                            "platform": platform.platform()}
    for key, dist in (("torchvision", "torchvision"), ("geoopt", "geoopt"), ("pot", "POT")):
        try:  # installed metadata: importing torchvision or POT would cost seconds per process
            info[key] = _metadata.version(dist)
        except _metadata.PackageNotFoundError:
            pass
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(device)
    else:
        info["device"] = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return info


def tensor_digest(t: torch.Tensor) -> str:
    """Short SHA-256 of a tensor's bytes (identifies the data copy a run used)."""
    data = t.detach().cpu().contiguous()
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes() if data.dtype != torch.uint8
                          else data.numpy().tobytes()).hexdigest()[:16]


def data_digest(images: torch.Tensor, labels: torch.Tensor, *, stride: int = 97) -> str:
    """Identify a data copy cheaply: digest of the shape, all labels and every ``stride``-th image."""
    head = hashlib.sha256(str(tuple(images.shape)).encode())
    head.update(tensor_digest(labels).encode())
    head.update(tensor_digest(images[::stride].float()).encode())
    return head.hexdigest()[:16]


def collect(device: torch.device | str | None = None, **extra: Any) -> dict[str, Any]:
    """Everything above plus a UTC timestamp and caller-supplied fields."""
    return {"git_commit": git_commit(), "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **environment(device), **extra}
