"""Hub data set names (``Anthropic/hh-rlhf``, ``owner/name:split``) read from the local ``datasets`` cache.

Offline stays the default (the CLI sets HF_HUB_OFFLINE=1 unless the user set it): ``datasets.load_dataset`` then
reads only what an earlier online ``load_dataset`` left in HF_DATASETS_CACHE, and a missing cache is a one-line
error naming the data set and the cache folder. With HF_HUB_OFFLINE=0 set by the user, datasets downloads it.
"""

from __future__ import annotations

import os
import re
from typing import Any

from preforch.errors import PreforchError

#: owner/name, optionally :split; no path separators beyond the one, no file suffix a local file would have.
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?::[\w.-]+)?$")
_FILE_SUFFIX = re.compile(r"\.(jsonl|json|parquet|csv|gz)$", re.IGNORECASE)


def is_hub_name(text: str) -> bool:
    """True for ``owner/name`` or ``owner/name:split`` that is not written like a local file."""
    return bool(_HUB_NAME.match(text)) and not _FILE_SUFFIX.search(text.split(":")[0])


def datasets_cache() -> str:
    import datasets

    return str(os.path.expanduser(datasets.config.HF_DATASETS_CACHE))


def read_hub_dataset(text: str) -> list[dict[str, Any]]:
    """Rows of a hub data set's split (default: train, else its first split) from the local cache."""
    import datasets

    name, _, split = text.partition(":")
    try:
        data = datasets.load_dataset(name)
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as err:
        offline = datasets.config.HF_HUB_OFFLINE
        raise PreforchError(
            f"{text}: data file not found, and data set {name!r} is not in the local datasets cache "
            f"({datasets_cache()})" + ("; load it once with HF_HUB_OFFLINE=0 (datasets.load_dataset) or pass a file"
                                       if offline else f" ({type(err).__name__})")) from None
    if split and split not in data:
        raise PreforchError(f"{text}: data set {name!r} has no split {split!r}; its splits are {sorted(data)}")
    split = split or ("train" if "train" in data else next(iter(data)))
    return data[split].to_list()
