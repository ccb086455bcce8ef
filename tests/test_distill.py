"""The distillation loop: smoke runs of every method, class batching, resume, NaN handling, signals, locks."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from hdd_lib import distill
from hdd_lib.config import DistillConfig, from_dict
from hdd_lib.models import get_model
from hdd_lib.storage import RunLock, RunLockedError, load_torch, save_torch

from . import interrupted_then_resumed

#: The methods of the profiles: (strategy, loss).
METHODS = {"dm": ("dm", "dm"), "dm_hdd": ("dm", "hdd"), "idm": ("idm", "dm"), "idm_hdd": ("idm", "hdd"),
           "geodm": ("dm", "geodm"), "idm_geodm": ("idm", "geodm")}
IDM = {"net_begin": 2, "net_generate_interval": 2, "fetch_net_num": 1, "model_train_steps": 2, "train_batch": 16,
       "acc_reset_interval": 4}


def small_cfg(method="dm_hdd", geodm=None, **overrides) -> DistillConfig:
    strategy, loss = METHODS[method]
    base = {
        "method": method, "ipc": 2, "iterations": 6, "batch_real": 8, "lr_img": 0.1, "seed": 3,
        "model": {"width": 16}, "checkpoint_every": 100, "log_every": 2,
        "strategy": {"name": strategy, **(IDM if strategy == "idm" else {})},
        "loss": {"name": loss, **(geodm or {})},
    }
    base.update(overrides)
    return from_dict(DistillConfig, base)


@pytest.mark.parametrize("method", list(METHODS))
def test_smoke_run_every_method(method, tiny_imageset):
    train, _ = tiny_imageset
    cfg = small_cfg(method)
    syn = distill.run(cfg, train, progress=False)
    factor = 2 if method.startswith("idm") else 1
    assert syn.images.shape == (3, 2, 1, 8, 8) and syn.factor == factor
    assert torch.isfinite(syn.images).all()
    images, labels = syn.expanded()
    assert images.shape == (3 * 2 * factor**2, 1, 8, 8) and labels.tolist() == sorted(labels.tolist())
    hist = syn.meta["history"]
    assert [h["iteration"] for h in hist] == list(range(6))
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    assert syn.meta["config"]["method"] == method and "git_commit" in syn.provenance
    assert {"config", "data", "code", "versions"} <= set(syn.meta) and "time_utc" not in str(syn.meta)
    # the images moved away from their real initialisation
    init = distill.run(small_cfg(method, iterations=1, lr_img=1e-12), train, progress=False)
    assert not torch.allclose(init.images, syn.images)


def test_class_batched_features_equal_per_class_features(tiny_imageset):
    train, _ = tiny_imageset
    net = get_model("convnet", 1, 3, 8, generator=torch.Generator().manual_seed(0), width=16).double()
    real = train.sample(8, generator=torch.Generator().manual_seed(1)).double()  # [C, B, ...]
    batched = net.embed(real.flatten(0, 1)).view(3, 8, -1)
    per_class = torch.stack([net.embed(real[c]) for c in range(3)])
    torch.testing.assert_close(batched, per_class, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["dm_hdd", "idm_hdd"])
def test_interrupted_and_resumed_equals_uninterrupted(method, tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = small_cfg(method, iterations=8, checkpoint_every=3)
    full = distill.run(cfg, train, out_dir=tmp_path / "full", progress=False)

    resumed = interrupted_then_resumed(cfg, train, tmp_path / "cut", at=5)
    assert torch.equal(resumed.images, full.images)
    losses = lambda s: [(h["iteration"], h["loss"]) for h in s.meta["history"] if "loss" in h]  # noqa: E731
    assert losses(resumed) == losses(full)


def test_resume_continues_a_finished_run_to_more_iterations(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    full = distill.run(small_cfg(iterations=6), train, progress=False)
    distill.run(small_cfg(iterations=4), train, out_dir=tmp_path, progress=False)
    longer = distill.run(small_cfg(iterations=6), train, out_dir=tmp_path, resume=True, progress=False)
    assert torch.equal(longer.images, full.images)


def test_resume_with_other_settings_is_refused(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    distill.run(small_cfg(iterations=2), train, out_dir=tmp_path, progress=False)
    with pytest.raises(distill.ResumeMismatch, match=r"cannot resume.*lr_img \(checkpoint 0.1, now 0.5\)"):
        distill.run(small_cfg(iterations=4, lr_img=0.5), train, out_dir=tmp_path, resume=True, progress=False)


def test_resume_on_other_data_is_refused(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    distill.run(small_cfg(iterations=2), train, out_dir=tmp_path, progress=False)
    other = type(train)(train.images.flip(0), train.labels.flip(0), train.spec)
    with pytest.raises(distill.ResumeMismatch, match=r"cannot resume.*data \(checkpoint .*digest"):
        distill.run(small_cfg(iterations=4), other, out_dir=tmp_path, resume=True, progress=False)


def test_resume_with_other_code_is_refused(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    distill.run(small_cfg(iterations=2), train, out_dir=tmp_path, progress=False)
    path = tmp_path / distill.CHECKPOINT_NAME
    state = load_torch(path)
    state["fingerprint"]["code"] = "0123456789abcdef"  # as if written by another version of hdd_lib
    save_torch(path, state)
    with pytest.raises(distill.ResumeMismatch, match=r"code \(checkpoint 0123456789abcdef, now [0-9a-f]{16}: hdd_lib changed\)"):
        distill.run(small_cfg(iterations=4), train, out_dir=tmp_path, resume=True, progress=False)


def test_non_finite_images_are_never_returned_or_checkpointed(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = small_cfg("dm_hdd", iterations=1, lr_img=1e38, checkpoint_every=1, log_every=1, geodm={"lam": 1e6})
    with pytest.raises(distill.NonFiniteError, match=r"synthetic images became NaN or inf by iteration 1.*no checkpoint"):
        distill.run(cfg, train, out_dir=tmp_path, progress=False)
    assert not (tmp_path / distill.CHECKPOINT_NAME).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_checkpoint_like_ctrl_c(signum, tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = small_cfg(iterations=8, checkpoint_every=100)

    def stop_at_3(iteration, syn):
        if iteration == 3:
            os.kill(os.getpid(), signum)
        return {}

    with pytest.raises(KeyboardInterrupt):
        distill.run(cfg, train, out_dir=tmp_path, progress=False, on_eval=stop_at_3, eval_every=3)
    assert load_torch(tmp_path / distill.CHECKPOINT_NAME)["iteration"] == 3
    assert signal.getsignal(signum) is not None  # the previous handler is restored


def test_a_second_run_on_the_same_folder_is_refused(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match=rf"{tmp_path} is in use by pid {os.getpid()}"):
            distill.run(small_cfg(iterations=1), train, out_dir=tmp_path, progress=False)
    distill.run(small_cfg(iterations=1), train, out_dir=tmp_path, progress=False)  # released


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = small_cfg("dm", iterations=40, lr_img=1e30, checkpoint_every=1, log_every=1)
    with pytest.raises(distill.NonFiniteError, match=r"became (nan|inf|NaN or inf).*iteration \d+.*last good checkpoint"):
        distill.run(cfg, train, out_dir=tmp_path, progress=False)
    state = load_torch(tmp_path / distill.CHECKPOINT_NAME)
    assert torch.isfinite(state["syn"]).all()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in state["history"])


def test_batch_real_larger_than_smallest_class_is_clamped(tiny_imageset, capsys):
    train, _ = tiny_imageset
    syn = distill.run(small_cfg(iterations=1, batch_real=1000), train, progress=False)
    assert "exceeds the smallest class (24 images)" in capsys.readouterr().out
    assert syn.images.shape[0] == 3


def test_noise_init_and_eval_callback(tiny_imageset):
    train, _ = tiny_imageset
    calls = []
    syn = distill.run(small_cfg(init="noise", iterations=4), train, progress=False,
                      on_eval=lambda it, s: calls.append(it) or {"acc": float(it)}, eval_every=2)
    assert calls == [2, 4]
    assert [h["acc"] for h in syn.meta["history"] if "acc" in h] == [2.0, 4.0]


@pytest.mark.parametrize(
    "overrides, match",
    [({"loss": {"name": "kd"}}, "unknown loss 'kd'"), ({"strategy": "mtt"}, "unknown strategy 'mtt'"),
     ({"ipc": 0}, "ipc=0"), ({"lr_img": -1.0}, "lr_img=-1.0"), ({"lr_img": float("nan")}, "lr_img must be a finite"),
     ({"init": "zeros"}, "init must be one of"), ({"colour": 1}, r"unknown key\(s\) colour"),
     ({"loss": {"name": "hdd", "k": 1e-300}}, r"loss.k must be >= 1e-06"),
     ({"strategy": {"name": "idm", "factor": 0}}, r"strategy.factor must be >= 1")],
)
def test_bad_config_raises(overrides, match):
    with pytest.raises(ValueError, match=match):
        small_cfg(**overrides)


@pytest.mark.parametrize("learn", ["joint", "adversarial", "fixed"])
def test_geodm_geometry_is_learned_and_logged_every_iteration(learn, tiny_imageset):
    train, _ = tiny_imageset
    cfg = small_cfg("geodm", iterations=5, lr_geometry=0.1, geodm={"learn": learn, "lambda_ot": 0.5})
    syn = distill.run(cfg, train, progress=False)
    hist = syn.meta["history"]
    assert [h["iteration"] for h in hist] == list(range(5))
    for key in ("k_H", "k_S", "w_E", "w_H", "w_S", "d_E", "d_H", "d_S", "ot"):
        assert all(key in h for h in hist), key
    moved = abs(hist[-1]["k_H"] - hist[0]["k_H"]) + abs(hist[-1]["w_E"] - hist[0]["w_E"])
    assert (moved > 0) == (learn != "fixed")


def test_geodm_joint_and_adversarial_move_the_weights_in_opposite_directions(tiny_imageset):
    train, _ = tiny_imageset
    end = {}
    for learn in ("joint", "adversarial"):
        cfg = small_cfg("geodm", iterations=2, lr_geometry=0.05, geodm={"learn": learn, "lambda_ot": 0.0})
        hist = distill.run(cfg, train, progress=False).meta["history"]
        end[learn] = torch.tensor([hist[-1][f"w_{f}"] for f in "EHS"])
    start = torch.full((3,), 1 / 3, dtype=torch.float64)
    dj, da = end["joint"] - start, end["adversarial"] - start
    assert (torch.sign(dj) == -torch.sign(da)).all()


def test_geodm_resume_equals_uninterrupted(tiny_imageset, tmp_path):
    train, _ = tiny_imageset
    cfg = small_cfg("geodm", iterations=6, checkpoint_every=3, geodm={"lambda_ot": 0.5})
    full = distill.run(cfg, train, progress=False)
    distill.run(small_cfg("geodm", iterations=3, checkpoint_every=3, geodm={"lambda_ot": 0.5}), train,
                out_dir=tmp_path, progress=False)
    resumed = distill.run(cfg, train, out_dir=tmp_path, resume=True, progress=False)
    assert torch.equal(resumed.images, full.images)
    assert resumed.meta["history"][-1]["k_H"] == full.meta["history"][-1]["k_H"]


def test_initial_images_are_the_runs_starting_point(tiny_imageset):
    train, _ = tiny_imageset
    cfg = small_cfg("dm", iterations=1, lr_img=1e-30)
    start = distill.initial_images(cfg, train, torch.Generator().manual_seed(cfg.seed))
    assert torch.equal(distill.run(cfg, train, progress=False).images, start)
    idm_start = distill.initial_images(small_cfg("idm"), train, torch.Generator().manual_seed(3))
    assert idm_start.shape == (3, 2, 1, 8, 8)


@pytest.mark.slow
def test_compiled_embedding_gives_the_same_run(tiny_imageset):
    pytest.importorskip("torch._inductor")
    train, _ = tiny_imageset
    eager = distill.run(small_cfg("dm_hdd", iterations=3), train, progress=False)
    compiled = distill.run(small_cfg("dm_hdd", iterations=3, compile=True), train, progress=False)
    # fused kernels reorder float32 sums: agreement to float32 accuracy, not bit for bit
    losses = lambda s: torch.tensor([h["loss"] for h in s.meta["history"]])  # noqa: E731
    torch.testing.assert_close(losses(compiled), losses(eager), rtol=1e-4, atol=0)
    torch.testing.assert_close(compiled.images, eager.images, rtol=0, atol=1e-4)
    assert not torch.equal(compiled.images, distill.initial_images(small_cfg("dm_hdd"), train,
                                                                    torch.Generator().manual_seed(3)))
