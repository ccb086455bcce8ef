"""Headless runs: ``python -m hdd_lib distill|evaluate|pretrain|notebook|check|deps|profile|readme|warm``.

Flags are spelled like config fields (``--lr_img``); any field via ``--set key=value`` (YAML), e.g.
``--set loss.k=2.4``. Errors print one line (``--debug``/``HDD_DEBUG=1``: traceback); exit 2 bad input, 1 failed
run, 130 interrupted. ``pretrain --method ncfm`` builds (resumably) the pool that method's strategy embeds with.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "report_error"]


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {pair!r}")
        node = out
        *parents, last = key.strip().split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = _scalar(raw)
    return out


def _scalar(raw: str) -> Any:
    """A YAML value read as params.yaml is (YAML 1.2: ``off`` stays a string, ``1e6`` is a float);
    other strings that are numbers to Python (``inf``) become floats."""
    from .params import read_yaml

    value = read_yaml(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hdd_lib", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", default="digits", help="a dataset name (see hdd_lib.data.available_datasets())")
        p.add_argument("--data_root", default=None, help="folder holding the data (default $HDD_DATA_ROOT or ./data)")
        p.add_argument("--download", action="store_true", help="download missing files (needs internet)")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config field")
        p.add_argument("--no_progress", action="store_true", help="no progress bars")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    d = sub.add_parser("distill", help="distil a dataset into a synthetic set")
    data_flags(d)
    d.add_argument("--strategy", default="dm", help="dm, idm, ... (default dm)")
    d.add_argument("--loss", default="hdd", help="dm, hdd, geodm, ... (default hdd); settings via --set loss.KEY=VALUE")
    d.add_argument("--method", default=None, help="a method of params.yaml (sets strategy, loss and its settings)")
    d.add_argument("--ipc", type=int, default=10)
    d.add_argument("--iterations", type=int, default=20000)
    d.add_argument("--lr_img", type=float, default=None, help="default: the method's or 1.0")
    d.add_argument("--batch_real", type=int, default=None)
    d.add_argument("--init", default="real", help="real | noise")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--checkpoint_every", type=int, default=None)
    d.add_argument("--out", required=True, type=Path, help="output folder")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    e = sub.add_parser("evaluate", help="train networks from scratch on a synthetic set, report test accuracy")
    data_flags(e)
    e.add_argument("--synset", required=True, type=Path, help="a synset.pt written by distill")
    e.add_argument("--models", default="convnet", help="comma-separated, e.g. convnet,alexnet,vgg11,resnet18:batchnorm")
    e.add_argument("--num_eval", type=int, default=5)
    e.add_argument("--epochs", type=int, default=None, help="default: the protocol's (dc: 1000)")
    e.add_argument("--protocol", default="dc", help="dc, or a paper's own: ncfm, dsdm (hdd_lib.config.EVAL_PROTOCOLS)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True, type=Path, help="metrics JSON to write")
    pt = sub.add_parser("pretrain", help="pretrain the network pool of a method's strategy (NCFM, DSDM)")
    data_flags(pt)
    pt.add_argument("--method", required=True, help="a method of params.yaml whose strategy uses a pool (ncfm, dsdm, ...)")
    pt.add_argument("--ipc", type=int, default=10, help="the cell whose settings apply (pools do not depend on it)")
    pt.add_argument("--out", type=Path, default=None, help="pool folder (default: pools/<dataset>/<strategy> under scratch/)")
    nb = sub.add_parser("notebook", help="run a notebook for the pipeline (papermill, outputs under results/)")
    nb.add_argument("source", type=Path)
    nb.add_argument("target", type=Path)
    nb.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a parameter")
    nb.add_argument("--kernel", action="store_true",
                    help="run in a Jupyter kernel, as plain papermill does (default: in this process, same outputs)")
    sub.add_parser("check", help="validate params.yaml (every section and grid cell)")
    dp = sub.add_parser("deps", help="check (or --write) the library deps of every stage in dvc.yaml")
    dp.add_argument("--write", action="store_true", help="rewrite dvc.yaml's library deps from the code")
    p = sub.add_parser("profile", help="make profiles/NAME.yaml the active params.yaml (cpu, cpu-fmnist, paper)")
    p.add_argument("name")
    sub.add_parser("readme", help="regenerate README.md's results section from results/")
    w = sub.add_parser("warm", help="list this user's warm stage servers (hdd_lib.warm); --stop: stop them")
    w.add_argument("--stop", action="store_true", help="stop them once their running stages finish")
    return parser


def _method(args: argparse.Namespace) -> dict[str, Any]:
    """``--method``: the settings of ``methods.<method>`` in params.yaml; else ``--strategy`` and ``--loss``."""
    if args.method is None:
        return {"method": f"{args.strategy}_{args.loss}", "strategy": {"name": args.strategy}, "loss": {"name": args.loss}}
    from .params import _method_spec, load_params
    spec = _method_spec(load_params().get("methods") or {}, args.method)
    return {**spec, "method": args.method, "strategy": {"name": spec["strategy"]}}


def _distill(args: argparse.Namespace) -> None:
    from . import data as data_mod
    from . import distill
    from .config import DistillConfig, from_dict
    from .params import _merge, data_copy_label
    from .storage import save_json, writable_dir
    fields: dict[str, Any] = {**_method(args), "ipc": args.ipc, "iterations": args.iterations, "init": args.init,
                              "seed": args.seed, "device": args.device}
    fields.update({n: getattr(args, n) for n in ("lr_img", "batch_real", "checkpoint_every")
                   if getattr(args, n) is not None})
    cfg = from_dict(DistillConfig, _merge(fields, _overrides(args.set), "--set"))
    out = writable_dir(args.out)
    train = data_mod.load(args.dataset, args.data_root, split="train", download=args.download)
    syn = distill.run(cfg, train, out_dir=out, resume=args.resume, progress=not args.no_progress)
    syn.meta.update(data_copy=data_copy_label(args.dataset))
    syn.save(out / "synset.pt")
    save_json(out / "distill.json", {**syn.meta, "provenance": syn.provenance})
    print(f"wrote {out / 'synset.pt'} ({syn.provenance['ms_per_iteration']:.1f} ms/iteration)")


def _evaluate(args: argparse.Namespace) -> None:
    from . import data as data_mod
    from .config import EVAL_PROTOCOLS, EvalConfig, from_dict, to_dict
    from .evaluate import evaluate
    from .params import _merge
    from .storage import save_json, writable_dir
    from .synset import SyntheticSet
    fields = {**EVAL_PROTOCOLS.get(args.protocol, {}), "protocol": args.protocol, "num_eval": args.num_eval, "seed": args.seed,
              "models": [m.strip() for m in args.models.split(",") if m.strip()], "device": args.device}
    fields.update({} if args.epochs is None else {"epochs": args.epochs})
    cfg = from_dict(EvalConfig, _merge(fields, _overrides(args.set), "--set"))
    writable_dir(args.out.parent)
    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a folder; give a file name such as {args.out / 'metrics.json'}")
    syn = SyntheticSet.load(args.synset)
    test = data_mod.load(args.dataset, args.data_root, split="test", download=args.download)
    results = evaluate(syn, test, cfg, progress=not args.no_progress)
    save_json(args.out, {"synset": str(args.synset), "dataset": args.dataset, "eval": to_dict(cfg),
                         "results": {k: r.to_dict() for k, r in results.items()},
                         "distill_config": syn.meta.get("config")})
    print(f"wrote {args.out}")


def _pretrain(args: argparse.Namespace) -> None:
    from . import data as data_mod
    from . import pool
    from .config import DistillConfig, from_dict, to_dict
    from .params import Paths, _merge, find_root, load_params, resolve_distill
    root = find_root()
    cfg = resolve_distill(load_params(root), args.dataset, args.ipc, args.method)
    cfg = from_dict(DistillConfig, _merge(to_dict(cfg), _overrides(args.set), "--set"))
    if "pretrain" not in cfg.strategy:
        raise ValueError(f"method {args.method!r} (strategy {cfg.strategy['name']!r}) embeds with no pretrained pool")
    out = args.out or Paths.for_root(root).out / "pools" / args.dataset / cfg.strategy["name"]
    train = data_mod.load(args.dataset, args.data_root, split="train", download=args.download)
    manifest = pool.pretrain(train, cfg.model, from_dict(pool.PretrainConfig, cfg.strategy["pretrain"]), out,
                             device=args.device, progress=not args.no_progress)
    print(f"wrote {out}: {len(manifest['accuracy'])} networks, mean last-epoch train accuracy "
          f"{sum(manifest['accuracy']) / len(manifest['accuracy']):.1f} %")


def _notebook(args: argparse.Namespace) -> None:
    """Run a notebook for the pipeline (papermill, ``HDD_PIPELINE=1``; :func:`hdd_lib.notebook.run_notebook`)."""
    from .notebook import run_notebook
    from .params import PIPELINE_ENV
    os.environ[PIPELINE_ENV] = "1"
    run_notebook(args.source, args.target, {name: _scalar(value) for name, value in args.p}, in_process=not args.kernel)


def _check(args: argparse.Namespace) -> None:
    from .params import PARAMS_FILE, check_params, find_root, load_params
    root = find_root()
    check_params(load_params(root))
    print(f"{root / PARAMS_FILE}: valid")


def _deps(args: argparse.Namespace) -> int:
    from .deps import dvc_deps
    from .params import find_root
    path = find_root() / "dvc.yaml"
    stale = {name: (old, new) for name, (old, new) in dvc_deps(path, write=args.write).items() if old != new}
    if args.write:
        print(f"{path}: library deps " + (f"rewritten for {len(stale)} stage(s)" if stale else "already up to date"))
        return 0
    for name, (old, new) in stale.items():
        print(f"{name}: declared {old}, runs {new}")
    print(f"{path}: " + ("library deps differ from the code; run `python -m hdd_lib deps --write`" if stale else "up to date"))
    return 1 if stale else 0


def _profile(args: argparse.Namespace) -> None:
    from .params import use_profile
    print(f"{use_profile(args.name)} now holds profile {args.name!r}; run `dvc repro`")


def _warm(args: argparse.Namespace) -> None:
    from . import warm
    if args.stop:
        print(f"asked {warm.stop()} warm server(s) to stop")
    else:
        print("\n".join(f"{key}: pid {pid}" for key, pid in warm.servers().items()) or "no warm server running")


def _readme(args: argparse.Namespace) -> None:
    from .params import find_root
    from .report.readme import update_readme
    root = find_root()
    changed = update_readme(root / "README.md", root / "results")
    print("README.md results section " + ("updated" if changed else "already up to date"))


#: Errors that mean "bad input" (exit 2); any other exception is a failed run (exit 1).
USAGE_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, IsADirectoryError, KeyError)


def report_error(e: BaseException) -> int:
    """Print ``e`` as one line on stderr; return the exit status (2 bad input, 1 failed run)."""
    usage = isinstance(e, USAGE_ERRORS) and not isinstance(e, RuntimeError)
    if type(e).__name__ == "PapermillExecutionError":  # the notebook's own (one-line) error
        what, usage = f"{e.ename}: {e.evalue} (in cell {e.exec_count})", e.ename in {t.__name__ for t in USAGE_ERRORS}
    else:
        what = str(e) if isinstance(e, (ValueError, RuntimeError)) else f"{type(e).__name__}: {e}"
    hint = "" if usage else " (rerun with --debug for the traceback)"
    print(f"error: {what}{hint}", file=sys.stderr)
    return 2 if usage else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"distill": _distill, "evaluate": _evaluate, "pretrain": _pretrain, "notebook": _notebook, "check": _check, "deps": _deps,
                "profile": _profile, "readme": _readme, "warm": _warm}
    try:
        if args.command == "notebook":  # in a child of the warm server where one can run (hdd_lib.warm)
            from .warm import run as run_warm
            code = run_warm(list(sys.argv[1:] if argv is None else argv))
            if code is not None:
                return code
        return commands[args.command](args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if getattr(e, "ename", None) == "KeyboardInterrupt":  # interrupted inside a notebook cell
            return 130
        if args.debug or os.environ.get("HDD_DEBUG"):
            raise
        return report_error(e)
