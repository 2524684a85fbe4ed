"""`on_bad_rows` on the align routes (issue 25): a row a route cannot read stops it with one line naming the row
(error, the default) or is set aside with its reason next to the run folder (skip), the rest trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_policy import PROMPTS

from preforch.align.config import ConditionedJob, DPOJob, GRPOJob
from preforch.align.data import preference_of, prompt_of, read_rows
from preforch.align.dpo import check_row
from preforch.cli.main import main
from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer

GOOD = [{"prompt": "hi", "chosen": "hello", "rejected": "go away"},
        {"prompt": "name a colour", "chosen": "blue", "rejected": "no"}]
BROKEN = [  # five kinds of broken row, as real files have them
    {"prompt": "", "chosen": "x", "rejected": "y"},                                     # empty prompt
    {"prompt": [{"role": "wizard", "content": "hi"}], "chosen": "x", "rejected": "y"},  # unknown role
    {"prompt": "ok", "chosen": None, "rejected": "y"},                                  # null response
    {"prompt": 3.5, "chosen": "x", "rejected": "y"},                                    # a number for a prompt
    {"prompt": "ok", "chosen": "x", "rejected": ["not", "a", "reply"]},                 # a list that is no chat
]


def write(tmp_path, rows) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_dpo_pairs_skip_five_kinds_of_broken_row(tmp_path, capsys):
    data = write(tmp_path, [GOOD[0], *BROKEN, GOOD[1]])
    job = DPOJob(data=data, normalizer="n.json", user_weights=[1.0], output_dir=str(tmp_path / "run"), on_bad_rows="skip",
                 pairs_from="columns")
    rows, _ = read_rows(job, lambda row, where: check_row(job, row, where))
    assert [r["prompt"] for r in rows] == ["hi", "name a colour"]
    rejected = [json.loads(line) for line in (tmp_path / "run.rejected_rows.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rejected] == [2, 3, 4, 5, 6] and len({r["reason"] for r in rejected}) == 5
    assert "skipped 5 of 7 rows" in capsys.readouterr().out
    with pytest.raises(PreforchError, match=r"rows.jsonl: row 2\b"):  # error: the first bad row, in one line
        read_rows(DPOJob(data=data, normalizer="n.json", user_weights=[1.0], output_dir=str(tmp_path / "run2"), pairs_from="columns"),
                  lambda row, where: check_row(job, row, where))


def test_prompt_and_conditioned_routes_read_their_own_columns(tmp_path):
    data = write(tmp_path, [GOOD[0], {"question": "no prompt column"}, GOOD[1]])
    grpo = GRPOJob(data=data, normalizer="n.json", user_weights=[1.0], output_dir=str(tmp_path / "g"), on_bad_rows="skip")
    rows, _ = read_rows(grpo, lambda row, where: prompt_of(row, grpo.prompt_column, where))
    assert len(rows) == 2 and "missing or empty column 'prompt'" in (tmp_path / "g.rejected_rows.jsonl").read_text()
    cond = ConditionedJob(data=write(tmp_path, [GOOD[0], BROKEN[2], GOOD[1]]), normalizer="n.json", user_weights=[1.0],
                          output_dir=str(tmp_path / "c"), on_bad_rows="skip")
    rows, _ = read_rows(cond, lambda row, where: preference_of(row, cond.prompt_column, where))
    assert len(rows) == 2 and '"row": 2' in (tmp_path / "c.rejected_rows.jsonl").read_text()
    with pytest.raises(PreforchError, match="every row was set aside"):
        read_rows(GRPOJob(data=write(tmp_path, BROKEN[:1]), normalizer="n.json", user_weights=[1.0], output_dir=str(tmp_path / "e"),
                          on_bad_rows="skip"), lambda row, where: prompt_of(row, "prompt", where))


def test_the_setting_at_its_default_keeps_run_hashes():
    assert GRPOJob(normalizer="n.json", user_weights=[1.0]).config_hash() == GRPOJob(normalizer="n.json", user_weights=[1.0], on_bad_rows="error").config_hash()
    assert GRPOJob(normalizer="n.json", user_weights=[1.0]).config_hash() != GRPOJob(normalizer="n.json", user_weights=[1.0], on_bad_rows="skip").config_hash()


def test_grpo_skips_broken_rows_through_the_cli(tmp_path, tiny_policy_dir, capsys):
    norm = tmp_path / "normalizer.json"
    Normalizer(["concise", "positive"]).fit(np.array([[-1.0, -1.0], [-3.0, -2.0], [-2.0, -2.5]])).save(norm)
    data = write(tmp_path, [{"prompt": p} for p in PROMPTS[:4]] + [{"prompt": ""}, {"text": "no prompt"}])
    args = ["align", "grpo", "--config", "configs/tiny/align_grpo.yaml", "--policy", str(tiny_policy_dir),
            "--normalizer", str(norm), "--data", data, "--output-dir", str(tmp_path / "run")]
    assert main(args) == 2
    assert "rows.jsonl: row 5" in capsys.readouterr().err
    assert main([*args, "--on-bad-rows", "skip"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 of 6 rows" in out and "policy written to" in out


def test_prompts_are_cut_to_max_prompt_length_keeping_their_end(tiny_policy):
    """TRL's trainers do not cut prompts: preforch does, so one long dialogue cannot blow up a batch."""
    from preforch.align.data import fit_prompt, prompt_tokens
    from preforch.conversation import as_conversation

    tok = tiny_policy[1] if isinstance(tiny_policy, tuple) else tiny_policy.tokenizer
    long = as_conversation([{"role": "user", "content": "first question " * 40},
                            {"role": "assistant", "content": "an answer " * 40},
                            {"role": "user", "content": "alpha beta " * 60 + "the final words"}])
    for chat in (True, False):
        short = fit_prompt(as_conversation("hi there"), tok, 64, chat)
        assert short == as_conversation("hi there")  # short prompts pass untouched
        cut = fit_prompt(long, tok, 64, chat)
        assert prompt_tokens(cut, tok, chat) <= 64 and prompt_tokens(long, tok, chat) > 64
        assert len(cut.messages) == 1 and cut.last_user.endswith("the final words")  # earliest turns went first
    two = as_conversation([{"role": "user", "content": "old " * 5}, {"role": "assistant", "content": "ok"},
                           {"role": "user", "content": "new question"}])
    n = prompt_tokens(as_conversation("new question"), tok, True)
    assert fit_prompt(two, tok, n, True) == as_conversation("new question")  # whole turns dropped, text intact
    with pytest.raises(PreforchError, match="leaves no room"):
        fit_prompt(long, tok, 2, True)
