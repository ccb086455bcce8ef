"""Where a result came from: what it depends on (:func:`versions`, digests; stored with it) and what varies
between identical runs (:func:`collect`: time, machine, commit; kept beside it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib.metadata as _metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from .deps import code_digest  # noqa: F401 (re-exported: the digest of the code a result ran)

__all__ = ["git_commit", "environment", "versions", "code_digest", "data_digest", "collect"]

_REPO = Path(__file__).resolve().parent.parent


def git_commit(repo: Path = _REPO) -> str:
    """The checked-out commit (with ``-dirty`` if the tree has changes), or ``"unknown"``."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()
    try:
        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _installed(**dists: str) -> dict[str, str]:
    """``{key: version}`` of the installed distributions (metadata: importing torchvision or POT costs seconds)."""
    out = {}
    for key, dist in dists.items():
        with contextlib.suppress(_metadata.PackageNotFoundError):
            out[key] = _metadata.version(dist)
    return out


def versions() -> dict[str, str]:
    """Versions of the libraries whose numerics a result depends on."""
    return {"torch": str(torch.__version__).split("+")[0], **_installed(geoopt="geoopt", pot="POT")}


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions and hardware: python, torch, torchvision, geoopt, POT, the device's name."""
    device = torch.device(device if device is not None else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" and torch.cuda.is_available() else \
        f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"python": platform.python_version(), "torch": str(torch.__version__), "platform": platform.platform(),
            **_installed(torchvision="torchvision", geoopt="geoopt", pot="POT"), "device": name}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def data_digest(images: torch.Tensor, labels: torch.Tensor, *, stride: int = 97) -> str:
    """Identify a data copy cheaply: digest of the shape, all labels and every ``stride``-th image (raw bytes)."""
    raw = [t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
           for t in (labels, images[::stride].float())]
    return _sha(str(tuple(images.shape)).encode() + "".join(map(_sha, raw)).encode())


def collect(device: torch.device | str | None = None, **extra: Any) -> dict[str, Any]:
    """Everything above plus a UTC timestamp and caller-supplied fields."""
    return {"git_commit": git_commit(), "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **environment(device), **extra}
