"""ImageFolder trees, as a folder or a tar archive: ``[top/]train/<class>/<image>`` and ``test/...``.

Serves any user tree (``"imagefolder"``: size from its files, mean/std from its train split) and the lossy CIFAR-10 JPEG
copy (``"cifar10_jpeg"``, CIFAR-10's constants and class order). Labels follow the sorted class folders (torchvision's
``ImageFolder``); files in a class sort naturally (``2.jpg`` before ``10.jpg``). Both splits are decoded together, in
one pass, and cached."""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import torch
from tqdm.auto import tqdm

from .images import ImageDecodeError, cached, decode_bytes, is_image_file, natural_key, stack_images
from .specs import SPLITS, DatasetCorruptError, DatasetNotFoundError, DatasetSpec, RawSplit, channel_stats, get_spec

__all__ = ["CIFAR10_JPEG_FILE", "read_image_folder", "read_cifar10_jpeg", "folder_spec"]

#: Where ``"cifar10_jpeg"`` is found, relative to the data root.
CIFAR10_JPEG_FILE = "CIFAR10-JPEG/cifar10-jpeg.tar.gz"
IMAGEFOLDER_REMEDY = "Replace or delete the damaged file (for an archive: create or copy it again), then load again."
CIFAR10_JPEG_REMEDY = (f"Copy {CIFAR10_JPEG_FILE} again from where it came from and check it against that folder's "
                       "SHA256SUMS (this lossy copy cannot be downloaded).")
_LAYOUT = tuple(f"{split}/<class>/<image>" for split in SPLITS)
_LAYOUT_REMEDY = "Point root at a folder or .tar.gz archive laid out as [top/]train/<class>/<image> and [top/]test/..."


def read_image_folder(
    path: str | os.PathLike, *, dataset: str = "imagefolder", cache_dir: str | os.PathLike | None = None
) -> dict[str, RawSplit]:
    """Both splits of a tree (folder or tar archive), labelled by sorted class names; ``DatasetNotFoundError`` if
    ``path`` or a split is absent; ``DatasetCorruptError`` if the archive or an image cannot be read; ``ValueError`` if
    images differ in size, the tree has several top folders or fewer than 2 classes, or ``test`` has classes that
    ``train`` lacks."""
    path = Path(path).expanduser()
    remedy = CIFAR10_JPEG_REMEDY if dataset == "cifar10_jpeg" else IMAGEFOLDER_REMEDY
    if not (path.is_dir() or path.is_file()):
        raise DatasetNotFoundError(dataset, path, _LAYOUT, reason="no such folder or archive", remedy=_LAYOUT_REMEDY)
    if path.is_file() and not tarfile.is_tarfile(path):
        raise DatasetCorruptError(dataset, path, "not a readable tar archive (truncated, or not .tar/.tar.gz)", remedy)
    value = cached("imagefolder", path, lambda: _decode_tree(path, dataset, remedy), cache_dir=cache_dir)
    classes = tuple(value["classes"])
    if len(classes) < 2:
        raise ValueError(f"dataset {dataset!r} at {str(path)!r} has {len(classes)} class {list(classes)}; "
                         "distilling and evaluating need at least 2 class folders")  # fmt: skip
    return {s: RawSplit(value[f"{s}_images"], value[f"{s}_labels"], classes) for s in SPLITS}


def read_cifar10_jpeg(root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    """One split of the CIFAR-10 JPEG copy; ``download`` is accepted for a uniform signature, but it cannot be."""
    path = root / CIFAR10_JPEG_FILE
    if not path.is_file():
        remedy = (f"This lossy copy cannot be downloaded: point root (or $HDD_DATA_ROOT) at a folder holding "
                  f"{CIFAR10_JPEG_FILE}, or use 'cifar10' for the official data.")  # fmt: skip
        raise DatasetNotFoundError("cifar10_jpeg", root, [CIFAR10_JPEG_FILE], remedy=remedy)
    raw = read_image_folder(path, dataset="cifar10_jpeg", cache_dir=cache_dir)[split]
    names, found = get_spec("cifar10_jpeg").class_names, raw.class_names
    if sorted(found) != sorted(names):
        reason = f"class folders {sorted(found)} differ from the expected {sorted(names)}"
        raise DatasetCorruptError("cifar10_jpeg", path, reason, CIFAR10_JPEG_REMEDY)
    new_label = torch.tensor([names.index(n) for n in found], dtype=torch.int64)
    return RawSplit(raw.images, new_label[raw.labels], names)


def folder_spec(train: RawSplit, *, name: str = "imagefolder") -> DatasetSpec:
    """The spec of a user tree: size and channels from its images, mean/std from its train split."""
    mean, std = channel_stats(train.images, max_value=train.max_value)
    std = tuple(s if s > 0 else 1.0 for s in std)  # a constant channel is left unscaled
    c, h, w = train.images.shape[1:]
    return DatasetSpec(name, c, (h, w), len(train.class_names), mean, std, train.class_names)


def _place(name: str) -> tuple[str, str, str] | None:
    """``(top, split, class)`` of an image path ``[top/]split/class/file``; ``None`` for other files."""
    if not is_image_file(name):
        return None
    parts = PurePosixPath(name.replace(os.sep, "/")).parts
    parts = parts[1:] if parts and parts[0] == "." else parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    parts = ("",) * (len(parts) == 3) + parts  # no top folder
    return parts[:3] if len(parts) == 4 and parts[1] in SPLITS else None


def _iter_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of the tree's images: one streaming pass over an archive, sorted files of a folder."""
    if path.is_file():
        bar = {"total": path.stat().st_size, "desc": f"decoding {path.name}", "mininterval": 1.0}
        with open(path, "rb") as f, tqdm.wrapattr(f, "read", **bar) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and _place(member.name) is not None:
                    yield member.name, tar.extractfile(member).read()
        return
    files = sorted(rel for d, _, names in os.walk(path) for n in names
                   if _place(rel := os.path.relpath(os.path.join(d, n), path).replace(os.sep, "/")))  # fmt: skip
    for rel in tqdm(files, unit="img", desc=f"decoding {path.name}", mininterval=1.0):
        yield rel, (path / rel).read_bytes()


def _decode_tree(path: Path, dataset: str, remedy: str) -> dict:
    records, tops = [], set()  # (split index, class, natural key, name, image)
    try:
        for name, data in _iter_files(path):
            top, split, cls = _place(name)
            tops.add(top)
            records.append((SPLITS.index(split), cls, natural_key(name), name, decode_bytes(data, name)))
    except ImageDecodeError as err:
        raise DatasetCorruptError(dataset, path, str(err), remedy) from err
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DatasetCorruptError(dataset, path, f"cannot read the archive: {err}", remedy) from err
    if len(tops) > 1:
        raise ValueError(f"{str(path)!r} holds several top folders {sorted(tops)}; expected at most one")
    records.sort(key=lambda r: r[:3])
    counts = [sum(r[0] == i for r in records) for i in range(len(SPLITS))]
    missing = [f"{s}/<class>/<image>" for s, n in zip(SPLITS, counts) if n == 0]
    if missing:
        raise DatasetNotFoundError(dataset, path, missing, reason="no such images", remedy=_LAYOUT_REMEDY)
    classes = sorted({r[1] for r in records[: counts[0]]})
    unknown = sorted({r[1] for r in records} - set(classes))
    if unknown:
        raise ValueError(f"{str(path)!r}: test classes {unknown} have no train folder")
    label = {c: i for i, c in enumerate(classes)}
    images = stack_images([r[4] for r in records], [r[3] for r in records]).split(counts)  # one size, channels, dtype
    labels = torch.tensor([label[r[1]] for r in records], dtype=torch.int64).split(counts)
    return {"classes": classes, **{f"{s}_images": x for s, x in zip(SPLITS, images)},
            **{f"{s}_labels": y for s, y in zip(SPLITS, labels)}}
