"""IDM machinery: one-update-per-class equivalence, partition & expansion, model queue."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hdd_lib import synset
from hdd_lib.models import get_model
from hdd_lib.strategies import idm
from hdd_lib.strategies.idm import IDMConfig


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_class_sequential_sgd_equals_one_torch_step_per_class(momentum):
    C = 5
    g = torch.Generator().manual_seed(0)
    W = torch.randn(C, 4, 3, generator=g, dtype=torch.float64)

    def loss_c(p, c):  # class c's loss reads class c's slice only
        return ((p[c] @ W[c].T).sin() ** 2).sum() + 0.1 * (p[c] ** 3).sum()

    p0 = torch.randn(C, 2, 3, generator=g, dtype=torch.float64)
    ref = p0.clone().requires_grad_(True)
    opt = torch.optim.SGD([ref], lr=0.1, momentum=momentum)
    ours = p0.clone().requires_grad_(True)
    cs = idm.ClassSequentialSGD(ours, lr=0.1, momentum=momentum)
    for _ in range(6):
        for c in range(C):  # the reference: one step per class, in class order
            opt.zero_grad()
            loss_c(ref, c).backward()
            opt.step()
        cs.prepare()  # batched: one backward for all classes
        cs.zero_grad()
        sum(loss_c(ours, c) for c in range(C)).backward()
        cs.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-12, atol=1e-12)
    cs2 = idm.ClassSequentialSGD(p0.clone(), lr=0.1, momentum=momentum)
    cs2.load_state_dict(cs.state_dict())
    torch.testing.assert_close(cs2.buf, cs.buf)


def test_class_sequential_sgd_rejects_bad_settings():
    with pytest.raises(ValueError, match="lr=0"):
        idm.ClassSequentialSGD(torch.zeros(2, 1), lr=0)
    with pytest.raises(ValueError, match="momentum=1.0"):
        idm.ClassSequentialSGD(torch.zeros(2, 1), lr=1, momentum=1.0)


def test_decode_cuts_quadrants_and_upsamples():
    x = torch.randn(3, 2, 3, 8, 8)
    out = synset.decode(x, 2)
    assert out.shape == (3, 2, 4, 3, 8, 8)
    quads = [x[..., :4, :4], x[..., :4, 4:], x[..., 4:, :4], x[..., 4:, 4:]]
    for q, tile in enumerate(quads):
        expected = F.interpolate(tile.reshape(-1, 3, 4, 4), size=(8, 8), mode="bilinear", align_corners=False)
        torch.testing.assert_close(out[:, :, q], expected.view(3, 2, 3, 8, 8))
    assert torch.equal(synset.decode(x, 1), x.unsqueeze(-4))


def test_encode_places_downscaled_images_in_quadrants():
    imgs = torch.arange(4.0).view(1, 4, 1, 1, 1).expand(1, 4, 1, 8, 8)  # four constant images
    mosaic = synset.encode(imgs, 2)
    assert mosaic.shape == (1, 1, 8, 8)
    assert mosaic[0, 0, 0, 0] == 0 and mosaic[0, 0, 0, 7] == 1 and mosaic[0, 0, 7, 0] == 2 and mosaic[0, 0, 7, 7] == 3
    torch.testing.assert_close(synset.decode(mosaic, 2), imgs)  # constants survive the round trip
    with pytest.raises(ValueError, match="factor"):
        synset.decode(torch.zeros(1, 1, 7, 7), 2)


def make_queue(net_num=3):
    cfg = IDMConfig(net_num=net_num, fetch_net_num=2, model_train_steps=3, train_batch=8)
    return idm.ModelQueue(lambda g: get_model("convnet", 1, 3, 8, generator=g, width=8), cfg, "cpu")


def test_queue_is_fifo_with_capacity():
    q = make_queue(net_num=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        q.push(g)
    assert len(q) == 3
    picked = {id(q.pick(g).model) for _ in range(30)}
    assert picked == {id(m.model) for m in q.members}


def test_queue_training_updates_weights_and_accuracy(tiny_imageset):
    train, _ = tiny_imageset
    q = make_queue()
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        q.push(g)
    before = [m.model.features[0][0].weight.clone() for m in q.members]

    def batch(n):
        idx = torch.randint(len(train), (n,), generator=g)
        return train.images[idx], train.labels[idx]

    q.train(batch, g)
    changed = [not torch.equal(b, m.model.features[0][0].weight) for b, m in zip(before, q.members)]
    assert sum(changed) == 2  # fetch_net_num
    seen = [int(m.seen) for m in q.members]
    assert sorted(seen) == [0, 24, 24]
    for m in q.members:
        assert 0 <= float(m.accuracy()) <= 100
        assert not any(p.requires_grad for p in m.model.parameters())
    state = q.state_dict()
    q2 = make_queue()
    q2.load_state_dict(state)
    for a, b in zip(q.members, q2.members):
        assert torch.equal(a.model.features[0][0].weight, b.model.features[0][0].weight)
        assert int(a.seen) == int(b.seen)
    q.reset_accuracy()
    assert all(int(m.seen) == 0 for m in q.members)
