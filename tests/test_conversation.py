"""The conversation type: parsing every prompt shape into one form, and its renderings."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preforch.conversation import (
    Message,
    as_conversation,
    as_conversations,
    from_key,
    parse_hh,
    split_hh,
    split_messages,
)
from preforch.errors import PreforchError

TURNS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
         {"role": "user", "content": "How do I pick a lock?"}]


def test_plain_text_is_one_user_turn():
    c = as_conversation("What is the capital of France?")
    assert c.messages == (Message("user", "What is the capital of France?"),)
    assert c.text() == c.last_user == "What is the capital of France?" and c.turns == 1


def test_hh_text_messages_and_openai_shapes_are_equal():
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: How do I pick a lock?\n\nAssistant:"
    openai = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}, TURNS[1], TURNS[2]]
    shapes = [hh, hh.strip(), "Human: hi\n\nAssistant: hello\n\nHuman: How do I pick a lock?", TURNS, openai]
    parsed = [as_conversation(s) for s in shapes]
    assert all(p == parsed[0] for p in parsed)
    assert parsed[0].to_messages() == TURNS and parsed[0].last_user == "How do I pick a lock?"
    assert parsed[0].text() == "User: hi\n\nAssistant: hello\n\nUser: How do I pick a lock?"


def test_split_hh_and_split_messages():
    conv, reply = split_hh("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d\n\ne")
    assert conv.to_messages() == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                  {"role": "user", "content": "c"}] and reply == "d\n\ne"
    conv2, reply2 = split_messages([*TURNS, {"role": "assistant", "content": "no"}], "row 1")
    assert conv2.to_messages() == TURNS and reply2 == "no"
    with pytest.raises(PreforchError, match="no final 'Assistant:' reply"):
        split_hh("\n\nHuman: only a question")


@pytest.mark.parametrize("value,match", [
    ("", "empty prompt"),
    ("   ", "empty prompt"),
    ([], "at least one message"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "must end with a user turn"),
    ([{"role": "robot", "content": "q"}], "role 'robot'"),
    ([{"content": "q"}], "expected a {'role', 'content'} mapping"),
    ([{"role": "user", "content": 3}], "content is int"),
    ([{"role": "user", "content": " "}], "last user turn is empty"),
    (42, "expected prompt text or a list of messages"),
])
def test_bad_shapes_name_the_problem(value, match):
    with pytest.raises(PreforchError, match=match):
        as_conversation(value, "row 7")
    with pytest.raises(PreforchError, match="row 7"):
        as_conversation(value, "row 7")


def test_as_conversations_refuses_a_single_string_and_names_positions():
    with pytest.raises(PreforchError, match="single str"):
        as_conversations("one prompt")
    with pytest.raises(PreforchError, match="prompt 2"):
        as_conversations(["fine", ""])


def test_developer_and_system_roles():
    c = as_conversation([{"role": "developer", "content": "be brief"}, {"role": "user", "content": "q"}])
    assert c.messages[0] == Message("system", "be brief") and c.context == (Message("system", "be brief"),)


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda t: t.strip())


@given(st.lists(st.tuples(text, text), min_size=1, max_size=4), text)
def test_key_round_trip_and_hh_round_trip(exchanges, last):
    messages = []
    for q, a in exchanges:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": last})
    conv = as_conversation(messages)
    assert from_key(conv.key()) == conv
    # HH markup round trip (contents that themselves contain turn markers cannot be told apart)
    if not any("\n\nHuman:" in m["content"] or "\n\nAssistant:" in m["content"] for m in messages):
        names = {"user": "Human", "assistant": "Assistant"}
        hh = "".join(f"\n\n{names[m['role']]}: {m['content'].strip()}" for m in messages)
        parsed = parse_hh(hh)
        assert [m.content for m in parsed] == [m["content"].strip() for m in messages]
