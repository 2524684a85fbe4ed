"""Atomic writes: a file or a whole folder appears complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from preforch.errors import PreforchError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def usual_permissions(path: str | Path) -> None:
    """Give a file written through a private temporary file (mkstemp, safetensors) the mode a plain ``open``
    would have given it under the current umask."""
    os.chmod(path, 0o666 & ~_umask())


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj) -> None:
    """Sorted, indented JSON written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def refuse_existing(path: str | Path, overwrite: bool, what: str = "folder") -> None:
    """Refuse to replace an existing output unless ``overwrite``; call it before any expensive work."""
    if Path(path).exists() and not overwrite:
        raise PreforchError(f"{path}: output {what} exists; pass --overwrite (overwrite: true) to replace it")


def check_output_dir(path: str | Path, what: str = "folder") -> None:
    """Check, before any work, that ``path`` can be written as a ``what`` ('folder' or 'file'): not the root,
    not a folder where a file is wanted (or the reverse), in a place where files can be created."""
    target = Path(path).absolute()
    if target == Path(target.anchor):
        raise PreforchError(f"{path}: cannot write the output {what} at the file-system root")
    if what == "folder" and target.exists() and not target.is_dir():
        raise PreforchError(f"{path}: exists and is not a folder")
    if what == "file" and target.is_dir():
        raise PreforchError(f"{path}: is a folder; give a file name")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise PreforchError(f"{path}: {parent} is not a folder")
    try:  # the only reliable test (read-only mounts, /proc, permissions): create and remove a probe
        probe = tempfile.mkdtemp(prefix=".preforch-probe.", dir=parent)
        os.rmdir(probe)
    except OSError as err:
        raise PreforchError(f"{path}: cannot create files in {parent} ({err.strerror or err})") from None


@contextlib.contextmanager
def staged_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path``; on error it is removed.

    Refuses an existing ``path`` unless ``overwrite``, before any work is done, so a run never
    clobbers an earlier artifact by accident.
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published folder gets the usual permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
