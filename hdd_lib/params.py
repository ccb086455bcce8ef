"""What a pipeline stage needs from ``params.yaml``: typed configs, run ids and paths.

A cell's distillation settings merge, in order: ``distill``; ``methods.<method>`` (``strategy``,
``loss``: a name, ``{name: ..., **settings}`` or a list, summed; any ``distill`` knob); the
``distill.settings`` rules (``{when: {axis: value or [values]}, set: {...}}``, axes ``dataset``, ``ipc``,
``method``, ``strategy``, ``loss``); an ablation ``variant``; the notebook's overrides. Under the
pipeline (``HDD_PIPELINE=1``) outputs go to ``results/``, otherwise to ``scratch/`` (read first).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML, YAMLError

from .config import Count, DataConfig, DistillConfig, EvalConfig, Fraction, ModelConfig, Positive, Settings, from_dict, to_dict
from .storage import atomic_write

__all__ = ["Paths", "StageConfig", "find_root", "load_params", "check_params", "load_config", "run_id",
           "use_profile", "cells", "data_copy_label", "short_errors", "PARAMS_FILE", "PIPELINE_ENV", "STAGES"]

PARAMS_FILE = "params.yaml"
#: Set (to 1) by dvc.yaml: the notebook runs for the pipeline and may write under results/.
PIPELINE_ENV = "HDD_PIPELINE"
#: Stages and the params.yaml sections each one reads (dvc.yaml declares the same); a cell's stage reads only its
#: own method (``methods.${item.method}``; the ablation varies ``methods.geodm``), so editing one method reruns
#: that method's stages alone.
_METHOD = "methods.${item.method}"
STAGES: dict[str, tuple[str, ...]] = {
    "data": ("data",),
    "geometry": ("data", "geometry"),
    "pretrain": ("data", "distill", "methods"),
    "distill": ("data", "distill", _METHOD, "eval"),
    "evaluate": ("data", "distill", _METHOD, "eval"),
    "distill_pool": ("data", "distill", _METHOD, "eval"),
    "evaluate_pool": ("data", "distill", _METHOD, "eval"),
    "crossarch": ("data", "distill", _METHOD, "eval", "crossarch"),
    "prune": ("data", "distill", _METHOD, "eval", "prune"),
    "ablation_distill": ("data", "distill", "methods.geodm", "eval", "ablation"),
    "ablation_evaluate": ("data", "distill", "methods.geodm", "eval", "ablation"),
    "tables": ("report",),
    "figures": ("report", "geometry"),
}
_AXES = ("dataset", "ipc", "method", "strategy", "loss")
_PACKAGE = Path(__file__).resolve().parent


def data_copy_label(dataset: str) -> str:
    """How tables name a dataset copy, e.g. ``"CIFAR-10 (JPEG copy)"`` (:func:`hdd_lib.data.dataset_label`)."""
    from .data import dataset_label
    return dataset_label(dataset)


def find_root(start: str | os.PathLike | None = None) -> Path:
    """Nearest folder at or above ``start`` (default: cwd, then this package) with dvc.yaml and params.yaml."""
    candidates = [Path(start or os.getcwd()).resolve(), _PACKAGE]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "dvc.yaml").is_file() and (folder / PARAMS_FILE).is_file():
                return folder
    raise FileNotFoundError(f"no folder with dvc.yaml and {PARAMS_FILE} at or above {candidates[0]}; "
                            "run from the hdd repository")


def in_pipeline() -> bool:
    return os.environ.get(PIPELINE_ENV, "") not in ("", "0")


@dataclass(frozen=True)
class Paths:
    """Where a stage reads and writes: ``out`` is ``results/`` under the pipeline, ``scratch/`` otherwise."""

    root: Path
    out: Path

    @classmethod
    def for_root(cls, root: Path) -> "Paths":
        return cls(root, root / ("results" if in_pipeline() else "scratch"))

    def find(self, rel: str | Path) -> Path:
        """An input: under ``out`` if there, else under ``results/`` (what the pipeline made)."""
        mine = self.out / rel
        return mine if mine.exists() else self.root / "results" / rel

    tables = property(lambda self: self.out / "tables")
    figures = property(lambda self: self.out / "figures")
    records = property(lambda self: self.out / "records")

    def run_dir(self, rid: str) -> Path:
        return self.out / "runs" / rid

    def synset(self, rid: str) -> Path:
        """A run's synthetic set (to read: :meth:`find` ``("runs/<rid>/synset.pt")``)."""
        return self.run_dir(rid) / "synset.pt"

    def checkpoint_dir(self, rid: str) -> Path:
        """Resumable state of a distillation (kept across runs; neither in git nor in DVC)."""
        return self.out / "checkpoints" / rid

    def record(self, kind: str, name: str) -> Path:
        """``records/<kind>/<name>.json``: a stage's full result (numbers, config, protocol)."""
        return self.records / kind / f"{name}.json"

    def metric(self, kind: str, name: str) -> Path:
        """``metrics/<kind>/<name>.json``: the few numbers ``dvc metrics show`` prints."""
        return self.out / "metrics" / kind / f"{name}.json"

    def provenance(self, kind: str, name: str) -> Path:
        """``provenance/<kind>/<name>.json``: time, machine, commit, timings (not versioned)."""
        return self.out / "provenance" / kind / f"{name}.json"


def run_id(dataset: str, ipc: int, method: str, seed: int, variant: str | None = None) -> str:
    """``{dataset}-ipc{ipc}-{method}-s{seed}``; ablation variants: method ``{method}_{variant}``."""
    return f"{dataset}-ipc{ipc}-{f'{method}_{variant}' if variant else method}-s{seed}"


def read_yaml(text: str) -> Any:
    """Parse YAML 1.2, as DVC reads it: ``off`` stays a string (``dvc exp run -S`` drops its quotes), ``1e-6`` is a float."""
    return YAML(typ="safe", pure=True).load(text)


def load_params(root: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``root/params.yaml`` (or the file ``path``) as a dict (a malformed file raises ``ValueError`` naming it)."""
    path = Path(path) if path else (Path(root) if root else find_root()) / PARAMS_FILE
    try:
        params = read_yaml(path.read_text())
    except YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of sections, got {type(params).__name__}")
    return params


@dataclass(frozen=True)
class GeometryConfig(Settings):
    k: Positive = 1.0  # hyperboloid parameter of the illustrations
    batch: Count = 64  # real images per class embedded for the figures
    nets: Count = 1  # random ConvNets whose features are averaged
    model: ModelConfig = field(default_factory=ModelConfig)  # the random ConvNet (the DM embedding)


@dataclass(frozen=True)
class PruneConfig(Settings):
    ratios: tuple[Fraction, ...] = (1.0, 0.8, 0.6, 0.4, 0.2)
    scores: tuple[Literal["hyperbolic", "euclidean", "random"], ...] = ("hyperbolic", "euclidean", "random")
    nets: Count = 3
    batch: Count = 64


@dataclass(frozen=True)
class CrossarchConfig(Settings):
    models: tuple[str, ...] = ("convnet", "alexnet", "vgg11", "resnet18")


@dataclass(frozen=True)
class Cell(Settings):
    dataset: str = "digits"
    ipc: Count = 10
    method: str = "dm_hdd"
    seed: int = 0


@dataclass(frozen=True)
class ReportConfig(Settings):
    methods: tuple[str, ...] = ()
    figure_run: Cell = field(default_factory=Cell)


@dataclass(frozen=True)
class Grid(Settings):
    dataset: tuple[str, ...] = ()
    ipc: tuple[Count, ...] = ()
    method: tuple[str, ...] = ()
    seed: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class AblationGrid(Settings):
    dataset: tuple[str, ...] = ()
    ipc: tuple[Count, ...] = ()
    variant: tuple[str, ...] = ()
    seed: tuple[int, ...] = (0,)
    method: str = "geodm"  # the method whose variants are compared


_SECTIONS = {"geometry": GeometryConfig, "prune": PruneConfig, "crossarch": CrossarchConfig,
             "report": ReportConfig, "grid": Grid, "crossarch_grid": Grid, "prune_grid": Grid,
             "pool_grid": Grid, "ablation_grid": AblationGrid}


def cells(grid: Grid | AblationGrid) -> list[dict[str, Any]]:
    """Every combination of a grid's axes, as ``{"dataset", "ipc", "method"/"variant", "seed"}``."""
    axes = {f.name: getattr(grid, f.name) for f in dataclasses.fields(grid) if isinstance(getattr(grid, f.name), tuple)}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def _merge(base: Any, extra: Any, where: str) -> Any:
    if isinstance(extra, dict) and isinstance(base, (dict, type(None))):
        out = copy.deepcopy(base) if base else {}
        for k, v in extra.items():
            out[k] = _merge(out.get(k), v, f"{where}.{k}")
        return out
    if isinstance(extra, dict) and isinstance(base, list):
        raise ValueError(f"{where}: cannot merge a mapping into a list of losses; set the whole list instead")
    return copy.deepcopy(extra)


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches(when: dict[str, Any], cell: dict[str, Any], where: str) -> bool:
    """Whether every axis of a rule's ``when`` holds one of the cell's values."""
    for axis in when:
        if axis not in _AXES:
            raise ValueError(f"{where} uses unknown axis {axis!r}; known: {', '.join(_AXES)}")
    return all(any(h in _listed(want) for h in _listed(cell[axis])) for axis, want in when.items())


def _method_spec(methods: dict[str, Any], method: str) -> dict[str, Any]:
    """``methods.<method>`` with ``loss`` as a mapping (or list of mappings)."""
    if method not in methods:
        raise ValueError(f"unknown method {method!r}; params.yaml methods: {', '.join(methods) or 'none'}")
    spec = methods[method]
    if not isinstance(spec, dict) or "strategy" not in spec or "loss" not in spec:
        raise ValueError(f"methods.{method} must be a mapping with 'strategy' and 'loss', got {spec!r}")
    loss = [{"name": s} if isinstance(s, str) else s for s in _listed(spec["loss"])]
    return {**spec, "loss": loss if isinstance(spec["loss"], list) else loss[0]}


def resolve_distill(params: dict[str, Any], dataset: str, ipc: int, method: str, seed: int = 0,
                    variant: str | None = None, **overrides: Any) -> DistillConfig:
    """The validated distillation config of one cell (see the module docstring for the merge order)."""
    from .strategies import STRATEGIES
    spec = _method_spec(params.get("methods") or {}, method)
    section = dict(params.get("distill") or {})
    rules = section.pop("settings", None) or []
    section.pop("curve_every", None)
    section = _merge(section, spec, f"methods.{method}")
    cell = {"dataset": dataset, "ipc": ipc, "method": method, "strategy": section["strategy"],
            "loss": [(s or {}).get("name") for s in _listed(section["loss"])]}
    for i, rule in enumerate(rules):
        where = f"distill.settings[{i}]"
        if not isinstance(rule, dict) or set(rule) - {"when", "set"}:
            raise ValueError(f"{where} must be a mapping with keys 'when' and 'set', got {rule!r}")
        if _matches(rule.get("when") or {}, cell, where):
            section = _merge(section, rule.get("set") or {}, f"{where}.set")
    if variant:
        variants = (params.get("ablation") or {}).get("variants") or {}
        if variant not in variants:
            raise ValueError(f"unknown ablation variant {variant!r}; known: {', '.join(variants) or 'none'}")
        section = _merge(section, variants[variant], f"ablation.variants.{variant}")
    name = section.pop("strategy")
    strategy_sections = {s: section.pop(s) for s in STRATEGIES.names() if s in section}
    section["strategy"] = {"name": name, **(strategy_sections.get(name) or {})}
    return from_dict(DistillConfig, {**section, **overrides, "method": method, "ipc": ipc, "seed": seed},
                     prefix="distill.")


def pool_configs(params: dict[str, Any], dataset: str) -> dict[str, DistillConfig]:
    """For each strategy of ``pool_grid``'s methods that pretrains a pool (its settings have
    ``pretrain``), a config of a cell using it; ``ValueError`` if two cells want different pools."""
    grid, out = from_dict(Grid, params.get("pool_grid"), prefix="pool_grid."), {}
    for ipc, method in itertools.product(grid.ipc, grid.method):
        d = resolve_distill(params, dataset, ipc, method)
        name, want = d.strategy["name"], (d.strategy.get("pretrain"), d.model)
        if want[0] is None:
            continue
        if name in out and (out[name].strategy["pretrain"], out[name].model) != want:
            raise ValueError(f"pool_grid: {out[name].method} and {method} (ipc {ipc}) use the {name} pool of "
                             f"{dataset} with different pretrain or model settings; make them equal")
        out.setdefault(name, d)
    return out


def _resolve_eval(params: dict[str, Any], distill: DistillConfig, seed: int, device: str | None
                  ) -> tuple[EvalConfig, EvalConfig]:
    from .config import EVAL_PROTOCOLS
    ev = dict(params.get("eval") or {})
    ev = {**EVAL_PROTOCOLS.get(ev.get("protocol", "dc"), {}), **ev}
    curve = ev.pop("curve", None) or {}
    device = device or ev.pop("device", None) or distill.device
    ev.pop("device", None)
    common = {"seed": seed, "device": device, "model": to_dict(distill.model)}
    return (from_dict(EvalConfig, {**ev, **common}, prefix="eval."),
            from_dict(EvalConfig, {**ev, **curve, **common}, prefix="eval.curve."))


def check_params(params: dict[str, Any]) -> None:
    """Validate every section the pipeline reads and every grid cell, naming the first bad key."""
    missing = [s for s in ("data", "distill", "methods", "eval", "grid") if s not in params]
    if missing:
        raise ValueError(f"params.yaml lacks the section(s) {', '.join(missing)}")
    from_dict(DataConfig, params["data"], prefix="data.")
    typed = {name: from_dict(cls, params.get(name), prefix=f"{name}.") for name, cls in _SECTIONS.items()}
    curve_every = params["distill"].get("curve_every", 0)
    if not (isinstance(curve_every, int) and not isinstance(curve_every, bool) and curve_every >= 0):
        raise ValueError(f"distill.curve_every must be an integer >= 0, got {curve_every!r}")
    if not isinstance((params.get("ablation") or {}).get("variants", {}), dict):
        raise ValueError("ablation.variants must be a mapping of variant names to settings")
    if not isinstance(params["methods"], dict) or not params["methods"]:
        raise ValueError("methods must map method names to {strategy: ..., loss: ...}")
    for method in params["methods"]:  # each method's own strategy name and loss settings
        spec = _method_spec(params["methods"], method)
        from_dict(DistillConfig, {"strategy": spec["strategy"], "loss": spec["loss"]}, prefix=f"methods.{method}.")
    for cell in (c for grid in ("grid", "crossarch_grid", "prune_grid", "pool_grid") for c in cells(typed[grid])):
        _resolve_eval(params, resolve_distill(params, **cell), cell["seed"], None)
    for dataset in typed["pool_grid"].dataset:
        pool_configs(params, dataset)
    for cell in cells(typed["ablation_grid"]):
        resolve_distill(params, method=typed["ablation_grid"].method, **cell)
    for method in (m for m in typed["report"].methods if m not in params["methods"]):
        raise ValueError(f"report.methods names {method!r}, which is not in methods")


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
    section: Any = None  # the stage's own typed section (GeometryConfig, PruneConfig, ReportConfig, ...)

    @property
    def data_copy(self) -> str:
        return data_copy_label(self.dataset)


def load_config(stage: str, *, dataset: str = "", ipc: int | None = None, method: str | None = None, seed: int = 0,
                variant: str | None = None, root: str | os.PathLike | None = None, **overrides: Any) -> StageConfig:
    """Typed settings for one execution of ``stage`` on one grid cell, after validating all of params.yaml;
    ``overrides`` replace ``distill``/``data`` fields (``iterations=``, ``data_root=``), ``None`` ones ignored."""
    short_errors()
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    if not dataset and stage not in ("tables", "figures"):
        raise ValueError(f"stage {stage!r} needs a dataset")
    root = find_root(root) if root is None or not (Path(root) / PARAMS_FILE).exists() else Path(root)
    params = load_params(root)
    check_params(params)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    data_fields = {k: overrides.pop(k) for k in ("data_root", "download") if k in overrides}
    data = from_dict(DataConfig, {**params["data"], **data_fields, "dataset": dataset}, prefix="data.")
    if data.data_root is not None and not Path(data.data_root).expanduser().is_absolute():
        # relative data roots in params.yaml mean "relative to the repository", wherever the kernel runs
        data = dataclasses.replace(data, data_root=str(root / Path(data.data_root)))
    own = {"tables": "report", "figures": "report"}.get(stage, stage)
    section = from_dict(_SECTIONS[own], params.get(own), prefix=f"{own}.") if own in _SECTIONS else None
    common = dict(stage=stage, profile=str(params.get("profile", "custom")), dataset=dataset, data=data,
                  paths=Paths.for_root(root), section=section)
    if stage == "pretrain":  # section: the config each pool of the dataset is built for
        device = overrides.pop("device", None)
        pools = {k: dataclasses.replace(d, device=device or d.device) for k, d in pool_configs(params, dataset).items()}
        return StageConfig(**{**common, "section": pools})
    if stage in ("data", "geometry", "tables", "figures"):
        if overrides:
            raise ValueError(f"stage {stage!r} takes only data_root/download overrides, got {', '.join(overrides)}")
        return StageConfig(**common)
    if ipc is None or method is None:
        raise ValueError(f"stage {stage!r} needs ipc and method")
    device = overrides.get("device")
    distill = resolve_distill(params, dataset, ipc, method, seed, variant, **overrides)
    evaluation, curve = _resolve_eval(params, distill, seed, device)
    return StageConfig(**common, run_id=run_id(dataset, ipc, method, seed, variant), distill=distill, eval=evaluation,
                       curve=curve, variant=variant,
                       curve_every=0 if "pretrain" in distill.strategy else int(params["distill"].get("curve_every", 0) or 0))


def short_errors() -> None:
    """In an IPython kernel, show ``ValueError``/``OSError`` raised inside ``hdd_lib`` as one line."""
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return
    if ip is None or os.environ.get("HDD_DEBUG"):
        return
    def handler(shell, etype, value, tb, tb_offset=None):
        last = tb
        while last is not None and last.tb_next is not None:
            last = last.tb_next
        if last is None or not Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE):
            return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        lines = [f"{etype.__name__}: {value}", "(set HDD_DEBUG=1 for the traceback)"]
        builtin = next(c for c in etype.__mro__ if c.__module__ == "builtins")  # what papermill reports as ename
        shell._showtraceback(builtin, value, lines)
        return lines
    ip.set_custom_exc((ValueError, OSError), handler)


def use_profile(name: str, root: str | os.PathLike | None = None) -> Path:
    """Make ``profiles/<name>.yaml`` the active ``params.yaml`` (atomically, after validating it)."""
    root = find_root(root)
    source = root / "profiles" / f"{name}.yaml"
    if not source.is_file():
        known = sorted(p.stem for p in (root / "profiles").glob("*.yaml"))
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(known)}")
    check_params(load_params(path=source))
    return atomic_write(root / PARAMS_FILE, lambda f: f.write(source.read_bytes()))
