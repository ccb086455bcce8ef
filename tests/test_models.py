"""Tests for ``hdd_lib.models``: shapes, the SPEC ConvNet, per-sample independence, ``reinit_``, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hdd_lib.models import (
    ACTS,
    NORMS,
    POOLS,
    AlexNet,
    ConvNet,
    ResNet18,
    VGG11,
    available_models,
    default_bound,
    get_model,
    reinit_,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def _linear_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# ----------------------------------------------------------------------------- shapes

SHAPE_CASES = [
    # name, channels, image_size, options, feature_dim
    ("convnet", 1, 28, {}, 2048),
    ("convnet", 3, 32, {}, 2048),
    ("convnet", 1, 8, {}, 128),
    ("convnet", 3, 64, {"depth": 4}, 2048),
    ("alexnet", 1, 28, {}, 3072),
    ("alexnet", 3, 32, {}, 3072),
    ("vgg11", 1, 28, {}, 512),
    ("vgg11", 3, 32, {"norm": "batchnorm"}, 512),
    ("resnet18", 1, 28, {}, 512),
    ("resnet18", 3, 32, {"norm": "batchnorm"}, 512),
]


@pytest.mark.parametrize(
    "name,channels,size,options,dim", SHAPE_CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[3]}" for c in SHAPE_CASES]
)
def test_shapes(name, channels, size, options, dim):
    model = get_model(name, channels, 7, size, generator=_gen(0), **options)
    x = torch.randn(3, channels, size, size, generator=_gen(1))
    feats = model.embed(x)
    assert model.feature_dim == dim
    assert feats.shape == (3, model.feature_dim)
    assert model(x).shape == (3, 7)
    assert torch.isfinite(feats).all()


@pytest.mark.parametrize("cls", [AlexNet, VGG11, ResNet18])
def test_cross_architectures_at_64(cls):
    model = cls(3, 5, 64)
    assert model.embed(torch.randn(1, 3, 64, 64)).shape == (1, model.feature_dim)


def test_spec_convnet():
    net = ConvNet(3, 10, 32)
    assert (net.width, net.depth, net.norm, net.act, net.pool) == (128, 3, "instancenorm", "relu", "avgpooling")
    assert net.feature_dim == 2048 and net.feature_shape == (128, 4, 4)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 3 and all(n.num_groups == n.num_channels == 128 and n.affine for n in norms)
    assert isinstance(net.classifier, nn.Linear) and net.classifier.in_features == 2048


@pytest.mark.parametrize("name,padding", [("convnet", 3), ("alexnet", 4), ("vgg11", 3), ("resnet18", 3)])
def test_28x28_is_padded_to_32(name, padding):
    at28 = get_model(name, 1, 10, 28)
    at32 = get_model(name, 1, 10, 32)
    assert _first_conv(at28).padding == (padding, padding)
    assert _first_conv(at32).padding == (padding - 2, padding - 2)
    assert at28.feature_dim == at32.feature_dim


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("pool", POOLS)
def test_convnet_variants(norm, pool):
    net = ConvNet(1, 4, 8, width=8, depth=2, norm=norm, pool=pool)
    side = 2 if pool != "none" else 8
    assert net.feature_dim == 8 * side * side
    assert net.embed(torch.randn(2, 1, 8, 8)).shape == (2, net.feature_dim)


@pytest.mark.parametrize("act", ACTS)
def test_convnet_activations(act):
    net = ConvNet(3, 4, 16, width=8, act=act)
    assert net.embed(torch.randn(2, 3, 16, 16)).shape == (2, 8 * 2 * 2)


# ----------------------------------------------------------------------------- per-sample independence


@pytest.mark.parametrize("norm", ["instancenorm", "layernorm", "groupnorm", "none"])
def test_batched_features_equal_per_sample_features(norm):
    """The loop embeds all classes in one forward; that must equal embedding each class apart."""
    net = reinit_(ConvNet(3, 10, 32, norm=norm).double(), _gen(3))
    x = torch.randn(6, 3, 32, 32, generator=_gen(4), dtype=torch.float64)
    batched = net.embed(x)
    one_by_one = torch.cat([net.embed(x[i : i + 1]) for i in range(6)])
    per_class = torch.cat([net.embed(x[:2]), net.embed(x[2:])])
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=1e-12)
    torch.testing.assert_close(batched, per_class, rtol=0, atol=1e-12)


def test_batchnorm_features_depend_on_the_batch():
    """Contrast: in train mode batch norm mixes samples, so it cannot be class-batched."""
    net = ConvNet(3, 10, 32, norm="batchnorm").double()
    x = torch.randn(4, 3, 32, 32, generator=_gen(4), dtype=torch.float64)
    assert not torch.allclose(net.embed(x)[:2], net.embed(x[:2]))


@pytest.mark.parametrize("name", ["convnet", "alexnet", "vgg11", "resnet18"])
def test_gradient_flows_from_embed_to_input(name):
    model = get_model(name, 3, 10, 32, generator=_gen(0))
    x = torch.randn(2, 3, 32, 32, generator=_gen(1), requires_grad=True)
    w = torch.randn(model.feature_dim, generator=_gen(2))
    (model.embed(x) @ w).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- reinit_


def test_reinit_same_seed_same_weights_different_seed_different():
    torch.manual_seed(0)
    a = ConvNet(3, 10, 32)
    torch.manual_seed(1)
    b = ConvNet(3, 10, 32)
    reinit_(a, _gen(5))
    reinit_(b, _gen(5))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    reinit_(b, _gen(6))
    for m_a, m_b in zip(_linear_layers(a), _linear_layers(b)):
        assert not torch.equal(m_a.weight, m_b.weight)
        assert not torch.equal(m_a.bias, m_b.bias)


def test_reinit_advances_the_generator():
    g = _gen(0)
    net = ConvNet(1, 10, 8, width=16)
    first = [p.clone() for p in net.parameters()]
    reinit_(net, g)
    second = [p.clone() for p in net.parameters()]
    reinit_(net, g)
    assert any(not torch.equal(p, q) for p, q in zip(second, net.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(first, second))


def test_reinit_matches_pytorch_default_distribution():
    net = reinit_(ConvNet(3, 10, 32), _gen(0))
    for m in _linear_layers(net):
        fan_in = m.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        assert default_bound(m.weight) == pytest.approx(bound)
        assert m.weight.abs().max() <= bound and m.bias.abs().max() <= bound
        if m.weight.numel() >= 10_000:  # U(-b, b): mean 0, std b / sqrt(3), max |w| close to b
            assert abs(m.weight.mean().item()) < 0.02 * bound
            assert m.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
            assert m.weight.abs().max().item() > 0.99 * bound
    # PyTorch's own initialisation of the same layer has the same support.
    torch.manual_seed(0)
    ref = nn.Conv2d(128, 128, 3)
    assert ref.weight.abs().max().item() == pytest.approx(default_bound(ref.weight), rel=0.01)


def test_reinit_resets_norm_layers_and_running_stats():
    net = ResNet18(3, 10, 32, norm="batchnorm")
    net(torch.randn(4, 3, 32, 32))  # train mode: updates the running statistics
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.normal_()
            m.bias.data.normal_()
    reinit_(net, _gen(0))
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    for m in bns:
        assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
        assert m.num_batches_tracked.item() == 0


def test_reinit_is_in_place_and_leaves_the_global_rng_alone():
    net = VGG11(3, 10, 32)
    params = {name: (p, p.data_ptr()) for name, p in net.named_parameters()}
    state = torch.get_rng_state()
    assert reinit_(net, _gen(0)) is net
    assert torch.equal(state, torch.get_rng_state())
    for name, p in net.named_parameters():
        assert p is params[name][0] and p.data_ptr() == params[name][1]


def test_reinit_float64_holds_the_float32_draws():
    a = reinit_(ConvNet(1, 10, 8, width=16), _gen(0))
    b = reinit_(ConvNet(1, 10, 8, width=16).double(), _gen(0))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pb.dtype == torch.float64
        assert torch.equal(pa.double(), pb)


def test_reinit_rejects_unknown_layers_and_bad_generators():
    with pytest.raises(ValueError, match="PReLU"):
        reinit_(nn.Sequential(nn.Linear(2, 2), nn.PReLU()), _gen(0))
    with pytest.raises(ValueError, match="generator"):
        reinit_(ConvNet(1, 2, 8), 0)


@pytest.mark.parametrize("name", ["convnet", "alexnet", "vgg11", "resnet18"])
def test_get_model_with_generator_is_reproducible_and_rng_free(name):
    options = {"norm": "batchnorm"} if name in ("vgg11", "resnet18") else {}
    state = torch.get_rng_state()
    a = get_model(name, 3, 10, 32, generator=_gen(7), **options)
    assert torch.equal(state, torch.get_rng_state())
    b = reinit_(get_model(name, 3, 10, 32, **options), _gen(7))
    assert all(p.device.type == "cpu" for p in a.parameters())
    for (key, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), key


# ----------------------------------------------------------------------------- registry and errors


def test_available_models():
    assert available_models() == ["alexnet", "convnet", "resnet18", "vgg11"]


def test_get_model_passes_options():
    net = get_model("convnet", 1, 10, 28, width=64, depth=4, norm="layernorm", act="leakyrelu", pool="maxpooling")
    assert isinstance(net, ConvNet) and (net.width, net.depth, net.feature_dim) == (64, 4, 64 * 2 * 2)
    assert isinstance(get_model("resnet18", 3, 10, 32, norm="batchnorm").features[1], nn.BatchNorm2d)


@pytest.mark.parametrize(
    "call,pattern",
    [
        (lambda: get_model("x", 3, 10, 32), r"unknown model 'x'; known: alexnet, convnet, resnet18, vgg11"),
        (lambda: get_model("ConvNet", 3, 10, 32), r"unknown model 'ConvNet'"),
        (lambda: get_model("alexnet", 3, 10, 32, width=64), r"'alexnet' does not take 'width'"),
        (lambda: get_model("convnet", 3, 10, 32, generator=0), r"generator"),
        (lambda: ConvNet(3, 10, 32, norm="bn"), r"unknown norm 'bn'; known: instancenorm"),
        (lambda: ConvNet(3, 10, 32, act="gelu"), r"unknown act 'gelu'"),
        (lambda: ConvNet(3, 10, 32, pool="avg"), r"unknown pool 'avg'"),
        (lambda: ConvNet(3, 10, 32, width=0), r"width=0"),
        (lambda: ConvNet(3, 10, 32, depth=2.0), r"depth=2.0"),
        (lambda: ConvNet(0, 10, 32), r"channels=0"),
        (lambda: ConvNet(3, 10, 32, width=6, norm="groupnorm"), r"divisible by 4"),
        (lambda: ConvNet(1, 10, 8, depth=4), r"depth=4 and pool='avgpooling'.*8x8"),
        (lambda: VGG11(1, 10, 8), r"VGG11 needs image_size >= 32.*image_size=8"),
        (lambda: AlexNet(1, 10, 4), r"AlexNet needs image_size >= 8.*image_size=4"),
        (lambda: ResNet18(3, 10, 32, norm="layernorm"), r"unknown norm 'layernorm'"),
        (lambda: ResNet18(1, 10, 8), r"ResNet18 with norm='instancenorm' needs image_size >= 9.*1x1"),
        (lambda: ConvNet(3, 10, 32).embed(torch.zeros(2, 3, 28, 28)), r"\[B, 3, 32, 32\].*\(2, 3, 28, 28\)"),
    ],
)
def test_bad_arguments_raise_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("size,norm", [(9, "instancenorm"), (8, "batchnorm"), (8, "groupnorm")])
def test_resnet18_on_the_smallest_images_it_accepts_still_sees_its_input(size, norm):
    # An instance-normed 1x1 last stage (8x8 inputs) would map every input to the same features.
    g = torch.Generator().manual_seed(0)
    net = get_model("resnet18", 1, 10, size, generator=g, norm=norm)
    x = torch.randn(4, 1, size, size, generator=g)
    features = net.embed(x)
    assert (features - features.mean(0)).abs().max() > 1e-3


def test_convnet_without_pooling_allows_any_depth():
    net = ConvNet(1, 10, 8, width=4, depth=5, pool="none")
    assert net.feature_dim == 4 * 8 * 8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reinit_on_cuda_with_a_cpu_generator_equals_cpu():
    cpu = reinit_(ConvNet(3, 10, 32), _gen(0))
    cuda = reinit_(ConvNet(3, 10, 32).cuda(), _gen(0))
    for pa, pb in zip(cpu.parameters(), cuda.parameters()):
        assert pb.is_cuda and torch.equal(pa, pb.cpu())
    x = torch.randn(4, 3, 32, 32, generator=_gen(1))
    torch.testing.assert_close(cpu.embed(x), cuda.embed(x.cuda()).cpu(), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- first_padding (official ConvNet)


def _block_sides(net: ConvNet, x: torch.Tensor) -> list[int]:
    sides = []
    for block in net.features:
        x = block[0](x)
        sides.append(x.shape[-1])  # after the convolution
        x = block[3](block[2](block[1](x)))
    return sides


@pytest.mark.parametrize("norm", ["instancenorm", "layernorm"])
def test_official_first_padding_on_8x8_grey_images(norm):
    """The official ConvNet pads its first convolution by 3 for every 1-channel input: 8 -> 12 -> 6 -> 3."""
    x = torch.randn(2, 1, 8, 8, generator=_gen(1))
    net = get_model("convnet", 1, 10, 8, generator=_gen(0), first_padding=3, norm=norm)
    assert _first_conv(net).padding == (3, 3) and net.first_padding == 3
    assert _block_sides(net, x) == [12, 6, 3]
    assert net.feature_shape == (128, 1, 1) and net.embed(x).shape == (2, 128)
    shallow = ConvNet(1, 10, 8, depth=2, first_padding=3, norm=norm)
    assert shallow.feature_shape == (128, 3, 3) and shallow.embed(x).shape == (2, 1152)  # today's rule: 2x2, 512
    assert ConvNet(1, 10, 8, depth=2).feature_dim == 512


@pytest.mark.parametrize("channels,size,today", [(1, 8, 1), (3, 32, 1), (1, 28, 3), (3, 28, 3)])
def test_first_padding_none_is_todays_rule(channels, size, today):
    default = get_model("convnet", channels, 10, size, generator=_gen(4))
    explicit = get_model("convnet", channels, 10, size, generator=_gen(4), first_padding=today)
    assert _first_conv(default).padding == (today, today) and default.first_padding == today
    for (key, a), b in zip(default.state_dict().items(), explicit.state_dict().values()):
        assert torch.equal(a, b), key
    x = torch.randn(3, channels, size, size, generator=_gen(5))
    assert torch.equal(default.embed(x), explicit.embed(x))


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_first_padding_rejects_bad_values(value):
    with pytest.raises(ValueError, match=f"first_padding={value!r}"):
        ConvNet(1, 10, 8, first_padding=value)
