"""Tests of :mod:`hdd_lib.report`, with fabricators of the pipeline's metric dicts and a PNG check
(shared by the test modules here)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: The labels the stages give the profiles' methods (hdd_lib.strategies.method_label of strategy + loss).
LABELS = {"dm": "DM", "dm_hdd": "DM+HDD", "idm": "IDM", "idm_hdd": "IDM+HDD", "geodm": "DM+GeoDM",
          "idm_geodm": "IDM+GeoDM"}
CODE = {"distill": "0123456789abcdef", "evaluate": "fedcba9876543210"}
PROVENANCE = {"git_commit": "0123456789abcdef0123", "device": "NVIDIA H100 80GB HBM3", "torch": "2.5.1"}


def protocol(num_eval: int, **kw: Any) -> dict[str, Any]:
    return {"iterations": 20000, "num_eval": num_eval, "epochs": 1000, "profile": "paper", **kw}


def copy_label(dataset: str) -> str:
    return {"cifar10_jpeg": "CIFAR-10 (JPEG copy)", "cifar10": "CIFAR-10", "svhn": "SVHN",
            "digits": "Digits"}.get(dataset, dataset)


def eval_metric(dataset: str, ipc: int, method: str, seed: int, accs: Sequence[float], *,
                models: Sequence[str] = ("convnet",), curve: Sequence[tuple[int, float, float]] = (),
                profile: str = "paper") -> dict[str, Any]:
    """An evaluation (or cross-architecture) metrics dict as the pipeline writes it."""
    accs = [float(a) for a in accs]
    return {
        "run_id": f"{dataset}-ipc{ipc}-{method}-s{seed}", "dataset": dataset, "data_copy": copy_label(dataset),
        "ipc": ipc, "method": method, "method_label": LABELS.get(method, method), "seed": seed,
        "protocol": protocol(len(accs), profile=profile), "code": dict(CODE),
        "results": {m: {"accs": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                        "seconds_per_model": 1.5} for m in models},
        "curve": [{"iteration": it, "mean": m, "std": s} for it, m, s in curve],
        "provenance": dict(PROVENANCE),
    }


def prune_metric(dataset: str, ipc: int, method: str, seed: int,
                 accs: dict[str, dict[float, Sequence[float]]]) -> dict[str, Any]:
    """A pruning metrics dict: ``accs[score][keep] = [...]``."""
    ratios = sorted({r for by in accs.values() for r in by}, reverse=True)
    return {
        "run_id": f"{dataset}-ipc{ipc}-{method}-s{seed}", "dataset": dataset, "data_copy": copy_label(dataset),
        "ipc": ipc, "method": method, "method_label": LABELS.get(method, method), "seed": seed,
        "protocol": protocol(len(next(iter(accs["random"].values())))), "code": dict(CODE),
        "ratios": ratios,
        "results": {score: {str(r): {"accs": list(a), "mean": float(np.mean(a)), "std": float(np.std(a))}
                            for r, a in by.items()} for score, by in accs.items()},
        "provenance": dict(PROVENANCE),
    }


def ablation_metric(dataset: str, ipc: int, variant: str, seed: int, accs: Sequence[float],
                    settings: dict[str, Any]) -> dict[str, Any]:
    """A GeoDM ablation metrics dict."""
    m = eval_metric(dataset, ipc, "geodm", seed, accs)
    m.update(run_id=f"{dataset}-ipc{ipc}-{variant}-s{seed}", variant=variant, variant_settings=dict(settings))
    return m


def png_size(fig: Any, path: Any) -> int:
    """Save ``fig`` with :func:`hdd_lib.report.figures.save_figure`, check it is a PNG, return its size."""
    from matplotlib.figure import Figure

    from hdd_lib.report.figures import save_figure

    assert isinstance(fig, Figure)
    data = save_figure(fig, path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return len(data)


def md_rows(text: str) -> list[list[str]]:
    """The cells of every row of the pipe tables in Markdown ``text`` (alignment rows included)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
