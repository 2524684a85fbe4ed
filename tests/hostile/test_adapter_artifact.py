"""Hostile adapter folders: a corrupt config.json, normalizer.json or model.safetensors is one line naming the
file and the field, at load time (never a traceback, a 500 or ``null`` weights later); a property test
mutates the JSON files at random."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hostile_helpers import one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preforch.adapter import PreferenceAdapter
from preforch.errors import PreforchError


def _edit_json(name: str, edit):
    def mutate(folder: Path) -> None:
        path = folder / name
        data = json.loads(path.read_text())
        result = edit(data)
        path.write_text(json.dumps(data if result is None else result))
    return mutate


def _set(name: str, keys: tuple, value):
    def edit(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return _edit_json(name, edit)


def _drop(name: str, keys: tuple):
    def edit(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return _edit_json(name, edit)


def _write(name: str, content: bytes):
    def mutate(folder: Path) -> None:
        (folder / name).write_bytes(content)
    return mutate


def _tensors(edit):
    def mutate(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        state = load_file(str(folder / "model.safetensors"))
        save_file(edit(state), str(folder / "model.safetensors"))
    return mutate


def _nan_weights(state):
    key = next(k for k in state if k.endswith("weight"))
    state[key][0, 0] = float("nan")
    return state


def _int_weights(state):
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key].round().to(__import__("torch").int32)
    return state


def _truncate(name: str, keep: int):
    def mutate(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:keep])
    return mutate


CONFIG, NORM, WEIGHTS = "config.json", "normalizer.json", "model.safetensors"
# name, mutation, regular expression the error must match
BROKEN_ADAPTERS = [
    ("config-list", _write(CONFIG, b"[1, 2]"), r"config\.json: expected a JSON object, got list"),
    ("config-string", _write(CONFIG, b'"adapter"'), r"config\.json: expected a JSON object, got str"),
    ("config-invalid-json", _write(CONFIG, b'{"artifact": '), r"config\.json: not valid JSON"),
    ("config-not-utf8", _write(CONFIG, b'{"artifact": "\xff"}'), r"config\.json: line 1 .*UTF-8"),
    ("config-empty", _write(CONFIG, b""), r"config\.json: not valid JSON"),
    ("config-no-adapter", _drop(CONFIG, ("adapter",)), r"config\.json: .*'adapter'"),
    ("config-no-objectives", _drop(CONFIG, ("objectives",)), r"config\.json: .*'objectives'"),
    ("config-no-embedding-dim", _drop(CONFIG, ("embedding_dim",)), r"config\.json: .*'embedding_dim'"),
    ("embedding-dim-text", _set(CONFIG, ("embedding_dim",), "abc"), r"config\.json: .*'embedding_dim'.*'abc'"),
    ("embedding-dim-bool", _set(CONFIG, ("embedding_dim",), True), r"config\.json: .*'embedding_dim'.*True"),
    ("embedding-dim-zero", _set(CONFIG, ("embedding_dim",), 0), r"config\.json: .*'embedding_dim'.*0"),
    ("embedding-dim-huge", _set(CONFIG, ("embedding_dim",), 10**12), r"(config\.json|model\.safetensors): .*"),
    ("objectives-text", _set(CONFIG, ("objectives",), "abc"), r"config\.json: .*'objectives'"),
    ("objectives-numbers", _set(CONFIG, ("objectives",), [1, 2, 3]), r"config\.json: .*'objectives'"),
    ("objectives-duplicate", _set(CONFIG, ("objectives",), ["a", "a", "b"]), r"config\.json: .*'objectives'"),
    ("objectives-one", _set(CONFIG, ("objectives",), ["a"]), r"config\.json: .*'objectives'"),
    ("objectives-differ-from-normalizer", _set(CONFIG, ("objectives",), ["x", "y", "z"]),
     r"normalizer\.json.*objectives"),
    ("adapter-list", _set(CONFIG, ("adapter",), [1]), r"config\.json: .*'adapter'.*list"),
    ("hidden-text", _set(CONFIG, ("adapter", "hidden"), "abc"), r"config\.json: .*'hidden' is 'abc'"),
    ("hidden-float", _set(CONFIG, ("adapter", "hidden"), 8.5), r"config\.json: .*'hidden' is 8\.5"),
    ("hidden-huge", _set(CONFIG, ("adapter", "hidden"), 10**12), r"config\.json: .*hidden=1000000000000 \(expected "
                                                                  r"1\.\.8192\)"),
    ("layers-zero", _set(CONFIG, ("adapter", "layers"), 0), r"config\.json: .*layers=0"),
    ("activation-unknown", _set(CONFIG, ("adapter", "activation"), "swish"), r"config\.json: .*'activation'.*swish"),
    ("dropout-text", _set(CONFIG, ("adapter", "dropout"), "x"), r"config\.json: .*'dropout'"),
    ("prompt-view-unknown", _set(CONFIG, ("adapter", "prompt_view"), "everything"), r"config\.json: .*prompt_view"),
    ("encoder-unknown", _set(CONFIG, ("adapter", "encoder"), "magic"), r"config\.json: .*'encoder'"),
    ("encoder-path-number", _set(CONFIG, ("adapter", "encoder_path"), 7), r"config\.json: .*'encoder_path'"),
    ("format-version-text", _set(CONFIG, ("format_version",), "2"), r"config\.json: unknown format_version '2'"),
    ("artifact-wrong", _set(CONFIG, ("artifact",), "something-else"), r"config\.json: not a preforch adapter"),
    ("normalizer-list", _write(NORM, b"[]"), r"normalizer\.json: expected a JSON object, got list"),
    ("normalizer-invalid-json", _write(NORM, b"{"), r"normalizer\.json: not valid JSON"),
    ("normalizer-no-stats", _drop(NORM, ("stats",)), r"normalizer\.json: .*'stats'"),
    ("normalizer-stats-list", _set(NORM, ("stats",), [1, 2]), r"normalizer\.json: .*stats"),
    ("normalizer-no-std", _drop(NORM, ("stats", "std")), r"normalizer\.json: .*'std'"),
    ("normalizer-mean-short", _set(NORM, ("stats", "mean"), [0.0, 0.0]), r"normalizer\.json: .*'mean'.*3"),
    ("normalizer-mean-nan", _set(NORM, ("stats", "mean"), [0.0, math.nan, 0.0]), r"normalizer\.json: .*'mean'.*finite"),
    ("normalizer-std-zero", _set(NORM, ("stats", "std"), [1.0, 0.0, 1.0]), r"normalizer\.json: .*'std'.*positive"),
    ("normalizer-std-text", _set(NORM, ("stats", "std"), ["a", "b", "c"]), r"normalizer\.json: .*'std'"),
    ("normalizer-std-bool", _set(NORM, ("stats", "std"), [True, True, True]), r"normalizer\.json: .*'std'"),
    ("normalizer-method-number", _set(NORM, ("method",), 3), r"normalizer\.json: .*method"),
    ("normalizer-method-unknown", _set(NORM, ("method",), "sigmoid"), r"normalizer\.json: .*method"),
    ("normalizer-clip-text", _set(NORM, ("clip",), "abc"), r"normalizer\.json: .*clip"),
    ("normalizer-clip-negative", _set(NORM, ("clip",), -1), r"normalizer\.json: .*clip"),
    ("normalizer-objectives-text", _set(NORM, ("objectives",), "abc"), r"normalizer\.json: .*objectives"),
    ("normalizer-minmax-flat", _edit_json(NORM, lambda d: d.update(method="minmax", stats={
        "min": [0.0, 0.0, 0.0], "max": [1.0, 0.0, 1.0]})), r"normalizer\.json: .*max.*min"),
    ("normalizer-rank-unsorted", _edit_json(NORM, lambda d: d.update(method="rank", stats={
        "sorted": [3.0, 1.0, 2.0] * 3})), r"normalizer\.json: .*sorted"),
    ("normalizer-rank-ragged", _edit_json(NORM, lambda d: d.update(method="rank", stats={
        "sorted": [1.0, 2.0, 3.0, 4.0]})), r"normalizer\.json: .*sorted"),
    ("normalizer-format-2", _set(NORM, ("format_version",), 2), r"normalizer\.json: .*format_version"),
    ("weights-truncated", _truncate(WEIGHTS, 100), r"model\.safetensors: cannot read"),
    ("weights-garbage", _write(WEIGHTS, b"\x00" * 64), r"model\.safetensors: cannot read"),
    ("weights-empty", _write(WEIGHTS, b""), r"model\.safetensors: cannot read"),
    ("weights-nan", _tensors(_nan_weights), r"model\.safetensors: .*not finite"),
    ("weights-int", _tensors(_int_weights), r"model\.safetensors: .*(int32|floating)"),
    ("weights-missing-key", _tensors(lambda s: {k: v for k, v in s.items() if k != "net.0.bias"}),
     r"model\.safetensors: .*net\.0\.bias"),
    ("weights-extra-key", _tensors(lambda s: {**s, "extra": s["net.0.bias"].clone()}), r"model\.safetensors: .*extra"),
    ("weights-wrong-shape", _tensors(lambda s: {**s, "net.0.bias": s["net.0.bias"][:3].clone()}),
     r"model\.safetensors: .*net\.0\.bias"),
    ("weights-missing", lambda f: (f / WEIGHTS).unlink(), r"model\.safetensors: missing"),
    ("weights-is-a-folder", lambda f: ((f / WEIGHTS).unlink(), (f / WEIGHTS).mkdir()), r"model\.safetensors: missing"),
    ("config-missing", lambda f: (f / CONFIG).unlink(), r"config\.json: missing"),
]


@pytest.mark.parametrize("name,mutate,match", BROKEN_ADAPTERS, ids=[c[0] for c in BROKEN_ADAPTERS])
def test_broken_adapter_library(adapter_dir, name, mutate, match):
    mutate(adapter_dir)
    with pytest.raises(PreforchError, match=match) as info:
        PreferenceAdapter.from_pretrained(adapter_dir)
    assert "\n" not in str(info.value)


CLI_CASES = [c for c in BROKEN_ADAPTERS if c[0] in {
    "config-list", "config-no-adapter", "embedding-dim-text", "hidden-text", "hidden-huge", "normalizer-mean-nan",
    "normalizer-std-zero", "normalizer-clip-text", "weights-nan", "weights-int", "objectives-differ-from-normalizer"}]


@pytest.mark.parametrize("name,mutate,match", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_broken_adapter_cli_weights(adapter_dir, capsys, name, mutate, match):
    mutate(adapter_dir)
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "how do I sort a list?", match=match)


def test_artifact_device_is_not_reused(adapter_dir, capsys):
    """An adapter saved on cuda:7 loads on the CPU by default (the artifact's device is never trusted)."""
    _set(CONFIG, ("adapter", "device"), "cuda:7")(adapter_dir)
    adapter = PreferenceAdapter.from_pretrained(adapter_dir)
    assert adapter.config.device == "cpu"
    weights = adapter.predict_weights(["hello there"])
    assert weights.shape == (1, 3) and np.isclose(weights.sum(), 1.0)


@pytest.mark.parametrize("device,match", [("cuda:7", r"--device cuda:7.*(not available|no CUDA)"),
                                          ("toaster", r"--device toaster.*not a torch device")])
def test_unusable_device_flag(adapter_dir, capsys, device, match):
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "--device", device, "hi", match=match)


def test_integer_normalizer_stats_load(adapter_dir):
    """Whole numbers are numbers: stats written as [0, 1, 2] load as floats."""
    _set(NORM, ("stats",), {"mean": [0, 1, 2], "std": [1, 2, 3]})(adapter_dir)
    adapter = PreferenceAdapter.from_pretrained(adapter_dir)
    assert adapter.normalizer.transform(np.array([[1, 1, 5]])).tolist() == [[1.0, 0.0, 1.0]]


def test_unknown_adapter_settings_are_refused(adapter_dir):
    _set(CONFIG, ("adapter", "trust_remote_cod"), True)(adapter_dir)
    with pytest.raises(PreforchError, match=r"config\.json: unknown adapter setting.*trust_remote_cod"):
        PreferenceAdapter.from_pretrained(adapter_dir)


# ---- property: random JSON edits load cleanly or fail in one line ----------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**6, max_value=10**15),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
              st.sampled_from(["zscore", "minmax", "rank", "gelu", "sentence", "last_user", "cpu"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_adapter_json_mutations(adapter_master, tmp_path_factory, data):
    import shutil

    folder = Path(shutil.copytree(adapter_master, tmp_path_factory.mktemp("mut") / "adapter"))
    name = data.draw(st.sampled_from([CONFIG, NORM]))
    original = json.loads((folder / name).read_text())
    where = data.draw(st.sampled_from([p for p in _paths(original) if p]))
    value = data.draw(JSON_VALUES)
    target = original
    for key in where[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[where[-1]]
    else:
        target[where[-1]] = value
    (folder / name).write_text(json.dumps(original))
    try:
        adapter = PreferenceAdapter.from_pretrained(folder)
    except PreforchError as err:
        assert "\n" not in str(err), str(err)
        return
    # what loads must work: finite weights on the simplex and finite normalised scores
    import torch

    k = len(adapter.objectives)
    w = adapter.predict_from_embeddings(torch.randn(4, adapter.dim)).numpy()
    assert w.shape == (4, k) and np.isfinite(w).all() and np.allclose(w.sum(1), 1.0, atol=1e-5)
    s = adapter.normalizer.transform(np.random.default_rng(0).normal(size=(4, k)))
    assert np.isfinite(s).all()
