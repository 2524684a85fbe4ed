"""preforch: prompt-aware multi-objective alignment (PRO, the Preference Orchestrator).

The public names below are imported lazily, so ``import preforch`` stays cheap (no torch, trl, fastapi or
matplotlib until a name is used).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "AdapterConfig": "preforch.adapter",
    "PreferenceAdapter": "preforch.adapter",
    "train_adapter": "preforch.adapter",
    "Normalizer": "preforch.rewards.normalize",
    "Scorer": "preforch.rewards.scorer",
    "PreferenceData": "preforch.types",
    "load_preference_data": "preforch.data.load",
    "blend_weights": "preforch.weighting",
    "scalarize": "preforch.weighting",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'preforch' has no attribute {name!r}")
