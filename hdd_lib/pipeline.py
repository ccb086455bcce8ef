"""What a pipeline stage needs, read from ``params.yaml``: typed configs, run ids and paths.

Notebooks call ``cfg = load_config("distill", dataset=..., ipc=..., method=..., seed=...)`` right
after their parameters cell. :func:`load_config` reads the declared sections of ``params.yaml``,
applies the per-cell ``settings`` rules (e.g. IDM's learning rates per dataset and IPC), rejects
unknown keys and wrong types, and returns a frozen :class:`StageConfig` with the run id and the
repository's paths. Defaults live in ``params.yaml`` only; profiles (``profiles/cpu.yaml``,
``profiles/paper.yaml``) are complete ``params.yaml`` files, switched with
``python -m hdd_lib profile NAME``.

``settings`` rules, applied in order, each ``{"when": {axis: value or [values]}, "set": {...}}``:
a rule applies when every ``when`` axis (``dataset``, ``ipc``, ``method``) matches, and its ``set``
mapping is merged into the section (nested mappings merged key by key).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import METHODS, DataConfig, DistillConfig, EvalConfig, from_dict, to_dict
from .storage import atomic_write

__all__ = ["Paths", "StageConfig", "find_root", "load_params", "load_config", "run_id", "use_profile",
           "PARAMS_FILE", "STAGES", "data_copy_label"]

PARAMS_FILE = "params.yaml"
#: Stages and the params.yaml sections each one reads.
STAGES: dict[str, tuple[str, ...]] = {
    "data": ("data",),
    "geometry": ("data", "geometry"),
    "distill": ("data", "distill", "eval", "ablation"),
    "evaluate": ("data", "distill", "eval", "ablation"),
    "crossarch": ("data", "distill", "eval", "crossarch"),
    "prune": ("data", "distill", "eval", "prune"),
    "tables": ("report",),
    "figures": ("report",),
}
_AXES = ("dataset", "ipc", "method")
#: Human labels of the data copies (results from the lossy JPEG copy must say so).
_COPY_LABELS = {
    "cifar10_jpeg": "CIFAR-10 (JPEG copy)", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST",
    "fashionmnist": "Fashion-MNIST", "svhn": "SVHN", "tinyimagenet": "Tiny-ImageNet",
    "digits": "scikit-learn digits (8x8)",
}


def data_copy_label(dataset: str) -> str:
    """How tables name a dataset copy, e.g. ``"CIFAR-10 (JPEG copy)"``."""
    return _COPY_LABELS.get(dataset, dataset)


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` (default: the working
    directory, then this package's location) holding both ``dvc.yaml`` and ``params.yaml``.

    JupyterLab runs notebooks in ``notebooks/`` and papermill under ``dvc repro`` in the root; both
    resolve to the same root.
    """
    candidates = [Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "dvc.yaml").is_file() and (folder / PARAMS_FILE).is_file():
                return folder
    raise FileNotFoundError(
        f"no folder with dvc.yaml and {PARAMS_FILE} at or above {candidates[0]}; run from the hdd repository"
    )


@dataclass(frozen=True)
class Paths:
    """Where everything lives, relative to the repository ``root``."""

    root: Path

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def runs(self) -> Path:
        return self.results / "runs"

    @property
    def metrics(self) -> Path:
        return self.results / "metrics"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def figures(self) -> Path:
        return self.results / "figures"

    def run_dir(self, rid: str) -> Path:
        return self.runs / rid

    def checkpoint_dir(self, rid: str) -> Path:
        """Resumable state of a distillation (kept across ``dvc repro``; not cached)."""
        return self.results / "checkpoints" / rid

    def synset(self, rid: str) -> Path:
        return self.run_dir(rid) / "synset.pt"

    def distill_record(self, rid: str) -> Path:
        return self.run_dir(rid) / "distill.json"

    def metric(self, kind: str, name: str) -> Path:
        """``results/metrics/<kind>/<name>.json`` (kind: data, geometry, eval, crossarch, prune, ablation)."""
        return self.metrics / kind / f"{name}.json"


def run_id(dataset: str, ipc: int, method: str, seed: int, variant: str | None = None) -> str:
    """``{dataset}-ipc{ipc}-{method}-s{seed}``; GeoDM ablation variants: method ``geodm_{variant}``."""
    name = f"{method}_{variant}" if variant else method
    return f"{dataset}-ipc{ipc}-{name}-s{seed}"


def load_params(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """``params.yaml`` as a dict (a malformed file raises ``ValueError`` naming it)."""
    path = (Path(root) if root else find_root()) / PARAMS_FILE
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of sections, got {type(params).__name__}")
    return params


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) and isinstance(out.get(k), (dict, type(None))) else v
    return out


def _matches(when: dict[str, Any], cell: dict[str, Any]) -> bool:
    for axis, want in when.items():
        if axis not in _AXES:
            raise ValueError(f"settings rule uses unknown axis {axis!r}; known: {', '.join(_AXES)}")
        allowed = want if isinstance(want, list) else [want]
        if cell.get(axis) not in allowed:
            return False
    return True


def _apply_rules(section: dict[str, Any], cell: dict[str, Any], where: str) -> dict[str, Any]:
    section = dict(section)
    rules = section.pop("settings", []) or []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) - {"when", "set"}:
            raise ValueError(f"{where}.settings[{i}] must be a mapping with keys 'when' and 'set', got {rule!r}")
        if _matches(rule.get("when") or {}, cell):
            section = _merge(section, rule.get("set") or {})
    return section


@dataclass(frozen=True)
class StageConfig:
    """Everything one stage execution needs; built by :func:`load_config`."""

    stage: str
    profile: str
    dataset: str
    data: DataConfig
    paths: Paths
    run_id: str | None = None
    distill: DistillConfig | None = None
    eval: EvalConfig | None = None
    curve: EvalConfig | None = None  # evaluation during distillation (accuracy vs iteration)
    curve_every: int = 0
    variant: str | None = None
    section: dict[str, Any] = field(default_factory=dict)  # the stage's own section (prune, crossarch, ...)

    @property
    def data_copy(self) -> str:
        return data_copy_label(self.dataset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "profile": self.profile, "dataset": self.dataset, "run_id": self.run_id,
            "data": to_dict(self.data), "distill": to_dict(self.distill), "eval": to_dict(self.eval),
            "variant": self.variant, "section": self.section,
        }


def load_config(
    stage: str,
    *,
    dataset: str = "",
    ipc: int | None = None,
    method: str | None = None,
    seed: int = 0,
    variant: str | None = None,
    root: str | os.PathLike | None = None,
    **overrides: Any,
) -> StageConfig:
    """Typed settings for one execution of ``stage`` on one grid cell.

    Keyword ``overrides`` replace ``distill``/``data`` fields for this call (``iterations=...``,
    ``data_root=...``, ``device=...``); ``None`` values are ignored, so a notebook can pass its
    optional parameters straight through.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    if not dataset and stage not in ("tables", "figures"):
        raise ValueError(f"stage {stage!r} needs a dataset")
    root = find_root(root) if root is None or not (Path(root) / PARAMS_FILE).exists() else Path(root)
    params = load_params(root)
    missing = [s for s in STAGES[stage] if s not in params]
    if missing:
        raise ValueError(f"{root / PARAMS_FILE} lacks the section(s) {', '.join(missing)} needed by stage {stage!r}")
    overrides = {k: v for k, v in overrides.items() if v is not None}

    data_fields = {k: overrides.pop(k) for k in ("data_root", "download") if k in overrides}
    data = from_dict(DataConfig, {**params.get("data", {}), **data_fields, "dataset": dataset})
    if data.data_root is not None and not Path(data.data_root).expanduser().is_absolute():
        # relative data roots in params.yaml mean "relative to the repository", wherever the kernel runs
        data = dataclasses.replace(data, data_root=str(root / Path(data.data_root)))
    common = dict(stage=stage, profile=str(params.get("profile", "custom")), dataset=dataset, data=data,
                  paths=Paths(root))
    if stage in ("data", "geometry", "tables", "figures"):
        if overrides:
            raise ValueError(f"stage {stage!r} takes only data_root/download overrides, got {', '.join(overrides)}")
        own = "report" if stage in ("tables", "figures") else stage
        return StageConfig(**common, section=dict(params.get(own, {}) or {}))

    if ipc is None or method is None:
        raise ValueError(f"stage {stage!r} needs ipc and method")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    cell = {"dataset": dataset, "ipc": ipc, "method": method}
    section = _apply_rules(params["distill"], cell, "distill")
    curve_every = int(section.pop("curve_every", 0) or 0)
    if variant:
        variants = (params.get("ablation") or {}).get("variants") or {}
        if variant not in variants:
            raise ValueError(f"unknown GeoDM variant {variant!r}; known: {', '.join(variants) or 'none'}")
        if METHODS[method][1] != "geodm":
            raise ValueError(f"variant {variant!r} needs a GeoDM method, got method={method!r}")
        section = _merge(section, {"geodm": variants[variant]})
    distill = from_dict(DistillConfig, {**section, **overrides, "method": method, "ipc": ipc, "seed": seed},
                        prefix="distill.")
    ev = _apply_rules(params["eval"], cell, "eval")
    curve_section = ev.pop("curve", None) or {}
    eval_device = ev.pop("device", distill.device)
    evaluation = from_dict(EvalConfig, {**ev, "seed": seed, "device": overrides.get("device", eval_device),
                                        "model": to_dict(distill.model)}, prefix="eval.")
    curve = from_dict(EvalConfig, {**ev, **curve_section, "seed": seed, "device": evaluation.device,
                                   "model": to_dict(distill.model)}, prefix="eval.curve.")
    return StageConfig(**common, run_id=run_id(dataset, ipc, method, seed, variant), distill=distill,
                       eval=evaluation, curve=curve, curve_every=curve_every, variant=variant,
                       section=dict(params.get(stage, {}) or {}))


def use_profile(name: str, root: str | os.PathLike | None = None) -> Path:
    """Make ``profiles/<name>.yaml`` the active ``params.yaml`` (atomically)."""
    root = find_root(root)
    source = root / "profiles" / f"{name}.yaml"
    if not source.is_file():
        known = sorted(p.stem for p in (root / "profiles").glob("*.yaml"))
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(known)}")
    load_params_text = yaml.safe_load(source.read_text())
    if not isinstance(load_params_text, dict):
        raise ValueError(f"{source} must hold a mapping of sections")
    return atomic_write(root / PARAMS_FILE, lambda f: shutil.copyfileobj(source.open("rb"), f))
