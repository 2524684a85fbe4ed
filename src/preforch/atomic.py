"""Atomic writes: a file or a whole folder appears complete or not at all.

Staging names carry the writer's process id (``.NAME.PID.xxxx.tmp``, ``.NAME.PID.old``), so a later run can
tell the leftovers of a killed process from those of a live one and clean them up before it starts. Published files get the permissions a plain ``open`` gives under the current umask.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from preforch.errors import PreforchError, setting_hint


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def usual_permissions(path: str | Path) -> None:
    """Give a file written through a private temporary file (mkstemp, safetensors) the mode a plain ``open``
    would have given it under the current umask."""
    os.chmod(path, 0o666 & ~_umask())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            path.unlink()


# What follows ".NAME." in a staging name: "PID.xxxxxxxx.tmp" / "PID.old", or untagged "xxxxxxxx.tmp" / "old"
# from earlier versions (mkstemp/mkdtemp draw 8 characters from [a-z0-9_]).
_LEFTOVER = re.compile(r"^(?:(?P<pid>\d+)\.)?(?:[a-z0-9_]{8}\.tmp|(?P<old>old))$")


def clean_orphans(path: str | Path) -> list[Path]:
    """Remove what killed writers of ``path`` left next to it; returns what was removed or restored.

    Staging files and folders ``.NAME.PID.xxxx.tmp`` of dead processes (and untagged ``.NAME.xxxx.tmp`` ones
    from earlier versions) are removed. A backup ``.NAME.PID.old`` of a dead process is removed when ``path``
    exists, and put back when it does not (its writer died between its two renames).
    """
    path = Path(path)
    prefix = f".{path.name}."
    done: list[Path] = []
    try:
        children = [c for c in path.parent.iterdir() if c.name.startswith(prefix)]
    except OSError:
        return done
    for child in children:
        match = _LEFTOVER.match(child.name[len(prefix):])
        if match is None or (match["pid"] is not None and _alive(int(match["pid"]))):
            continue
        if match["old"] and not path.exists() and not path.is_symlink():
            with contextlib.suppress(OSError):  # a backup that cannot be put back is left alone
                os.replace(child, path)
                done.append(path)
            continue
        _remove(child)
        done.append(child)
    return done


def _stage_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PreforchError(f"{path}: cannot create its folder {path.parent} ({err.strerror or err})") from None


@contextlib.contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write ``path`` through (for writers that take a file name: pyarrow,
    safetensors). On success it gets the usual permissions and replaces ``path``; on any error or interrupt it is
    removed."""
    path = Path(path)
    _make_parent(path)
    clean_orphans(path)
    try:
        fd, name = tempfile.mkstemp(prefix=_stage_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise PreforchError(f"{path}: cannot create files in {path.parent} ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        usual_permissions(tmp)  # mkstemp makes 0600
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(err, OSError):  # a full disk, a lost mount: one line naming the file
            raise PreforchError(f"{path}: cannot write ({err.strerror or err})") from None
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    with staged_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`write_bytes`)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise PreforchError(f"{path}: not written: the text holds a lone surrogate at character {err.start} "
                            "(an invalid \\ud800-\\udfff escape in the input)") from None
    write_bytes(path, data)


def write_json(path: str | Path, obj) -> None:
    """Sorted, indented JSON written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# ---- strict reading ----------------------------------------------------------------------------------------


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a file, decompressed when its name ends in .gz; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise PreforchError(f"{path}: file not found")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise PreforchError(f"{path}: not a regular file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise PreforchError(f"{path}: not a valid gzip file (truncated or corrupt: {err})") from None
    except OSError as err:
        raise PreforchError(f"{path}: cannot read ({err.strerror or err})") from None


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (optionally .gz; a byte-order mark is dropped); invalid UTF-8 is an error naming the
    line."""
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise PreforchError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}); save the file "
                            "as UTF-8") from None


def read_json(path: str | Path, what: str = "file"):
    """The JSON value of a UTF-8 file; a missing file, bad bytes or bad JSON is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PreforchError(f"{path}: {what} not found")
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PreforchError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise PreforchError(f"{path}: JSON nested too deeply") from None


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
    if what == "file" and target.exists() and not target.is_file():
        raise PreforchError(f"{path}: exists and is not a regular file")
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


def refuse_existing(path: str | Path, overwrite: bool, what: str = "folder") -> None:
    """Check, before any expensive work, that the output ``what`` ('folder' or 'file') can be written (see
    :func:`check_output_dir`), and refuse to replace an existing one unless ``overwrite``."""
    check_output_dir(path, what)
    if Path(path).exists() and not overwrite:
        raise PreforchError(f"{path}: output {what} exists; pass {setting_hint('overwrite', 'true')} to replace it")


@contextlib.contextmanager
def staged_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path``; on error or interrupt it is removed.

    Checks the output and refuses an existing ``path`` unless ``overwrite``, before any work is done, so a run
    never clobbers an earlier artifact by accident; leftovers of killed runs are cleaned up first.
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    _make_parent(path)
    clean_orphans(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_stage_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise PreforchError(f"{path}: cannot create files in {path.parent} ({err.strerror or err})") from None
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the published folder gets the usual permissions
        yield tmp
        if path.exists() or path.is_symlink():
            old = path.with_name(f"{_stage_prefix(path)}old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
