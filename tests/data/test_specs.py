"""The DatasetSpec table: SPEC constants, shapes, validation, registry errors."""

from __future__ import annotations

import dataclasses

import pytest

from hdd_lib.data import SPECS, DatasetSpec, available_datasets, dataset_label, get_spec
from hdd_lib.data.specs import check_split


def test_registry_keys_are_lower_case_and_complete():
    expected = {"mnist", "fashionmnist", "svhn", "cifar10", "cifar100", "tinyimagenet", "digits", "cifar10_jpeg"}
    assert set(SPECS) == expected
    assert set(available_datasets()) == expected | {"imagefolder"}
    assert all(k == k.lower() for k in available_datasets())


@pytest.mark.parametrize(
    "name, shape, k, mean, std",
    [
        ("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
        ("cifar10_jpeg", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
        ("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,)),
        ("fashionmnist", (1, 28, 28), 10, (0.2861,), (0.3530,)),
        ("svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
        ("cifar100", (3, 32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
        ("tinyimagenet", (3, 64, 64), 200, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ("digits", (1, 8, 8), 10, (0.3051,), (0.3762,)),
    ],
)
def test_spec_constants(name, shape, k, mean, std):
    spec = get_spec(name)
    assert spec.name == name and spec.shape == shape and spec.num_classes == k
    assert spec.mean == mean and spec.std == std


def test_class_names():
    assert get_spec("cifar10").class_names[:3] == ("airplane", "automobile", "bird")
    assert get_spec("cifar10_jpeg").class_names == get_spec("cifar10").class_names
    assert get_spec("svhn").class_names == tuple("0123456789")
    assert get_spec("cifar100").class_names is None and get_spec("tinyimagenet").class_names is None


def test_specs_are_frozen_and_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_spec("mnist").num_classes = 3
    with pytest.raises(TypeError):
        SPECS["mnist"] = get_spec("svhn")


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; known: cifar10, .*tinyimagenet"):
        get_spec("imagenet")
    with pytest.raises(ValueError, match="computed from the files"):
        get_spec("imagefolder")
    with pytest.raises(ValueError, match=r"unknown split 'val'; known: train, test"):
        check_split("val")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": 0}, "channels"),
        ({"image_size": (0, 4)}, "image_size"),
        ({"num_classes": 0}, "num_classes"),
        ({"mean": (0.5, 0.5)}, "one value per channel"),
        ({"std": (0.0,)}, "positive"),
        ({"class_names": ("a",)}, "class_names"),
    ],
)
def test_spec_validation(kwargs, match):
    base = dict(name="x", channels=1, image_size=(4, 4), num_classes=2, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match=match):
        DatasetSpec(**{**base, **kwargs})


def test_one_table_of_dataset_labels():
    labels = {name: dataset_label(name) for name in SPECS}
    assert labels == {
        "mnist": "MNIST", "fashionmnist": "Fashion-MNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
        "cifar10_jpeg": "CIFAR-10 (JPEG copy)", "cifar100": "CIFAR-100", "tinyimagenet": "Tiny-ImageNet",
        "digits": "scikit-learn digits (8x8)",
    }  # fmt: skip
    assert all(get_spec(name).label == label for name, label in labels.items())
    assert dataset_label("imagefolder") == "imagefolder"
    assert DatasetSpec("x", 1, (4, 4), 2, (0.5,), (0.5,)).label == "x"
