"""ImageSet, the per-class index and its vectorised sampler, normalise/denormalise."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib.data import ClassIndex, DatasetSpec, ImageSet, class_counts, denormalise, get_spec, normalise
from hdd_lib.data.specs import RawSplit

SPEC = DatasetSpec("toy", 1, (2, 2), 4, (0.5,), (0.25,))


def toy_set(counts=(3, 5, 4, 6), device="cpu") -> ImageSet:
    """Image i is constant i/100 (so a drawn image identifies its position), labels shuffled."""
    g = torch.Generator().manual_seed(7)
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=g)]
    images = torch.arange(len(labels), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2) / 100
    return ImageSet(images.contiguous().to(device), labels.to(device), SPEC)


def test_class_index_rows_are_each_class_positions_ascending():
    labels = torch.tensor([2, 0, 2, 1, 0, 2])
    index = ClassIndex.from_labels(labels, 4)
    assert torch.equal(index.counts, torch.tensor([2, 1, 3, 0]))
    assert index.positions.tolist() == [[1, 4, -1], [3, -1, -1], [0, 2, 5], [-1, -1, -1]]
    assert index.of_class(2).tolist() == [0, 2, 5]


def test_sample_shape_class_and_distinctness():
    data = toy_set()
    g = torch.Generator().manual_seed(0)
    batch = data.sample(3, generator=g)
    assert batch.shape == (4, 3, 1, 2, 2)
    positions = (batch[:, :, 0, 0, 0] * 100).round().long()
    for c in range(4):
        assert len(set(positions[c].tolist())) == 3
        assert (data.labels[positions[c]] == c).all()


def test_sample_is_deterministic_under_a_seeded_generator_and_varies_with_the_seed():
    data = toy_set()
    a = data.sample(3, generator=torch.Generator().manual_seed(5))
    b = data.sample(3, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    c = [data.sample(3, generator=g) for _ in range(4)]
    assert torch.equal(a, b) and torch.equal(a, c[0])
    assert any(not torch.equal(c[0], other) for other in c[1:])


def test_sample_does_not_touch_the_global_rng():
    data = toy_set()
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    data.sample(2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), before)


def test_sample_whole_smallest_class_is_a_permutation_of_it():
    data = toy_set()
    idx = data.index.sample(3, generator=torch.Generator().manual_seed(0))
    assert sorted(idx[0].tolist()) == data.index.of_class(0).tolist()


def test_sample_covers_every_member_eventually():
    data = toy_set()
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([data.index.sample(2, generator=g)[3] for _ in range(60)])
    assert set(seen.tolist()) == set(data.index.of_class(3).tolist())


def test_sample_more_than_smallest_class_names_n_and_size():
    data = toy_set()
    with pytest.raises(ValueError, match=r"n=4.*class 0 has only 3 images"):
        data.sample(4, generator=torch.Generator())


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_sample_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        toy_set().sample(n, generator=torch.Generator())


def test_sample_requires_a_cpu_generator():
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        toy_set().sample(1, generator=None)


@given(
    counts=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    n=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_sampler_property_distinct_and_in_class(counts, n, seed):
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    index = ClassIndex.from_labels(labels, len(counts))
    g = torch.Generator().manual_seed(seed)
    if n > min(counts):
        with pytest.raises(ValueError):
            index.sample(n, generator=g)
        return
    drawn = index.sample(n, generator=g)
    assert drawn.shape == (len(counts), n)
    for c in range(len(counts)):
        assert len(set(drawn[c].tolist())) == n
        assert (labels[drawn[c]] == c).all()


def test_class_counts_and_validation():
    assert class_counts(torch.tensor([0, 2, 2]), 4).tolist() == [1, 0, 2, 0]
    with pytest.raises(ValueError, match="0..2"):
        class_counts(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="1-D integer"):
        class_counts(torch.tensor([0.0, 1.0]), 3)


def test_normalise_then_denormalise_round_trips():
    spec = get_spec("cifar10")
    raw = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = normalise(raw, spec)
    assert x.dtype == torch.float32
    assert x[0, 2, 1, 3].item() == pytest.approx((raw[0, 2, 1, 3].item() / 255 - 0.4465) / 0.2010, abs=1e-6)
    torch.testing.assert_close(denormalise(x, spec), raw.float() / 255)
    assert denormalise(x[0], spec).shape == (3, 4, 4)  # single images too
    assert denormalise(torch.full((3, 1, 1), 100.0), spec).max() == 1.0
    assert denormalise(torch.full((3, 1, 1), 100.0), spec, clamp=False).max() > 1.0
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, H, W\]"):
        denormalise(torch.zeros(2, 1, 4, 4), spec)


def test_from_raw_fills_class_names_and_uses_max_value():
    raw = RawSplit(torch.full((2, 1, 2, 2), 16, dtype=torch.uint8), torch.tensor([0, 3]), ("a", "b", "c", "d"), 16)
    data = ImageSet.from_raw(raw, SPEC, split="test")
    assert data.spec.class_names == ("a", "b", "c", "d") and data.split == "test"
    torch.testing.assert_close(data.images, torch.full((2, 1, 2, 2), (1 - 0.5) / 0.25))


def test_imageset_validates_its_fields():
    images, labels = torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="unknown split 'val'"):
        ImageSet(images, labels, SPEC, split="val")
    with pytest.raises(ValueError, match=r"images must be \[N, \*\(1, 2, 2\)\]"):
        ImageSet(torch.zeros(3, 3, 2, 2), labels, SPEC)
    with pytest.raises(ValueError, match="labels must be"):
        ImageSet(images, labels[:2], SPEC)
    with pytest.raises(ValueError, match="floating point"):
        ImageSet(images.to(torch.uint8), labels, SPEC)


def test_imageset_is_frozen_and_summarised():
    data = toy_set()
    with pytest.raises(AttributeError):
        data.split = "test"
    assert "images=(18, 1, 2, 2)" in repr(data) and len(data) == 18
    assert torch.equal(data.counts, torch.tensor([3, 5, 4, 6]))
    assert data.to("cpu") is data


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sample_on_gpu_matches_cpu():
    cpu, gpu = toy_set(), toy_set(device="cuda")
    a = cpu.sample(3, generator=torch.Generator().manual_seed(3))
    b = gpu.sample(3, generator=torch.Generator().manual_seed(3))
    assert b.device.type == "cuda" and torch.equal(a, b.cpu())
