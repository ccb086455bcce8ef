"""The pipeline's stage bodies, one function per stage, testable without Jupyter.

Each writes atomically under ``cfg.paths.out`` a versioned **record** (``records/<kind>/<id>.json``), a
**metric** (``metrics/<kind>/<id>.json``) and an unversioned **provenance** (``provenance/<kind>/<id>.json``).
Each imports what it runs inside its body, so its DVC deps are exactly that code (:mod:`hdd_lib.deps`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import provenance
from .params import StageConfig, in_pipeline
from .storage import save_json

__all__ = ["dataset_summary", "geometry_summary", "pretrain_pools", "distill_cell", "evaluate_cell", "prune_cell",
           "prune_sweep"]


def _write(cfg: StageConfig, kind: str, name: str, record: dict, metrics: dict, seconds: float, device: Any = None,
           **extra: Any) -> dict:
    save_json(cfg.paths.record(kind, name), record)
    save_json(cfg.paths.metric(kind, name), metrics)
    save_json(cfg.paths.provenance(kind, name), provenance.collect(device, seconds=seconds, **extra))
    return record


def _load(cfg: StageConfig, split: str, device: Any = "cpu"):
    from . import data
    return data.load(cfg.dataset, cfg.data.data_root, split=split, download=cfg.data.download, device=device)


def _protocol(cfg: StageConfig, ev=None) -> dict[str, Any]:
    ev, d = ev or cfg.eval, cfg.distill
    out = {"profile": cfg.profile, "data_copy": cfg.data_copy}
    if d is not None:
        out.update(iterations=d.iterations, batch_real=d.batch_real, lr_img=d.lr_img)
        if "pretrain" in d.strategy:
            out["pool"] = {k: d.strategy["pretrain"][k] for k in ("nets", "epochs")}
    if ev is not None:
        out.update(num_eval=ev.num_eval, epochs=ev.epochs, eval_lr=ev.lr, eval_batch=ev.batch)
        out.update({f"eval_{k}": getattr(ev, k) for k, dflt in (("schedule", "round"), ("protocol", "dc"))
                    if getattr(ev, k) != dflt})
    return out


def _cell(cfg: StageConfig) -> dict[str, Any]:
    from .strategies import method_label
    d = cfg.distill
    return {"run_id": cfg.run_id, "dataset": cfg.dataset, "data_copy": cfg.data_copy, "ipc": d.ipc,
            "method": d.method, "method_label": method_label(d.strategy, d.loss), "seed": d.seed, "variant": cfg.variant}


def dataset_summary(cfg: StageConfig):
    """Load both splits, check them; writes ``records/data/<dataset>.json``; returns it and the train split."""
    t0 = time.perf_counter()
    train, test = _load(cfg, "train"), _load(cfg, "test")
    record = {
        "dataset": cfg.dataset, "data_copy": cfg.data_copy, "spec": dataclasses.asdict(train.spec),
        "train_size": len(train), "test_size": len(test),
        "train_per_class": train.counts.tolist(), "test_per_class": test.counts.tolist(),
        "normalised_mean": train.images.mean(dim=(0, 2, 3)).tolist(),
        "normalised_std": train.images.std(dim=(0, 2, 3)).tolist(),
        "data_digest": provenance.data_digest(train.images, train.labels),
    }
    metrics = {"train_size": len(train), "test_size": len(test), "classes": train.spec.num_classes}
    _write(cfg, "data", cfg.dataset, record, metrics, time.perf_counter() - t0)
    return record, train


def geometry_summary(cfg: StageConfig) -> dict[str, Any]:
    """Real features of a random ConvNet and their norms against the expmap clamp; writes ``records/geometry/``."""
    import torch
    from . import geometry
    from .models import random_features
    t0, s = time.perf_counter(), cfg.section
    train = _load(cfg, "train")
    g = torch.Generator().manual_seed(0)
    real = train.sample(min(s.batch, int(train.counts.min())), generator=g)
    feats = random_features(real, model_cfg=s.model, spec=train.spec, nets=s.nets, generator=g, device="auto")
    stats = geometry.feature_norm_stats(feats, k=s.k)
    norms = {key: (v.tolist() if torch.is_tensor(v) else v) for key, v in stats.items() if key != "norms"}
    record = {"dataset": cfg.dataset, "data_copy": cfg.data_copy, "k": s.k, "feature_dim": feats.shape[-1],
              "model": s.model.to_dict(), "norms": norms}
    _write(cfg, "geometry", cfg.dataset, record, {"feature_dim": feats.shape[-1]}, time.perf_counter() - t0)
    return {"summary": record, "features": feats, "stats": stats, "spec": train.spec}


def pretrain_pools(cfg: StageConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Pretrain the pool of every pool strategy of ``pool_grid`` on the dataset into ``pools/<dataset>/<strategy>/``
    (resuming per network; other folders there are removed); writes ``records/pools/<dataset>.json``."""
    import shutil
    from . import pool
    from .config import from_dict
    progress = not in_pipeline() if progress is None else progress
    t0, pools, root = time.perf_counter(), {}, cfg.paths.out / "pools" / cfg.dataset
    train = _load(cfg, "train")
    root.mkdir(parents=True, exist_ok=True)
    for stale in (p for p in root.iterdir() if p.name not in cfg.section):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    for name, d in cfg.section.items():
        settings = from_dict(pool.PretrainConfig, d.strategy["pretrain"])
        pools[name] = {"method": d.method, **pool.pretrain(train, d.model, settings, root / name, device=d.device,
                                                           progress=progress)}
    metrics = {name: {"mean_train_accuracy": sum(p["accuracy"]) / len(p["accuracy"])} for name, p in pools.items()}
    return _write(cfg, "pools", cfg.dataset, {"dataset": cfg.dataset, "data_copy": cfg.data_copy, "pools": pools},
                  metrics, time.perf_counter() - t0)


def distill_cell(cfg: StageConfig, *, progress: bool | None = None):
    """Distil one cell into ``runs/<run_id>/synset.pt`` and ``distill.json``, resuming from a matching checkpoint
    (one from other settings, data or code is discarded); ``curve_every > 0``: evaluate during distillation."""
    from . import distill
    from .evaluate import evaluate
    from .runtime import resolve_device
    progress = not in_pipeline() if progress is None else progress
    device = resolve_device(cfg.distill.device)
    train = _load(cfg, "train", device)
    test = _load(cfg, "test", device) if cfg.curve_every else None
    def on_eval(iteration: int, syn) -> dict[str, float]:
        r = evaluate(syn, test, cfg.curve, progress=False)[cfg.curve.models[0]]
        return {"curve_mean": r.mean, "curve_std": r.std}
    ckpt = cfg.paths.checkpoint_dir(cfg.run_id)
    run = dict(out_dir=ckpt, resume=True, progress=progress, on_eval=on_eval if cfg.curve_every else None,
               eval_every=cfg.curve_every)
    discarded = None
    try:
        syn = distill.run(cfg.distill, train, **run)
    except distill.ResumeMismatch as e:
        discarded = str(e)
        if progress:  # the pipeline keeps it in the provenance: its records must not depend on what ran before
            print(f"{e}\n-> starting afresh")
        (ckpt / distill.CHECKPOINT_NAME).unlink()
        syn = distill.run(cfg.distill, train, **run)
    syn.meta.update(run_id=cfg.run_id, data_copy=cfg.data_copy, profile=cfg.profile, variant=cfg.variant)
    syn.save(cfg.paths.synset(cfg.run_id))
    save_json(cfg.paths.run_dir(cfg.run_id) / "distill.json", syn.meta)
    save_json(cfg.paths.provenance("distill", cfg.run_id), {**syn.provenance, "discarded_checkpoint": discarded})
    return syn


def _curve(meta: dict[str, Any]) -> list[dict[str, float]]:
    return [{"iteration": h["iteration"], "mean": h["curve_mean"], "std": h["curve_std"]}
            for h in meta.get("history", []) if "curve_mean" in h]


def evaluate_cell(cfg: StageConfig, *, kind: str = "eval", progress: bool | None = None) -> dict[str, Any]:
    """Evaluate the cell's synthetic set; ``kind``: ``eval``, ``crossarch`` (``crossarch.models``) or ``ablation``."""
    from .evaluate import evaluate
    from .runtime import resolve_device
    from .synset import SyntheticSet
    progress = not in_pipeline() if progress is None else progress
    t0, ev = time.perf_counter(), cfg.eval
    if kind == "crossarch":
        ev = dataclasses.replace(ev, models=cfg.section.models)
    syn = SyntheticSet.load(cfg.paths.find(f"runs/{cfg.run_id}/synset.pt"))
    device = resolve_device(ev.device)
    results = evaluate(syn, test=_load(cfg, "test", device), cfg=ev, progress=progress)
    record = {
        **_cell(cfg), "kind": kind, "protocol": _protocol(cfg, ev),
        "results": {name: {k: v for k, v in r.to_dict().items() if "seconds" not in k} for name, r in results.items()},
        "curve": _curve(syn.meta),
        "variant_settings": syn.meta["config"]["loss"] if cfg.variant else None,
        "code": {"distill": syn.meta.get("code"), "evaluate": provenance.code_digest("hdd_lib.evaluate")},
    }
    metrics = {name: {"mean": r.mean, "std": r.std} for name, r in results.items()}
    return _write(cfg, kind, cfg.run_id, record, metrics, time.perf_counter() - t0, device,
                  seconds_per_model={n: r.seconds_per_model for n, r in results.items()})


def prune_cell(cfg: StageConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Keep-ratio sweep: score the synthetic images, keep the best ``ratio`` per class, evaluate."""
    import torch
    from . import prune
    from .evaluate import evaluate_images
    from .models import random_features
    from .runtime import resolve_device
    from .synset import SyntheticSet
    progress = not in_pipeline() if progress is None else progress
    t0, s = time.perf_counter(), cfg.section
    device = resolve_device(cfg.eval.device)
    syn = SyntheticSet.load(cfg.paths.find(f"runs/{cfg.run_id}/synset.pt"))
    train, test = _load(cfg, "train"), _load(cfg, "test", device)
    real = train.sample(min(s.batch, int(train.counts.min())), generator=torch.Generator().manual_seed(cfg.distill.seed))
    feats = [random_features(x, model_cfg=cfg.distill.model, spec=train.spec, nets=s.nets,
                             generator=torch.Generator().manual_seed(1), device=device) for x in (syn.per_class(), real)]
    loss = cfg.distill.loss if isinstance(cfg.distill.loss, dict) else cfg.distill.loss[0]
    hyper = {k: loss[k] for k in ("k", "how", "clamp") if k in loss}
    score_sets = {name: prune.get_scorer(name)(*feats, generator=torch.Generator().manual_seed(2),
                                               **(hyper if name == "hyperbolic" else {})) for name in s.scores}
    def train_on(subset):
        images, labels = subset.expanded()
        return evaluate_images(images, labels, test, cfg.eval, progress=False)[cfg.eval.models[0]]
    results, kept = prune_sweep(syn, score_sets, list(s.ratios), train_on, progress=progress)
    record = {**_cell(cfg), "kind": "prune", "protocol": {**_protocol(cfg), "feature_nets": s.nets},
              "ratios": list(s.ratios), "results": results, "kept": kept,
              "code": {"distill": syn.meta.get("code"), "evaluate": provenance.code_digest("hdd_lib.evaluate")}}
    metrics = {score: {r: v["mean"] for r, v in by_ratio.items()} for score, by_ratio in results.items()}
    return _write(cfg, "prune", cfg.run_id, record, metrics, time.perf_counter() - t0, device)


def prune_sweep(syn, score_sets: dict[str, Any], ratios: list[float], train_on, *,
                progress: bool = False) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list]]]:
    """``(results[score][ratio], kept[score][ratio])``: ``train_on`` the best-scoring images per class, in index
    order (a result depends only on which are kept; a kept set already trained is reused); ``kept`` best first."""
    from . import prune
    results, kept, done = {}, {}, {}  # done: the result of each kept set already trained
    for name, sc in score_sets.items():
        results[name], kept[name] = {}, {}
        for ratio in ratios:
            keep = prune.select(sc, keep_ratio=ratio)
            chosen = keep.sort(dim=1).values
            key = (tuple(chosen.shape), tuple(chosen.flatten().tolist()))
            if key not in done:
                done[key] = train_on(syn.subset(chosen))
            r = done[key]
            results[name][str(ratio)] = {"accs": list(r.accs), "mean": r.mean, "std": r.std,
                                         "kept_per_class": int(keep.shape[1])}
            kept[name][str(ratio)] = keep.tolist()
            if progress:
                print(f"{name:>10} keep {ratio:.1f} ({keep.shape[1]}/class): {r.mean:.2f} ± {r.std:.2f}")
    return results, kept
