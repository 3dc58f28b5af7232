"""Atomic creation of output files and folders.

Every command writes into a temporary sibling first and renames it into place at the end, so an
error never leaves a half-written result behind and nothing outside the chosen path is touched.
"""

import contextlib
import os
import stat
import shutil
import tempfile
from pathlib import Path

from syq.errors import SyqError


def check_replaceable(folder, marker, kind):
    """Raise SyqError unless `folder` is absent, empty, or an earlier output containing `marker`.

    `kind` names the output in the message, for example "syq deploy folder".
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SyqError(f"{folder} exists and is a file, not a {kind}: choose another --out")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise SyqError(f"{folder} exists and is not a {kind} (no {marker}): choose another --out "
                       f"or remove it")


@contextlib.contextmanager
def atomic_directory(target, replace=True):
    """Yield a temporary folder that becomes `target` when the block finishes without error.

    With `replace`, an existing `target` is replaced (only after the new content is complete).
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(staging, _default_file_mode() | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        if not replace:
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(target)
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.rename(target, retired / target.name)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, target)


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return (stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH) & ~umask


@contextlib.contextmanager
def atomic_file(target, mode="wb"):
    """Yield a file object whose content replaces `target` only when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    os.chmod(staging, _default_file_mode())
    try:
        with open(staging, mode) as stream:
            yield stream
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise


def atomic_path(target):
    """Return a context manager yielding a temporary path that is renamed to `target` on success.

    For writers that insist on a file name of their own (for example `torch.save`, `onnx.save`).
    """
    return _AtomicPath(Path(target))


class _AtomicPath:
    def __init__(self, target):
        self.target = target
        self.staging = None

    def __enter__(self):
        self.target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=self.target.suffix,
                                        dir=self.target.parent)
        os.close(handle)
        os.chmod(name, _default_file_mode())
        self.staging = Path(name)
        return self.staging

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.staging, self.target)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.staging)
        return False
