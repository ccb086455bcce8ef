"""The two ways loading a dataset fails for want of good files: absent, or present but unreadable.

Both name the dataset, the place looked at and what to do next, so that an offline user never has
to read a traceback from deep inside torchvision, pickle or PIL.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["DatasetNotFoundError", "DatasetCorruptError", "DOWNLOAD_FAILED_REMEDY"]

_DEFAULT_REMEDY = (
    "Pass download=True to fetch them (needs internet), or point root (or $HDD_DATA_ROOT) "
    "at a folder that holds them."
)
#: Advice once a download has been tried and failed.
DOWNLOAD_FAILED_REMEDY = (
    "Check the network and retry, or copy the files there yourself, or point root (or $HDD_DATA_ROOT) "
    "at a folder that holds them."
)


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where they should be (and were not, or could not be, downloaded).

    Parameters
    ----------
    dataset : str
        Registry key, e.g. ``"svhn"``.
    root : str or os.PathLike
        The data root (or folder, or archive) that was searched.
    expected : sequence of str
        Paths, relative to ``root``, of the files that were looked for.
    reason : str, optional
        What went wrong when it is more than "absent", e.g. a failed download.
    remedy : str, optional
        What to do instead of the default advice (download or point the root elsewhere).
    """

    def __init__(
        self,
        dataset: str,
        root: str | os.PathLike,
        expected: Sequence[str],
        *,
        reason: str | None = None,
        remedy: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.root = os.fspath(root)
        self.expected = tuple(expected)
        files = ", ".join(self.expected)
        message = f"dataset {dataset!r} not found under root {self.root!r}: expected {files}"
        if reason:
            message += f" ({reason})"
        message += ". " + (remedy or _DEFAULT_REMEDY)
        super().__init__(message)

    def __reduce__(self):  # OSError's default pickling would call __init__ with the message only
        return (_rebuild, (type(self), self.args[0]))


class DatasetCorruptError(RuntimeError):
    """A file of a dataset is present but unreadable: wrong checksum, truncated, not what it claims.

    Parameters
    ----------
    dataset : str
        Registry key, e.g. ``"cifar10"``.
    path : str or os.PathLike
        The offending file (or folder).
    reason : str
        What is wrong with it.
    """

    def __init__(self, dataset: str, path: str | os.PathLike, reason: str) -> None:
        self.dataset = dataset
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(
            f"dataset {dataset!r}: {self.path!r} is corrupt or not in the expected format ({reason}). "
            "Delete it and load again with download=True, or replace it with a good copy."
        )

    def __reduce__(self):
        return (_rebuild, (type(self), self.args[0]))


def _rebuild(cls: type, message: str) -> Exception:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err
