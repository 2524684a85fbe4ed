"""Hostile command-line values: weights, blends, batch sizes, devices, message lists, undecodable argument
bytes, score caches and training that cannot converge. One line each, or the right result."""

from __future__ import annotations

import json
import os

import pytest
from hostile_helpers import RULE_SCORER, cli, one_line_error, scored_rows, write_jsonl


@pytest.mark.parametrize("args,match", [
    (["--user-weights", "nan,1,1"], r"finite"),
    (["--user-weights", "inf,1,1"], r"finite"),
    (["--user-weights", "1e309,1,1"], r"finite"),
    (["--user-weights=-1,1,1"], r"non-negative"),
    (["--user-weights", "0,0,0"], r"positive"),
    (["--user-weights", "1,1"], r"3 weights"),
    (["--user-weights", "a,b,c"], r"setting 'user_weights' is 'a,b,c', expected list of float or mapping"),
    (["--user-weights", "1,,1"], r"setting 'user_weights' is '1,,1', expected list of float or mapping"),
    (["--user-weights", "1,1,1", "--blend", "2"], r"blend"),
    (["--user-weights", "1,1,1", "--blend", "nan"], r"blend"),
    (["--user-weights", "1,1,1", "--blend", "-0.1"], r"blend"),
    (["--weight-mode", "blend"], r"(user|weights)"),
    (["--weight-mode", "fixed"], r"(user|weights)"),
    (["--fallback", "sometimes"], r"setting 'fallback' is 'sometimes', expected \{off,on,uniform\}"),
    (["--batch-size", "0"], r"--batch-size.*(positive|>= 1)"),
    (["--batch-size", "-5"], r"--batch-size.*(positive|>= 1)"),
    (["--messages", '{"role": "user", "content": "hi"}'], r"--messages 1"),
    (["--messages", "[]"], r"--messages 1"),
    (["--messages", '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]'],
     r"--messages 1.*user turn"),
    (["--messages", '[{"role": "user", "content": "\\ud800"}]'], r"--messages 1.*surrogate"),
    (["--messages", '[{"role": "user", "content": ' + "[" * 100_000 + "]" * 100_000 + "}]"], r"--messages 1"),
    (["caf\udce9 au lait"], r"prompt argument 1.*surrogate"),
], ids=["nan", "inf", "overflow", "negative", "zeros", "count", "text", "empty-item", "blend-2", "blend-nan",
        "blend-negative", "blend-without-user", "fixed-without-user", "fallback-choice", "batch-0", "batch-negative",
        "messages-object",
        "messages-empty", "messages-ends-with-assistant", "messages-surrogate", "messages-deep", "argv-bad-byte"])
def test_weights_bad_arguments(adapter_dir, capsys, args, match):
    prompts = [] if any(a.startswith("caf") for a in args) else ["how do I sort a list?"]
    one_line_error(capsys, "weights", "--adapter", adapter_dir, *prompts, *args, match=match)


def test_weights_huge_finite_user_weights(adapter_dir, capsys):
    rc, out, err = cli(capsys, "weights", "--adapter", adapter_dir, "hi", "--user-weights", "1e308,1e308,1e308")
    assert rc == 0, err
    weights = json.loads(out)["weights"]
    assert all(abs(w - 1 / 3) < 1e-12 for w in weights.values())


def test_weights_mode_is_the_old_spelling_of_weight_mode(adapter_dir, capsys):
    rc, out, err = cli(capsys, "weights", "--adapter", adapter_dir, "hi", "--mode", "fixed", "--user-weights", "1,0,0")
    assert rc == 0, err
    record = json.loads(out)
    assert record["mode"] == "fixed" and list(record["weights"].values()) == [1.0, 0.0, 0.0]
    assert "preforch: warning: --mode is deprecated; use --weight-mode" in err.splitlines()
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "hi", "--mode", "fixed", "--weight-mode", "blend",
                   match=r"--mode fixed and --weight-mode blend disagree")


@pytest.mark.parametrize("content,match", [
    (b"caf\xe9\n", r"prompts\.txt: line 1 .*UTF-8"),
    (b"", r"prompts\.txt: no prompts"),
], ids=["not-utf8", "empty"])
def test_weights_bad_prompts_file(adapter_dir, tmp_path, capsys, content, match):
    path = tmp_path / "prompts.txt"
    path.write_bytes(content)
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "--prompts-file", path, match=match)


def test_weights_prompts_file_fifo(adapter_dir, tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    os.mkfifo(path)
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "--prompts-file", path, match=r"not a regular file")


# ---- score: settings and the cache ------------------------------------------------------------------------------


@pytest.mark.parametrize("extra,match", [
    (["--cache-path", "/proc/preforch/scores.sqlite"], r"/proc/preforch/scores\.sqlite: cannot"),
    (["--cache-path", "{tmp}"], r"score cache path is a folder"),
    (["--cache-path", "{tmp}/garbage.sqlite"], r"garbage\.sqlite: not a usable score cache"),
    (["--device", "cuda:7"], r"device cuda:7.*not available"),
    (["--device", "toaster"], r"device toaster.*not a torch device"),
    (["--batch-size", "0"], r"batch_size must be >= 1"),
    (["--scorers", "[{type: nope}]"], r"scorers\[1\].*'type' in"),
    (["--scorers", "[{type: rule, name: concise, colour: red}]"], r"unknown key.*colour"),
], ids=["cache-in-proc", "cache-is-folder", "cache-corrupt", "device-missing", "device-bogus", "batch-0",
        "scorer-type", "scorer-key"])
def test_score_bad_settings(tmp_path, capsys, pairs_file, extra, match):
    (tmp_path / "garbage.sqlite").write_bytes(b"this is not a database" * 100)
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    args = ["score", "--input", pairs_file, "--output", tmp_path / "out.jsonl", "--progress", "false"]
    if "--scorers" not in extra:
        args += ["--scorers", RULE_SCORER]
    one_line_error(capsys, *args, *extra, match=match)
    assert not (tmp_path / "out.jsonl").exists()


# ---- adapter training ----------------------------------------------------------------------------------------


def _train_args(tmp_path, data, encoder, *extra):
    return ["adapter", "train", "--data", data, "--output", tmp_path / "adapter", "--encoder-path", encoder,
            "--epochs", "3", "--hidden", "8", "--plot", "false", "--progress", "false", "--cache-embeddings", "false",
            *extra]


def test_adapter_train_validation_loss_never_finite(tiny_encoder_dir):
    """The guard in adapter/train.py: a model that never gives a finite validation loss is one line, not a
    TypeError about the missing best state."""
    import torch

    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.data.load import to_preference_data
    from preforch.errors import PreforchError

    data = to_preference_data(scored_rows(30), source="rows.jsonl")
    config = AdapterConfig(encoder_path=str(tiny_encoder_dir), hidden=8, epochs=3, patience=2, cache_embeddings=False)
    embeddings = torch.full((30, 32), float("inf"))  # [N, D]: an encoder that returned inf
    with pytest.raises(PreforchError, match=r"rows\.jsonl: the validation loss was never finite"):
        train_adapter(config, data, embeddings=embeddings, progress=False)


def test_adapter_train_absurd_learning_rate(tmp_path, capsys, scored_file, tiny_encoder_dir):
    """lr 1e38 made AdamW's step overflow float32 (a RuntimeError mid-training); refused up front."""
    one_line_error(capsys, *_train_args(tmp_path, scored_file, tiny_encoder_dir, "--lr", "1e38"),
                   match=r"invalid value for lr=1e\+38")
    assert not (tmp_path / "adapter").exists()


def test_adapter_train_extreme_finite_scores(tmp_path, capsys, tiny_encoder_dir):
    rows = scored_rows(30)
    for i, r in enumerate(rows):
        r["score.helpful"] = 1e308 if i % 2 else -1e308
    data = write_jsonl(tmp_path / "extreme.jsonl", rows)
    rc, _, err = cli(capsys, *_train_args(tmp_path, data, tiny_encoder_dir))
    assert rc == 0, err
    from preforch.adapter import PreferenceAdapter

    adapter = PreferenceAdapter.from_pretrained(tmp_path / "adapter")
    assert adapter.predict_weights(["hello"]).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("extra,match", [
    (["--device", "cuda:7"], r"device.*cuda:7.*not available"),
    (["--data", "/nonexistent/data.jsonl"], r"/nonexistent/data\.jsonl: data file not found"),
], ids=["device", "missing-data"])
def test_adapter_train_bad_settings(tmp_path, capsys, scored_file, tiny_encoder_dir, monkeypatch, extra, match):
    from preforch.adapter import train

    monkeypatch.setattr(train, "train_adapter", lambda *a, **k: pytest.fail("training started"))
    one_line_error(capsys, *_train_args(tmp_path, scored_file, tiny_encoder_dir, *extra), match=match)


def test_adapter_train_one_objective(tmp_path, capsys, tiny_encoder_dir):
    rows = [{"prompt": f"p{i}", "chosen": "c", "score.helpful": float(i)} for i in range(10)]
    data = write_jsonl(tmp_path / "one.jsonl", rows)
    one_line_error(capsys, *_train_args(tmp_path, data, tiny_encoder_dir), match=r"one\.jsonl: 1 objective")


def test_generate_unusable_device(capsys, monkeypatch):
    import preforch.recipes.generate  # noqa: F401  (imported first: modules that bind load_policy get the real one)
    from preforch.models import generation

    monkeypatch.setattr(generation, "load_policy", lambda *a, **k: pytest.fail("the policy loaded first"))
    one_line_error(capsys, "generate", "--prompts", "hi", "--device", "cuda:7", match=r"device cuda:7.*not available")
