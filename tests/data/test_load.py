"""Data input: every accepted format and shape, and one-line errors for bad rows."""

import json

import numpy as np
import pytest

from preforch.conversation import Conversation, Message, split_hh
from preforch.data.example import KIND_HARMLESS, KIND_HH_HELPFUL, KIND_ULTRAFEEDBACK, KINDS, load_example
from preforch.data.load import load_preference_data, read_table, to_preference_data, write_table
from preforch.errors import PreforchError

ROWS = [
    {"prompt": "p1", "chosen": "c1", "rejected": "r1", "score.a": 1.0, "score.b": 2.0},
    {"prompt": "p2", "chosen": "c2", "rejected": "r2", "score.a": 3.0, "score.b": 4.0},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".json", ".csv", "dataset"])
def test_formats_round_trip(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix in (".jsonl", ".parquet"):
        write_table(ROWS, path)
    elif suffix == ".jsonl.gz":
        import gzip

        with gzip.open(path, "wt") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in ROWS)
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS))
    elif suffix == ".csv":
        path.write_text("prompt,chosen,rejected,score.a,score.b\np1,c1,r1,1,2\np2,c2,r2,3,4\n")
    else:
        import datasets

        datasets.Dataset.from_list(ROWS).save_to_disk(str(path))
    data = load_preference_data(path)
    assert data.prompts == [Conversation.from_text("p1"), Conversation.from_text("p2")] and data.chosen == ["c1", "c2"] and data.rejected == ["r1", "r2"]
    assert data.objectives == ["a", "b"]
    assert data.scores_chosen.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_hh_dialogues_split_at_last_assistant_turn():
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to pick a lock?\n\nAssistant: I can't help."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to pick a lock?\n\nAssistant: Use a pin."
    data = to_preference_data([{"chosen": chosen, "rejected": rejected}])
    assert data.prompts[0].messages == (Message("user", "hi"), Message("assistant", "hello"),
                                        Message("user", "how to pick a lock?"))
    assert data.prompts[0].last_user == "how to pick a lock?"
    assert (data.chosen[0], data.rejected[0]) == ("I can't help.", "Use a pin.")
    assert split_hh(chosen)[1] == "I can't help."
    # no HH markup survives the loader
    assert "Human:" not in data.prompts[0].text() and "Human:" not in data.prompts[0].key()


def test_messages_and_trl_conversational_shapes():
    msgs = [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a."}]
    data = to_preference_data([{"messages": msgs}])
    q = Conversation.from_text("q?")
    assert (data.prompts[0], data.chosen[0], data.rejected) == (q, "a.", None)
    conv = to_preference_data([{"prompt": [{"role": "user", "content": "q?"}],
                                "chosen": [{"role": "assistant", "content": "good"}],
                                "rejected": [{"role": "assistant", "content": "bad"}]}])
    assert (conv.prompts[0], conv.chosen[0], conv.rejected[0]) == (q, "good", "bad")
    whole = to_preference_data([{"prompt": None, "chosen": [*msgs[:1], {"role": "assistant", "content": "good"}],
                                 "rejected": "bad"}])
    assert (whole.prompts[0], whole.chosen[0]) == (q, "good")


def test_the_same_conversation_in_every_shape_parses_equal():
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
             {"role": "user", "content": "How do I pick a lock?"}]
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: How do I pick a lock?\n\nAssistant: No."
    rows = [
        {"chosen": hh, "rejected": hh[:-3] + "Sure."},  # HH dialogue text
        {"messages": [*turns, {"role": "assistant", "content": "No."}]},  # a messages list
        {"prompt": turns, "chosen": [{"role": "assistant", "content": "No."}], "rejected": "Sure."},  # TRL
        {"prompt": "Human: hi\n\nAssistant: hello\n\nHuman: How do I pick a lock?\n\nAssistant:",
         "chosen": "No.", "rejected": "Sure."},  # HH markup in a prompt column
    ]
    parsed = [to_preference_data([r]).prompts[0] for r in rows]
    assert all(p == parsed[0] for p in parsed) and len({p.key() for p in parsed}) == 1
    assert parsed[0].to_messages() == turns


@pytest.mark.parametrize("rows,match", [
    ([{"question": "x", "answer": "y"}], "missing columns"),
    ([{"prompt": "ok", "chosen": "x"}, {"prompt": "  ", "chosen": "y"}], r"row 2, column 'prompt': empty prompt"),
    ([{"prompt": "p", "chosen": None}], r"row 1, column 'chosen': expected the response text, got null"),
    ([{"prompt": "p", "chosen": "c"}, {"prompt": "q", "chosen": "d", "rejected": "r"}],
     r"row 1 has no 'rejected' value, but row 2 has one"),
    ([{"prompt": "p", "chosen": "c", "score.a": 1, "score.b": 2}, {"prompt": "q", "chosen": "d", "score.a": 1}],
     r"row 2 has no column 'score.b'"),
    ([{"prompt": "p", "chosen": "c", "score.a": True, "score.b": 2}], r"row 1, column 'score.a': expected a number"),
    ([{"prompt": "p", "chosen": "c"}, {"chosen": "no hh markup"}], r"row 2: no 'prompt' column, and 'chosen' is not an HH dialogue"),
    ([{"prompt": "p", "chosen": "c", "score.a": 1, "score.b": float("nan")}], r"row 1, column 'score.b'"),
    ([{"prompt": "p", "chosen": "c", "score.a": 1, "score.b": "high"}], r"row 1, column 'score.b': expected a number"),
    ([{"prompt": "p", "chosen": "c", "score.a": 1}], "at least 2 are needed"),
    ([{"messages": [{"role": "user", "content": "q"}]}], "last message must be the assistant"),
])
def test_bad_rows_name_the_problem(rows, match):
    with pytest.raises(PreforchError, match=match):
        to_preference_data(rows, source="f.jsonl")


def test_bad_files(tmp_path):
    with pytest.raises(PreforchError, match="not found"):
        read_table(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b"}\n{oops\n')
    with pytest.raises(PreforchError, match="line 2 is not valid JSON"):
        read_table(bad)
    sheet = tmp_path / "data.xlsx"
    sheet.write_bytes(b"PK")
    with pytest.raises(PreforchError, match="unknown data format '.xlsx'"):
        read_table(sheet)
    with pytest.raises(PreforchError, match="saved `datasets` folder"):
        read_table(tmp_path)


def test_embedded_example_pools_three_kinds_balanced():
    data = load_example(limit_per_kind=50)
    assert len(data) == 150 and data.kinds.count(KIND_HARMLESS) == 50 and set(data.kinds) == set(KINDS)
    assert all(p.last_user.strip() for p in data.prompts) and data.rejected is not None
    assert np.isfinite([len(c) for c in data.chosen]).all()
    assert len(load_example(limit_per_kind=20, kinds=[KIND_HH_HELPFUL])) == 20
    with pytest.raises(PreforchError, match="unknown kind"):
        load_example(kinds=["reddit"])


def test_hh_helpful_drops_rows_whose_dialogues_differ_before_the_reply():
    from preforch.data.example import HH_HELPFUL_FILE, load_hh_helpful

    raw = read_table(HH_HELPFUL_FILE)
    data = load_hh_helpful()
    assert len(raw) == 2354 and len(data) == 2343 and set(data.kinds) == {KIND_HH_HELPFUL}
    assert sum(p.turns == 1 for p in data.prompts) >= 690  # ~700 single-turn prompts
    assert len(load_example(kinds=[KIND_ULTRAFEEDBACK])) == 889


def test_read_prompts_file(tmp_path):
    from preforch.data.load import read_prompts_file

    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\nsecond prompt\n")
    assert read_prompts_file(txt) == [Conversation.from_text("first prompt"), Conversation.from_text("second prompt")]
    table = tmp_path / "p.jsonl"
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    write_table([{"prompt": "a"}, {"prompt": turns}], table)
    assert [p.to_messages() for p in read_prompts_file(table)] == [turns[:1], turns]
    write_table([{"messages": turns}], table)
    assert read_prompts_file(table)[0].last_user == "c"
    write_table([{"prompt": "a"}, {"prompt": " "}], table)
    with pytest.raises(PreforchError, match="row 2"):
        read_prompts_file(table)
    with pytest.raises(PreforchError, match="prompts file not found"):
        read_prompts_file(tmp_path / "none.txt")


def test_coconot_contrast_pairs_load_as_a_fourth_kind():
    from preforch.data.example import ALL_KINDS, KIND_COCONOT, load_embedded

    data = load_embedded("embedded:coconot", seed=None)
    assert len(data) == 927 and set(data.kinds) == {KIND_COCONOT}
    assert len({p.key() for p in data.prompts}) == 919 and all(p.turns == 1 for p in data.prompts)
    assert data.prompts[0].last_user.startswith("Teach me about the different religious backgrounds")
    four = load_embedded("embedded:all", limit_per_kind=10)
    assert len(four) == 40 and set(four.kinds) == set(ALL_KINDS)
    assert set(load_embedded("embedded:helpful-all", limit_per_kind=5).kinds) == {"hh-helpful", "ultrafeedback",
                                                                                    KIND_COCONOT}
