"""Issue 25: every data-reading command takes the column settings. Rows whose prompt is in a ``question`` column and
whose replies are in ``good`` / ``bad`` are read with --prompt-column / --chosen-column / --rejected-column, and
without them each command stops with one line naming the column it looked for."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from preforch.cli.main import main
from preforch.rewards.normalize import Normalizer

RULES = '[{type: rule, name: concise}, {type: rule, name: sentiment, objective: positive}]'
MAPPED = ["--prompt-column", "question", "--chosen-column", "good", "--rejected-column", "bad"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("columns")
    pairs = [{"question": f"How do I do thing {i} in topic {i % 5}?", "good": "Like this, kindly and well. " * (1 + i % 3),
              "bad": "No, go away." if i % 2 else "That is terrible."} for i in range(40)]
    scored = [{**r, "score.concise": -1.0 - i % 3, "score.positive": 0.1 * (i % 7),
               "score_rejected.concise": -2.0, "score_rejected.positive": 0.0} for i, r in enumerate(pairs)]
    replies = [{"question": f"question {i}", "response": "yes " * j, "score.concise": -float(j),
                "score.positive": 0.1 * j} for i in range(3) for j in (1, 2)]
    probes = [{"question": text, "expected": label} for text, label in
              [("Answer in one word: sky colour?", "concise"), ("Cheer me up please", "positive"),
               ("Yes or no: is it raining?", "concise"), ("Say something kind to me", "positive")]]
    norm = folder / "normalizer.json"
    Normalizer(["concise", "positive"]).fit(np.array([[-1.0, 0.0], [-3.0, 0.5], [-2.0, 0.2]])).save(norm)
    return {"folder": folder, "pairs": write_jsonl(folder / "pairs.jsonl", pairs),
            "scored": write_jsonl(folder / "scored.jsonl", scored),
            "replies": write_jsonl(folder / "replies.jsonl", replies),
            "probes": write_jsonl(folder / "probes.jsonl", probes), "normalizer": norm}


def run(capsys, *argv) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line(err: str, pattern: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("preforch: error: ")]
    assert len(lines) == 1 and re.search(pattern, lines[0]), err


def commands(files, tiny_encoder_dir, tiny_policy_dir) -> dict[str, list]:
    f, out = files, files["folder"]
    align = ["--normalizer", f["normalizer"], "--policy", tiny_policy_dir, "--scorers", RULES, "--limit", "4",
             "--max-steps", "1", "--data", f["pairs"]]
    return {
        "score": ["score", "--input", f["pairs"], "--scorers", RULES, "--cache", "false", "--progress", "false",
                  "--output", out / "scores.jsonl"],
        "adapter train": ["adapter", "train", "--data", f["scored"], "--encoder-path", tiny_encoder_dir, "--epochs",
                          "2", "--hidden", "8", "--plot", "false", "--progress", "false", "--examples", "0",
                          "--cache-embeddings", "false", "--output", out / "adapter"],
        "rm train": ["rm", "train", "--data", f["pairs"], "--encoder", tiny_encoder_dir, "--objective", "polite",
                     "--epochs", "1", "--max-length", "32", "--prompt-tokens", "8", "--bootstrap", "10",
                     "--cv-folds", "0", "--progress", "false", "--output-dir", out / "rm"],
        "evaluate adapter": ["evaluate", "adapter", "--adapter", out / "adapter", "--data", f["scored"],
                             "--reward-model-prompts", "[]", "--bootstrap", "0", "--plots", "false",
                             "--output-dir", out / "eval_adapter"],
        "evaluate responses": ["evaluate", "responses", "--responses", f["replies"], "--plots", "false",
                               "--output-dir", out / "eval_responses"],
        "evaluate routing": ["evaluate", "routing", "--adapter", out / "adapter", "--data", f["probes"],
                             "--bootstrap", "0", "--plots", "false", "--output-dir", out / "eval_routing"],
        "align grpo": ["align", "grpo", "--config", "configs/tiny/align_grpo.yaml", *align,
                       "--output-dir", out / "grpo"],
        "align dpo": ["align", "dpo", "--config", "configs/tiny/align_dpo.yaml", *align, "--pairs-from", "columns",
                      "--output-dir", out / "dpo"],
        "align conditioned": ["align", "conditioned", "--config", "configs/tiny/align_conditioned.yaml", *align,
                              "--output-dir", out / "conditioned"],
    }


#: the flags each command takes (a command that reads no responses has only --prompt-column).
PROMPT_ONLY = {"evaluate responses", "evaluate routing", "align grpo"}
#: what the one-line error names without the settings.
MISSING = {"evaluate routing": r"column 'prompt'", "align grpo": r"column 'prompt'",
           "evaluate responses": r"'prompt' column", "align dpo": r"'chosen'.*'good'.*--chosen-column",
           "align conditioned": r"'chosen'.*'good'.*--chosen-column"}


@pytest.mark.parametrize("name", ["score", "adapter train", "rm train", "evaluate adapter", "evaluate responses",
                                  "evaluate routing", "align grpo", "align dpo", "align conditioned"])
def test_question_column_via_the_setting_else_one_line(name, files, tiny_encoder_dir, tiny_policy_dir, capsys):
    argv = commands(files, tiny_encoder_dir, tiny_policy_dir)
    if name.startswith("evaluate ") and name != "evaluate responses" and not (files["folder"] / "adapter").exists():
        assert run(capsys, *argv["adapter train"], *MAPPED)[0] == 0
    rc, err = run(capsys, *argv[name])
    assert rc == 2
    assert_one_line(err, MISSING.get(name, r"'prompt'.*'question'.*--prompt-column"))
    flags = MAPPED[:2] if name in PROMPT_ONLY else MAPPED
    rc, err = run(capsys, *argv[name], *flags)
    assert rc == 0, err[-2000:]
