"""One function per pipeline stage: the computation behind each notebook, testable without Jupyter.

Every function takes the :class:`~hdd_lib.pipeline.StageConfig` of its cell, writes its outputs
atomically under ``cfg.paths`` (metrics JSON with the config, protocol and provenance; synthetic
sets) and returns what the notebook plots.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch

from . import data as data_mod
from . import distill, geometry, prune, provenance
from .config import to_dict
from .evaluate import evaluate, evaluate_images
from .models import get_model
from .pipeline import StageConfig
from .runtime import resolve_device
from .storage import load_json, save_json
from .synset import SyntheticSet

__all__ = ["load_split", "dataset_summary", "random_features", "geometry_summary", "distill_cell",
           "evaluate_cell", "prune_cell", "poincare_for_run"]


def load_split(cfg: StageConfig, split: str, device: str | torch.device = "cpu") -> data_mod.ImageSet:
    """The cell's dataset split, from ``cfg.data`` (root, download)."""
    return data_mod.load(cfg.dataset, cfg.data.data_root, split=split, download=cfg.data.download, device=device)


def _protocol(cfg: StageConfig, ev=None) -> dict[str, Any]:
    ev = ev or cfg.eval
    out = {"profile": cfg.profile, "data_copy": cfg.data_copy}
    if cfg.distill is not None:
        out.update(iterations=cfg.distill.iterations, batch_real=cfg.distill.batch_real, lr_img=cfg.distill.lr_img)
    if ev is not None:
        out.update(num_eval=ev.num_eval, epochs=ev.epochs, eval_lr=ev.lr, eval_batch=ev.batch)
    return out


def _cell(cfg: StageConfig) -> dict[str, Any]:
    d = cfg.distill
    return {"run_id": cfg.run_id, "dataset": cfg.dataset, "data_copy": cfg.data_copy, "ipc": d.ipc,
            "method": d.method, "seed": d.seed, "variant": cfg.variant}


# ------------------------------------------------------------------------------------ 00 data


def dataset_summary(cfg: StageConfig) -> tuple[dict[str, Any], data_mod.ImageSet]:
    """Load both splits, check them, write ``metrics/data/<dataset>.json``; returns it and the train split."""
    t0 = time.perf_counter()
    train, test = load_split(cfg, "train"), load_split(cfg, "test")
    summary = {
        "dataset": cfg.dataset, "data_copy": cfg.data_copy, "spec": dataclasses.asdict(train.spec),
        "train_size": len(train), "test_size": len(test),
        "train_per_class": train.counts.tolist(), "test_per_class": test.counts.tolist(),
        "normalised_mean": train.images.mean(dim=(0, 2, 3)).tolist(),
        "normalised_std": train.images.std(dim=(0, 2, 3)).tolist(),
        "data_digest": provenance.data_digest(train.images, train.labels),
        "load_seconds": time.perf_counter() - t0,
        "provenance": provenance.collect(),
    }
    save_json(cfg.paths.metric("data", cfg.dataset), summary)
    return summary, train


# ------------------------------------------------------------------------------------ 01 geometry


@torch.no_grad()
def random_features(
    images: torch.Tensor, *, model_cfg, spec, nets: int, generator: torch.Generator, device, chunk: int = 2048
) -> torch.Tensor:
    """Features ``[..., D]`` of ``images [..., ch, H, W]`` averaged over ``nets`` freshly initialised,
    frozen ConvNets in train mode (the DM embedding), drawn from ``generator``."""
    device = resolve_device(device)
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).to(device)
    total = None
    for _ in range(nets):
        net = get_model(model_cfg.name, spec.channels, spec.num_classes, spec.image_size[0],
                        generator=generator, **model_cfg.kwargs(spec.image_size[0])).to(device)
        f = torch.cat([net.embed(x) for x in flat.split(chunk)])
        total = f if total is None else total + f
    return (total / nets).reshape(*lead, -1).cpu()


def geometry_summary(cfg: StageConfig) -> dict[str, Any]:
    """Real features of a random ConvNet, their norms against the expmap clamp, and a Poincaré-disk
    picture (as is, and scaled below the clamp); writes ``metrics/geometry/<dataset>.json``."""
    from .config import ModelConfig

    s = cfg.section
    k, batch, nets = float(s.get("k", 1.0)), int(s.get("batch", 64)), int(s.get("nets", 1))
    train = load_split(cfg, "train")
    g = torch.Generator().manual_seed(0)
    real = train.sample(min(batch, int(train.counts.min())), generator=g)
    feats = random_features(real, model_cfg=ModelConfig(), spec=train.spec, nets=nets, generator=g, device="auto")
    stats = geometry.feature_norm_stats(feats, k=k)
    out = {"dataset": cfg.dataset, "data_copy": cfg.data_copy, "k": k, "feature_dim": feats.shape[-1],
           "norms": {key: (v.tolist() if torch.is_tensor(v) else v) for key, v in stats.items() if key != "norms"},
           "provenance": provenance.collect()}
    save_json(cfg.paths.metric("geometry", cfg.dataset), out)
    return {"summary": out, "features": feats, "stats": stats, "spec": train.spec}


# ------------------------------------------------------------------------------------ 02 distill


def distill_cell(cfg: StageConfig, *, progress: bool = True) -> SyntheticSet:
    """Distil one cell (resuming its checkpoint if any); write ``synset.pt`` and ``distill.json``.

    With ``curve_every > 0`` the set is evaluated during distillation (``cfg.curve`` protocol) for the
    accuracy-vs-iteration figure.
    """
    device = resolve_device(cfg.distill.device)
    train = load_split(cfg, "train", device)
    on_eval = None
    if cfg.curve_every:
        test = load_split(cfg, "test", device)

        def on_eval(iteration: int, syn: SyntheticSet) -> dict[str, float]:
            r = evaluate(syn, test, cfg.curve, progress=False)[cfg.curve.models[0]]
            return {"curve_mean": r.mean, "curve_std": r.std}

    ckpt_dir = cfg.paths.checkpoint_dir(cfg.run_id)
    if not distill.checkpoint_compatible(ckpt_dir, cfg.distill):
        print(f"{ckpt_dir}: checkpoint made with other settings; starting afresh")
        (ckpt_dir / distill.CHECKPOINT_NAME).unlink()
    syn = distill.run(cfg.distill, train, out_dir=ckpt_dir, resume=True, progress=progress,
                      on_eval=on_eval, eval_every=cfg.curve_every)
    syn.meta.update(run_id=cfg.run_id, data=to_dict(cfg.data), data_copy=cfg.data_copy, profile=cfg.profile,
                    variant=cfg.variant)
    syn.save(cfg.paths.synset(cfg.run_id))
    save_json(cfg.paths.distill_record(cfg.run_id), syn.meta)
    return syn


# ------------------------------------------------------------------------------------ 03 evaluate


def _curve(record: dict[str, Any]) -> list[dict[str, float]]:
    return [{"iteration": h["iteration"], "mean": h["curve_mean"], "std": h["curve_std"]}
            for h in record.get("history", []) if "curve_mean" in h]


def evaluate_cell(cfg: StageConfig, *, kind: str = "eval", progress: bool = True) -> dict[str, Any]:
    """Evaluate the cell's synthetic set; ``kind`` is ``eval`` (the ConvNet protocol), ``crossarch``
    (``crossarch.models``) or ``ablation``; writes ``metrics/<kind>/<run_id>.json``."""
    ev = cfg.eval
    if kind == "crossarch":
        ev = dataclasses.replace(ev, models=tuple(cfg.section.get("models", ev.models)))
    syn = SyntheticSet.load(cfg.paths.synset(cfg.run_id))
    test = load_split(cfg, "test", resolve_device(ev.device))
    results = evaluate(syn, test, ev, progress=progress)
    record = load_json(cfg.paths.distill_record(cfg.run_id))
    metrics = {
        **_cell(cfg), "kind": kind, "protocol": _protocol(cfg, ev),
        "results": {name: r.to_dict() for name, r in results.items()},
        "curve": _curve(record),
        "distill_seconds": record.get("timing", {}).get("seconds"),
        "variant_settings": (to_dict(cfg.distill.geodm) if cfg.variant else None),
        "provenance": provenance.collect(ev.device if ev.device != "auto" else resolve_device("auto")),
    }
    save_json(cfg.paths.metric(kind, cfg.run_id), metrics)
    return metrics


# ------------------------------------------------------------------------------------ 04 prune


def prune_cell(cfg: StageConfig, *, progress: bool = True) -> dict[str, Any]:
    """Keep-ratio sweep: score the expanded synthetic images (hyperbolic / euclidean / random), keep
    the best ``ratio`` per class, evaluate; writes ``metrics/prune/<run_id>.json``."""
    s = cfg.section
    ratios = [float(r) for r in s.get("ratios", [1.0, 0.8, 0.6, 0.4, 0.2])]
    scores = list(s.get("scores", ["hyperbolic", "euclidean", "random"]))
    device = resolve_device(cfg.eval.device)
    syn = SyntheticSet.load(cfg.paths.synset(cfg.run_id))
    train, test = load_split(cfg, "train"), load_split(cfg, "test", device)
    g = torch.Generator().manual_seed(cfg.distill.seed)
    real = train.sample(min(int(s.get("batch", 64)), int(train.counts.min())), generator=g)
    per_class = syn.per_class()
    nets = int(s.get("nets", 3))
    f_real = random_features(real, model_cfg=cfg.distill.model, spec=train.spec, nets=nets,
                             generator=torch.Generator().manual_seed(1), device=device)
    f_syn = random_features(per_class, model_cfg=cfg.distill.model, spec=train.spec, nets=nets,
                            generator=torch.Generator().manual_seed(1), device=device)
    hdd = cfg.distill.hdd
    score_sets = {}
    for name in scores:
        kwargs = {"k": hdd.k, "how": hdd.how, "clamp": hdd.clamp} if name == "hyperbolic" else {}
        score_sets[name] = prune.get_scorer(name)(f_syn, f_real, generator=torch.Generator().manual_seed(2), **kwargs)

    def train_on(subset: SyntheticSet):
        images, labels = subset.expanded()
        return evaluate_images(images, labels, test, cfg.eval, progress=False)[cfg.eval.models[0]]

    results, kept = prune_sweep(syn, score_sets, ratios, train_on, progress=progress)
    metrics = {**_cell(cfg), "kind": "prune", "protocol": {**_protocol(cfg), "feature_nets": nets},
               "ratios": ratios, "results": results, "kept": kept, "provenance": provenance.collect(device)}
    save_json(cfg.paths.metric("prune", cfg.run_id), metrics)
    return metrics


def prune_sweep(syn: SyntheticSet, score_sets: dict[str, torch.Tensor], ratios: list[float],
                train_on: Callable[[SyntheticSet], Any], *, progress: bool = False
                ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list]]]:
    """For each scorer and keep ratio, keep the best-scoring images per class and ``train_on`` them.

    The kept images are evaluated in index order, so a result depends only on *which* images are
    kept; a kept set already evaluated (ratio 1.0 under every scorer, say) is not trained again.
    Returns ``(results[score][ratio], kept[score][ratio])``, ``kept`` best first.
    """
    results: dict[str, dict[str, Any]] = {}
    kept: dict[str, dict[str, list]] = {}
    done: dict[tuple, Any] = {}
    for name, sc in score_sets.items():
        results[name], kept[name] = {}, {}
        for ratio in ratios:
            keep = prune.select(sc, keep_ratio=ratio)
            chosen = keep.sort(dim=1).values
            key = (tuple(chosen.shape), tuple(chosen.flatten().tolist()))
            if key not in done:
                done[key] = train_on(syn.subset(chosen))
            r = done[key]
            results[name][str(ratio)] = {**r.to_dict(), "kept_per_class": int(keep.shape[1])}
            kept[name][str(ratio)] = keep.tolist()
            if progress:
                print(f"{name:>10} keep {ratio:.1f} ({keep.shape[1]}/class): {r.mean:.2f} ± {r.std:.2f}")
    return results, kept


# ------------------------------------------------------------------------------------ 05/06


def poincare_for_run(cfg: StageConfig, run: dict[str, Any], *, batch: int = 64, nets: int = 1,
                     median_fraction: float = 0.15) -> dict[str, Any]:
    """Real and synthetic features of one run on the Poincaré disk (:func:`hdd_lib.visual.poincare_disk`).

    Features come from ``nets`` random ConvNets of the run's architecture (the DM embedding); the
    HDD settings (``k``, map, clamp) are the run's. Features are scaled so that the median real norm
    is ``median_fraction`` of the clamp radius, where radii still carry information
    (``disk["scale"]`` says by how much; unscaled, ConvNet features saturate the clamp and all sit on
    one circle near the rim).
    """
    from .config import HDDConfig, ModelConfig, from_dict
    from .pipeline import run_id as make_run_id

    rid = make_run_id(run["dataset"], int(run["ipc"]), run["method"], int(run["seed"]))
    syn = SyntheticSet.load(cfg.paths.synset(rid))
    config = syn.meta.get("config", {})
    model_cfg = from_dict(ModelConfig, config.get("model", {}))
    hdd = from_dict(HDDConfig, config.get("hdd", {}))
    train = data_mod.load(run["dataset"], cfg.data.data_root, split="train", download=cfg.data.download)
    g = torch.Generator().manual_seed(0)
    real = train.sample(min(batch, int(train.counts.min())), generator=g)
    f_real = random_features(real, model_cfg=model_cfg, spec=train.spec, nets=nets,
                             generator=torch.Generator().manual_seed(1), device="auto")
    f_syn = random_features(syn.per_class(), model_cfg=model_cfg, spec=train.spec, nets=nets,
                            generator=torch.Generator().manual_seed(1), device="auto")
    threshold = (hdd.clamp or 10.0) * hdd.k ** 0.5
    scale = median_fraction * threshold / float(f_real.norm(dim=-1).median().clamp_min(1e-12))
    disk = geometry.poincare_disk(f_real, f_syn, k=hdd.k, how=hdd.how, clamp=hdd.clamp, scale=scale)
    disk.update(run_id=rid, class_names=train.spec.class_names)
    return disk
