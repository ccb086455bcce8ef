"""scikit-learn's bundled 8x8 digits: the embedded dataset, loadable with no file and no network.

``sklearn.datasets.load_digits`` gives 1,797 grey 8x8 images with values 0..16 (scaled to
``[0, 1]`` by dividing by 16). The split is fixed and stratified without randomness: within each
class, in ``load_digits`` order, every fifth image (class rank 4, 9, 14, ...) is a test image.
That gives 1,442 train images (140..147 per class) and 355 test images (34..36 per class). The
normalisation constants in :data:`hdd_lib.data.specs.SPECS` (mean 0.3051, std 0.3762) are the
train split's, to four decimals.
"""

from __future__ import annotations

import torch

from .raw import RawSplit

__all__ = ["DIGITS_MAX", "TEST_EVERY", "read_digits"]

#: Pixel value meaning 1.0 in ``load_digits``.
DIGITS_MAX = 16
#: Every ``TEST_EVERY``-th image of a class (the last of each run) goes to the test split.
TEST_EVERY = 5


def read_digits(split: str) -> RawSplit:
    """One split of the digits: uint8 ``[N, 1, 8, 8]`` with values 0..16, labels 0..9."""
    from sklearn.datasets import load_digits  # heavy import, kept out of ``import hdd_lib``

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=10)
    rank = torch.empty_like(labels)
    rank[order] = torch.arange(labels.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    is_test = rank % TEST_EVERY == TEST_EVERY - 1
    keep = is_test if split == "test" else ~is_test
    return RawSplit(images[keep].contiguous(), labels[keep], tuple(str(c) for c in range(10)), max_value=DIGITS_MAX)
