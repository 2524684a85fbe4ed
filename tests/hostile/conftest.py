"""Helpers of the hostile-input suite (issue 12): every case ends in a one-line error naming the file, row or
field, or in the correct result; never a traceback, a hang or a half-written artifact.

Library cases use ``pytest.raises(PreforchError, match=...)``; CLI cases go through
``preforch.cli.main.main(argv)`` and must return 2 with exactly one stderr line ``preforch: error: ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_helpers import OBJECTIVES, build_adapter, scored_rows, write_jsonl  # noqa: F401


def pytest_collection_modifyitems(items):
    # A hang is a failure too: every hostile case gets a deadline.
    for item in items:
        if "tests/hostile" in str(item.fspath) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(60))


@pytest.fixture()
def scored_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "scored.jsonl", scored_rows())


@pytest.fixture()
def pairs_file(tmp_path) -> Path:
    """Rows for `preforch score` with a rule scorer (fast, no model)."""
    rows = [{"prompt": f"p{i}", "chosen": "short", "rejected": "a much longer reply " * 3} for i in range(4)]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


@pytest.fixture(scope="session")
def adapter_master(tmp_path_factory, tiny_encoder_dir) -> Path:
    return build_adapter(tmp_path_factory.mktemp("adapter") / "adapter", tiny_encoder_dir)


@pytest.fixture()
def adapter_dir(tmp_path, adapter_master) -> Path:
    """A fresh copy of a valid adapter folder, free to corrupt."""
    import shutil

    return Path(shutil.copytree(adapter_master, tmp_path / "adapter"))


@pytest.fixture(scope="session")
def evil_dir(tmp_path_factory) -> Path:
    """A model folder of an unknown model type whose config maps the Auto classes to its own code
    (``auto_map``); importing that code writes ``evil_dir/PWNED``. transformers can only load it by running
    that code."""
    from tiny_models import make_tiny_bert

    folder = make_tiny_bert(tmp_path_factory.mktemp("evil"))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evil-bert"
    config["architectures"] = ["EvilModel"]
    config["auto_map"] = {"AutoConfig": "evil_code.EvilConfig", "AutoModel": "evil_code.EvilModel",
                          "AutoModelForSequenceClassification": "evil_code.EvilModel",
                          "AutoModelForCausalLM": "evil_code.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    tok = json.loads((folder / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil_code.EvilTokenizer", None]}
    tok.pop("tokenizer_class", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok))
    (folder / "tokenizer.json").unlink(missing_ok=True)
    marker = folder / "PWNED"
    (folder / "evil_code.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('code ran')\n"
        "from transformers import BertConfig, BertModel, BertTokenizer\n\n\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evil-bert'\n\n\n"
        "class EvilModel(BertModel):\n    config_class = EvilConfig\n\n\n"
        "class EvilTokenizer(BertTokenizer):\n    pass\n")
    return folder


@pytest.fixture()
def evil(evil_dir) -> Path:
    """The evil folder; the test fails if its code ran."""
    marker = evil_dir / "PWNED"
    marker.unlink(missing_ok=True)
    yield evil_dir
    assert not marker.exists(), "custom code from an artifact ran without the user's flag"
