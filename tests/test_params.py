"""The pipeline's wiring: dvc.yaml <-> params.yaml <-> notebooks <-> load_config, and the profiles."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hdd_lib import params as pipeline

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb"))
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))


@pytest.fixture
def validate_once(monkeypatch):
    """``load_config`` validates all of params.yaml on every call; tests that load hundreds of cells of one
    file validate it once (the first call still runs the real :func:`check_params`)."""
    seen, check = set(), pipeline.check_params

    def once(params: dict) -> None:
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in seen:
            check(params)
            seen.add(key)
    monkeypatch.setattr(pipeline, "check_params", once)


def lookup(params: dict, dotted: str):
    node = params
    for key in dotted.split("."):
        node = node[key]
    return node


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_interpolation_in_dvc_yaml_exists_in_the_profile(profile):
    params = pipeline.read_yaml(profile.read_text())
    text = (ROOT / "dvc.yaml").read_text()
    keys = set(re.findall(r"\$\{([^}]+)\}", text))
    assert keys, "dvc.yaml uses no parameters"
    for key in keys:
        if key.startswith("item."):
            continue
        assert isinstance(lookup(params, key), list), f"{key} must be a list in {profile.name}"


def test_params_yaml_is_a_profile():
    active = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert active == yaml.safe_load((ROOT / "profiles" / f"{active['profile']}.yaml").read_text())


def notebook_parameters(path: Path) -> dict[str, str]:
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    source = "".join(cells[0]["source"])
    names = {}
    for line in source.splitlines():
        m = re.match(r"^(\w+): (\w+(?: \| None)?) = (.+?)\s+# \S", line)
        assert m, f"{path.name}: parameter line must be 'name: type = literal  # help', got {line!r}"
        names[m.group(1)] = m.group(2)
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_annotated_parameters_cell_and_no_logic(path):
    notebook_parameters(path)
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        assert cell.get("outputs", []) == [], f"{path.name} is committed with outputs"
        if cell["cell_type"] == "code":
            assert not re.search(r"^\s*(def|class) ", source, re.M), f"{path.name} defines logic; move it to hdd_lib"
    assert nb["cells"][0]["cell_type"] == "markdown"


def test_papermill_sees_the_same_parameters():
    papermill = pytest.importorskip("papermill")
    for path in NOTEBOOKS:
        inspected = papermill.inspect_notebook(str(path))
        assert set(inspected) == set(notebook_parameters(path)), path.name


def test_every_notebook_is_a_stage_and_every_stage_passes_known_parameters():
    used = {}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in DVC["stages"].items():
        cmd = " ".join(stage["cmd"].split()) if isinstance(stage["cmd"], str) else stage["cmd"]
        m = re.search(r"python -m hdd_lib notebook (notebooks/\S+\.ipynb)", cmd)
        assert m, f"stage {name} does not run a notebook through `python -m hdd_lib notebook`"
        nb = ROOT / m.group(1)
        assert nb.exists(), f"stage {name} names a missing notebook {nb}"
        assert m.group(1) in stage["deps"], f"stage {name} must depend on its notebook"
        assert any(d.startswith("hdd_lib/") for d in stage["deps"]), f"stage {name} must depend on the code it runs"
        assert stage.get("desc"), f"stage {name} needs a desc"
        assert sorted(stage.get("params", [])) == sorted(pipeline.STAGES[name]), \
            f"stage {name}: dvc.yaml params {stage.get('params')} != hdd_lib.params.STAGES {pipeline.STAGES[name]}"
        passed = set(re.findall(r"-p (\w+) ", cmd + " "))
        unknown = passed - set(notebook_parameters(nb))
        assert not unknown, f"stage {name} passes {unknown} that {nb.name} does not declare"
        used.setdefault(nb.name, []).append(name)
        for entry in stage.get("params", []):  # a section, or one key of it (methods.${item.method}: the cell's)
            section, _, key = entry.partition(".")
            assert section in params and (not key or "${" in key or key in params[section]), f"{name}: params {entry}"
    assert set(used) == {p.name for p in NOTEBOOKS}, "every non-scratch notebook must be a stage"
    assert set(DVC["stages"]) == set(pipeline.STAGES), "hdd_lib.params.STAGES must list the stages of dvc.yaml"
    # the stage name is the notebook stem without its number (extra stages may reuse a notebook)
    for nb, stages in used.items():
        assert nb.split("_", 1)[1].removesuffix(".ipynb") in stages, (nb, stages)


def test_notebook_parameters_match_config_fields():
    # every axis papermill passes is a load_config argument; optional knobs are DistillConfig/DataConfig fields
    import inspect

    from hdd_lib.config import DataConfig, DistillConfig

    args = set(inspect.signature(pipeline.load_config).parameters)
    fields = set(DistillConfig.__dataclass_fields__) | set(DataConfig.__dataclass_fields__)
    for path in NOTEBOOKS:
        for name in notebook_parameters(path):
            assert name in args | fields | {"kind", "records_dir"}, f"{path.name}: parameter {name} is not a config knob"


def test_dvc_parses_the_stages():
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    r = subprocess.run([dvc, "stage", "list"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert any(n.startswith("distill@") for n in names) and "tables" in names and "figures" in names


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_grid_cell_of_every_profile_builds_a_config(profile, tmp_path, validate_once):
    shutil.copy(profile, tmp_path / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = pipeline.read_yaml(profile.read_text())
    cells = set()
    for grid in ("grid", "crossarch_grid", "prune_grid"):
        g = params[grid]
        cells |= set(itertools.product(g["dataset"], g["ipc"], g["method"], g["seed"]))
        for ds, ipc, method, seed in itertools.product(g["dataset"], g["ipc"], g["method"], g["seed"][:1]):
            cfg = pipeline.load_config("distill", dataset=ds, ipc=ipc, method=method, seed=seed, root=tmp_path)
            assert cfg.run_id == f"{ds}-ipc{ipc}-{method}-s{seed}"
    main = params["grid"]
    main_cells = set(itertools.product(main["dataset"], main["ipc"], main["method"], main["seed"]))
    for grid in ("crossarch_grid", "prune_grid"):
        g = params[grid]
        sub = set(itertools.product(g["dataset"], g["ipc"], g["method"], g["seed"]))
        assert sub <= main_cells, f"{profile.name}: {grid} names cells that are not distilled: {sorted(sub - main_cells)}"
    a = params["ablation_grid"]
    for ds, ipc, variant, seed in itertools.product(a["dataset"], a["ipc"], a["variant"], a["seed"]):
        cfg = pipeline.load_config("distill", dataset=ds, ipc=ipc, method="geodm", seed=seed, variant=variant,
                                   root=tmp_path)
        assert cfg.distill.loss["factors"] == params["ablation"]["variants"][variant]["loss"]["factors"]
    run = params["report"]["figure_run"]
    assert (run["dataset"], run["ipc"], run["method"], run["seed"]) in main_cells
    assert set(params["report"]["methods"]) <= set(params["methods"])
    pipeline.check_params(params)


def make_root(tmp_path: Path, params: dict) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    return tmp_path


def base_params() -> dict:
    return yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text())


def test_settings_rules_apply_in_order(tmp_path):
    params = base_params()
    params["pool_grid"]["method"] = []  # its summed losses take no mapping rule on `loss`
    params["methods"]["idm_hdd"]["loss"]["lam"] = 20.0
    params["distill"]["settings"] = [
        {"when": {"strategy": "idm", "loss": "hdd"}, "set": {"lr_img": 0.2, "loss": {"k": 3.0}, "idm": {"factor": 2}}},
        {"when": {"method": "idm_hdd", "ipc": 1}, "set": {"lr_img": 0.5}},
        {"when": {"loss": "hdd", "dataset": "digits"}, "set": {"loss": {"clamp": 5.0}}},
    ]
    root = make_root(tmp_path, params)
    a = pipeline.load_config("distill", dataset="digits", ipc=1, method="idm_hdd", root=root)
    b = pipeline.load_config("distill", dataset="digits", ipc=10, method="idm_hdd", root=root)
    c = pipeline.load_config("distill", dataset="digits", ipc=1, method="dm_hdd", root=root)
    d = pipeline.load_config("distill", dataset="digits", ipc=1, method="idm", root=root)
    assert (a.distill.lr_img, a.distill.loss["k"], a.distill.loss["lam"], a.distill.strategy["factor"]) == (0.5, 3.0, 20.0, 2)
    assert (b.distill.lr_img, b.distill.loss["k"], b.distill.loss["clamp"]) == (0.2, 3.0, 5.0)
    assert (c.distill.lr_img, c.distill.loss["k"], c.distill.loss["clamp"]) == (1.0, 1.0, 5.0)
    assert d.distill.loss == {"name": "dm"} and d.distill.strategy["factor"] == 1 and d.distill.lr_img == 0.5


def test_eval_protocol_names_the_papers_settings_and_explicit_keys_win(tmp_path):
    params = base_params()
    params["eval"].update(protocol="ncfm", epochs=30)
    del params["eval"]["lr"]
    root = make_root(tmp_path, params)
    ev = pipeline.load_config("evaluate", dataset="digits", ipc=10, method="dm", root=root).eval
    assert (ev.protocol, ev.optimizer, ev.lr, ev.cutmix, ev.milestones, ev.gamma) == ("ncfm", "adamw", 1e-3, 0.5,
                                                                                     (0.2, 0.4, 0.6, 0.8), 0.5)
    assert (ev.epochs, ev.batch, ev.num_eval) == (30, params["eval"]["batch"], params["eval"]["num_eval"])  # given: kept
    params["eval"]["protocol"] = "best"
    with pytest.raises(ValueError, match="eval.protocol must be one of 'dc', 'ncfm', 'dsdm'"):
        pipeline.check_params(params)


def test_overrides_and_derived_values(tmp_path):
    root = make_root(tmp_path, base_params())
    cfg = pipeline.load_config("distill", dataset="digits", ipc=10, method="geodm", seed=3, root=root,
                               iterations=7, data_root="/data", device=None)
    assert cfg.distill.iterations == 7 and cfg.data.data_root == "/data" and cfg.distill.seed == 3
    assert cfg.eval.seed == 3 and cfg.eval.model == cfg.distill.model
    assert cfg.paths.synset(cfg.run_id) == root / "scratch" / "runs" / "digits-ipc10-geodm-s3" / "synset.pt"
    assert cfg.curve.num_eval == 1 and cfg.curve_every == base_params()["distill"]["curve_every"] > 0
    v = pipeline.load_config("distill", dataset="digits", ipc=10, method="geodm", variant="H", root=root)
    assert v.run_id == "digits-ipc10-geodm_H-s0" and v.distill.loss["factors"] == "H"


def test_hand_runs_write_to_scratch_and_read_results_as_fallback(tmp_path, monkeypatch):
    root = make_root(tmp_path, base_params())
    monkeypatch.delenv(pipeline.PIPELINE_ENV, raising=False)
    hand = pipeline.load_config("evaluate", dataset="digits", ipc=10, method="dm", root=root).paths
    assert hand.out == root / "scratch" and hand.record("eval", "x") == root / "scratch" / "records" / "eval" / "x.json"
    assert hand.find("runs/a/synset.pt") == root / "results" / "runs" / "a" / "synset.pt"  # the pipeline's
    (root / "scratch" / "runs" / "a").mkdir(parents=True)
    (root / "scratch" / "runs" / "a" / "synset.pt").write_text("mine")
    assert hand.find("runs/a/synset.pt") == root / "scratch" / "runs" / "a" / "synset.pt"  # a hand run's own
    monkeypatch.setenv(pipeline.PIPELINE_ENV, "1")
    assert pipeline.load_config("evaluate", dataset="digits", ipc=10, method="dm", root=root).paths.out == root / "results"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda p: p["prune"].update(ratios=[1.0, "abc"]), r"prune.ratios\[1\] must be a number, got ratios\[1\]='abc'"),
        (lambda p: p["prune"].update(scores=["hyperbolic", "cosine"]), r"prune.scores\[1\] must be one of"),
        (lambda p: p["geometry"].update(k=-1), r"geometry.k must be > 0"),
        (lambda p: p["crossarch_grid"].update(ipc=[0]), r"crossarch_grid.ipc\[0\] must be >= 1"),
        (lambda p: p["methods"]["dm_hdd"]["loss"].update(lam="x"), r"methods.dm_hdd.loss.lam must be a number, got lam='x'"),
        (lambda p: p["methods"].update(new={"strategy": "dm"}), r"methods.new must be a mapping with 'strategy' and 'loss'"),
        (lambda p: p["report"].update(methods=["dm", "nope"]), r"report.methods names 'nope'"),
        (lambda p: p["eval"].update(epochs=0), r"eval.epochs must be >= 1"),
        (lambda p: p["distill"].update(curve_every=-1), r"distill.curve_every must be an integer >= 0"),
    ],
)
def test_every_section_is_validated_up_front_naming_the_key(tmp_path, edit, match):
    params = base_params()
    edit(params)
    root = make_root(tmp_path, params)
    with pytest.raises(ValueError, match=match):  # the data stage (the first) already fails
        pipeline.load_config("data", dataset="digits", root=root)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stage="train"), "unknown stage 'train'"),
        (dict(stage="distill", method="kd", ipc=1), "unknown method 'kd'"),
        (dict(stage="distill", method="dm_hdd", ipc=1, variant="Q"), "unknown ablation variant 'Q'"),
        (dict(stage="distill", method="dm_hdd", ipc=1, variant="H"), r"unknown key\(s\) distill.loss.factors"),
        (dict(stage="distill", method="dm_hdd", ipc=1, lr=0.1), r"unknown key\(s\) distill.lr"),
        (dict(stage="distill", method="dm_hdd"), "needs ipc and method"),
    ],
)
def test_bad_requests_raise(tmp_path, kwargs, match):
    root = make_root(tmp_path, base_params())
    stage = kwargs.pop("stage")
    with pytest.raises(ValueError, match=match):
        pipeline.load_config(stage, dataset="digits", root=root, **kwargs)


def test_unknown_key_in_params_is_rejected(tmp_path):
    params = base_params()
    params["distill"]["iteratons"] = 5
    root = make_root(tmp_path, params)
    with pytest.raises(ValueError, match=r"distill.iteratons"):
        pipeline.load_config("distill", dataset="digits", ipc=1, method="dm", root=root)


def test_root_is_found_from_the_notebooks_folder(monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    assert pipeline.find_root() == ROOT


def test_use_profile_switches_params_atomically(tmp_path):
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(ROOT / "profiles" / "cpu.yaml", tmp_path / "params.yaml")
    pipeline.use_profile("paper", tmp_path)
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["profile"] == "paper"
    with pytest.raises(ValueError, match="unknown profile 'fast'; known: cpu, cpu-fmnist, paper"):
        pipeline.use_profile("fast", tmp_path)


#: The official code's IDM evaluation interval (where its running accuracy is reset) per setting.
def _official_reset(dataset: str, ipc: int) -> int:
    if dataset == "tinyimagenet":
        return {10: 500, 50: 1000}.get(ipc, 100)
    return 500 if ipc == 50 and dataset in ("cifar10", "cifar10_jpeg", "cifar100") else 100


@pytest.mark.parametrize("dataset", ["mnist", "fashionmnist", "svhn", "cifar10", "cifar10_jpeg", "cifar100", "tinyimagenet"])
def test_paper_profile_resolves_the_official_protocol_in_every_cell(dataset, tmp_path, validate_once):
    """Issue 13: float32 networks, depth-3 ConvNet (8192-d on Tiny-ImageNet), official padding, the
    official IDM reset interval, IPC-1 rules, Tiny's whole-image init, the 1001-epoch schedule."""
    import torch

    from hdd_lib.data import get_spec
    from hdd_lib.models import get_model
    from hdd_lib.runtime import use_bf16, use_bf16_real

    shutil.copy(ROOT / "profiles" / "paper.yaml", tmp_path / "params.yaml")
    spec = get_spec(dataset)
    methods = yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())["methods"]
    for ipc, method in itertools.product((1, 10, 50), methods):
        d = pipeline.load_config("distill", dataset=dataset, ipc=ipc, method=method, root=tmp_path).distill
        for device in (torch.device("cpu"), torch.device("cuda")):
            assert not use_bf16(d.amp, device) and not use_bf16_real(d.real_precision, d.amp, device)
        assert (d.model.depth, d.model.width, d.model.first_padding) == (3, 128, "official")
        if d.strategy["name"] == "idm":
            assert d.strategy["acc_reset_interval"] == _official_reset(dataset, ipc), (dataset, ipc, method)
            cifar_rule = ipc == 1 and dataset != "tinyimagenet"
            assert (d.batch_real, d.strategy["net_generate_interval"]) == ((5000, 5) if cifar_rule else (256, 30))
            assert d.strategy["init"] == ("whole" if dataset == "tinyimagenet" else "mosaic")
    ev = pipeline.load_config("evaluate", dataset=dataset, ipc=10, method="dm", root=tmp_path).eval
    assert (ev.schedule, ev.train_epochs, ev.decay_epoch, ev.num_eval) == ("official", 1001, 501, 5)
    assert (ev.precision, ev.compile) == ("fp32", False)  # float32 evaluation, as the official code
    size = spec.image_size[0]
    net = get_model("convnet", spec.channels, spec.num_classes, size, **d.model.kwargs(size, spec.channels))
    dim = net.embed(torch.zeros(2, spec.channels, size, size)).shape[-1]
    assert dim == {28: 2048, 32: 2048, 64: 8192}[size]  # 28 px: padded to 32 by the first conv
    if spec.channels == 1:
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        assert first.padding == (3, 3)  # official: pad 3 for any 1-channel input


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_dvc_set_rewrites_only_the_edited_line_and_keeps_the_meaning(profile, tmp_path):
    """``dvc exp run -S`` rewrites params.yaml through ruamel: every profile is already in that form, so
    comments, layout and values survive, and ``off``-like strings keep their meaning for hdd_lib."""
    _yaml = pytest.importorskip("dvc.utils.serialize._yaml")
    import difflib

    path = tmp_path / "params.yaml"
    shutil.copy(profile, path)
    with _yaml.modify_yaml(str(path)) as data:
        data["distill"]["lr_img"] = 0.25
    before, after = profile.read_text().splitlines(), path.read_text().splitlines()
    changed = [line for line in difflib.unified_diff(before, after, lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert len(changed) == 2 and all("lr_img:" in line for line in changed), changed
    expected = pipeline.read_yaml(profile.read_text())
    expected["distill"]["lr_img"] = 0.25
    assert pipeline.read_yaml(path.read_text()) == expected


@pytest.mark.parametrize("name", ["cpu", "cpu-fmnist"])
def test_cpu_profiles_take_the_measured_speed_options(name, tmp_path, validate_once):
    """Issue 12: bf16 where the CPU has it natively (real forward, evaluation) and a compiled evaluation forward;
    the paired accuracy check is benchmarks/numerics_fmnist.py."""
    shutil.copy(ROOT / "profiles" / f"{name}.yaml", tmp_path / "params.yaml")
    dataset = "digits" if name == "cpu" else "fashionmnist"
    c = pipeline.load_config("evaluate", dataset=dataset, ipc=10, method="dm_hdd", root=tmp_path)
    assert c.distill.real_precision == "auto"
    for ev in (c.eval, c.curve):
        assert (ev.precision, ev.compile) == ("auto", True)
