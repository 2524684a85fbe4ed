"""The field's data as it is: HH-RLHF with odd speaker markers and CRLF, split prompt/response rows, UltraFeedback
message lists, PKU-SafeRLHF through a column map, TRL conversational rows with system and tool turns."""

import gzip
import json
import re

import pytest

from preforch.conversation import Message, parse_hh, split_hh, split_hh_pair
from preforch.data.example import HH_FILE, HH_HELPFUL_FILE
from preforch.data.rows import ColumnMap, parse_preference_rows, to_preference_data
from preforch.errors import PreforchError

MARKER = "\n\nAssistant:"


def _split_layout(row: dict) -> dict:
    """The common layout after splitting HH dialogues: the prompt up to the chosen dialogue's last marker."""
    cut = row["chosen"].rfind(MARKER) + len(MARKER)
    return {"prompt": row["chosen"][:cut], "chosen": row["chosen"][cut:],
            "rejected": row["rejected"][row["rejected"].rfind(MARKER) + len(MARKER):]}


def test_inline_human_turn_in_a_split_prompt_ends_with_that_user_turn():
    # the shape: an assistant turn holding "Human: …" before the final generation marker
    prompt = "\n\nHuman: a\n\nAssistant: b  Human: c\n\nAssistant:"
    data = to_preference_data([{"prompt": prompt, "chosen": " good", "rejected": " bad"}])
    assert data.prompts[0].messages == (Message("user", "a"), Message("assistant", "b"), Message("user", "c"))
    assert (data.chosen[0], data.rejected[0]) == (" good", " bad")


def test_two_assistant_turns_before_the_marker_start_the_reply():
    prompt = "\n\nHuman: How much do solar panels cost?\n\nAssistant: Umm. Just a second...\n\nAssistant:"
    data = to_preference_data([{"prompt": prompt, "chosen": " About $50.", "rejected": " No idea."}])
    assert data.prompts[0].messages == (Message("user", "How much do solar panels cost?"),)
    # the same reading as the whole dialogue: one reply in two assistant turns
    assert data.chosen[0] == "Umm. Just a second...\n\nAbout $50." == split_hh(prompt + " About $50.")[1]
    # the generation marker is never merged into the turn before it
    assert parse_hh(prompt)[-1] == Message("assistant", "Umm. Just a second...")


def test_whole_dialogue_with_an_inline_human_turn_is_read_as_it_reads():
    chosen = "\n\nHuman: a\n\nAssistant: b  Human: c\n\nAssistant: good"
    assert parse_hh(chosen) == [Message("user", "a"), Message("assistant", "b"), Message("user", "c"),
                                Message("assistant", "good")]
    assert split_hh(chosen)[1] == "good"  # not 'b  Human: c\n\ngood'
    # as a pair with a one-turn rejected reply: the shared prompt, and the reply up to the inline turn
    prompt, c, r = split_hh_pair(chosen, "\n\nHuman: a\n\nAssistant: bad")
    assert prompt.messages == (Message("user", "a"),) and (c, r) == ("b", "bad")
    # both ran on the same way: the longer prompt is shared
    prompt, c, r = split_hh_pair(chosen, chosen.replace("good", "worse"))
    assert prompt.last_user == "c" and (c, r) == ("good", "worse")
    # dialogues that differ otherwise are still refused
    with pytest.raises(PreforchError, match="differ before the last assistant turn"):
        split_hh_pair("\n\nHuman: a\n\nAssistant: x\n\nHuman: y\n\nAssistant: z", "\n\nHuman: a\n\nAssistant: w")
    # a word in a sentence is no speaker marker
    assert len(parse_hh("\n\nHuman: q\n\nAssistant: To Sell is Human: a book\n\nAssistant:")) == 2


def test_crlf_hh_text_reads_like_lf():
    lf = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: pick a lock?\n\nAssistant: No."
    crlf = lf.replace("\n", "\r\n")
    assert split_hh(crlf) == split_hh(lf)
    data = to_preference_data([{"chosen": crlf, "rejected": crlf.replace("No.", "Yes.")}])
    assert data.prompts[0].last_user == "pick a lock?" and data.rejected[0] == "Yes."


def _shipped(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("path,odd", [(HH_FILE, 4), (HH_HELPFUL_FILE, 9)])
def test_shipped_hh_rows_all_load_in_both_layouts(path, odd):
    rows = _shipped(path)
    whole = to_preference_data(rows, source=str(path))
    split = to_preference_data([_split_layout(r) for r in rows], source=str(path))
    assert len(whole) == len(split) == len(rows)  # every row loads; a Conversation ends with a user turn
    # Every reply is what follows the last marker, except in the cells whose reply spans two assistant turns
    # (the count: 4 harmless, 9 helpful); nothing else changed.
    turns = re.compile(r"\n\n(Human|Assistant):")
    spans = [(i, col) for i, r in enumerate(rows) for col in ("chosen", "rejected")
             if turns.findall(r[col])[-2:] == ["Assistant", "Assistant"]]
    assert len(spans) == odd
    for i, r in enumerate(rows):
        for col, got in (("chosen", whole.chosen[i]), ("rejected", whole.rejected[i])):
            if (i, col) not in spans:
                assert got == r[col][r[col].rfind(MARKER) + len(MARKER):].strip()
    # no reply of the odd cells still holds a user turn it wrote inline
    inline = re.compile(r"\S(?:[ \t]*\n\s*|[ \t]{2,}\(?)Humans?:")
    for i, col in spans:
        assert not inline.search(whole.chosen[i] if col == "chosen" else whole.rejected[i])


def test_ultrafeedback_binarized_message_lists():
    q = "Write a haiku about rain."
    row = {"prompt": q, "prompt_id": "x1", "score_chosen": 8.0, "score_rejected": 3.0,
           "chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": "Soft rain on the roof"}],
           "rejected": [{"role": "user", "content": q}, {"role": "assistant", "content": "Rain."}],
           "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Soft rain on the roof"}]}
    data = to_preference_data([row])
    assert data.prompts[0].last_user == q and (data.chosen[0], data.rejected[0]) == ("Soft rain on the roof", "Rain.")


def test_pku_saferlhf_through_a_column_map():
    rows = [{"prompt": f"q{i}", "response_0": f"safe{i}" if i % 2 == 0 else f"unsafe{i}",
             "response_1": f"unsafe{i}" if i % 2 == 0 else f"safe{i}", "better_response_id": 1,
             "safer_response_id": i % 2, "is_response_0_safe": i % 2 == 0} for i in range(4)]
    columns = ColumnMap(chosen="response_0", rejected="response_1", preferred_id="safer_response_id")
    data = to_preference_data(rows, columns=columns)
    assert data.chosen == ["safe0", "safe1", "safe2", "safe3"]
    assert data.rejected == ["unsafe0", "unsafe1", "unsafe2", "unsafe3"]
    with pytest.raises(PreforchError, match=r"row 1, column 'safer_response_id': expected 0 or 1"):
        to_preference_data([{**rows[0], "safer_response_id": 2}], columns=columns)
    with pytest.raises(PreforchError, match="missing columns"):  # without the map the file is not readable
        to_preference_data(rows)


def test_a_question_column_named_by_the_map_and_a_clear_error_without_it():
    rows = [{"question": "What is 2+2?", "chosen": "4", "rejected": "5"}]
    assert to_preference_data(rows, columns=ColumnMap(prompt="question")).prompts[0].last_user == "What is 2+2?"
    with pytest.raises(PreforchError, match="no 'prompt' column.*--prompt-column"):
        to_preference_data(rows)


def test_trl_conversational_rows_with_system_and_tool_turns():
    call = [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]
    prompt = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": None, "tool_calls": call},
              {"role": "tool", "name": "weather", "content": "18C, rain"}, {"role": "assistant", "content": "18C."},
              {"role": "user", "content": "Umbrella?"}]
    data = to_preference_data([{"prompt": prompt, "chosen": [{"role": "assistant", "content": "Yes."}],
                                "rejected": [{"role": "assistant", "content": "No."}]}])
    conv = data.prompts[0]
    assert [m.role for m in conv.messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert "weather" in conv.messages[2].content and conv.messages[3].content == "18C, rain"
    assert conv.last_user == "Umbrella?" and (data.chosen[0], data.rejected[0]) == ("Yes.", "No.")


FIVE_BAD = [
    {"prompt": None, "chosen": "c", "rejected": "r"},                            # missing prompt
    {"prompt": "p", "chosen": 7, "rejected": "r"},                               # response not text
    {"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
     "chosen": "c", "rejected": "r"},                                            # prompt ends with the assistant
    {"prompt": "p", "chosen": "c"},                                              # no rejected where others have one
    {"prompt": "\n\nHuman: \n\nAssistant:", "chosen": "c", "rejected": "r"},     # empty HH user turn
]


def test_on_bad_rows_skip_sets_aside_five_kinds_with_five_reasons():
    good = [{"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(6)]
    rows = good[:3] + FIVE_BAD + good[3:]
    parsed = parse_preference_rows(rows, "f.jsonl", on_bad_rows="skip")
    assert len(parsed.data) == 6 and parsed.kept == [0, 1, 2, 8, 9, 10]
    assert [r.row for r in parsed.rejected] == [4, 5, 6, 7, 8] and len(parsed.reasons()) == 5
    assert parsed.rejected[1].values == FIVE_BAD[1]
    with pytest.raises(PreforchError, match=r"f.jsonl: row 7 has no 'rejected' value"):
        parse_preference_rows(rows, "f.jsonl")  # the default stops at the first


def test_score_skip_writes_rejected_rows_and_scores_the_rest(tmp_path, capsys):
    from preforch.cli.main import main
    from preforch.data.load import read_table, write_table

    good = [{"prompt": f"q{i}", "chosen": "a reply " * (i + 1), "rejected": "no"} for i in range(6)]
    data, out = tmp_path / "in.jsonl", tmp_path / "scored.jsonl"
    write_table(good[:3] + FIVE_BAD + good[3:], data)
    argv = ["score", "--input", str(data), "--output", str(out), "--scorers", "[{type: rule, name: concise}]",
            "--cache", "false", "--progress", "false"]
    assert main(argv) == 2 and not out.exists()  # on_bad_rows: error is the default
    assert "row 7 has no 'rejected' value" in capsys.readouterr().err
    assert main([*argv, "--on-bad-rows", "skip"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 5 of 11 rows" in printed and "5 reason(s)" in printed
    scored = read_table(out)
    assert [r["prompt"] for r in scored] == [f"q{i}" for i in range(6)] and "score.concise" in scored[0]
    rejected = read_table(tmp_path / "scored.rejected_rows.jsonl")
    assert [r["row"] for r in rejected] == [4, 5, 6, 7, 8] and len({r["reason"] for r in rejected}) == 5
    assert rejected[1]["values"] == FIVE_BAD[1]


def test_adapter_train_takes_the_column_flags(tmp_path):
    from preforch.cli.main import build_parser

    for argv in (["adapter", "train"], ["rm", "train"], ["evaluate", "adapter"], ["score"]):
        args = build_parser().parse_args([*argv, "--prompt-column", "question", "--on-bad-rows", "skip"])
        assert (args.prompt_column, args.on_bad_rows) == ("question", "skip")
