"""Shared fixtures: ``seed``, ``dtype`` (float32/float64) and ``tiny_data`` (3 classes x 8 images, 8x8)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch
from hypothesis import HealthCheck, settings

# CPU timings vary on shared CI machines: no per-example deadline, a fixed example budget.
settings.register_profile(
    "hdd", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hdd"))

if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers: one thread each, for them and their subprocesses
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# Warm stage servers (hdd_lib.warm) that the tests' subprocesses start live in a folder of this process and
# stop with the session.
WARM_DIR = tempfile.mkdtemp(prefix="hw-", dir="/tmp" if os.path.isdir("/tmp") else None)
os.environ["HDD_WARM_DIR"] = WARM_DIR


def pytest_sessionfinish(session, exitstatus):
    from hdd_lib import warm
    warm.stop(WARM_DIR)
    shutil.rmtree(WARM_DIR, ignore_errors=True)


@pytest.fixture(params=[0, 1, 2], ids=lambda s: f"seed{s}")
def seed(request) -> int:
    torch.manual_seed(request.param)
    return request.param


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def tiny_data() -> dict[str, torch.Tensor]:
    """Fabricated 3-class x 8-image 8x8 single-channel sets (real) and 2 images per class (syn)."""
    g = torch.Generator().manual_seed(1234)
    real = torch.randn(3, 8, 1, 8, 8, generator=g) + torch.arange(3).view(3, 1, 1, 1, 1)
    syn = torch.randn(3, 2, 1, 8, 8, generator=g)
    labels = torch.arange(3).repeat_interleave(8)
    return {"real": real, "syn": syn, "labels": labels}


@pytest.fixture
def tiny_imageset():
    """A fabricated ImageSet pair (train, test): 3 classes of 8x8 single-channel images that a
    ConvNet can tell apart (class-dependent mean intensity and stripe orientation)."""
    from hdd_lib.data import DatasetSpec, ImageSet

    spec = DatasetSpec("tiny", 1, (8, 8), 3, (0.0,), (1.0,), ("a", "b", "c"))
    g = torch.Generator().manual_seed(7)

    def split(n_per_class: int, name: str) -> ImageSet:
        labels = torch.arange(3).repeat_interleave(n_per_class)
        base = torch.zeros(3, 8, 8)
        base[0, :, ::2] = 1.0  # vertical stripes
        base[1, ::2, :] = 1.0  # horizontal stripes
        base[2] = 0.5
        images = base[labels].unsqueeze(1) + 0.3 * torch.randn(len(labels), 1, 8, 8, generator=g)
        return ImageSet(images, labels, spec, split=name)

    return split(24, "train"), split(10, "test")
