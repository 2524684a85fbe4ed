"""The one resolver of a ``data`` setting: an ``embedded:<name>`` set, or a file / saved datasets folder."""

from __future__ import annotations

from preforch.data.example import is_embedded, load_embedded
from preforch.data.load import load_preference_data
from preforch.types import PreferenceData


def load_data_setting(data: str, *, limit_per_kind: int | None = None, seed: int | None = 0,
                      kind_column: str = "kind") -> PreferenceData:
    """The rows a ``data`` setting names. An embedded set keeps ``limit_per_kind`` rows of each kind and is shuffled
    with ``seed`` (None: file order); a file reads its prompt kinds from ``kind_column``."""
    if is_embedded(data):
        return load_embedded(data, limit_per_kind, seed=seed)
    return load_preference_data(data, kind_column=kind_column)
