"""Run-time choices: the glibc allocator tuning applied at ``import hdd_lib`` (checked in fresh
processes by its effect: large blocks stop being mmap-ed and re-faulted), the real-forward precision
rule, and the compile fallback. No timing assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from hdd_lib import allocator, runtime

ROOT = Path(__file__).resolve().parents[1]
GLIBC = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "")

#: Allocates and frees a 64 MiB tensor 8 times after `import hdd_lib`; reports the settings, the
#: bytes glibc holds in mmap-ed blocks while one is alive (mallinfo2.hblkhd) and the minor faults.
PROBE = """
import ctypes, json, resource, torch, hdd_lib
from hdd_lib import run  # what a user calls (imports the loop's modules)
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    x = torch.ones(16 << 20)
    mapped = libc.mallinfo2().hblkhd
    del x
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
print(json.dumps({"settings": hdd_lib.ALLOCATOR, "mapped": mapped, "faults": faults}))
"""
PAGES_64MIB = (64 << 20) // os.sysconf("SC_PAGE_SIZE")


def probe(**env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != allocator.MALLOC_ENV}
    full.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the tuning is glibc-only")
def test_import_tunes_glibc_so_large_blocks_are_reused():
    tuned, plain = probe(), probe(**{allocator.MALLOC_ENV: "0"})
    assert tuned["settings"] == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": -1, "M_TOP_PAD": 64 << 20}
    assert plain["settings"] is None
    assert plain["mapped"] >= 64 << 20 > tuned["mapped"]  # untuned: the tensor is its own mmap
    assert plain["faults"] >= 7 * PAGES_64MIB  # every allocation faulted in anew ...
    assert tuned["faults"] <= 3 * PAGES_64MIB  # ... tuned: the freed block is reused


@pytest.mark.skipif(not GLIBC, reason="the tuning is glibc-only")
def test_users_own_malloc_settings_win():
    assert probe(MALLOC_MMAP_MAX_="65536")["settings"] is None


def test_real_precision_rule(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (True, False):
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda native=native: native)
        assert runtime.use_bf16_real("auto", "auto", cpu) is native
        assert runtime.use_bf16_real("auto", "bf16", cpu) is True
        assert runtime.use_bf16_real("auto", "off", cpu) is False
        assert runtime.use_bf16_real("fp32", "bf16", cpu) is False
        assert runtime.use_bf16_real("bf16", "off", cpu) is True
    assert runtime.use_bf16_real("auto", "auto", cuda) is True  # CUDA follows amp
    assert runtime.use_bf16_real("auto", "off", cuda) is False


def test_real_precision_is_validated():
    from hdd_lib.config import DistillConfig, from_dict

    with pytest.raises(ValueError, match="real_precision"):
        from_dict(DistillConfig, {"real_precision": "fp16"})


def test_compile_failure_falls_back_once_with_a_warning(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler\nmore")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    f = runtime.compiled(lambda x: 2 * x, name="the test function")
    with pytest.warns(RuntimeWarning, match="the test function failed .RuntimeError: no C.. compiler.; running it uncompiled"):
        assert f(3) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(4) == 8  # eager for good, no second warning


def test_compiling_keeps_torchs_stamped_cuda_home_note_out_of_notebook_outputs(capfd):
    """On a CUDA build without a GPU, inductor's import of cpp_extension logged a line with a time stamp and
    a process id into every executed notebook, so reruns differed; other messages still pass."""
    import logging

    from hdd_lib.runtime import compiled
    compiled(lambda x: x + 1)
    note = logging.getLogger("torch.utils.cpp_extension")
    note.warning("No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/local")
    note.warning("another cpp_extension message")
    err = capfd.readouterr().err
    assert "No CUDA runtime is found" not in err and "another cpp_extension message" in err
