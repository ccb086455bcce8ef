"""Evaluation protocol: stacked (vmapped) training equals one-by-one training; results and errors."""

from __future__ import annotations

import importlib

import pytest
import torch

from hdd_lib.config import EvalConfig, from_dict
from hdd_lib.synset import SyntheticSet

ev = importlib.import_module("hdd_lib.evaluate")  # the package re-exports the function `evaluate`


def small_eval(**overrides) -> EvalConfig:
    base = {"num_eval": 2, "epochs": 4, "batch": 16, "model": {"width": 16}, "seed": 5}
    base.update(overrides)
    return from_dict(EvalConfig, base)


def test_stacked_training_equals_one_model_at_a_time(tiny_imageset):
    train, test = tiny_imageset
    images, labels = train.images[::2].double(), train.labels[::2]  # 36 images: 3 batches per epoch
    cfg = small_eval(epochs=3, stack="on")
    stacked = ev.train_models(images.float(), labels, model="convnet", num_classes=3, cfg=cfg,
                              generator=torch.Generator().manual_seed(0))
    listed = ev.train_models(images.float(), labels, model="convnet", num_classes=3,
                             cfg=small_eval(epochs=3, stack="off"), generator=torch.Generator().manual_seed(0))
    assert isinstance(stacked, ev._Stacked) and isinstance(listed, ev._Listed)
    x = test.images[:12]
    torch.testing.assert_close(stacked(x, shared=True), listed(x, shared=True), rtol=1e-4, atol=1e-4)


def test_models_differ_from_each_other(tiny_imageset):
    train, test = tiny_imageset
    ens = ev.train_models(train.images, train.labels, model="convnet", num_classes=3, cfg=small_eval(stack="on"),
                          generator=torch.Generator().manual_seed(0))
    out = ens(test.images[:4], shared=True)
    assert out.shape == (2, 4, 3) and not torch.allclose(out[0], out[1])


def test_evaluate_learns_the_tiny_task_and_reports_statistics(tiny_imageset):
    train, test = tiny_imageset
    syn = SyntheticSet(train.images.view(3, 24, 1, 8, 8)[:, :4].clone())  # 4 real images per class
    res = ev.evaluate(syn, test, small_eval(epochs=200, num_eval=3), progress=False)["convnet"]
    assert len(res.accs) == 3 and all(0 <= a <= 100 for a in res.accs)
    assert res.mean > 60.0  # chance is 33 %
    assert res.std == pytest.approx(torch.tensor(res.accs).std(unbiased=False).item())
    d = res.to_dict()
    assert d["mean"] == res.mean and d["seconds_per_model"] == pytest.approx(res.seconds / 3)


def test_same_seed_same_accuracies(tiny_imageset):
    train, test = tiny_imageset
    syn = SyntheticSet(train.images.view(3, 24, 1, 8, 8)[:, :2].clone())
    a = ev.evaluate(syn, test, small_eval(), progress=False)["convnet"].accs
    b = ev.evaluate(syn, test, small_eval(), progress=False)["convnet"].accs
    assert a == b


def test_cross_architecture_and_batchnorm_variant(tiny_imageset):
    from hdd_lib.data import DatasetSpec, ImageSet

    g = torch.Generator().manual_seed(0)
    spec = DatasetSpec("tiny32", 3, (32, 32), 2, (0.0,) * 3, (1.0,) * 3)
    test = ImageSet(torch.randn(6, 3, 32, 32, generator=g), torch.tensor([0, 1] * 3), spec, split="test")
    syn = SyntheticSet(torch.randn(2, 1, 3, 32, 32, generator=g))
    cfg = small_eval(epochs=1, models=["alexnet", "resnet18:batchnorm"], num_eval=2)
    res = ev.evaluate(syn, test, cfg, progress=False)
    assert set(res) == {"alexnet", "resnet18:batchnorm"}
    assert all(len(r.accs) == 2 for r in res.values())


def test_class_count_mismatch_raises(tiny_imageset):
    _, test = tiny_imageset
    with pytest.raises(ValueError, match="4 classes but the test set 3"):
        ev.evaluate(SyntheticSet(torch.zeros(4, 1, 1, 8, 8)), test, small_eval(), progress=False)


def test_parse_model():
    assert ev.parse_model("resnet18:batchnorm") == ("resnet18", {"norm": "batchnorm"})
    assert ev.parse_model("convnet") == ("convnet", {})


@pytest.mark.parametrize("schedule, epochs, decay", [("round", 6, 3), ("official", 7, 4)])
def test_schedule_epochs_and_learning_rate_drop(tiny_imageset, monkeypatch, schedule, epochs, decay):
    """round: 6 epochs, lr x0.1 from epoch 3; official (DC/DM code): range(6 + 1), drop at 6 // 2 + 1, fresh SGD."""
    train, _ = tiny_imageset
    images, labels = train.images[:12], train.labels[:12]  # one batch per epoch
    made, steps, real_sgd = [], [], torch.optim.SGD

    def sgd(params, lr, **kw):
        made.append((len(steps), lr))
        opt = real_sgd(params, lr=lr, **kw)
        step = opt.step
        opt.step = lambda *a, **k: (steps.append(lr), step(*a, **k))[1]
        return opt

    monkeypatch.setattr(torch.optim, "SGD", sgd)
    ev.train_models(images, labels, model="convnet", num_classes=train.spec.num_classes,
                    cfg=small_eval(epochs=6, num_eval=1, lr=0.01, schedule=schedule), generator=torch.Generator().manual_seed(0))
    assert len(steps) == epochs
    assert made == [(0, 0.01), (decay, pytest.approx(0.001))]
    assert steps == [0.01] * decay + [pytest.approx(0.001)] * (epochs - decay)
def test_the_papers_protocols_are_options_adamw_milestones_cutmix(tiny_imageset, monkeypatch):
    from hdd_lib.config import EVAL_PROTOCOLS

    train, test = tiny_imageset
    syn = SyntheticSet(train.images.view(3, 24, 1, 8, 8)[:, :4].clone())
    cfg = small_eval(**{**EVAL_PROTOCOLS["ncfm"], "epochs": 40, "batch": 16, "protocol": "ncfm"})
    assert ev.evaluate(syn, test, cfg, progress=False)["convnet"].mean > 60.0  # learns (chance: 33 %)

    def logits(**kw):
        ens = ev.train_models(train.images[:12], train.labels[:12], model="convnet", num_classes=3,
                              cfg=small_eval(epochs=3, **kw), generator=torch.Generator().manual_seed(0))
        return ens(test.images[:6], shared=True)

    base = logits()
    torch.testing.assert_close(logits(protocol="dsdm"), base)  # a label only
    for kw in ({"optimizer": "adamw"}, {"milestones": (0.5,)}, {"cutmix": 1.0}):
        assert not torch.allclose(logits(**kw), base), kw
    lrs = []  # the learning rate per epoch under milestones (0.5, 0.75), gamma 0.1
    monkeypatch.setattr(ev.augment, "cutmix", lambda x, p, generator: (lrs.append(p) or x, torch.zeros(x.shape[:2], dtype=torch.long), torch.ones(x.shape[0])))
    original = torch.optim.AdamW.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    ev.train_models(train.images[:8], train.labels[:8], model="convnet", num_classes=3, generator=torch.Generator(),
                    cfg=small_eval(epochs=4, optimizer="adamw", lr=1.0, milestones=(0.5, 0.75), cutmix=0.3, num_eval=1))
    assert lrs == [0.3, 1.0, 0.3, 1.0, 0.3, pytest.approx(0.1), 0.3, pytest.approx(0.01)]


@pytest.mark.parametrize("precision, native, want", [("fp32", True, torch.float32), ("bf16", False, torch.bfloat16),
                                                     ("auto", True, torch.bfloat16), ("auto", False, torch.float32)])
def test_precision_sets_the_networks_arithmetic_in_training_and_testing(tiny_imageset, monkeypatch, precision,
                                                                        native, want):
    monkeypatch.setattr("hdd_lib.runtime.cpu_has_bf16", lambda: native)
    seen, real_get = [], ev.get_model

    def hooked(*args, **kwargs):  # record the first convolution's output dtype
        net = real_get(*args, **kwargs)
        net.features[0][0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
        return net
    monkeypatch.setattr(ev, "get_model", hooked)
    train, test = tiny_imageset
    cfg = small_eval(epochs=1, precision=precision)
    ens = ev.train_models(train.images, train.labels, model="convnet", num_classes=3, cfg=cfg,
                          generator=torch.Generator().manual_seed(0))
    training, seen[:] = list(seen), []
    acc = ev._accuracy(ens, test.to("cpu"), cfg)
    assert training and set(training) == {want}
    assert seen and set(seen) == {want}
    assert all(0.0 <= a <= 100.0 for a in acc)


def test_compiled_training_matches_eager_and_compiles_once_per_shape(tiny_imageset):
    torch._dynamo.reset()
    from torch._dynamo.utils import counters
    train, test = tiny_imageset
    images, labels = train.images[::2], train.labels[::2]  # 36 images, batch 16: shapes 16 and 4
    eager = ev.train_models(images, labels, model="convnet", num_classes=3, cfg=small_eval(epochs=2),
                            generator=torch.Generator().manual_seed(0))
    before = counters["stats"]["unique_graphs"]
    fast = ev.train_models(images, labels, model="convnet", num_classes=3, cfg=small_eval(epochs=2, compile=True),
                           generator=torch.Generator().manual_seed(0))
    graphs = counters["stats"]["unique_graphs"] - before
    x = test.images[:12]
    torch.testing.assert_close(fast(x, shared=True), eager(x, shared=True), rtol=1e-3, atol=1e-3)
    # two models, two batch shapes, one mode: the second model reuses the first one's graphs
    assert graphs == 2
