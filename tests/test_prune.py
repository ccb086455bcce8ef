"""Pruning: kept counts, ordering by score, and the three scorers behind one interface."""

from __future__ import annotations

import math

import pytest
import torch

from hdd_lib import geometry, prune


@pytest.mark.parametrize(
    "ipc, ratio, expected",
    [(10, 1.0, 10), (10, 0.8, 8), (10, 0.6, 6), (10, 0.4, 4), (10, 0.2, 2), (10, 0.01, 1),
     (1, 0.2, 1), (50, 0.2, 10), (50, 0.33, 17), (3, 0.5, 2), (7, 0.7, 5)],
)
def test_keep_count(ipc, ratio, expected):
    assert prune.keep_count(ipc, ratio) == expected


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.01, float("nan"), "0.5"])
def test_bad_keep_ratio_raises(ratio):
    with pytest.raises(ValueError, match=r"keep_ratio"):
        prune.keep_count(10, ratio)
    with pytest.raises(ValueError, match=r"keep_ratio"):
        prune.select(torch.rand(2, 10), keep_ratio=ratio)


def test_bad_ipc_raises():
    with pytest.raises(ValueError, match=r"ipc=0"):
        prune.keep_count(0, 0.5)


def test_select_keeps_lowest_scores_in_order():
    scores = torch.tensor([[0.5, 0.1, 0.9, 0.3, 0.7], [3.0, 2.0, 1.0, 0.0, 4.0]])
    kept = prune.select(scores, keep_ratio=0.6)
    assert kept.tolist() == [[1, 3, 0], [3, 2, 1]]
    assert prune.select(scores, keep_ratio=1.0).shape == (2, 5)
    assert prune.select(scores, keep_ratio=0.01).tolist() == [[1], [3]]


def test_select_is_stable_on_ties():
    assert prune.select(torch.zeros(1, 6), keep_ratio=0.5).tolist() == [[0, 1, 2]]


def make_features(seed=0, C=3, M=10, N=40, D=16):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(C, N, D, generator=g, dtype=torch.float64) + 2.0
    # synthetic sample j of each class sits at a growing distance from the real data
    spread = torch.linspace(0.0, 3.0, M, dtype=torch.float64).view(1, M, 1)
    syn = real.mean(1, keepdim=True) + spread * torch.randn(C, M, D, generator=g, dtype=torch.float64)
    return real, syn


def test_hyperbolic_scores_are_geodesic_distances_to_real_centroid():
    real, syn = make_features()
    s = prune.hyperbolic_scores(syn, real, k=1.0)
    assert s.shape == (3, 10)
    c = geometry.centroid(geometry.lift(real), k=1.0)
    for cls in range(3):
        for j in range(10):
            expected = geometry.dist(geometry.lift(syn[cls, j]), c[cls], k=1.0)
            torch.testing.assert_close(s[cls, j], expected)


def test_hyperbolic_and_euclidean_prefer_samples_near_the_class():
    real, syn = make_features()
    for name in ("hyperbolic", "euclidean"):
        kept = prune.select(prune.get_scorer(name)(syn, real), keep_ratio=0.2)
        assert kept.shape == (3, 2)
        assert (kept < 4).all(), name  # the near end of the spread


def test_scores_rank_differently_with_the_clamp():
    # With saturating norms the hyperbolic score sees only directions: a far-but-aligned sample ranks
    # by angle, unlike the Euclidean score.
    real = torch.ones(1, 4, 3, dtype=torch.float64) * 20.0
    syn = torch.stack([torch.tensor([20.0, 20.0, 20.0]) * 5, torch.tensor([20.0, 20.0, 19.0])]).double()[None]
    e = prune.euclidean_scores(syn, real)
    h = prune.hyperbolic_scores(syn, real, k=1.0)
    assert e[0, 0] > e[0, 1] and h[0, 0] < h[0, 1]


def test_random_scores_reproducible_and_uniform():
    real, syn = make_features()
    a = prune.random_scores(syn, real, generator=torch.Generator().manual_seed(3))
    b = prune.random_scores(syn, real, generator=torch.Generator().manual_seed(3))
    c = prune.random_scores(syn, real, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 10) and ((a >= 0) & (a < 1)).all()


def test_same_interface_for_all_scorers():
    real, syn = make_features()
    for name in sorted(prune.SCORERS):
        scores = prune.get_scorer(name)(syn, real, generator=torch.Generator().manual_seed(0))
        assert scores.shape == (3, 10) and torch.isfinite(scores).all()
        kept = prune.select(scores, keep_ratio=0.4)
        assert kept.shape == (3, math.ceil(0.4 * 10))
        assert all(len(set(row.tolist())) == 4 for row in kept)


def test_unknown_scorer():
    with pytest.raises(ValueError, match=r"unknown pruning score 'cosine'; known: euclidean, hyperbolic, random"):
        prune.get_scorer("cosine")


def test_prune_sweep_trains_each_kept_set_once_in_index_order():
    from hdd_lib.evaluate import EvalResult
    from hdd_lib.stages import prune_sweep
    from hdd_lib.synset import SyntheticSet

    ids = torch.arange(3 * 4, dtype=torch.float32).view(3, 4, 1, 1, 1)  # image j of class c holds 4c + j
    syn = SyntheticSet(ids.expand(3, 4, 1, 2, 2).clone())
    up = torch.tensor([[0.0, 1, 2, 3]] * 3)
    score_sets = {"up": up, "down": -up, "same_as_up": up.clone()}
    calls = []

    def train_on(subset):
        x = subset.per_class()[:, :, 0, 0, 0]  # the image ids, in the order they are trained on
        calls.append(x.tolist())
        return EvalResult("convnet", (float(x.sum()),), 0.0)

    results, kept = prune_sweep(syn, score_sets, [1.0, 0.5], train_on)
    # ratio 1.0 is one set under every scorer; "same_as_up" repeats "up": 3 trainings, not 6
    assert len(calls) == 3
    assert all(row == sorted(row) for c in calls for row in c)  # index order, not score order
    assert calls[0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert results["up"]["1.0"] == results["down"]["1.0"] == results["same_as_up"]["1.0"]
    assert results["up"]["0.5"]["accs"] == [0 + 1 + 4 + 5 + 8 + 9]
    assert results["down"]["0.5"]["accs"] == [2 + 3 + 6 + 7 + 10 + 11]
    assert kept["down"]["0.5"] == [[3, 2], [3, 2], [3, 2]]  # recorded best first
    assert results["down"]["0.5"]["kept_per_class"] == 2
