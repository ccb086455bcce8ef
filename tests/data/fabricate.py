"""Writers of small datasets in the real on-disk formats (IDX, CIFAR pickles, SVHN .mat, JPEG trees).

Each writer returns what it wrote (uint8 arrays in the layout torchvision reads, and labels), so
tests can compare what ``hdd_lib.data`` loads against the source of truth.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


# --- IDX (MNIST family) -----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: magic 00 00 08 ndim, big-endian uint32 sizes, then the uint8 values."""
    assert array.dtype == np.uint8
    return bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(root: Path, folder: str = "MNIST", *, n_train=40, n_test=20, gz=True, extracted=False, seed=0):
    """``<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; returns the arrays."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = images(rng, n, (28, 28)), balanced_labels(n, 10, rng).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
            if extracted:
                (raw / name).write_bytes(idx_bytes(arr))
        out[split] = (x, y.astype(np.int64))
    return out


def mnist_resources(root: Path, folder: str = "MNIST") -> list[tuple[str, str]]:
    """torchvision's ``resources`` table for the fabricated ``.gz`` files (real names, our MD5s)."""
    raw = Path(root) / folder / "raw"
    names = [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    return [(n, md5(raw / n)) for n in names]


# --- CIFAR pickles ----------------------------------------------------------------------------------


class Py2Str(bytes):
    """A Python 2 ``str``: pickled with (SHORT_)BINSTRING, as in the official CIFAR files."""


class _Py2Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str


def dump_py2(obj, path: Path) -> None:
    """Pickle like the official CIFAR files: keys are Python 2 strings (``b'data'`` under ``encoding='bytes'``)."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    Path(path).write_bytes(buf.getvalue())


def _batch(x: np.ndarray, labels: np.ndarray, label_key: str, name: str) -> dict:
    return {
        Py2Str(b"batch_label"): Py2Str(name.encode()),
        Py2Str(label_key.encode()): [int(v) for v in labels],
        Py2Str(b"data"): x.reshape(len(x), -1),  # [N, 3072]: 1024 R, then G, then B
        Py2Str(b"filenames"): [Py2Str(f"img_{i}.png".encode()) for i in range(len(x))],
    }


def write_cifar10(root: Path, *, per_batch=10, n_test=20, seed=0):
    """``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``; returns ``[N,3,32,32]`` arrays."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for b in range(1, 6):
        x, y = images(rng, per_batch, (3, 32, 32)), balanced_labels(per_batch, 10, rng)
        dump_py2(_batch(x, y, "labels", f"training batch {b} of 5"), folder / f"data_batch_{b}")
        xs.append(x), ys.append(y)
    xt, yt = images(rng, n_test, (3, 32, 32)), balanced_labels(n_test, 10, rng)
    dump_py2(_batch(xt, yt, "labels", "testing batch 1 of 1"), folder / "test_batch")
    meta = {Py2Str(b"label_names"): [Py2Str(n.encode()) for n in CIFAR10_NAMES], Py2Str(b"num_vis"): 3072}
    dump_py2(meta, folder / "batches.meta")
    return {"train": (np.concatenate(xs), np.concatenate(ys)), "test": (xt, yt)}


def cifar_tables(root: Path, cls) -> dict:
    """``train_list``/``test_list``/``meta`` of torchvision class ``cls`` with the fabricated files' MD5s."""
    folder = Path(root) / cls.base_folder
    return {
        "train_list": [[name, md5(folder / name)] for name, _ in cls.train_list],
        "test_list": [[name, md5(folder / name)] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": md5(folder / cls.meta["filename"])},
    }


def write_cifar100(root: Path, *, n_train=200, n_test=100, seed=0):
    """``<root>/cifar-100-python/{train, test, meta}`` with fine and coarse labels."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = images(rng, n, (3, 32, 32)), balanced_labels(n, 100, rng)
        batch = _batch(x, y, "fine_labels", split)
        batch[Py2Str(b"coarse_labels")] = [int(v) // 5 for v in y]
        dump_py2(batch, folder / split)
        out[split] = (x, y)
    meta = {
        Py2Str(b"fine_label_names"): [Py2Str(f"fine{i:02d}".encode()) for i in range(100)],
        Py2Str(b"coarse_label_names"): [Py2Str(f"coarse{i:02d}".encode()) for i in range(20)],
    }
    dump_py2(meta, folder / "meta")
    return out


# --- SVHN -------------------------------------------------------------------------------------------


def write_svhn(root: Path, *, n_train=30, n_test=20, seed=0):
    """``<root>/{train,test}_32x32.mat``: X uint8 ``[32, 32, 3, N]``, y ``[N, 1]`` with 10 for digit 0."""
    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = images(rng, n, (3, 32, 32))
        digits = balanced_labels(n, 10, rng)
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(Path(root) / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y})
        out[split] = (x, digits)
    return out


# --- image trees ------------------------------------------------------------------------------------


def encode(array_hwc: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(array_hwc.squeeze(-1) if array_hwc.shape[-1] == 1 else array_hwc)
    img.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_tree(root: Path, classes, *, per_class=(3, 2), size=(6, 5), channels=3, seed=0, fmt="PNG", top="", bits=8):
    """``<root>/[top/]{train,test}/<class>/<i>.png``; returns ``{split: [(class, name, HWC array)]}``.

    ``bits=16`` writes 16-bit grey images (PIL mode ``I;16``) with values spread over 0..65535.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in zip(("train", "test"), per_class):
        written[split] = []
        for c in classes:
            folder = Path(root) / top / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                if bits == 16:
                    arr = rng.integers(0, 65536, size=(*size, 1), dtype=np.uint16)
                else:
                    arr = images(rng, 1, (*size, channels))[0]
                name = f"{i}.{fmt.lower()}"
                (folder / name).write_bytes(encode(arr, fmt))
                written[split].append((c, name, arr))
    return written


def tar_folder(folder: Path, archive: Path, *, arcname: str = "") -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        for path in sorted(Path(folder).rglob("*")):
            tf.add(path, arcname=str(Path(arcname) / path.relative_to(folder)), recursive=False)
    return archive


def write_tiny_imagenet(root: Path, *, per_class=2, seed=0, grey_first=True):
    """``<root>/tiny-imagenet-200`` with 200 wnids (listed unsorted), ``per_class`` train and 1 val JPEG each."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "tiny-imagenet-200"
    wnids = [f"n{10000000 + 7919 * i % 1000003:08d}" for i in range(200)]
    (folder / "val" / "images").mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        imgs = folder / "train" / w / "images"
        imgs.mkdir(parents=True)
        for i in range(per_class):
            (imgs / f"{w}_{i}.JPEG").write_bytes(encode(images(rng, 1, (64, 64, 3))[0], "JPEG"))
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
    if grey_first:  # a grey JPEG, as Tiny-ImageNet has a few
        w = wnids[0]
        (folder / "train" / w / "images" / f"{w}_0.JPEG").write_bytes(encode(images(rng, 1, (64, 64, 1))[0], "JPEG"))
    lines = []
    for i, w in enumerate(reversed(wnids)):
        (folder / "val" / "images" / f"val_{i}.JPEG").write_bytes(encode(images(rng, 1, (64, 64, 3))[0], "JPEG"))
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return wnids
