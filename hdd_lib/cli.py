"""Headless runs: ``python -m hdd_lib distill ...`` and ``python -m hdd_lib evaluate ...``.

Parse -> typed config -> call the library -> write results atomically. Flags are spelled like the
config fields (``--lr_img``, ``--batch_real``); any nested field is reachable with
``--set section.field=value`` (YAML syntax for the value), e.g. ``--set hdd.k=2.4``.

Outputs of ``distill --out DIR``: ``DIR/synset.pt`` (images, labels, config, provenance, timings),
``DIR/distill.json`` (the same record without the images) and ``DIR/checkpoint.pt`` (``--resume``).
``evaluate --out FILE`` writes a metrics JSON. ``profile NAME`` makes ``profiles/NAME.yaml`` the
active ``params.yaml`` of the pipeline; ``readme`` regenerates README.md's results section.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import data as data_mod
from .config import METHODS, DataConfig, DistillConfig, EvalConfig, from_dict, to_dict
from .pipeline import data_copy_label
from .storage import save_json

__all__ = ["main", "build_parser"]


def _nested_set(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        _nested_set(out, key.strip(), yaml.safe_load(raw))
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        base[k] = _merge(dict(base.get(k, {})), v) if isinstance(v, dict) else v
    return base


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hdd_lib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", default="digits", help=f"one of {', '.join(data_mod.available_datasets())}")
        p.add_argument("--data_root", default=None, help="folder holding the data (default $HDD_DATA_ROOT or ./data)")
        p.add_argument("--download", action="store_true", help="download missing files (needs internet)")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config field")
        p.add_argument("--no_progress", action="store_true", help="no progress bars")

    d = sub.add_parser("distill", help="distil a dataset into a synthetic set")
    data_flags(d)
    d.add_argument("--method", default="dm_hdd", choices=sorted(METHODS))
    d.add_argument("--ipc", type=int, default=10)
    d.add_argument("--iterations", type=int, default=20000)
    d.add_argument("--lr_img", type=float, default=None, help="default: the config's (1.0)")
    d.add_argument("--batch_real", type=int, default=None)
    d.add_argument("--init", choices=["real", "noise"], default="real")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--checkpoint_every", type=int, default=None)
    d.add_argument("--out", required=True, type=Path, help="output folder")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")

    e = sub.add_parser("evaluate", help="train networks from scratch on a synthetic set, report test accuracy")
    data_flags(e)
    e.add_argument("--synset", required=True, type=Path, help="a synset.pt written by distill")
    e.add_argument("--models", default="convnet", help="comma-separated, e.g. convnet,alexnet,vgg11,resnet18:batchnorm")
    e.add_argument("--num_eval", type=int, default=5)
    e.add_argument("--epochs", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True, type=Path, help="metrics JSON to write")

    p = sub.add_parser("profile", help="make profiles/NAME.yaml the active params.yaml (cpu, paper)")
    p.add_argument("name")

    sub.add_parser("readme", help="regenerate README.md's results section from results/")
    return parser


def _distill(args: argparse.Namespace) -> None:
    from . import distill

    fields: dict[str, Any] = {"method": args.method, "ipc": args.ipc, "iterations": args.iterations,
                              "init": args.init, "seed": args.seed, "device": args.device}
    for name in ("lr_img", "batch_real", "checkpoint_every"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    cfg = from_dict(DistillConfig, _merge(fields, _overrides(args.set)))
    dcfg = DataConfig(args.dataset, args.data_root, args.download)
    train = data_mod.load(dcfg.dataset, dcfg.data_root, split="train", download=dcfg.download)
    syn = distill.run(cfg, train, out_dir=args.out, resume=args.resume, progress=not args.no_progress)
    syn.meta.update(data=to_dict(dcfg), data_copy=data_copy_label(dcfg.dataset))
    syn.save(args.out / "synset.pt")
    save_json(args.out / "distill.json", syn.meta)
    print(f"wrote {args.out / 'synset.pt'} ({syn.meta['timing']['ms_per_iteration']:.1f} ms/iteration)")


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .synset import SyntheticSet

    fields = {"models": [m.strip() for m in args.models.split(",") if m.strip()], "num_eval": args.num_eval,
              "epochs": args.epochs, "seed": args.seed, "device": args.device}
    cfg = from_dict(EvalConfig, _merge(fields, _overrides(args.set)))
    syn = SyntheticSet.load(args.synset)
    test = data_mod.load(args.dataset, args.data_root, split="test", download=args.download)
    results = evaluate(syn, test, cfg, progress=not args.no_progress)
    save_json(args.out, {"synset": str(args.synset), "dataset": args.dataset, "eval": to_dict(cfg),
                         "results": {k: r.to_dict() for k, r in results.items()},
                         "distill_config": syn.meta.get("config")})
    print(f"wrote {args.out}")


def _profile(args: argparse.Namespace) -> None:
    from .pipeline import use_profile

    path = use_profile(args.name)
    print(f"{path} now holds profile {args.name!r}; run `dvc repro`")


def _readme(args: argparse.Namespace) -> None:
    from .pipeline import find_root
    from .report.readme import update_readme

    root = find_root()
    changed = update_readme(root / "README.md", root / "results")
    print("README.md results section " + ("updated" if changed else "already up to date"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"distill": _distill, "evaluate": _evaluate, "profile": _profile, "readme": _readme}[args.command](args)
    except (ValueError, FileNotFoundError) as e:  # bad input: a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
