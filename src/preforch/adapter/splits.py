"""An adapter folder's ``split.json``: the split's settings and the fingerprints of each side's prompts, so an
evaluation can tell which prompts the adapter trained or early-stopped on."""

from __future__ import annotations

from pathlib import Path

from preforch.artifacts import read_object
from preforch.data.split import PromptSplit, fingerprints
from preforch.errors import PreforchError
from preforch.types import PreferenceData

SPLIT_NAME = "split.json"


def split_record(split: PromptSplit, data: PreferenceData) -> dict:
    """What ``split.json`` holds: the split's settings and the fingerprints of each side's prompts."""
    return {**split.describe(), "source": data.source,
            "fingerprints": {name: fingerprints(data.prompts[i] for i in getattr(split, name))
                             for name in ("train", "val", "test")}}


def read_split_prompts(folder: str | Path, sides: tuple[str, ...] = ("train", "val")) -> set[str] | None:
    """Fingerprints of the prompts on ``sides`` of an adapter folder's split (None without a split.json)."""
    path = Path(folder) / SPLIT_NAME
    if not path.is_file():
        return None
    record = read_object(path, "split record").get("fingerprints")
    try:
        return {p for side in sides for p in record[side]}
    except (KeyError, TypeError) as err:
        raise PreforchError(f"{path}: not a split record ({type(err).__name__}: {err})") from None
