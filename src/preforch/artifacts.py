"""Artifact folders: the file names, the format check, strict settings, safetensors in and out, and the one
fingerprint of a model folder.

Every saved artifact (the preference adapter, reward heads, the normaliser, a conditioned policy's tags) is read
through these helpers, so each refuses the same things the same way: a file that is not a JSON object, a format
version this preforch does not read, missing keys, settings it does not know (strictly typed: JSON values keep
their own types), weights whose keys, shapes or values do not match, and a file that is not safetensors. Every
error is one line naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from preforch.atomic import read_json, usual_permissions
from preforch.config import coerce
from preforch.errors import PreforchError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Files of a model folder that shape its outputs besides the weights (hashed whole by the fingerprint).
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                      "merges.txt", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")
_MIB = 1 << 20


def check_own_file(path: str | Path) -> None:
    """Refuse an artifact file that is a symlink to a file outside its folder, before reading a byte of it (an
    error would otherwise quote another file's text)."""
    path = Path(path)
    if path.is_symlink() and path.resolve().parent != path.parent.resolve():
        raise PreforchError(f"{path}: a symlink to a file outside its folder; an artifact's files must be its own")


def artifact_relative(value: str | None, config_path: str | Path, setting: str) -> str | None:
    """A path setting saved in an artifact: a relative one means a place inside the artifact's folder. One that
    exists only relative to the working folder is refused (it would load whatever is there); other values (a hub
    name, an absolute path) are kept."""
    if not value or Path(value).is_absolute():
        return value
    inside = Path(config_path).parent / value
    if inside.exists():
        return str(inside)
    if Path(value).exists():
        raise PreforchError(f"{config_path}: {setting} {value!r} is relative and not inside the artifact's folder; "
                            "it would resolve against the working folder: save an absolute path")
    return value


def read_object(path: str | Path, what: str) -> dict:
    """A JSON file that must hold an object; a missing file, bad JSON or another type is one line naming it."""
    check_own_file(path)
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise PreforchError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def require_format(data: dict, source: str | Path, expected: int, label: str = "format_version") -> None:
    """Refuse a ``format_version`` other than ``expected`` (a boolean is not a version)."""
    version = data.get("format_version")
    if version != expected or isinstance(version, bool):
        raise PreforchError(f"{source}: {label} {version!r:.40}, expected {expected}")


def require_keys(data: dict, keys: Iterable[str], source: str | Path, what: str = "key(s)") -> None:
    """Refuse a mapping that lacks any of ``keys``, naming them."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise PreforchError(f"{source}: missing {what} {missing}")


def strict_settings(values: dict, cls: type, source: str | Path, what: str = "",
                    skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` checked against the fields of the dataclass ``cls``: unknown keys are refused, each value
    keeps its JSON type (text is never read as a number). ``skip``: keys the caller reads itself.
    ``what`` names the settings in messages (e.g. "adapter ")."""
    hints = {k: v for k, v in typing.get_type_hints(cls).items() if k not in skip}
    unknown = sorted(set(values) - set(hints) - set(skip))
    if unknown:
        raise PreforchError(f"{source}: unknown {what}setting(s) {unknown}")
    where = f"{source}: {what.strip()}" if what else str(source)
    return {k: coerce(v, hints[k], k, where, strict=True) for k, v in values.items() if k in hints}


def settings_of(config) -> dict[str, Any]:
    """A dataclass config as the plain dict an artifact saves."""
    return dataclasses.asdict(config)


# ---- weights ------------------------------------------------------------------------------------------------


def write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save tensors (detached, on the CPU, contiguous) with the usual permissions (safetensors writes through an
    owner-only temporary file). Called inside a staged folder, so the artifact appears whole or not at all."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path),
              metadata=metadata or {"format": "pt"})
    usual_permissions(path)


def read_safetensors(path: str | Path, what: str = "unreadable safetensors file") -> dict:
    """The tensors of a safetensors file; a truncated or foreign file is one line naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_own_file(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreforchError(f"{path}: {what} ({first}; truncated or corrupt?)") from None


def check_tensors(tensors: dict, expected: dict, source: str | Path, against: str = "the config") -> None:
    """Saved tensors against the ``expected`` ones (built on the meta device, so a config asking for a huge model
    allocates nothing): the same keys and shapes, floating point and finite."""
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise PreforchError(f"{source}: weights do not match {against} (missing {missing[:5]}, unexpected {extra[:5]})")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise PreforchError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, {against} expects "
                                f"{tuple(expected[key].shape)}")
        if not value.is_floating_point():
            raise PreforchError(f"{source}: tensor {key!r} is {value.dtype}, expected floating point")
        if not value.isfinite().all():
            raise PreforchError(f"{source}: tensor {key!r} holds values that are not finite (NaN or inf)")


# ---- identity -----------------------------------------------------------------------------------------------


def folder_fingerprint(folder: str | Path) -> str:
    """The identity of a model folder, for cache keys and for checking that heads run on their own encoder:
    its config and tokenizer files in full, and the size plus the first and last MiB of each weights file (cheap,
    and it changes when a checkpoint is retrained, whose last layers move most)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in sorted(_FINGERPRINT_FILES):
        if (folder / name).is_file():
            h.update(name.encode())
            h.update((folder / name).read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        size = path.stat().st_size
        h.update(path.name.encode())
        h.update(str(size).encode())
        with open(path, "rb") as handle:
            h.update(handle.read(_MIB))
            handle.seek(max(0, size - _MIB))
            h.update(handle.read(_MIB))
    return h.hexdigest()[:16]


def legacy_fingerprint(folder: str | Path) -> str:
    """The fingerprint heads folders written before :func:`folder_fingerprint` carry (size and first MiB of each
    weights file): read only to accept those folders' ``encoder_fingerprint``, never written."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in sorted(p.name for p in folder.glob("*.safetensors")):
        path = folder / name
        h.update(name.encode())
        h.update(str(path.stat().st_size).encode())
        with open(path, "rb") as handle:
            h.update(handle.read(_MIB))
    return h.hexdigest()[:16]
