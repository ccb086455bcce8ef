"""Helpers shared by test modules."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hdd_lib import distill
from hdd_lib.storage import load_torch


def interrupted_then_resumed(cfg, train, folder: Path, at: int):
    """Ctrl-C (SIGINT) a ``distill.run`` into ``folder`` after iteration ``at``; check that it checkpointed that
    iteration, then resume it to the end and return the resumed synthetic set."""
    def interrupt(iteration, syn):
        if iteration == at:
            os.kill(os.getpid(), signal.SIGINT)  # finish the iteration, checkpoint, stop
        return {}

    with pytest.raises(KeyboardInterrupt):
        distill.run(cfg, train, out_dir=folder, progress=False, on_eval=interrupt, eval_every=at)
    assert load_torch(folder / distill.CHECKPOINT_NAME)["iteration"] == at
    return distill.run(cfg, train, out_dir=folder, resume=True, progress=False)
