"""Security (issue 12): an artifact can never switch on code execution. Every loader path is pointed at a
model folder whose config asks for custom code (``auto_map``); that code writes a marker file when imported.
Without the user's own flag each path refuses in one line, the marker never appears, and nothing waits for an
answer on stdin; the refusal names the flag that allows it, and that flag exists on the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hostile_helpers import RULE_SCORER, build_adapter, cli, one_line_error, scored_rows, write_jsonl

from preforch.errors import PreforchError

TRUST_HINT = r"trust_remote_code.*--trust-remote-code"


def _asking_adapter(tmp_path: Path, encoder_dir: Path, trust: bool = True, **settings) -> Path:
    folder = build_adapter(tmp_path / "adapter", encoder_dir, **settings)
    config = json.loads((folder / "config.json").read_text())
    config["adapter"]["trust_remote_code"] = trust
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _has_flag(capsys, *command) -> bool:
    with pytest.raises(SystemExit):
        cli(capsys, *command, "--help")
    return "--trust-remote-code" in capsys.readouterr().out


# ---- the adapter asks for remote code ------------------------------------------------------------------------


def test_adapter_asking_is_refused_by_the_library(tmp_path, evil):
    from preforch.adapter import PreferenceAdapter

    folder = _asking_adapter(tmp_path, evil)
    with pytest.raises(PreforchError, match=TRUST_HINT):
        PreferenceAdapter.from_pretrained(folder)


def test_adapter_asking_is_refused_by_weights(tmp_path, capsys, evil):
    folder = _asking_adapter(tmp_path, evil)
    one_line_error(capsys, "weights", "--adapter", folder, "hello", match=TRUST_HINT)
    assert _has_flag(capsys, "weights")


def test_adapter_asking_is_refused_by_evaluate_adapter(tmp_path, capsys, evil):
    folder = _asking_adapter(tmp_path, evil)
    data = write_jsonl(tmp_path / "scored.jsonl", scored_rows())
    one_line_error(capsys, "evaluate", "adapter", "--adapter", folder, "--data", data, "--output-dir",
                   tmp_path / "eval", "--plots", "false", match=TRUST_HINT)
    assert not (tmp_path / "eval").exists()
    assert _has_flag(capsys, "evaluate", "adapter")


def test_adapter_asking_is_refused_by_evaluate_responses(tmp_path, capsys, evil):
    folder = _asking_adapter(tmp_path, evil)
    rows = [{"prompt": f"p{i % 3}", "response": f"r{i}", "score.helpful": i, "score.harmless": -i, "score.concise": 1}
            for i in range(6)]
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    one_line_error(capsys, "evaluate", "responses", "--responses", responses, "--adapter", folder, "--output-dir",
                   tmp_path / "eval", "--plots", "false", match=TRUST_HINT)
    assert _has_flag(capsys, "evaluate", "responses")


def test_adapter_asking_is_refused_by_generate(tmp_path, capsys, evil, monkeypatch):
    from preforch.models import generation

    monkeypatch.setattr(generation, "load_policy", lambda *a, **k: pytest.fail("the policy loaded first"))
    folder = _asking_adapter(tmp_path, evil)
    config = tmp_path / "generate.yaml"
    config.write_text(f"scorers: {RULE_SCORER}\n")
    one_line_error(capsys, "generate", "--config", config, "--prompts", "hi", "--best-of", "2", "--adapter", folder,
                   match=TRUST_HINT)
    assert _has_flag(capsys, "generate")


def test_adapter_asking_is_refused_by_align(tmp_path, evil):
    from preforch.align.config import GRPOJob
    from preforch.align.runs import load_parts

    folder = _asking_adapter(tmp_path, evil)
    job = GRPOJob(adapter=str(folder), output_dir=str(tmp_path / "run"))
    with pytest.raises(PreforchError, match=TRUST_HINT):
        load_parts(job, scorer=object(), policy=(None, None))


@pytest.mark.parametrize("route", ["grpo", "rloo", "dpo", "conditioned"])
def test_align_routes_have_the_flag(capsys, route):
    assert _has_flag(capsys, "align", route)


def test_user_flag_allows_it(tmp_path, capsys, evil_dir):
    """The positive control: with the user's own --trust-remote-code the custom code does run."""
    folder = _asking_adapter(tmp_path, evil_dir)
    marker = evil_dir / "PWNED"
    marker.unlink(missing_ok=True)
    try:
        rc, out, _ = cli(capsys, "weights", "--adapter", folder, "--trust-remote-code", "hello")
        assert rc == 0 and '"weights"' in out
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)


# ---- the artifact does not ask, but points at a folder that would run code ----------------------------------


@pytest.mark.parametrize("encoder", ["sentence", "causal_lm"])
def test_adapter_encoder_folder_with_custom_code(tmp_path, capsys, evil, encoder):
    folder = _asking_adapter(tmp_path, evil, trust=False, encoder=encoder)
    one_line_error(capsys, "weights", "--adapter", folder, "hello", match=r"custom code.*--trust-remote-code")


def test_heads_folder_encoder_with_custom_code(tmp_path, capsys, evil, tiny_encoder_dir, pairs_file):
    from preforch.artifacts import folder_fingerprint
    from preforch.models.encoders import SentenceEncoder
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    encoder = SentenceEncoder(str(tiny_encoder_dir), normalize=False)
    heads = SharedEncoderHeads(HeadsConfig(heads=[HeadSpec("harmless")]), encoder=encoder)
    heads.save_pretrained(tmp_path / "heads")
    config = json.loads((tmp_path / "heads" / "config.json").read_text())
    config["encoder"], config["encoder_fingerprint"] = str(evil), folder_fingerprint(evil)
    (tmp_path / "heads" / "config.json").write_text(json.dumps(config))
    scorers = f"[{{type: heads, path: {tmp_path / 'heads'}}}]"
    one_line_error(capsys, "score", "--input", pairs_file, "--output", tmp_path / "out.jsonl", "--scorers", scorers,
                   "--cache", "false", "--progress", "false", match=r"custom code.*never run custom code")


def test_hf_scorer_folder_with_custom_code(tmp_path, capsys, evil, pairs_file):
    scorers = f"[{{type: hf, path: {evil}, objective: r}}]"
    one_line_error(capsys, "score", "--input", pairs_file, "--output", tmp_path / "out.jsonl", "--scorers", scorers,
                   "--cache", "false", "--progress", "false", match=r"custom code.*trust_remote_code")


def test_policy_folder_with_custom_code(tmp_path, capsys, evil):
    one_line_error(capsys, "generate", "--prompts", "hi", "--policy", evil, match=r"custom code.*--trust-remote-code")


def test_conditioned_final_folder_with_custom_code(tmp_path, evil):
    """A `final/` folder of `align conditioned` (full weights) whose code asks to run."""
    from preforch.infer.generation import load_final_policy

    final = Path(shutil.copytree(evil, tmp_path / "final"))
    with pytest.raises(PreforchError, match=r"custom code"):
        load_final_policy(final)


def test_conditioned_peft_folder_with_custom_code(tmp_path, evil):
    """A PEFT `final/` folder whose base model and tokenizer ask for custom code: refused, no stdin prompt."""
    from preforch.infer.generation import load_final_policy

    final = tmp_path / "final"
    final.mkdir()
    for name in ("tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "evil_code.py"):
        shutil.copy(evil / name, final / name)
    (final / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(evil), "r": 2,
        "lora_alpha": 4, "target_modules": ["query"]}))
    with pytest.raises(PreforchError, match=r"custom code"):
        load_final_policy(final)
