"""The PRO preference adapter: config, targets and losses, model, training, save/load, inference.

The names below are imported on first use, so reading an :class:`AdapterConfig` does not load torch.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "AdapterConfig": "preforch.adapter.config",
    "PreferenceAdapter": "preforch.adapter.model",
    "TrainResult": "preforch.adapter.train",
    "format_report": "preforch.adapter.train",
    "target_weights": "preforch.adapter.targets",
    "train_adapter": "preforch.adapter.train",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'preforch.adapter' has no attribute {name!r}")
