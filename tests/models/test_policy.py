from __future__ import annotations

import hashlib
import os

import pytest

from preforch.cli.main import main
from preforch.models import policy as policy_mod


@pytest.fixture()
def fake_gguf(tmp_path, monkeypatch):
    """A stand-in GGUF file and cache root, and a counting stand-in for the conversion."""
    gguf = tmp_path / "pkg" / policy_mod.SMOLLM2_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"not really a gguf")
    monkeypatch.setenv("PREFORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(policy_mod, "gguf_path", lambda: gguf)
    calls = []

    def fake_convert(source, out_dir):
        calls.append(out_dir)
        (out_dir / "model.safetensors").write_bytes(b"x")
        return {"parameters": 1}

    monkeypatch.setattr(policy_mod, "convert_gguf", fake_convert)
    return gguf, calls


def test_cache_folder_is_keyed_by_hash_and_reused(fake_gguf, tmp_path):
    gguf, calls = fake_gguf
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert policy_mod.file_sha256(gguf) == sha
    first = policy_mod.prepare_policy()
    assert first == tmp_path / "cache" / "models" / f"smollm2-{sha[:16]}"
    assert policy_mod.is_converted(first) and len(calls) == 1
    assert policy_mod.prepare_policy() == first and len(calls) == 1  # second call does not convert
    policy_mod.prepare_policy(force=True)
    assert len(calls) == 2
    info = policy_mod.policy_info()
    assert info.converted and info.converted_dir == str(first) and info.sha256 == sha


def test_failed_conversion_leaves_nothing(fake_gguf, tmp_path, monkeypatch):
    def broken(source, out_dir):
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(policy_mod, "convert_gguf", broken)
    with pytest.raises(RuntimeError):
        policy_mod.prepare_policy()
    models = tmp_path / "cache" / "models"
    assert [n for n in os.listdir(models) if not n.endswith(".lock")] == []  # no folder, no staging leftovers
    assert not policy_mod.policy_info().converted


@pytest.mark.parametrize("argv", [["models", "--help"], ["models", "prepare", "--help"], ["models", "list", "--help"]])
def test_models_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: preforch models" in capsys.readouterr().out


def test_models_list_does_not_convert(fake_gguf, capsys):
    _, calls = fake_gguf
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "not converted yet" in out and "embedded:minilm" in out and calls == []


@pytest.mark.slow
def test_real_smollm2_prepares_and_replies():
    from preforch.models.generation import generate, load_policy

    path = policy_mod.prepare_policy()
    assert policy_mod.is_converted(path)
    model, tok = load_policy("embedded:smollm2")
    assert model.config.tie_word_embeddings
    reply = generate(model, tok, ["What is the capital of France?"], max_new_tokens=16, do_sample=False)
    assert "Paris" in reply[0][0]
