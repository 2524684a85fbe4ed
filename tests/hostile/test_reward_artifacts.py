"""Hostile reward-model folders: a heads folder (``preforch rm train``) or a Hugging Face classifier folder
with a corrupt config or weights is one line naming the file, before any huge allocation; a property test
mutates a heads config.json at random."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hostile_helpers import one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preforch.errors import PreforchError


@pytest.fixture(scope="module")
def heads_master(tmp_path_factory, tiny_encoder_dir) -> Path:
    from preforch.models.encoders import SentenceEncoder
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    encoder = SentenceEncoder(str(tiny_encoder_dir), max_length=64, normalize=False)
    config = HeadsConfig(heads=[HeadSpec("harmless"), HeadSpec("helpful", hidden=4, features=["response", "prompt"])],
                         encoder=str(tiny_encoder_dir), max_length=64, prompt_tokens=16)
    folder = tmp_path_factory.mktemp("heads") / "heads"
    SharedEncoderHeads(config, encoder=encoder).save_pretrained(folder)
    return folder


@pytest.fixture()
def heads_dir(tmp_path, heads_master) -> Path:
    return Path(shutil.copytree(heads_master, tmp_path / "heads"))


def _config(edit):
    def mutate(folder: Path) -> None:
        data = json.loads((folder / "config.json").read_text())
        result = edit(data)
        (folder / "config.json").write_text(json.dumps(data if result is None else result))
    return mutate


def _tensors(edit):
    def mutate(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        state = load_file(str(folder / "model.safetensors"))
        save_file(edit(state), str(folder / "model.safetensors"))
    return mutate


def _first_weight(state):
    return next(k for k in state if k.endswith("weight"))


def _nan(state):
    state[_first_weight(state)][0] = float("nan")
    return state


def _ints(state):
    import torch

    key = _first_weight(state)
    state[key] = state[key].round().to(torch.int64)
    return state


BROKEN_HEADS = [
    ("config-list", _config(lambda d: [d]), r"config\.json: expected a JSON object, got list"),
    ("config-invalid", lambda f: (f / "config.json").write_text("{"), r"config\.json: not valid JSON"),
    ("config-not-utf8", lambda f: (f / "config.json").write_bytes(b'{"a": "\xff"}'), r"config\.json: line 1 .*UTF-8"),
    ("heads-text", _config(lambda d: d.update(heads="harmless")), r"config\.json: .*'heads'"),
    ("head-not-object", _config(lambda d: d.update(heads=[1, 2])), r"config\.json: .*head 1"),
    ("head-unknown-key", _config(lambda d: d["heads"][0].update(colour="red")), r"config\.json: .*colour"),
    ("head-pooling-unknown", _config(lambda d: d["heads"][0].update(pooling="max")), r"config\.json: .*pooling.*max"),
    ("head-features-text", _config(lambda d: d["heads"][0].update(features="response")), r"config\.json: .*features"),
    ("head-hidden-text", _config(lambda d: d["heads"][0].update(hidden="abc")), r"config\.json: .*hidden.*'abc'"),
    ("head-hidden-huge", _config(lambda d: d["heads"][1].update(hidden=10**10)),
     r"config\.json: head 'helpful': hidden 10000000000 .*expected hidden in 0\.\.8192"),
    ("head-dropout-bool", _config(lambda d: d["heads"][0].update(dropout=True)), r"config\.json: .*dropout"),
    ("max-length-text", _config(lambda d: d.update(max_length="abc")), r"config\.json: .*'max_length' is 'abc'"),
    ("max-length-huge", _config(lambda d: d.update(max_length=10**9)), r"config\.json: .*max_length"),
    ("prompt-tokens-bool", _config(lambda d: d.update(prompt_tokens=True)), r"config\.json: .*'prompt_tokens' is True"),
    ("input-format-unknown", _config(lambda d: d.update(input_format="image")), r"config\.json: .*input_format"),
    ("fingerprint-number", _config(lambda d: d.update(encoder_fingerprint=5)), r"config\.json: .*encoder_fingerprint"),
    ("encoder-missing", _config(lambda d: d.__delitem__("encoder")), r"config\.json: .*'encoder'"),
    ("objectives-disagree", _config(lambda d: d.update(objectives=["x", "y"])), r"config\.json: objectives"),
    ("format-missing", _config(lambda d: d.__delitem__("format_version")), r"config\.json: format_version None"),
    ("weights-garbage", lambda f: (f / "model.safetensors").write_bytes(b"\x01" * 50), r"model\.safetensors: unreadable"),
    ("weights-nan", _tensors(_nan), r"model\.safetensors: .*not finite"),
    ("weights-int", _tensors(_ints), r"model\.safetensors: .*(int64|floating)"),
    ("weights-wrong-shape", _tensors(lambda s: {k: (v[..., :3].clone() if k == _first_weight(s) else v)
                                                for k, v in s.items()}), r"model\.safetensors: .*shape"),
    ("encoder-folder-missing", _config(lambda d: d.update(encoder="/nonexistent/encoder")),
     r"/nonexistent/encoder: encoder folder not found"),
]


@pytest.mark.parametrize("name,mutate,match", BROKEN_HEADS, ids=[c[0] for c in BROKEN_HEADS])
def test_broken_heads_folder(heads_dir, name, mutate, match):
    from preforch.rewards.heads import SharedEncoderHeads

    mutate(heads_dir)
    with pytest.raises(PreforchError, match=match) as info:
        SharedEncoderHeads.from_pretrained(heads_dir)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,mutate,match", [c for c in BROKEN_HEADS if c[0] in {
    "config-list", "head-hidden-huge", "max-length-text", "weights-nan"}], ids=lambda v: v if isinstance(v, str) else "")
def test_broken_heads_folder_cli_score(heads_dir, tmp_path, capsys, pairs_file, name, mutate, match):
    mutate(heads_dir)
    one_line_error(capsys, "score", "--input", pairs_file, "--output", tmp_path / "out.jsonl", "--scorers",
                   f"[{{type: heads, path: {heads_dir}}}]", "--cache", "false", "--progress", "false", match=match)


# ---- Hugging Face reward-model folders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_master(tmp_path_factory) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rewards"))
    from tiny_rm import make_bert_classifier

    return make_bert_classifier(tmp_path_factory.mktemp("rm") / "rm")


BROKEN_CLASSIFIERS = [
    ("config-invalid", lambda f: (f / "config.json").write_text("{"), r"rm/config\.json: not valid JSON"),
    ("config-list", lambda f: (f / "config.json").write_text("[]"), r"rm/config\.json: expected a JSON object"),
    ("config-not-utf8", lambda f: (f / "config.json").write_bytes(b'{"x": "\xff"}'), r"rm/config\.json: line 1 .*UTF-8"),
    ("weights-garbage", lambda f: (f / "model.safetensors").write_bytes(b"\x02" * 80), r"rm: cannot load"),
    ("weights-missing", lambda f: (f / "model.safetensors").unlink(), r"rm: cannot load"),
    ("tokenizer-missing", lambda f: [p.unlink() for p in f.glob("*") if "vocab" in p.name or "tokenizer" in p.name],
     r"rm: (cannot load|the tokenizer has no vocabulary)"),
    ("num-labels-text", lambda f: (f / "config.json").write_text(json.dumps(
        {**json.loads((f / "config.json").read_text()), "id2label": "abc"})), r"rm: cannot load"),
]


@pytest.mark.parametrize("name,mutate,match", BROKEN_CLASSIFIERS, ids=[c[0] for c in BROKEN_CLASSIFIERS])
def test_broken_hf_reward_model(classifier_master, tmp_path, capsys, pairs_file, name, mutate, match):
    folder = Path(shutil.copytree(classifier_master, tmp_path / "rm"))
    mutate(folder)
    one_line_error(capsys, "score", "--input", pairs_file, "--output", tmp_path / "out.jsonl", "--scorers",
                   f"[{{type: hf, path: {folder}, template: plain}}]", "--cache", "false", "--progress", "false",
                   match=match)


# ---- property: random edits of a heads config load cleanly or fail in one line ---------------------------------

VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-5, max_value=10**12),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
              st.sampled_from(["response", "mean", "response_mean", "prompt_response", "length"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_heads_config_mutations(heads_master, tmp_path_factory, data):
    import numpy as np

    from preforch.rewards.heads import SharedEncoderHeads

    folder = Path(shutil.copytree(heads_master, tmp_path_factory.mktemp("mut") / "heads"))
    config = json.loads((folder / "config.json").read_text())
    target = data.draw(st.sampled_from(["top", "head0", "head1"]))
    obj = config if target == "top" else config["heads"][int(target[-1])]
    key = data.draw(st.sampled_from(sorted(obj)))
    if data.draw(st.booleans()):
        del obj[key]
    else:
        obj[key] = data.draw(VALUES)
    (folder / "config.json").write_text(json.dumps(config))
    try:
        heads = SharedEncoderHeads.from_pretrained(folder)
    except PreforchError as err:
        assert "\n" not in str(err), str(err)
        return
    scores = heads.score(["a question"], ["an answer"])
    assert scores.shape == (1, len(heads.objectives)) and np.isfinite(scores).all()
