"""Hub data set names read from the local datasets cache, offline; a missing cache names the set and the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from preforch.data.hub import is_hub_name
from preforch.data.load import read_table
from preforch.errors import PreforchError

ROWS = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello!", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
        {"chosen": "\n\nHuman: name a colour\n\nAssistant: blue", "rejected": "\n\nHuman: name a colour\n\nAssistant: no"}]


def cache_like_the_hub(tmp_path: Path, repo: str) -> Path:
    """What `datasets.load_dataset(repo)` leaves in HF_DATASETS_CACHE, built from a local file (no network):
    OWNER___NAME/default/0.0.0/HASH/{dataset_info.json, NAME-SPLIT.arrow}."""
    import datasets

    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    builder = datasets.load_dataset_builder("json", data_files={"train": str(source), "test": str(source)},
                                            cache_dir=str(tmp_path / "build"))
    builder.download_and_prepare()
    owner, name = repo.split("/")
    cache = tmp_path / "hf_datasets"
    target = cache / f"{owner}___{name}" / "default" / "0.0.0" / Path(builder.cache_dir).name
    shutil.copytree(builder.cache_dir, target)
    for split in ("train", "test"):
        (target / f"json-{split}.arrow").rename(target / f"{name}-{split}.arrow")
    return cache


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    import datasets

    cache = cache_like_the_hub(tmp_path, "someone/tiny-hh")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_names_are_told_from_files():
    assert is_hub_name("Anthropic/hh-rlhf") and is_hub_name("Anthropic/hh-rlhf:test")
    assert not is_hub_name("data/prompts.jsonl") and not is_hub_name("runs/a/b") and not is_hub_name("/abs/x")
    assert not is_hub_name("prompts")


def test_a_cached_hub_data_set_is_read_offline(offline_cache):
    assert read_table("someone/tiny-hh") == ROWS
    assert read_table("someone/tiny-hh:test") == ROWS


def test_the_align_routes_take_a_hub_name(offline_cache):
    from preforch.align.data import load_rows, prompts_from_rows

    rows, source = load_rows("someone/tiny-hh")
    assert [c.last_user for c in prompts_from_rows(rows, "prompt", source)] == ["hi", "name a colour"]


def test_a_missing_cache_names_the_data_set_and_the_folder(offline_cache):
    with pytest.raises(PreforchError, match=r"^someone/absent: data file not found, and data set 'someone/absent' "
                                            rf"is not in the local datasets cache \({offline_cache}\); load it once"):
        read_table("someone/absent")
    with pytest.raises(PreforchError, match=r"has no split 'validation'; its splits are \['test', 'train'\]"):
        read_table("someone/tiny-hh:validation")
    with pytest.raises(PreforchError, match=r"^data/missing.jsonl: data file not found$"):
        read_table("data/missing.jsonl")
